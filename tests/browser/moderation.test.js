// Room management on Chromium sessions through the official Node.js SDK: RemoveUser kicks one
// page (which is told), SetUserBlocked stops and resumes a page's video at the others, DismissRoom
// ends the room for everyone; the pages not targeted keep their media.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { freshRoom, launchBrowser, scenarioTest, sleep, startHearth, SDK_APP_ID } from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'moderation' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) assert.equal(await server.stop(), 0, server.stderrTail());
});

const opts = (userId, room) => ({ sdkAppId: SDK_APP_ID, userId, userSig: server.userSig(userId), roomId: room });

/** Frames decoded of a remote video now, and again after `ms`. */
async function progress(p, userId, ms = 1500) {
  const a = (await p.stats(userId, 'main', 'video'))?.framesDecoded ?? 0;
  await sleep(ms);
  const b = (await p.stats(userId, 'main', 'video'))?.framesDecoded ?? 0;
  return b - a;
}

describe('moderation', () => {
  scenarioTest('RemoveUser kicks a Chromium page; SetUserBlocked stops and resumes its video; others keep theirs; DismissRoom ends it', env, async (sc) => {
    const room = freshRoom();
    const alice = await sc.participant('alice', opts('mod-alice', room));
    const bob = await sc.participant('bob', opts('mod-bob', room));
    const carol = await sc.participant('carol', opts('mod-carol', room));
    for (const p of [alice, bob, carol]) await p.call('enter');
    await Promise.all([alice, bob].map((p) => p.call('publish', { audio: true, video: true })));
    const decoding = (s) => s.framesDecoded > 10;
    await carol.waitStats('mod-alice', 'main', 'video', decoding, { what: "alice's camera at carol" });
    await carol.waitStats('mod-bob', 'main', 'video', decoding, { what: "bob's camera at carol" });

    // Block alice's audio and video: carol stops decoding her video, keeps bob's.
    await server.api('SetUserBlocked', { SdkAppId: SDK_APP_ID, RoomId: room, UserId: 'mod-alice', IsMute: 1 });
    await alice.waitEvent('notice', (e) => e.reason === 'blocked', { timeout: 2000 });
    // Stopped: a 1.5 s window with no new frame. A page decoding behind (a busy machine: decode
    // fps above the source's as it catches up) may take a few seconds to drain what it has.
    let stopped = false;
    for (let i = 0; i < 4 && !stopped; i++) stopped = await progress(carol, 'mod-alice') <= 1;
    assert.ok(stopped, "alice's video stopped at carol");
    assert.ok(await progress(carol, 'mod-bob') > 5, "bob's video still flows at carol");
    // Unblock: within 2 s carol decodes alice again (a keyframe is asked at once).
    await server.api('SetUserBlocked', { SdkAppId: SDK_APP_ID, RoomId: room, UserId: 'mod-alice', IsMute: 0 });
    await alice.waitEvent('notice', (e) => e.reason === 'unblocked', { timeout: 2000 });
    assert.ok(await progress(carol, 'mod-alice', 2000) > 5, "alice's video resumed at carol within 2 s");

    // Remove bob: he is told, his media stops reaching carol, alice keeps hers.
    await server.api('RemoveUser', { SdkAppId: SDK_APP_ID, RoomId: room, UserIds: ['mod-bob'] });
    await bob.waitEvent('notice', (e) => e.reason === 'kicked', { timeout: 2000 });
    await carol.waitEvent('user-exited', (e) => e.userId === 'mod-bob', { timeout: 3000 });
    assert.ok(await progress(carol, 'mod-alice') > 5, "alice's video still flows at carol");

    // Dismiss the room: both remaining pages are told and leave.
    await server.api('DismissRoom', { SdkAppId: SDK_APP_ID, RoomId: room });
    await alice.waitEvent('notice', (e) => e.reason === 'room_dismissed', { timeout: 2000 });
    await carol.waitEvent('notice', (e) => e.reason === 'room_dismissed', { timeout: 2000 });
    await assert.rejects(server.api('DismissRoom', { SdkAppId: SDK_APP_ID, RoomId: room }),
      (e) => e.code === 'FailedOperation.RoomNotExist');
  });
});
