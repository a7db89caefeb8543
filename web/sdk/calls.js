// Hearth browser SDK, calling (docs/protocol.md, "Calls"): a user logs in to be reachable,
// places one-to-one and group audio/video calls, answers, cancels and hangs up; the parties who
// accepted meet in the call's room, entered with an ordinary HearthClient (joinRoom).
//
// Owns the calling socket (login, keepalive, logging in again after a drop), what this user
// knows of their call (a user is in at most one: the server answers `call_busy` otherwise), and
// the room clients joinRoom made, which it exits when the call ends for this user.
//
//   import { HearthCalls } from '/sdk/hearth.js';
//   const calls = new HearthCalls({ sdkAppId, userId: 'bob', userSig });
//   calls.on('invited', async (call) => { await calls.accept(call.callId); await calls.joinRoom(call); });
//   calls.on('call-ended', ({ result }) => console.log('call over:', result));
//   await calls.login();
//
// The socket itself (connecting, keepalive, reconnect loop, state, errors) is socket.js's.
//
// hearth.js re-exports this module and this module imports from hearth.js (a cycle): what it
// imports from there is used only inside functions, never while the modules load.

import { HearthError, SignalingSocket, identityOptions } from './socket.js';
import { HearthClient, PROTOCOL_VERSION, REQUEST_TIMEOUT_MS } from './hearth.js';

const LOGIN_TIMEOUT_MS = 10_000;
const LOGOUT_TIMEOUT_MS = 3_000;
/** After a dropped socket, keep logging in again this long (the server keeps the call for its
 *  reconnect grace, 10 s by default; after that the user is at least reachable again). */
const RELOGIN_WINDOW_MS = 30_000;
const MEDIA = ['audio', 'video'];

/** The server's call messages and the events they become. */
const EVENTS = {
  invited: 'invited',
  call_state: 'call-state',
  call_accepted: 'call-accepted',
  call_rejected: 'call-rejected',
  call_busy: 'call-busy',
  call_no_answer: 'call-no-answer',
  call_left: 'call-left',
  call_ended: 'call-ended',
};

/** A call as the server describes it (`call_placed`, `invited`, `call_state`), in the SDK's names. */
function callFromWire(m) {
  const call = {
    callId: String(m.callid),
    caller: String(m.caller),
    callees: (m.callees || []).map(String),
    media: m.media,
    group: !!m.group,
  };
  if (m.strroomid !== undefined && m.strroomid !== null) call.strRoomId = String(m.strroomid);
  else call.roomId = Number(m.roomid);
  if (m.privatemapkey) call.privateMapKey = m.privatemapkey;
  return call;
}

const without = (list, userId) => list.filter((u) => u !== userId);

export class HearthCalls extends SignalingSocket {
  /**
   * @param {object} options
   * @param {string} [options.url] as HearthClient's: ws(s):// address of `/ws/v1` or the server's
   *   http(s) address; default `/ws/v1` on the page's own host.
   * @param {number} options.sdkAppId
   * @param {string} options.userId
   * @param {string} options.userSig
   * @param {RTCIceServer[]} [options.iceServers=[]] for the rooms joinRoom enters
   * @param {number} [options.pingInterval=5000] keepalive period, ms
   * @param {boolean} [options.debug=false] log every signaling message to the console
   */
  constructor(options = {}) {
    super({ request: 'login', logPrefix: 'hearth calls', logPings: false });
    const o = { ...options };
    this.options = {
      ...identityOptions(o),
      iceServers: o.iceServers || [],
      pingInterval: o.pingInterval || 5_000,
      debug: !!o.debug,
    };
    this._pings = 0; // pings sent on this socket
    this._pongs = 0; // pongs heard on this socket (the server answers each, in order)
    this._call = null; // this user's call: callFromWire + {accepted, ringing[, timeout]}
    this._rooms = new Map(); // callId -> {client, ready}: the rooms joinRoom entered
  }

  // ---- state -------------------------------------------------------------------------------

  /**
   * This user's call (placing, ringing or in it), as far as this client has heard, or null:
   * `{callId, caller, callees, media, group, roomId | strRoomId, privateMapKey?, accepted, ringing}`.
   */
  get currentCall() {
    const c = this._call;
    return c && { ...c, callees: [...c.callees], accepted: [...c.accepted], ringing: [...c.ringing] };
  }

  /** The HearthClient joinRoom made for a call (default: the current one), or null. */
  roomOf(callId = this._call?.callId) {
    return this._rooms.get(callId)?.client ?? null;
  }

  // ---- logging in and out ---------------------------------------------------------------------

  /**
   * Opens the calling socket and logs in; resolves `{userId}`. Listen for `invited` and
   * `call-state` first: right after logging in the server reports a call ringing this user
   * (also one placed while offline) or one they are in.
   */
  async login() {
    await this._start('login', () => this._open());
    return { userId: this.options.userId };
  }

  /** Logs out (the server hangs up this user's call first), exits the call's room, closes. */
  async logout() {
    await this._stop(() => {
      if (this._state !== 'connected' || !this._isOpen()) return null;
      return this._request({ type: 'logout' }, { reply: (m) => m.type === 'logged_out', timeout: LOGOUT_TIMEOUT_MS })
        .catch(() => { /* leaving anyway */ });
    });
  }

  // ---- placing and answering ----------------------------------------------------------------

  /**
   * Calls one user (SingleCall). Resolves when the server placed the call, with
   * `{callId, caller, callees, media, group, roomId | strRoomId, privateMapKey?}`; rejects with
   * a HearthError (400 bad options, 409 already in a call).
   * @param {string} userId
   * @param {{media?: 'audio'|'video', roomId?: number, strRoomId?: string, timeout?: number}} [options]
   *   media default 'audio'; no room → the server picks a free numeric room; timeout: seconds
   *   to ring (1..300, default the server's).
   */
  call(userId, options) {
    return this._place([userId], false, options);
  }

  /** Calls 1..16 users at once (MultiCall); options and result as call(). */
  groupCall(userIds, options) {
    return this._place(userIds, true, options);
  }

  /** Accepts a ringing call; resolves with the call (currentCall). Then joinRoom(call). */
  async accept(callId) {
    const id = this._callIdOf(callId, 'accept');
    const me = this.options.userId;
    await this._request({ type: 'accept', callid: id }, {
      reply: (m) => m.callid === id && ((m.type === 'call_accepted' && m.userid === me) || m.type === 'call_state'),
      barrier: true,
    });
    const c = this._call;
    if (!c || c.callId !== id) throw new HearthError(0, 'the call ended', 'accept');
    if (!c.accepted.includes(me)) c.accepted.push(me);
    c.ringing = without(c.ringing, me);
    return this.currentCall;
  }

  /** Declines a ringing call. */
  async reject(callId) {
    const id = this._callIdOf(callId, 'reject');
    const me = this.options.userId;
    await this._request({ type: 'reject', callid: id }, {
      reply: (m) => m.callid === id && ((m.type === 'call_rejected' && m.userid === me) || m.type === 'call_ended'),
      barrier: true,
    });
    this._forget(id);
  }

  /** Ends a call this user placed before anyone accepted it (result `Cancel`). */
  async cancel(callId) {
    const id = this._callIdOf(callId, 'cancel');
    await this._request({ type: 'cancel', callid: id }, {
      reply: (m) => m.callid === id && m.type === 'call_ended',
      barrier: true,
    });
    this._forget(id);
  }

  /** Leaves a call (the caller hanging up before anyone accepted cancels it); exits its room. */
  async hangup(callId) {
    const id = this._callIdOf(callId, 'hangup');
    const me = this.options.userId;
    await this._request({ type: 'hangup', callid: id }, {
      reply: (m) => m.callid === id && (m.type === 'call_ended' || (m.type === 'call_left' && m.userid === me)),
      barrier: true,
    });
    this._forget(id);
  }

  // ---- the call's room ------------------------------------------------------------------------

  /**
   * Enters the call's room with a HearthClient (this user's credentials, the call's room and
   * PrivateMapKey) and publishes the microphone, and the camera for a video call. Resolves with
   * the entered client (listen to its `track` events for the others). The client is exited
   * when the call ends for this user (call-ended, hangup, cancel, reject, logout).
   * @param {object} [call] default currentCall
   * @param {object} [options] HearthClient options to add (autoSubscribe, iceServers, ...) and
   *   `publish`: PublishOptions merged over {audio: true, video: call.media === 'video'}, or false.
   */
  joinRoom(call = this._call, { publish = {}, ...clientOptions } = {}) {
    if (!call || !call.callId) return Promise.reject(new HearthError(0, 'no call to join', 'enter'));
    if (this._call?.callId !== call.callId) {
      return Promise.reject(new HearthError(0, `${call.callId} is not this user's call (any more)`, 'enter'));
    }
    const known = this._rooms.get(call.callId);
    if (known) return known.ready;
    const o = this.options;
    const room = call.strRoomId !== undefined ? { strRoomId: call.strRoomId } : { roomId: call.roomId };
    const client = new HearthClient({
      url: o.url, sdkAppId: o.sdkAppId, userId: o.userId, userSig: o.userSig, iceServers: o.iceServers,
      pingInterval: o.pingInterval, debug: o.debug, privateMapKey: call.privateMapKey, ...room, ...clientOptions,
    });
    const entry = { client, ready: null, entered: false };
    const current = () => this._rooms.get(call.callId) === entry;
    entry.ready = (async () => {
      try {
        await client.enter();
        if (publish !== false) await client.publish({ audio: true, video: call.media === 'video', ...publish });
      } catch (e) {
        const ended = !current();
        if (!ended) this._rooms.delete(call.callId);
        await client.exit();
        throw ended ? new HearthError(0, 'the call ended while entering its room', 'enter') : e;
      }
      if (!current()) throw new HearthError(0, 'the call ended while entering its room', 'enter');
      entry.entered = true;
      return client;
    })();
    this._rooms.set(call.callId, entry);
    // Removed from the room (kicked, dismissed, ...): a later joinRoom enters again.
    client.on('connection-state', (state) => {
      if (state === 'disconnected' && entry.entered && current()) this._rooms.delete(call.callId);
    });
    return entry.ready;
  }

  // ---- internals: requests --------------------------------------------------------------------

  async _place(callees, group, { media = 'audio', roomId, strRoomId, timeout } = {}) {
    if (!Array.isArray(callees) || callees.length === 0 || callees.some((u) => typeof u !== 'string' || !u)) {
      throw new TypeError('callees must be non-empty user ids');
    }
    if (!MEDIA.includes(media)) throw new TypeError("media must be 'audio' or 'video'");
    if (roomId != null && strRoomId != null) throw new TypeError('give at most one of roomId and strRoomId');
    this._mustBeConnected('call');
    const msg = { type: 'call', callees: [...callees], media, group };
    if (roomId != null) msg.roomid = Number(roomId);
    if (strRoomId != null) msg.strroomid = String(strRoomId);
    if (timeout != null) msg.timeout = Number(timeout);
    const reply = await this._request(msg, { reply: (m) => m.type === 'call_placed' });
    return callFromWire({ ...reply, caller: this.options.userId });
  }

  _callIdOf(callId, request) {
    if (!callId || typeof callId !== 'string') throw new TypeError('callId must be a non-empty string');
    this._mustBeConnected(request);
    return callId;
  }

  _mustBeConnected(request) {
    if (this._state !== 'connected') throw new HearthError(0, `not logged in (${this._state})`, request);
  }

  /**
   * Sends a request; resolves with the first message `reply` accepts, or (`barrier`) with null
   * at the pong of a ping sent right after it: the server reads a socket's messages in order
   * and answers an error before reading the next, so no error by then means it was done (the
   * messages it causes may still be on their way). Rejects on an `error` naming the request.
   */
  _request(msg, { reply = null, barrier = false, timeout = REQUEST_TIMEOUT_MS }) {
    return this._waiters.add({ request: msg.type, reply, pongs: Infinity }, {
      timeoutMs: timeout,
      timeoutError: () => new HearthError(0, `no answer to ${msg.type} within ${timeout} ms`, msg.type),
      send: (w) => {
        this._send(msg);
        if (barrier) { this._ping(); w.pongs = this._pings; }
      },
    });
  }

  // ---- internals: socket ----------------------------------------------------------------------

  /** Opens a socket and logs in on it. */
  async _open() {
    this._pings = 0; // counted per socket
    this._pongs = 0;
    await this._connect();
    const o = this.options;
    await this._request(
      { type: 'login', v: PROTOCOL_VERSION, sdkappid: o.sdkAppId, userid: o.userId, usersig: o.userSig },
      { reply: (m) => m.type === 'logged_in', timeout: LOGIN_TIMEOUT_MS },
    );
  }

  /** A ping, counted: a barrier's pong is the one answering its ping. */
  _ping() {
    super._ping();
    this._pings += 1;
  }

  _onMessage(msg) {
    switch (msg.type) {
      case 'pong':
        this._pongs += 1;
        while (this._waiters.settle((w) => w.pongs <= this._pongs, (w) => w.resolve(null))) { /* all of them */ }
        return;
      case 'logged_in':
        // After a re-login the server goes on with `invited` or `call_state` for the call.
        this._setState('connected');
        break;
      case 'call_placed': {
        const call = callFromWire({ ...msg, caller: this.options.userId });
        this._call = { ...call, callees: [...call.callees], accepted: [], ringing: [...call.callees] };
        break;
      }
      case 'notice':
        this._onNotice(msg);
        break;
      case 'error':
        this._onServerError(msg);
        return;
      default:
        if (!EVENTS[msg.type]) return; // a newer server may say more; ignore what we do not know
        this._onCallMessage(msg);
    }
    this._waiters.settle((w) => w.reply?.(msg), (w) => w.resolve(msg));
  }

  /** Updates what we know of the call, then tells the application. */
  _onCallMessage(msg) {
    const id = String(msg.callid);
    const c = this._call?.callId === id ? this._call : null;
    let payload;
    switch (msg.type) {
      case 'invited':
        payload = { ...callFromWire(msg), timeout: Number(msg.timeout) };
        this._call = { ...payload, callees: [...payload.callees], accepted: [], ringing: [...payload.callees] };
        break;
      case 'call_state':
        payload = { ...callFromWire(msg), accepted: (msg.accepted || []).map(String), ringing: (msg.ringing || []).map(String) };
        this._call = { ...payload, callees: [...payload.callees], accepted: [...payload.accepted], ringing: [...payload.ringing] };
        break;
      case 'call_ended':
        payload = { callId: id, result: msg.result };
        this._forget(id);
        break;
      case 'call_left':
        payload = { callId: id, userId: String(msg.userid), reason: msg.reason };
        if (c) c.accepted = without(c.accepted, payload.userId);
        if (payload.userId === this.options.userId) this._forget(id);
        break;
      default: // call_accepted, call_rejected, call_busy, call_no_answer
        payload = { callId: id, userId: String(msg.userid) };
        if (c) {
          c.ringing = without(c.ringing, payload.userId);
          if (msg.type === 'call_accepted' && !c.accepted.includes(payload.userId)) c.accepted.push(payload.userId);
        }
    }
    this.emit(EVENTS[msg.type], payload);
  }

  /** The call is over for this user: forget it and exit its room. */
  _forget(callId) {
    if (this._call?.callId === callId) this._call = null;
    const entry = this._rooms.get(callId);
    if (!entry) return;
    this._rooms.delete(callId);
    entry.client.exit().catch(() => {});
  }

  /** The socket closed (its requests failed already): log in again, or give up. */
  _onClose() {
    if (this._state !== 'connected') return; // connecting or reconnecting: the caller decides
    if (this._leaving) {
      this._teardown();
      this._setState('disconnected');
      return;
    }
    this._relogin();
  }

  /** Logs in again after a dropped socket; the server keeps the call through its grace period. */
  _relogin() {
    // logged_in sets 'connected'; a refusal (a UserSig expired meanwhile, ...) gives up.
    return this._reconnect(RELOGIN_WINDOW_MS, () => this._open());
  }

  /** Closes everything local: socket, timers, the call and its room. */
  _teardown() {
    this._closeSocket('logged out');
    if (this._call) this._forget(this._call.callId);
    for (const id of [...this._rooms.keys()]) this._forget(id);
  }
}

export default HearthCalls;
