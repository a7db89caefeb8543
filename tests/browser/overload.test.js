// Bounded queues under a slow downlink, in Chromium: a subscriber whose downlink (shaped on
// loopback with tc: an htb class on its UDP port) is slower than the publisher's lowest simulcast layer
// has its queue go over the bound; the server drops the newest media for it and resumes it at a
// keyframe (its video goes on, with more keyframes decoded), while another subscriber of the same
// publisher sees no stall. Needs root (tc) like the rest of the suite's setup.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import {
  freshRoom, launchBrowser, scenarioTest, shapeLoopbackPort, simulcastPublisher, sleep, startHearth, unshapeLoopback,
} from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

/** Downlink of the slow subscriber, kbit/s: below the lowest layer of a 1280x720 camera. */
const SLOW_KBIT = 60;

before(async () => {
  // The worker logs each line going over its bound and resuming: the failure's diagnostics.
  server = await startHearth({ name: 'overload', logFilter: 'info,hearth_sfu::worker::forward=debug' });
  browser = await launchBrowser();
});

after(async () => {
  unshapeLoopback();
  await browser?.close();
  await server?.stopChecked();
});

const options = (userId, room) => server.clientOptions(userId, room);

const decoding = (s) => s.framesDecoded > 0;

/** What a subscriber has decoded of the publisher's video so far, and what the publisher sent. */
async function sample(p, pub) {
  const s = await p.stats('pub');
  const sent = await pub.outboundVideo();
  const layers = sent?.layers ?? [];
  return {
    at: Date.now(), n: s.framesDecoded, w: s.frameWidth, kf: s.keyFramesDecoded, pli: s.pliCount, lost: s.packetsLost,
    pubBytes: layers.reduce((sum, l) => sum + (l.bytesSent ?? 0), 0),
    pubRetx: layers.reduce((sum, l) => sum + (l.retransmitted ?? 0), 0),
    pubKf: Math.max(0, ...layers.map((l) => l.keyFrames ?? 0)),
    layers: layers.map((l) => `${l.rid}:${l.framesSent}:${l.frameWidth}:${l.limitation}`).join(','),
  };
}

describe('overload', () => {
  scenarioTest('a subscriber over its queue bound resumes at a keyframe; the other subscriber does not stall', env, async (sc) => {
    const room = freshRoom();
    const pub = await simulcastPublisher(sc, options('pub', room));
    const fast = await sc.participant('fast', options('fast', room));
    const slow = await sc.participant('slow', options('slow', room));
    // A second unshaped subscriber: a stall both see at once came from upstream.
    const control = await sc.participant('control', options('control', room));
    await fast.call('enter');
    await slow.call('enter');
    await control.call('enter');
    await Promise.all([
      fast.waitStats('pub', 'main', 'video', decoding, { what: 'video at fast' }),
      control.waitStats('pub', 'main', 'video', decoding, { what: 'video at control' }),
      slow.waitStats('pub', 'main', 'video', decoding, { what: 'video at slow' }),
    ]);
    const port = await slow.receivingPort();
    assert.ok(port > 0, 'the slow subscriber has a selected candidate pair');
    const skips0 = await server.metric('hearth_media_queue_skips_total');
    shapeLoopbackPort(port, SLOW_KBIT);
    try {
      // The slow subscriber's queue goes over the bound.
      let skips = skips0;
      const fastFrames = [];
      let slowAtSkip = null;
      const deadline = Date.now() + 40_000;
      while (Date.now() < deadline) {
        fastFrames.push({ ...(await sample(fast, pub)), c: (await control.stats('pub')).framesDecoded });
        skips = await server.metric('hearth_media_queue_skips_total');
        if (skips > skips0) {
          slowAtSkip = await slow.stats('pub');
          break;
        }
        await sleep(500);
      }
      assert.ok(slowAtSkip, `no subscriber went over its queue bound within 40 s (skips ${skips0} -> ${skips}, drops ${await server.metric('hearth_media_queue_drops_total')})`);
      assert.ok(await server.metric('hearth_media_queue_drops_total') > 0, 'media was dropped for the slow subscriber');

      // It resumes at a keyframe: more frames, and more keyframes, decoded.
      let slowNow = slowAtSkip;
      const resumeBy = Date.now() + 20_000;
      while (Date.now() < resumeBy) {
        fastFrames.push({ ...(await sample(fast, pub)), c: (await control.stats('pub')).framesDecoded });
        slowNow = await slow.stats('pub');
        if (slowNow.keyFramesDecoded > slowAtSkip.keyFramesDecoded && slowNow.framesDecoded > slowAtSkip.framesDecoded + 5) break;
        await sleep(500);
      }
      assert.ok(slowNow.keyFramesDecoded > slowAtSkip.keyFramesDecoded,
        `the slow subscriber decoded no new keyframe after it went over the bound (${slowAtSkip.keyFramesDecoded} -> ${slowNow.keyFramesDecoded})`);
      assert.ok(slowNow.framesDecoded > slowAtSkip.framesDecoded + 5,
        `the slow subscriber's video did not resume (${slowAtSkip.framesDecoded} -> ${slowNow.framesDecoded} frames)`);

      // The fast subscriber never stalled on its own: its frame count grew in every 2 s window
      // in which the control subscriber's did. Both waiting at once is upstream of their lines
      // (the publisher's own pauses): such windows are reported, and may not be most of them.
      // The ~2 s freeze about 25 s into every call that showed up here was the server dropping
      // the publisher's media after a check on its backup candidate pair (docs/sfu.md,
      // "Problems found"; fixed, with its own test in tests/e2e/test_media.py).
      const t0 = fastFrames[0].at;
      const upstream = [];
      for (let i = 0; i < fastFrames.length; i++) {
        const j = fastFrames.findIndex((f) => f.at >= fastFrames[i].at + 2000);
        if (j < 0) break;
        if (fastFrames[j].n <= fastFrames[i].n && fastFrames[j].c <= fastFrames[i].c) {
          upstream.push(`+${fastFrames[i].at - t0}..+${fastFrames[j].at - t0} ms`);
          continue;
        }
        assert.ok(fastFrames[j].n > fastFrames[i].n,
          `the fast subscriber stalled: ${fastFrames[i].n} frames at +${fastFrames[i].at - t0} ms, still ${fastFrames[j].n} at +${fastFrames[j].at - t0} ms ` +
          `(lines over their bound before the shaping: ${skips0}); its samples (ms, frames, width, keyframes, PLIs, lost, ` +
          `control's frames, bytes and packets retransmitted by the publisher; its layers: rid, frames sent, width, limitation): ` +
          fastFrames.slice(Math.max(0, i - 4), j + 4).map((f) => `${f.at - t0}:${f.n}/${f.w}/${f.kf}/${f.pli}/${f.lost}/${f.c}/${f.pubBytes}/${f.pubRetx} [${f.layers}]`).join(' '));
      }
      if (upstream.length) console.log(`overload: both unshaped subscribers waited at once (upstream) in ${upstream.join(', ')}`);
      assert.ok(upstream.length < fastFrames.length / 3, `the unshaped subscribers were stalled most of the time: ${upstream.join(', ')}`);
      // The slow line's keyframe asks back off: the publisher's top layer did not turn into a
      // stream of keyframes for everyone (an ask every 500 ms did, and stalled the others).
      const secs = (fastFrames.at(-1).at - t0) / 1000;
      const keyframes = fastFrames.at(-1).pubKf - fastFrames[0].pubKf;
      assert.ok(keyframes <= secs / 2 + 3, `the publisher made ${keyframes} keyframes on its top layer in ${secs.toFixed(1)} s`);
      console.log(`overload: the publisher made ${keyframes} keyframes on its top layer in ${secs.toFixed(1)} s; skips ${skips0} -> ${await server.metric('hearth_media_queue_skips_total')}, drops ${await server.metric('hearth_media_queue_drops_total')}; slow decoded ${slowAtSkip.framesDecoded} -> ${slowNow.framesDecoded} frames, keyframes ${slowAtSkip.keyFramesDecoded} -> ${slowNow.keyFramesDecoded}`);
    } finally {
      unshapeLoopback();
    }
  }, { timeout: 150_000 });
});
