// The browser SDK (web/sdk/hearth.js) in Debian's Chromium against a real `hearth serve`:
// media both ways, screen share as the sub stream, simulcast big vs small, audience limits.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { freshRoom, launchBrowser, scenarioTest, sleep, startHearth, SDK_APP_ID } from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'sdk' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) {
    const code = await server.stop();
    const log = server.stderr();
    assert.equal(code, 0, `hearth exited ${code} after SIGTERM:\n${server.stderrTail()}`);
    assert.ok(!log.includes('panicked'), `hearth panicked:\n${server.stderrTail()}`);
  }
});

function options(userId, room, extra = {}) {
  return { sdkAppId: SDK_APP_ID, userId, userSig: server.userSig(userId), roomId: room, ...extra };
}

const decoding = (s) => s.framesDecoded > 0;
const hearing = (s) => s.packetsReceived > 0 && s.totalSamplesReceived > 0;

describe('SDK', () => {
  scenarioTest('two anchors receive each other\'s audio and video; a third page\'s screen share arrives as the sub stream', env, async (sc) => {
    const room = freshRoom();
    const alice = await sc.participant('alice', options('alice', room));
    const bob = await sc.participant('bob', options('bob', room));

    const entered = await alice.call('enter');
    assert.equal(entered.userId, 'alice');
    assert.equal(entered.role, 'anchor');
    assert.ok(entered.session, 'entered carries a session token');
    await bob.call('enter');
    await alice.waitEvent('user-entered', (e) => e.userId === 'bob');

    await Promise.all([
      alice.call('publish', { audio: true, video: true }),
      bob.call('publish', { audio: true, video: true }),
    ]);

    // Both ways, audio and video, decoded.
    await Promise.all([
      alice.waitStats('bob', 'main', 'video', decoding, { what: "bob's camera at alice" }),
      bob.waitStats('alice', 'main', 'video', decoding, { what: "alice's camera at bob" }),
      alice.waitStats('bob', 'main', 'audio', hearing, { what: "bob's mic at alice" }),
      bob.waitStats('alice', 'main', 'audio', hearing, { what: "alice's mic at bob" }),
    ]);
    const a = await alice.state();
    const bobAtAlice = a.users.find((u) => u.userId === 'bob');
    assert.deepEqual(bobAtAlice, { userId: 'bob', audio: true, video: true, sub: false, audioMuted: false, videoMuted: false });

    // A third page shares its screen only: it arrives at both as stream 'sub'.
    const carol = await sc.participant('carol', options('carol', room));
    await carol.call('enter');
    await carol.call('publishScreen');
    const subTrack = await alice.waitEvent('track', (e) => e.userId === 'carol' && e.stream === 'sub' && e.kind === 'video');
    assert.equal(subTrack.stream, 'sub');
    await Promise.all([
      alice.waitStats('carol', 'sub', 'video', decoding, { what: "carol's screen at alice" }),
      bob.waitStats('carol', 'sub', 'video', decoding, { what: "carol's screen at bob" }),
    ]);
    // Her screen is no main stream.
    const mainOfCarol = (await alice.events('track')).filter((e) => e.userId === 'carol' && e.stream === 'main');
    assert.deepEqual(mainOfCarol, [], 'carol publishes no camera or mic');
    await alice.waitEvent('user-updated', (e) => e.userId === 'carol' && e.sub === true);

    // Carol stops sharing: the sub track goes away at alice.
    await carol.call('unpublishScreen');
    await alice.waitEvent('track-removed', (e) => e.userId === 'carol' && e.stream === 'sub');
    await alice.waitEvent('user-updated', (e) => e.userId === 'carol' && e.sub === false);

    // Bob leaves: alice is told.
    await bob.call('exit');
    await alice.waitEvent('user-exited', (e) => e.userId === 'bob');
  });

  scenarioTest('a small-stream subscription gets a lower resolution than big (simulcast publisher)', env, async (sc) => {
    const room = freshRoom();
    const pub = await sc.participant('pub', options('pub', room));
    const big = await sc.participant('big', options('big', room, { autoSubscribe: false }));
    const small = await sc.participant('small', options('small', room, { autoSubscribe: false }));
    await pub.call('enter');
    await pub.call('publish', { audio: false, video: { width: 1280, height: 720, frameRate: 15 }, simulcast: true });
    await big.call('enter');
    await small.call('enter');
    await big.call('subscribe', 'pub', { stream: 'main', quality: 'big' });
    await small.call('subscribe', 'pub', { stream: 'main', quality: 'small' });

    await Promise.all([
      big.waitStats('pub', 'main', 'video', decoding, { what: 'big layer' }),
      small.waitStats('pub', 'main', 'video', decoding, { what: 'small layer' }),
    ]);
    // The publisher's bandwidth estimate ramps up before all layers flow: wait for big to be
    // bigger than small (for at most 30 s), then check it stays so.
    let bigW = 0;
    let smallW = 0;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      bigW = (await big.stats('pub'))?.frameWidth || 0;
      smallW = (await small.stats('pub'))?.frameWidth || 0;
      if (bigW > 0 && smallW > 0 && smallW < bigW) break;
      await sleep(500);
    }
    const sent = await pub.outboundVideo();
    const layers = JSON.stringify(sent);
    assert.ok(smallW > 0 && bigW > 0, `both decode frames (big ${bigW}, small ${smallW}); publisher sends ${layers}`);
    assert.ok(smallW < bigW, `small (${smallW}px wide) should be narrower than big (${bigW}px wide); the publisher sends ${layers}`);
    // Nobody asked for more: the small subscriber stays on a low layer.
    await sleep(1500);
    const smallLater = (await small.stats('pub')).frameWidth;
    assert.ok(smallLater < bigW, `small stays small (${smallLater} vs big ${bigW})`);
    console.log(`simulcast: big ${bigW}px wide, small ${smallW}px wide`);
  });

  scenarioTest('an audience member receives but cannot publish (403)', env, async (sc) => {
    const room = freshRoom();
    const host = await sc.participant('host', options('host', room));
    const viewer = await sc.participant('viewer', options('viewer', room, { role: 'audience' }));
    await host.call('enter');
    await host.call('publish', { audio: true, video: true });
    const entered = await viewer.call('enter');
    assert.equal(entered.role, 'audience');

    await Promise.all([
      viewer.waitStats('host', 'main', 'video', decoding, { what: "host's camera at the viewer" }),
      viewer.waitStats('host', 'main', 'audio', hearing, { what: "host's mic at the viewer" }),
    ]);

    const r = await viewer.tryCall('publish', { audio: true, video: true });
    assert.equal(r.ok, false, 'an audience member\'s publish must fail');
    assert.equal(r.error.code, 403, `publish rejected with 403, got ${JSON.stringify(r.error)}`);
    assert.equal(r.error.request, 'publish');
    const st = await viewer.state();
    assert.deepEqual(st.published, [], 'nothing stays published');
    assert.equal(st.state, 'connected', 'the connection is kept after a 403');
    // Still receiving after the refusal.
    const before = (await viewer.stats('host')).framesDecoded;
    await sleep(1000);
    const later = (await viewer.stats('host')).framesDecoded;
    assert.ok(later > before, `frames keep arriving after the 403 (${before} → ${later})`);
    // The host never sees the viewer publish anything.
    const hostView = await host.state();
    const v = hostView.users.find((u) => u.userId === 'viewer');
    if (v) assert.ok(!v.audio && !v.video && !v.sub, `the viewer publishes nothing: ${JSON.stringify(v)}`);
  });
});
