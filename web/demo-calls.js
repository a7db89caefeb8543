// Hearth demo page, calling: log in to be reachable (with the SdkAppId, user and UserSig of the
// room form), call one user or several (a group call), ring with Accept / Reject, Cancel and
// Hang up, and show how the call ended. Owns the calling controls and the page's HearthCalls;
// the call's room is shown with the page's room UI, which demo.js lends through `room`.

import { HearthCalls } from '/sdk/hearth.js';

/** How each call result reads on the page. */
const RESULTS = {
  NormalEnd: 'hung up',
  Cancel: 'cancelled',
  Reject: 'rejected',
  NotAnswer: 'not answered',
  CallBusy: 'busy',
  Interrupt: 'interrupted',
};

/**
 * Wires the calling controls. `room` is demo.js's room UI:
 * - `credentials()` → `{sdkAppId, userId, userSig}` from the form, or null (and says why);
 * - `enter(call, credentials)` enters the call's room and publishes; `leave(callId)` leaves it;
 * - `lockForm()` locks or unlocks the form's fields; `describe(error)` → text.
 * Returns `{loggedIn(), inCall(), hangup()}` for demo.js.
 */
export function setupCalls(room) {
  const $ = (sel) => document.querySelector(sel);
  const els = {
    form: $('#call-form'),
    login: $('#call-login'),
    logout: $('#call-logout'),
    callees: $('#callees'),
    media: $('#call-media'),
    start: $('#call-start'),
    cancel: $('#call-cancel'),
    hangup: $('#call-hangup'),
    incoming: $('#incoming'),
    incomingText: $('#incoming-text'),
    accept: $('#call-accept'),
    reject: $('#call-reject'),
    status: $('#call-status'),
  };

  let calls = null; // HearthCalls while logged in
  let call = null; // {callId, caller, callees, media, ..., mine: 'caller'|'callee', phase: 'calling'|'ringing'|'connected'}
  let lastCallId = null; // the call that ended last: its call-ended may come after we ended it here

  function say(text, { error = false, result = null } = {}) {
    els.status.textContent = text;
    els.status.classList.toggle('error', error);
    if (result) els.status.dataset.result = result;
    else delete els.status.dataset.result;
  }

  function render() {
    const online = !!calls && calls.connectionState === 'connected';
    const phase = call ? call.phase : online ? 'idle' : 'offline';
    document.body.dataset.call = phase;
    els.login.disabled = !!calls;
    els.logout.disabled = !calls;
    for (const el of [els.callees, els.media, els.start]) el.disabled = !online || !!call;
    els.cancel.hidden = phase !== 'calling';
    els.hangup.hidden = phase !== 'connected';
    els.incoming.hidden = phase !== 'ringing';
  }

  const me = () => calls?.options.userId;
  const others = (c) => [c.caller, ...c.callees].filter((u) => u !== me());

  /** The call is over here: show how, leave its room. `result` null: `text` says what happened. */
  async function end(result, text) {
    const was = call;
    call = null;
    if (was) lastCallId = was.callId;
    render();
    if (result) say(`Call ended: ${RESULTS[result] || result} (${result}).`, { result });
    else say(text);
    if (was) await room.leave(was.callId);
  }

  async function connect(c) {
    c.phase = 'connected';
    render();
    say(`In a ${c.media} call with ${others(c).join(', ')}.`);
    await room.enter(c, calls.options);
  }

  function ring(c) {
    call = { ...c, mine: 'callee', phase: 'ringing' };
    const with_ = c.group ? ` (a group call with ${c.callees.filter((u) => u !== me()).join(', ') || 'nobody else'})` : '';
    els.incomingText.textContent = `${c.caller} is ${c.media} calling you${with_}.`;
    say('Incoming call…');
    render();
  }

  function wire(c) {
    const mine = (e) => calls === c && call && e.callId === call.callId;
    c.on('connection-state', (state) => {
      if (calls !== c) return;
      if (state === 'reconnecting') say('Calling connection lost, logging in again…', { error: true });
      if (state === 'connected' && !call) say(`Logged in as ${me()}: others can call you.`);
      if (state === 'disconnected') {
        const was = call;
        calls = null;
        call = null;
        room.lockForm();
        if (was) room.leave(was.callId);
        if (!els.status.classList.contains('error')) say('Logged out.');
      }
      render();
    });
    c.on('invited', (inv) => { if (calls === c) ring(inv); });
    c.on('call-state', (st) => {
      // After logging in (again): the call this user is in.
      if (calls !== c) return;
      if (st.ringing.includes(me())) { ring(st); return; }
      const mineNow = st.caller === me() ? 'caller' : 'callee';
      const answered = st.accepted.some((u) => u !== st.caller);
      call = { ...st, mine: mineNow, phase: mineNow === 'caller' && !answered ? 'calling' : 'connected' };
      if (call.phase === 'connected') connect(call); else render();
    });
    c.on('call-accepted', (e) => {
      if (!mine(e) || e.userId === me()) return;
      say(`${e.userId} accepted.`);
      if (call.phase === 'calling') connect(call);
    });
    c.on('call-rejected', (e) => { if (mine(e) && e.userId !== me()) say(`${e.userId} rejected the call.`); });
    c.on('call-busy', (e) => { if (mine(e)) say(`${e.userId} is busy.`); });
    c.on('call-no-answer', (e) => { if (mine(e)) say(`${e.userId} did not answer.`); });
    c.on('call-left', (e) => { if (mine(e) && e.userId !== me()) say(`${e.userId} left the call${e.reason === 'dropped' ? ' (connection lost)' : ''}.`); });
    c.on('call-ended', (e) => {
      if (calls !== c) return;
      if (mine(e)) end(e.result);
      else if (e.callId === lastCallId && e.result) end(e.result);
    });
    c.on('notice', (n) => {
      if (n.reason === 'replaced') say('Logged in elsewhere: this page no longer gets calls.', { error: true });
      else say(`Notice from the server: ${n.reason}`, { error: true });
    });
    c.on('error', (e) => say(room.describe(e), { error: true }));
  }

  async function login() {
    if (calls) return;
    const creds = room.credentials();
    if (!creds) return;
    let c;
    try {
      c = new HearthCalls(creds);
    } catch (e) {
      say(room.describe(e), { error: true });
      return;
    }
    calls = c;
    wire(c);
    room.lockForm();
    render();
    say('Logging in…');
    try {
      await c.login();
    } catch (e) {
      if (calls === c) { calls = null; room.lockForm(); render(); }
      say(`Could not log in: ${room.describe(e)}`, { error: true });
    }
  }

  async function logout() {
    const c = calls;
    if (!c) return;
    await c.logout(); // connection-state 'disconnected' cleans up
  }

  async function place(ev) {
    ev.preventDefault();
    const c = calls;
    if (!c || call) return;
    const ids = els.callees.value.split(/[\s,;]+/).filter(Boolean);
    if (ids.length === 0) { say('Type whom to call.', { error: true }); els.callees.focus(); return; }
    const media = els.media.value;
    els.start.disabled = true;
    try {
      const placed = ids.length === 1 ? await c.call(ids[0], { media }) : await c.groupCall(ids, { media });
      if (calls !== c) return;
      call = { ...placed, mine: 'caller', phase: 'calling' };
      say(`Calling ${ids.join(', ')}…`);
    } catch (e) {
      say(`Could not call: ${room.describe(e)}`, { error: true });
    }
    render();
  }

  /** Runs a request on the current call; the call ends here with `text` unless an event ended it. */
  async function act(method, text) {
    const c = calls;
    const id = call?.callId;
    if (!c || !id) return;
    try {
      await c[method](id);
    } catch (e) {
      say(room.describe(e), { error: true });
    }
    if (call?.callId === id) await end(null, text);
  }

  async function accept() {
    const c = calls;
    const id = call?.callId;
    if (!c || !id) return;
    els.accept.disabled = true;
    try {
      await c.accept(id);
      if (call?.callId === id) await connect(call);
    } catch (e) {
      if (call?.callId === id) await end(null, `Could not accept: ${room.describe(e)}`);
    } finally {
      els.accept.disabled = false;
    }
  }

  els.login.addEventListener('click', login);
  els.logout.addEventListener('click', logout);
  els.form.addEventListener('submit', place);
  els.accept.addEventListener('click', accept);
  els.reject.addEventListener('click', () => act('reject', 'You rejected the call.'));
  els.cancel.addEventListener('click', () => act('cancel', 'You cancelled the call.'));
  els.hangup.addEventListener('click', () => act('hangup', 'You left the call.'));
  window.addEventListener('pagehide', () => { calls?.logout(); });
  render();
  // For tests and the console: the page's HearthCalls.
  Object.defineProperty(window, 'hearthCalls', { get: () => calls });

  return {
    loggedIn: () => !!calls,
    inCall: () => !!call,
    hangup: () => act(call?.phase === 'calling' ? 'cancel' : 'hangup', 'You left the call.'),
  };
}
