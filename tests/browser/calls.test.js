// Calling (docs/protocol.md, "Calls") in Chromium: pages using the SDK's HearthCalls log in,
// ring, accept, reject, cancel and hang up; the parties meet in the call's room (joinRoom) and
// receive each other's video; every call leaves the record the call-record REST API reads. The
// demo page places and answers a call by clicks and shows how it ended.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe } from 'node:test';
import { launchBrowser, Participant, scenarioTest, sleep, startHearth, SDK_APP_ID } from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'calls' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stopChecked();
});

const decoding = (s) => s.framesDecoded > 0;
const CALL_EVENTS = ['invited', 'call-state', 'call-accepted', 'call-rejected', 'call-busy', 'call-no-answer',
  'call-left', 'call-ended', 'notice', 'error', 'connection-state'];

/** Runs in the page: a HearthCalls as `window.calls`, its events in `window.events`, and
 *  `window.joinCallRoom()` entering the current call's room (the client becomes `window.client`,
 *  whose received tracks are played). */
function callPageSetup([options, names]) {
  return import('/sdk/hearth.js').then(({ HearthCalls }) => {
    const calls = new HearthCalls(options);
    window.calls = calls;
    window.events = [];
    const record = (ev, rec) => {
      window.events.push({ ev, at: Date.now(), ...rec });
      console.log(`hearth event ${ev} ${JSON.stringify(rec)}`);
    };
    for (const ev of names) {
      calls.on(ev, (p, q) => {
        if (ev === 'error') record(ev, { code: p.code, message: p.message, request: p.request });
        else if (ev === 'connection-state') record(ev, { state: p, previous: q });
        else record(ev, p);
      });
    }
    const box = document.createElement('div');
    document.body.append(box);
    const play = (t) => {
      const el = document.createElement(t.kind === 'video' ? 'video' : 'audio');
      Object.assign(el, { autoplay: true, muted: true, playsInline: true, srcObject: new MediaStream([t.track]) });
      el.dataset.mid = t.mid;
      box.append(el);
      el.play().catch(() => {});
    };
    window.joinCallRoom = async () => {
      const c = await calls.joinRoom();
      window.client = c;
      c.remoteTracks.forEach(play);
      c.on('track', (t) => { record('track', { userId: t.userId, stream: t.stream, kind: t.kind }); play(t); });
      c.on('track-removed', (t) => box.querySelector(`[data-mid="${t.mid}"]`)?.remove());
      c.on('connection-state', (state, previous) => record('room-state', { state, previous }));
      return { roomId: c.options.roomId ?? null, strRoomId: c.options.strRoomId ?? null, published: c.publishedSources };
    };
    window.__hearthState = () => {
      const c = window.client;
      return {
        calls: calls.connectionState,
        call: calls.currentCall,
        room: c && {
          state: c.connectionState,
          users: c.users,
          published: c.publishedSources,
          remote: c.remoteTracks.map((r) => ({ userId: r.userId, kind: r.kind, state: r.track.readyState })),
        },
      };
    };
    return true;
  });
}

/** A page whose `call()` runs HearthCalls methods; stats and waitStats read its room client. */
class CallParty extends Participant {
  constructor(...args) {
    super(...args);
    this.target = 'calls';
  }

  async setup() {
    await this.page.goto(`${this.scenario.server.url}/healthz`);
    await this.page.evaluate(callPageSetup, [this.options, CALL_EVENTS]);
  }

  joinRoom() { return this.page.evaluate(() => window.joinCallRoom()); }
  currentCall() { return this.page.evaluate(() => window.calls.currentCall); }
}

/** A page logged in as `userId` (or only set up, `login: false`). */
async function party(sc, userId, { login = true } = {}) {
  const entry = await sc.page(userId);
  const p = new CallParty(sc, entry, { sdkAppId: SDK_APP_ID, userId, userSig: server.userSig(userId) });
  await p.setup();
  if (login) assert.deepEqual(await p.call('login'), { userId });
  return p;
}

/** The call's record once it has ended (it is written within about a second). */
async function record(callId) {
  const deadline = Date.now() + 5_000;
  let last;
  while (Date.now() < deadline) {
    last = await server.rest('call_record_http_srv/get_record_by_callid', { CallId: callId });
    if (last.ErrorCode === 0 && last.Response?.CallRecord?.EndTime > 0) return last.Response.CallRecord;
    await sleep(200);
  }
  throw new Error(`no finished record of call ${callId} within 5 s; last answer: ${JSON.stringify(last)}`);
}

function assertTimes(rec, { accepted }) {
  assert.ok(rec.StartTime > 1_600_000_000, `StartTime is a Unix time: ${JSON.stringify(rec)}`);
  if (accepted) {
    assert.ok(rec.AcceptTime >= rec.StartTime, `AcceptTime >= StartTime: ${JSON.stringify(rec)}`);
    assert.ok(rec.EndTime >= rec.AcceptTime, `EndTime >= AcceptTime: ${JSON.stringify(rec)}`);
  } else {
    assert.ok(!rec.AcceptTime, `no AcceptTime for a call nobody accepted: ${JSON.stringify(rec)}`);
    assert.ok(rec.EndTime >= rec.StartTime, `EndTime >= StartTime: ${JSON.stringify(rec)}`);
  }
}

const ended = (callId, result) => (e) => e.callId === callId && e.result === result;

describe('calls', () => {
  scenarioTest('alice video-calls bob, bob accepts, both receive each other\'s video in the call\'s room; a dropped calling socket logs in again; alice hangs up: NormalEnd, as the record says', env, async (sc) => {
    const alice = await party(sc, 'alice');
    const bob = await party(sc, 'bob');

    const placed = await alice.call('call', 'bob', { media: 'video' });
    assert.match(placed.callId, /\S{8,}/, `a call id: ${JSON.stringify(placed)}`);
    assert.ok(Number.isInteger(placed.roomId) && placed.roomId > 0, `no room given: the server picks a numeric one (${JSON.stringify(placed)})`);
    assert.equal(placed.strRoomId, undefined);
    assert.deepEqual(placed.callees, ['bob']);
    assert.equal(placed.media, 'video');
    assert.equal(placed.group, false);

    const inv = await bob.waitEvent('invited', (e) => e.callId === placed.callId);
    assert.equal(inv.caller, 'alice');
    assert.deepEqual(inv.callees, ['bob']);
    assert.equal(inv.media, 'video');
    assert.equal(inv.group, false);
    assert.equal(inv.roomId, placed.roomId, 'the invitee is told the room');
    assert.ok(inv.timeout > 0 && inv.timeout <= 30, `seconds left to answer: ${inv.timeout}`);
    assert.equal((await alice.currentCall()).callId, placed.callId);

    const acc = await bob.call('accept', placed.callId);
    assert.equal(acc.callId, placed.callId);
    assert.ok(acc.accepted.includes('bob'), `bob is in the call: ${JSON.stringify(acc)}`);
    await alice.waitEvent('call-accepted', (e) => e.callId === placed.callId && e.userId === 'bob');

    const [roomA, roomB] = await Promise.all([alice.joinRoom(), bob.joinRoom()]);
    assert.equal(roomA.roomId, placed.roomId);
    assert.equal(roomB.roomId, placed.roomId);
    assert.deepEqual(roomA.published, ['mic', 'camera'], 'a video call publishes mic and camera');
    await Promise.all([
      alice.waitStats('bob', 'main', 'video', decoding, { what: "bob's camera at alice" }),
      bob.waitStats('alice', 'main', 'video', decoding, { what: "alice's camera at bob" }),
    ]);

    // Alice's calling socket drops: the SDK logs in again within the grace period, the server
    // tells it the call goes on (call-state), and the media never stopped.
    await alice.page.evaluate(() => window.calls._ws.close(4001, 'test: drop'));
    await alice.waitEvent('connection-state', (e) => e.state === 'connected' && e.previous === 'reconnecting');
    const st = await alice.waitEvent('call-state', (e) => e.callId === placed.callId);
    assert.deepEqual(st.accepted.filter((u) => u !== 'alice'), ['bob'], `bob is in the call: ${JSON.stringify(st)}`);
    assert.deepEqual(st.ringing, []);
    assert.deepEqual(await bob.events('call-left'), [], 'bob heard nobody leave');
    const f1 = (await bob.stats('alice')).framesDecoded;
    await sleep(1000);
    assert.ok((await bob.stats('alice')).framesDecoded > f1, "alice's video goes on at bob");

    await alice.call('hangup', placed.callId);
    await Promise.all([
      alice.waitEvent('call-ended', ended(placed.callId, 'NormalEnd')),
      bob.waitEvent('call-ended', ended(placed.callId, 'NormalEnd')),
    ]);
    // The SDK exits the rooms it entered for the call.
    for (const p of [alice, bob]) {
      await p.page.waitForFunction(() => window.client.connectionState === 'disconnected', null, { timeout: 10_000 });
      assert.equal(await p.currentCall(), null, `${p.label} has no call any more`);
    }

    const rec = await record(placed.callId);
    assert.equal(rec.CallId, placed.callId);
    assert.equal(rec.Caller_Account, 'alice');
    assert.deepEqual(rec.CalleeList_Account, ['bob']);
    assert.equal(rec.CallResult, 'NormalEnd');
    assert.equal(rec.CallType, 'SingleCall');
    assert.equal(rec.MediaType, 'Video');
    assert.equal(rec.RoomIdType, 1);
    assert.equal(rec.RoomId, String(placed.roomId));
    assertTimes(rec, { accepted: true });

    // Only an app admin may read records.
    const refused = await server.rest('call_record_http_srv/get_record_by_callid', { CallId: placed.callId }, { identifier: 'alice' });
    assert.notEqual(refused.ErrorCode, 0, `a non-admin identifier is refused: ${JSON.stringify(refused)}`);
    assert.equal(refused.ActionStatus, 'FAIL');
  });

  scenarioTest('reject (Reject), busy (CallBusy), cancel (Cancel), ring timeout (NotAnswer), an offline invitee rings at login, call errors, a second login takes over', env, async (sc) => {
    const alice = await party(sc, 'rj-alice');
    const bob = await party(sc, 'rj-bob');
    const carol = await party(sc, 'rj-carol');

    // Bob rejects an audio call.
    const first = await alice.call('call', 'rj-bob', { media: 'audio', timeout: 20 });
    const inv = await bob.waitEvent('invited', (e) => e.callId === first.callId);
    assert.equal(inv.media, 'audio');
    assert.ok(inv.timeout > 0 && inv.timeout <= 20, `the ring timeout given is what is left: ${inv.timeout}`);
    // Carol calling bob meanwhile: bob is busy.
    const busy = await carol.call('call', 'rj-bob', { media: 'audio' });
    await carol.waitEvent('call-busy', (e) => e.callId === busy.callId && e.userId === 'rj-bob');
    await carol.waitEvent('call-ended', ended(busy.callId, 'CallBusy'));
    // Accepting someone else's call: 403.
    const notInvited = await carol.tryCall('accept', first.callId);
    assert.equal(notInvited.error?.code, 403, `accept by someone not invited: ${JSON.stringify(notInvited)}`);
    await bob.call('reject', first.callId);
    await alice.waitEvent('call-rejected', (e) => e.callId === first.callId && e.userId === 'rj-bob');
    await alice.waitEvent('call-ended', ended(first.callId, 'Reject'));
    assert.equal(await bob.currentCall(), null);
    assert.equal(await alice.currentCall(), null);
    const again = await bob.tryCall('reject', first.callId);
    assert.equal(again.error?.code, 404, `answering an ended call: ${JSON.stringify(again)}`);
    assert.equal(again.error?.request, 'reject');

    // Alice cancels a video call before bob answers; placing another meanwhile is 409.
    const second = await alice.call('call', 'rj-bob', { media: 'video' });
    await bob.waitEvent('invited', (e) => e.callId === second.callId);
    const twice = await alice.tryCall('call', 'rj-carol', { media: 'audio' });
    assert.equal(twice.error?.code, 409, `placing a call while in one: ${JSON.stringify(twice)}`);
    const notCaller = await bob.tryCall('cancel', second.callId);
    assert.equal(notCaller.error?.code, 403, `cancel by someone else than the caller: ${JSON.stringify(notCaller)}`);
    const bad = await carol.tryCall('call', 'rj-bob', { media: 'audio', timeout: 301 });
    assert.equal(bad.error?.code, 400, `a ring timeout over 300 s: ${JSON.stringify(bad)}`);
    await alice.call('cancel', second.callId);
    await Promise.all([
      alice.waitEvent('call-ended', ended(second.callId, 'Cancel')),
      bob.waitEvent('call-ended', ended(second.callId, 'Cancel')),
    ]);

    // Nobody answers within the ring timeout.
    const unanswered = await alice.call('call', 'rj-bob', { media: 'audio', timeout: 1 });
    await bob.waitEvent('invited', (e) => e.callId === unanswered.callId);
    await alice.waitEvent('call-no-answer', (e) => e.callId === unanswered.callId && e.userId === 'rj-bob', { timeout: 5_000 });
    await Promise.all([
      alice.waitEvent('call-ended', ended(unanswered.callId, 'NotAnswer')),
      bob.waitEvent('call-ended', ended(unanswered.callId, 'NotAnswer')),
    ]);

    // Dave is offline when called: he rings as he logs in, accepts, and hangs up.
    const third = await alice.call('call', 'rj-dave', { media: 'audio', timeout: 60 });
    await sleep(1000);
    const dave = await party(sc, 'rj-dave', { login: false });
    await dave.call('login');
    const late = await dave.waitEvent('invited', (e) => e.callId === third.callId);
    assert.equal(late.caller, 'rj-alice');
    assert.ok(late.timeout > 0 && late.timeout < 60, `ringing for the time left: ${late.timeout}`);
    await dave.call('accept', third.callId);
    await alice.waitEvent('call-accepted', (e) => e.callId === third.callId && e.userId === 'rj-dave');
    await dave.call('hangup', third.callId);
    await alice.waitEvent('call-ended', ended(third.callId, 'NormalEnd'));

    const [r1, r2, r3, r4, r5] = await Promise.all([first, busy, second, third, unanswered].map((c) => record(c.callId)));
    assert.equal(r1.CallResult, 'Reject');
    assert.equal(r1.MediaType, 'Audio');
    assert.equal(r1.CallType, 'SingleCall');
    assert.equal(r1.Caller_Account, 'rj-alice');
    assert.deepEqual(r1.CalleeList_Account, ['rj-bob']);
    assertTimes(r1, { accepted: false });
    assert.equal(r2.CallResult, 'CallBusy');
    assert.equal(r2.Caller_Account, 'rj-carol');
    assert.equal(r3.CallResult, 'Cancel');
    assert.equal(r3.MediaType, 'Video');
    assertTimes(r3, { accepted: false });
    assert.equal(r4.CallResult, 'NormalEnd');
    assertTimes(r4, { accepted: true });
    assert.equal(r5.CallResult, 'NotAnswer');

    // Bob logs in on a second page: the first is told and closes.
    const bob2 = await party(sc, 'rj-bob');
    await bob.waitEvent('notice', (e) => e.reason === 'replaced');
    await bob.waitEvent('connection-state', (e) => e.state === 'disconnected');
    assert.equal((await bob2.state()).calls, 'connected');
  });

  scenarioTest('a group call in a string room: one accepts, one rejects, the call goes on until only the caller is left (MultiCall, RoomIdType 2)', env, async (sc) => {
    const alice = await party(sc, 'g-alice');
    const bob = await party(sc, 'g-bob');
    const carol = await party(sc, 'g-carol');
    const strRoomId = `call-${crypto.randomBytes(4).toString('hex')}`;

    const placed = await alice.call('groupCall', ['g-bob', 'g-carol'], { media: 'video', strRoomId });
    assert.equal(placed.group, true);
    assert.equal(placed.strRoomId, strRoomId);
    assert.equal(placed.roomId, undefined);
    for (const p of [bob, carol]) {
      const inv = await p.waitEvent('invited', (e) => e.callId === placed.callId);
      assert.equal(inv.group, true);
      assert.equal(inv.strRoomId, strRoomId);
      assert.deepEqual([...inv.callees].sort(), ['g-bob', 'g-carol']);
    }
    await bob.call('accept', placed.callId);
    await alice.waitEvent('call-accepted', (e) => e.callId === placed.callId && e.userId === 'g-bob');
    const joined = await bob.joinRoom();
    assert.equal(joined.strRoomId, strRoomId, "bob enters the call's string room");
    await carol.call('reject', placed.callId);
    await alice.waitEvent('call-rejected', (e) => e.callId === placed.callId && e.userId === 'g-carol');
    await sleep(500);
    assert.deepEqual(await alice.events('call-ended'), [], 'the call goes on with alice and bob');
    assert.equal((await alice.currentCall())?.callId, placed.callId);

    await bob.call('hangup', placed.callId);
    await bob.page.waitForFunction(() => window.client.connectionState === 'disconnected', null, { timeout: 10_000 }); // hanging up exits the call's room
    await alice.waitEvent('call-ended', ended(placed.callId, 'NormalEnd'));

    const rec = await record(placed.callId);
    assert.equal(rec.CallType, 'MultiCall');
    assert.equal(rec.MediaType, 'Video');
    assert.equal(rec.CallResult, 'NormalEnd');
    assert.equal(rec.RoomIdType, 2);
    assert.equal(rec.RoomId, strRoomId);
    assert.deepEqual([...rec.CalleeList_Account].sort(), ['g-bob', 'g-carol']);
    assertTimes(rec, { accepted: true });
  });

  scenarioTest('the demo page: log in, call by clicking, accept, both see each other, hang up: both pages show NormalEnd', env, async (sc) => {
    /** The demo page with the form prefilled (from the URL's hash) and logged in for calls. */
    async function demo(userId) {
      const { page } = await sc.page(userId);
      const hash = new URLSearchParams({ sdkappid: String(SDK_APP_ID), userid: userId, usersig: server.userSig(userId) });
      await page.goto(`${server.url}/#${hash}`);
      await page.locator('#call-login').click();
      await page.waitForFunction(() => document.body.dataset.call === 'idle', null, { timeout: 10_000 });
      assert.equal(await page.locator('#userid').isDisabled(), true, 'logged in, the user field is locked');
      return page;
    }
    const liveVideo = (page, user) => page.waitForFunction((u) => {
      const v = document.querySelector(`.tile[data-user="${u}"] video`);
      return v && v.videoWidth > 0 && v.currentTime > 0;
    }, user, { timeout: 30_000 });

    const alice = await demo('demo-alice');
    const bob = await demo('demo-bob');

    await alice.locator('#callees').fill('demo-bob');
    await alice.locator('#call-media').selectOption('video');
    await alice.locator('#call-start').click();
    await alice.waitForFunction(() => document.body.dataset.call === 'calling', null, { timeout: 10_000 });
    assert.equal(await alice.locator('#call-cancel').isVisible(), true, 'the caller can cancel');

    await bob.locator('#incoming').waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await bob.locator('#incoming-text').textContent(), /demo-alice is video calling you/);
    await bob.locator('#call-accept').click();

    for (const [page, other] of [[alice, 'demo-bob'], [bob, 'demo-alice']]) {
      await page.waitForFunction(() => document.body.dataset.call === 'connected' && document.body.dataset.state === 'connected', null, { timeout: 15_000 });
      await liveVideo(page, other);
      assert.equal(await page.locator('#call-hangup').isVisible(), true, 'in the call, Hang up shows');
    }

    await alice.locator('#call-hangup').click();
    for (const page of [alice, bob]) {
      await page.waitForFunction(() => document.querySelector('#call-status').dataset.result === 'NormalEnd', null, { timeout: 10_000 });
      assert.match(await page.locator('#call-status').textContent(), /Call ended: hung up \(NormalEnd\)/);
      await page.waitForFunction(() => document.querySelectorAll('.tile').length === 0 && document.body.dataset.call === 'idle', null, { timeout: 10_000 });
    }
  }, { timeout: 120_000 });
});
