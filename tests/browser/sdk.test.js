// The browser SDK (web/sdk/hearth.js) in Debian's Chromium against a real `hearth serve`:
// media both ways, screen share as the sub stream, simulcast big vs small, audience limits.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { freshRoom, launchBrowser, scenarioTest, simulcastPublisher, sleep, startHearth } from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'sdk' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stopChecked();
});

const options = (userId, room, extra) => server.clientOptions(userId, room, extra);

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

  /** Publishes a 1280x720 camera in three layers and waits until the browser sends all three
   *  (its bandwidth estimate ramps up first). */
  /** Polls both subscribers' frameWidth until big's exceeds small's (or `ms` pass). */
  async function widths(big, small, ms) {
    let bigW = 0;
    let smallW = 0;
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      bigW = (await big.stats('pub'))?.frameWidth || 0;
      smallW = (await small.stats('pub'))?.frameWidth || 0;
      if (bigW > 0 && smallW > 0 && smallW < bigW) break;
      await sleep(500);
    }
    return [bigW, smallW];
  }

  scenarioTest('a small-stream subscription gets a lower resolution than big (simulcast publisher)', env, async (sc) => {
    const room = freshRoom();
    const pub = await simulcastPublisher(sc, options('pub', room));
    const big = await sc.participant('big', options('big', room, { autoSubscribe: false }));
    const small = await sc.participant('small', options('small', room, { autoSubscribe: false }));
    await big.call('enter');
    await small.call('enter');
    await big.call('subscribe', 'pub', { stream: 'main', quality: 'big' });
    await small.call('subscribe', 'pub', { stream: 'main', quality: 'small' });
    await Promise.all([
      big.waitStats('pub', 'main', 'video', decoding, { what: 'big layer' }),
      small.waitStats('pub', 'main', 'video', decoding, { what: 'small layer' }),
    ]);
    const [bigW, smallW] = await widths(big, small, 15_000);
    const layers = JSON.stringify(await pub.outboundVideo());
    assert.ok(smallW > 0 && bigW > 0, `both decode frames (big ${bigW}, small ${smallW}); the publisher sends ${layers}`);
    assert.ok(smallW < bigW, `small (${smallW}px wide) should be narrower than big (${bigW}px wide); the publisher sends ${layers}`);
    // It stays so.
    await sleep(1500);
    const smallLater = (await small.stats('pub')).frameWidth;
    const bigLater = (await big.stats('pub')).frameWidth;
    assert.ok(smallLater < bigLater, `small stays narrower (${smallLater}) than big (${bigLater})`);
    console.log(`simulcast: big ${bigW}px wide, small ${smallW}px wide`);
  });

  scenarioTest('big follows the publisher\'s upper simulcast layers: a subscription made before they flow, and a switch from small to big', env, async (sc) => {
    // Everyone is in the room when the camera starts: the browser sends layer q first and adds
    // h and f as its bandwidth estimate grows. A "big" subscriber must move up with it.
    const room = freshRoom();
    const big = await sc.participant('big', options('big', room));
    const small = await sc.participant('small', options('small', room, { autoSubscribe: false }));
    await big.call('enter');
    await small.call('enter');
    const pub = await sc.participant('pub', options('pub', room));
    await pub.call('enter');
    await pub.call('publish', { audio: false, video: { width: 1280, height: 720, frameRate: 15 }, simulcast: true });
    // Subscribe as soon as the server says pub's video is there (before that: 404).
    await small.waitEvent('user-updated', (e) => e.userId === 'pub' && e.video);
    await small.call('subscribe', 'pub', { stream: 'main', quality: 'small' });
    await Promise.all([
      big.waitStats('pub', 'main', 'video', decoding, { what: 'big layer' }),
      small.waitStats('pub', 'main', 'video', decoding, { what: 'small layer' }),
    ]);
    const [bigW, smallW] = await widths(big, small, 30_000);
    const layers = JSON.stringify(await pub.outboundVideo());
    assert.ok(smallW < bigW, `subscribed early, big is ${bigW}px wide after 30 s (small ${smallW}px) while the publisher sends ${layers}`);

    // Switching the quality of an existing subscription: small asks for big and gets wider video.
    await small.call('subscribe', 'pub', { stream: 'main', quality: 'big' });
    await small.waitStats('pub', 'main', 'video', (st) => st.frameWidth > smallW, { what: `a switch from small (${smallW}px) to big`, timeout: 40_000 });
  }, { timeout: 150_000 });

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

  scenarioTest('a bad UserSig is refused with 401; a dropped socket resumes the same session without interrupting media', env, async (sc) => {
    const room = freshRoom();
    const mallory = await sc.participant('mallory', { ...options('mallory', room), userSig: server.userSig('someone-else') });
    const bad = await mallory.tryCall('enter');
    assert.equal(bad.ok, false);
    assert.equal(bad.error.code, 401, `a UserSig of another user is refused with 401: ${JSON.stringify(bad.error)}`);
    assert.equal((await mallory.state()).state, 'disconnected');

    const alice = await sc.participant('alice', options('alice', room));
    const bob = await sc.participant('bob', options('bob', room));
    await alice.call('enter');
    await bob.call('enter');
    await alice.call('publish', { audio: true, video: true });
    await bob.waitStats('alice', 'main', 'video', decoding, { what: "alice's camera at bob" });
    const session = (await alice.state()).session;

    // The network drops alice's socket (not an exit): the SDK resumes with its session token.
    await alice.page.evaluate(() => window.client._ws.close(4001, 'test: drop'));
    await alice.waitEvent('connection-state', (e) => e.state === 'reconnecting');
    await alice.waitEvent('connection-state', (e) => e.state === 'connected' && e.previous === 'reconnecting');
    const after = await alice.state();
    assert.equal(after.session, session, 'the same session resumed');
    assert.deepEqual(after.published, ['mic', 'camera'], 'still publishing');
    const f1 = (await bob.stats('alice')).framesDecoded;
    await sleep(1500);
    const f2 = (await bob.stats('alice')).framesDecoded;
    assert.ok(f2 > f1, `bob keeps receiving alice (${f1} → ${f2})`);
    const exits = await bob.events('user-exited');
    assert.deepEqual(exits, [], 'bob saw no exit');
    // Still a working signaling channel: a mute reaches bob.
    await alice.call('mute', 'mic', true);
    await bob.waitEvent('user-updated', (e) => e.userId === 'alice' && e.audioMuted === true);
  });

  scenarioTest('switchRole: an audience member becomes an anchor and publishes, then goes back to audience and stops', env, async (sc) => {
    const room = freshRoom();
    const host = await sc.participant('host', options('host', room));
    const guest = await sc.participant('guest', options('guest', room, { role: 'audience' }));
    // Someone else (who subscribes to nothing) publishes throughout and before the guest, so
    // that the first media line of the host's subscribe connection is never stopped (what
    // happens when it is is the next test's subject).
    const other = await sc.participant('other', options('other', room, { autoSubscribe: false }));
    await other.call('enter');
    await other.call('publish', { audio: true, video: false });
    await host.call('enter');
    await host.waitStats('other', 'main', 'audio', hearing, { what: "the other anchor's mic at the host" });
    await guest.call('enter');
    assert.equal(await guest.call('switchRole', 'anchor'), 'anchor');
    await guest.call('publish', { audio: true, video: true });
    await host.waitStats('guest', 'main', 'video', decoding, { what: "the guest's camera at the host" });
    // Unpublishing the camera alone keeps the mic.
    await guest.call('unpublish', 'camera');
    await host.waitEvent('track-removed', (e) => e.userId === 'guest' && e.kind === 'video');
    await host.waitEvent('user-updated', (e) => e.userId === 'guest' && !e.video && e.audio);
    assert.deepEqual((await guest.state()).published, ['mic']);
    // Back to audience: everything stops.
    assert.equal(await guest.call('switchRole', 'audience'), 'audience');
    await host.waitEvent('track-removed', (e) => e.userId === 'guest' && e.kind === 'audio');
    const st = await guest.state();
    assert.deepEqual(st.published, []);
    assert.equal(st.publishPc, null, 'the publish connection is closed');
    const r = await guest.tryCall('publish', { audio: true, video: false });
    assert.equal(r.error?.code, 403, `publishing as audience again is refused: ${JSON.stringify(r)}`);
    // And anchor once more: a fresh publish connection works.
    await guest.call('switchRole', 'anchor');
    await guest.call('publish', { audio: false, video: true });
    await host.waitEvent('track', (e) => e.userId === 'guest' && e.kind === 'video' && e.mid !== undefined);
    await host.waitStats('guest', 'main', 'video', decoding, { what: "the guest's camera at the host, published again" });
  });

  scenarioTest('a subscriber keeps receiving after the only publisher left and another one arrives', env, async (sc) => {
    // The everyday meeting: alice watches bob; bob leaves (alice now receives nothing); carol
    // arrives and publishes: alice must get carol. (Bob's lines were the first of alice's
    // subscribe connection.)
    const room = freshRoom();
    const alice = await sc.participant('alice', options('alice', room));
    const bob = await sc.participant('bob', options('bob', room));
    await alice.call('enter');
    await bob.call('enter');
    await bob.call('publish', { audio: true, video: true });
    await alice.waitStats('bob', 'main', 'video', decoding, { what: "bob's camera at alice" });
    await bob.call('exit');
    await alice.waitEvent('user-exited', (e) => e.userId === 'bob');
    await alice.waitEvent('track-removed', (e) => e.userId === 'bob' && e.kind === 'video');
    const carol = await sc.participant('carol', options('carol', room));
    await carol.call('enter');
    await carol.call('publish', { audio: true, video: true });
    await alice.waitStats('carol', 'main', 'video', decoding, { what: "carol's camera at alice (after bob left)" });
    await alice.waitStats('carol', 'main', 'audio', hearing, { what: "carol's mic at alice (after bob left)" });
    const notices = await alice.events('notice');
    assert.deepEqual(notices, [], 'alice got no notice');
    assert.equal((await alice.state()).state, 'connected');
  });

  scenarioTest('a subscriber keeps receiving the others when the first publisher it received leaves', env, async (sc) => {
    // alice receives bob, then carol; bob leaves: carol's media must go on.
    const room = freshRoom();
    const alice = await sc.participant('alice', options('alice', room));
    const bob = await sc.participant('bob', options('bob', room, { autoSubscribe: false }));
    const carol = await sc.participant('carol', options('carol', room, { autoSubscribe: false }));
    await alice.call('enter');
    await bob.call('enter');
    await bob.call('publish', { audio: true, video: false });
    await alice.waitStats('bob', 'main', 'audio', hearing, { what: "bob's mic at alice" });
    await carol.call('enter');
    await carol.call('publish', { audio: true, video: true });
    await alice.waitStats('carol', 'main', 'video', decoding, { what: "carol's camera at alice" });
    await bob.call('exit');
    await alice.waitEvent('track-removed', (e) => e.userId === 'bob');
    await sleep(500); // the server's offer that stops bob's line is applied
    const f1 = (await alice.stats('carol'))?.framesDecoded;
    assert.ok(f1 > 0, `carol's track is still there at alice after bob left: ${JSON.stringify(await alice.events('track-removed'))}`);
    await sleep(3000);
    const st = await alice.state();
    const f2 = (await alice.stats('carol'))?.framesDecoded;
    assert.equal(st.state, 'connected', `alice is still in the room: ${JSON.stringify(await alice.events('notice'))}`);
    assert.ok(f2 > f1, `carol's video goes on at alice after bob left (${f1} → ${f2}); subscribe connection: ${JSON.stringify(st.subscribePc)}`);
  });
});
