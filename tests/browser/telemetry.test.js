// Call telemetry from Chromium sessions, read back with the official Node.js SDK
// (tencentcloud-sdk-nodejs-intl-en): camera off and on, the SDK's quality reports, and every
// signature method the SDK offers against Hearth's gateway.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { freshRoom, launchBrowser, scenarioTest, sleep, startHearth, SDK_APP_ID } from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'telemetry' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) assert.equal(await server.stop(), 0, server.stderrTail());
});

const decoding = (s) => s.framesDecoded > 0;
const series = (detail, user, peer, metric) => detail.Data
  .filter((d) => d.UserId === user && d.PeerId === peer && d.DataType === metric)
  .flatMap((d) => d.Content.map((p) => p.Value));

describe('telemetry', () => {
  scenarioTest('the official Node.js SDK signs TC3, HmacSHA256 and HmacSHA1 requests Hearth accepts', env, async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const signMethod of ['TC3-HMAC-SHA256', 'HmacSHA256', 'HmacSHA1']) {
      const r = await server.api('DescribeRoomInfo', { SdkAppId: SDK_APP_ID, StartTime: now - 60, EndTime: now }, { signMethod });
      assert.ok(Array.isArray(r.RoomList), `${signMethod}: ${JSON.stringify(r)}`);
    }
    await assert.rejects(server.api('DescribeRoomInfo', { SdkAppId: SDK_APP_ID, StartTime: now, EndTime: now - 60 }),
      (e) => e.code === 'InvalidParameter.EndTs');
  });

  scenarioTest('camera off and on in Chromium shows in DescribeUserEvent; the SDK\'s reports in DescribeCallDetailInfo', env, async (sc) => {
    const room = freshRoom();
    const started = Math.floor(Date.now() / 1000);
    const opts = (userId) => ({ sdkAppId: SDK_APP_ID, userId, userSig: server.userSig(userId), roomId: room });
    const alice = await sc.participant('alice', opts('tel-alice'));
    const bob = await sc.participant('bob', opts('tel-bob'));
    await alice.call('enter');
    await bob.call('enter');
    await alice.call('publish', { audio: true, video: true });
    await bob.waitStats('tel-alice', 'main', 'video', decoding, { what: "alice's camera at bob" });
    await sleep(4500); // two report periods with video flowing
    await alice.call('mute', 'camera', true);
    await sleep(1500);
    await alice.call('mute', 'camera', false);
    await sleep(2500);
    const now = Math.floor(Date.now() / 1000);
    const rooms = await server.api('DescribeRoomInfo', { SdkAppId: SDK_APP_ID, StartTime: started - 5, EndTime: now, RoomId: String(room) });
    const live = rooms.RoomList.filter((r) => !r.IsFinished);
    assert.equal(live.length, 1, JSON.stringify(rooms));
    const commId = live[0].CommId;
    await alice.call('exit');
    await bob.call('exit');
    await sleep(1500);

    const end = Math.floor(Date.now() / 1000);
    const events = await server.api('DescribeUserEvent', {
      SdkAppId: SDK_APP_ID, CommId: commId, RoomId: String(room), UserId: 'tel-alice', StartTime: started - 5, EndTime: end,
    });
    const content = events.Data.flatMap((e) => e.Content);
    const ids = content.map((m) => m.EventId);
    const times = content.map((m) => m.Time);
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'events in time order');
    assert.equal(ids[0], 32788, `entered first: ${ids}`);
    const video = ids.filter((i) => i === 32768 || i === 32770);
    assert.deepEqual(video.slice(0, 3), [32768, 32770, 32768], `camera on, off, on: ${ids}`);
    assert.ok(ids.includes(32789), `exited: ${ids}`);

    const detail = await server.api('DescribeCallDetailInfo', {
      SdkAppId: SDK_APP_ID, CommId: commId, UserIds: ['tel-alice', 'tel-bob'], DataType: ['all'], StartTime: started - 5, EndTime: end,
    });
    const cap = series(detail, 'tel-alice', '', 'bigvCapFps');
    assert.ok(cap.some((v) => v > 0), `alice's capture fps reported by her browser: ${cap}`);
    const dec = series(detail, 'tel-bob', 'tel-alice', 'bigvDecFps');
    assert.ok(dec.some((v) => v > 0), `bob's render fps of alice reported by his browser: ${dec}`);
    const bit = series(detail, 'tel-alice', '', 'bigvBit');
    assert.ok(bit.some((v) => v > 50_000), `alice's upstream video bitrate seen by the server: ${bit}`);
    const width = series(detail, 'tel-alice', '', 'bigvWidth');
    assert.ok(width.length && width.every((w) => w > 0), `resolution from keyframes: ${width}`);
  });
});
