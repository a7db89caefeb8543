// A lossy downlink, in Chromium: a subscriber whose UDP port on loopback loses 10 % of what the
// server sends it (iptables' statistic match) NACKs what it missed and gets it again from the server's RTX
// history, so its video loses next to nothing and keeps going; another subscriber of the same
// publisher is untouched. Needs root (tc) like the rest of the suite's setup.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import {
  dropOnLoopbackPort, freshRoom, launchBrowser, lossCounters, scenarioTest, sleep, startHearth, undropLoopback,
} from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

/** Share of the lossy subscriber's datagrams dropped on the way. */
const LOSS_PERCENT = 10;
/** How long the loss lasts. */
const LOSSY_MS = 15_000;

before(async () => {
  undropLoopback(); // what a killed run may have left
  server = await startHearth({ name: 'loss' });
  browser = await launchBrowser();
});

after(async () => {
  undropLoopback();
  await browser?.close();
  await server?.stopChecked();
});

const options = (userId, room) => server.clientOptions(userId, room);

const decoding = (s) => s.framesDecoded > 0;
const pick = (s) => ({
  received: s.packetsReceived, lost: s.packetsLost, nacks: s.nackCount, frames: s.framesDecoded,
  keyframes: s.keyFramesDecoded, plis: s.pliCount, freezes: s.freezeCount, retransmitted: s.retransmittedPacketsReceived,
});

describe('loss', () => {
  scenarioTest('a subscriber behind a lossy downlink gets what it lost again (NACK, RTX) and its video goes on', env, async (sc) => {
    const room = freshRoom();
    const pub = await sc.participant('pub', options('pub', room));
    await pub.call('enter');
    await pub.call('publish', { audio: false, video: { width: 640, height: 360, frameRate: 15 } });
    const lossy = await sc.participant('lossy', options('lossy', room));
    const clear = await sc.participant('clear', options('clear', room));
    await lossy.call('enter');
    await clear.call('enter');
    await Promise.all([
      lossy.waitStats('pub', 'main', 'video', decoding, { what: 'video at lossy' }),
      clear.waitStats('pub', 'main', 'video', decoding, { what: 'video at clear' }),
    ]);
    const port = await lossy.receivingPort();
    assert.ok(port > 0, 'the lossy subscriber has a selected candidate pair');
    const before = pick(await lossy.stats('pub'));
    const clearBefore = pick(await clear.stats('pub'));
    dropOnLoopbackPort(port, LOSS_PERCENT / 100);
    let dropped;
    try {
      await sleep(LOSSY_MS);
      dropped = lossCounters();
    } finally {
      undropLoopback();
    }
    // What was in flight lands, and the last NACKs are answered.
    await sleep(1_000);
    const now = pick(await lossy.stats('pub'));
    const clearNow = pick(await clear.stats('pub'));
    const received = now.received - before.received;
    const lost = now.lost - before.lost;
    const summary = `${dropped.dropped} of ${dropped.offered} datagrams dropped; lossy ${JSON.stringify(before)} -> ${JSON.stringify(now)}; clear ${JSON.stringify(clearBefore)} -> ${JSON.stringify(clearNow)}`;
    console.log(`loss: ${summary}`);
    // The loss was real: about a tenth of what went to the port never arrived.
    assert.ok(dropped.dropped >= dropped.offered * LOSS_PERCENT / 100 / 2 && dropped.dropped > 20,
      `fewer datagrams were dropped than asked: ${summary}`);
    // The subscriber asked for what it missed, and got it in time: it decoded as many frames as
    // the subscriber without loss, and needed no keyframe to get going again. (Chromium counts
    // a media packet it got again over RTX as lost all the same: `packetsLost` stays ~ what
    // was dropped.) Without the repair a tenth of the packets missing breaks about one frame in
    // six, and VP8 then waits for a keyframe after each.
    assert.ok(now.nacks > before.nacks, `the lossy subscriber sent no NACK: ${summary}`);
    assert.ok(received > 100 && lost > 0, `the lossy subscriber's media was not lost on the way: ${summary}`);
    const frames = now.frames - before.frames;
    const clearFrames = clearNow.frames - clearBefore.frames;
    assert.ok(frames >= clearFrames * 0.95, `the lossy subscriber decoded ${frames} frames, the clear one ${clearFrames}: ${summary}`);
    assert.ok(now.plis - before.plis <= 1 && now.keyframes - before.keyframes <= 1,
      `the lossy subscriber needed keyframes to recover: ${summary}`);
    // The other subscriber saw none of it, and its video went on at about the publisher's rate.
    const secs = (LOSSY_MS + 1_000) / 1000;
    assert.ok(clearNow.frames - clearBefore.frames >= secs * 15 * 0.6, `the clear subscriber decoded ${clearNow.frames - clearBefore.frames} frames in ${secs} s: ${summary}`);
    assert.ok(clearNow.lost - clearBefore.lost <= 2, `the clear subscriber lost packets: ${summary}`);
  }, { timeout: 120_000 });
});
