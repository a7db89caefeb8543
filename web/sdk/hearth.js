// Hearth browser SDK: a client of Hearth's WebSocket protocol v1 (docs/protocol.md).
//
// Plain ES module, no build step, no dependencies:
//
//   import { HearthClient } from '/sdk/hearth.js';
//   const client = new HearthClient({ sdkAppId, userId, userSig, roomId: 1234 });
//   client.on('track', ({ userId, stream, kind, mediaStream }) => { ... });
//   await client.enter();
//   await client.publish({ audio: true, video: true });
//
// One WebSocket carries the signaling; media uses two RTCPeerConnections, exactly as the
// protocol says: the *publish* connection (this client offers, the server answers) and the
// *subscribe* connection (the server offers, this client answers). See README.md beside this
// file for the whole API and hearth.d.ts for its types.
//
// Calling (log in to be reachable, ring, answer, hang up) is calls.js, re-exported here as
// HearthCalls. The signaling socket both use (connecting, keepalive, reconnecting, errors) is
// socket.js; its HearthError, signalingUrl and constants are re-exported here.

import { HearthError, SignalingSocket, identityOptions } from './socket.js';

export { HearthCalls } from './calls.js';
export { CLOSING_NOTICES, FATAL_CODES, HearthError, SILENCE_LIMIT_MS, signalingUrl } from './socket.js';

export const PROTOCOL_VERSION = 1;

/** Simulcast layers of the camera, low to high, as the protocol names them (q/h/f). */
export const SIMULCAST_ENCODINGS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 }),
  Object.freeze({ rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 }),
]);

/** Which server message answers which client request. */
const REPLY_OF = { enter: 'entered', publish: 'publish_answer', role: 'role', exit: 'exited' };

const ENTER_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 3_000;
/** The server keeps a dropped session this long for a `resume`; we stop trying a bit earlier. */
const RESUME_WINDOW_MS = 25_000;
/** How often quality measurements go to the server (the spec samples every 2 s). */
const STATS_INTERVAL_MS = 2_000;

const SOURCES = ['mic', 'camera', 'screen'];
const VIDEO_CODECS = ['video/vp8', 'video/h264', 'video/rtx', 'video/red', 'video/ulpfec'];

function userFromWire(u) {
  return {
    userId: String(u.userid),
    audio: !!u.audio,
    video: !!u.video,
    sub: !!u.sub,
    audioMuted: !!u.audio_muted,
    videoMuted: !!u.video_muted,
  };
}

function sameUser(a, b) {
  return a.audio === b.audio && a.video === b.video && a.sub === b.sub &&
    a.audioMuted === b.audioMuted && a.videoMuted === b.videoMuted;
}

export class HearthClient extends SignalingSocket {
  /**
   * @param {object} options
   * @param {string} [options.url] ws(s):// address of `/ws/v1`, or the server's http(s) address;
   *   default: `/ws/v1` on the page's own host.
   * @param {number} options.sdkAppId
   * @param {string} options.userId
   * @param {string} options.userSig
   * @param {number} [options.roomId] numeric room (1..4294967294); or
   * @param {string} [options.strRoomId] string room (a different room from the same number)
   * @param {'anchor'|'audience'} [options.role='anchor']
   * @param {boolean} [options.autoSubscribe=true]
   * @param {string} [options.privateMapKey]
   * @param {RTCIceServer[]} [options.iceServers=[]] used besides the TURN servers the server
   *   hands out with its `entered` answer (short-lived credentials; none on a LAN setup)
   * @param {'all'|'relay'} [options.iceTransportPolicy='all'] 'relay': media only through TURN
   * @param {number} [options.pingInterval=5000] keepalive period, ms
   * @param {boolean} [options.debug=false] log every signaling message to the console
   */
  constructor(options = {}) {
    super({ request: 'enter', logPrefix: 'hearth', logPings: true });
    const o = { ...options };
    const identity = identityOptions(o);
    const hasNum = o.roomId !== undefined && o.roomId !== null && o.roomId !== '';
    const hasStr = o.strRoomId !== undefined && o.strRoomId !== null && o.strRoomId !== '';
    if (hasNum === hasStr) throw new TypeError('give exactly one of roomId and strRoomId');
    if (hasNum && (!Number.isInteger(Number(o.roomId)) || Number(o.roomId) <= 0)) {
      throw new TypeError('roomId must be a positive integer (use strRoomId for a string room)');
    }
    const role = o.role || 'anchor';
    if (role !== 'anchor' && role !== 'audience') throw new TypeError("role must be 'anchor' or 'audience'");
    this.options = {
      ...identity,
      roomId: hasNum ? Number(o.roomId) : undefined,
      strRoomId: hasStr ? String(o.strRoomId) : undefined,
      role,
      autoSubscribe: o.autoSubscribe !== false,
      privateMapKey: o.privateMapKey,
      iceServers: o.iceServers || [],
      iceTransportPolicy: o.iceTransportPolicy || 'all',
      pingInterval: o.pingInterval || 5_000,
      debug: !!o.debug,
    };
    this.role = role;
    this.session = null;

    this._statsTimer = null;
    this._statsTotals = new Map(); // userId -> {freezeMs, concealedMs} at the last report
    this._users = new Map(); // userId -> user

    this._pub = null; // RTCPeerConnection (publish)
    this._sources = new Map(); // 'mic'|'camera'|'screen' -> {source, track, transceiver, muted}
    this._localStream = null; // mic + camera
    this._screenStream = null;
    this._pubChain = Promise.resolve();

    this._sub = null; // RTCPeerConnection (subscribe)
    this._remote = new Map(); // mid -> {mid, userId, stream, kind, track, mediaStream}
    this._remoteStreams = new Map(); // `${userId}\n${stream}` -> MediaStream
    this._subChain = Promise.resolve();
  }

  // ---- state -------------------------------------------------------------------------------

  /** Everyone else in the room, as last told by the server. */
  get users() { return [...this._users.values()].map((u) => ({ ...u })); }
  /** The local camera + mic (null before publish()). */
  get localStream() { return this._localStream; }
  /** The local screen capture (null unless publishing the screen). */
  get screenStream() { return this._screenStream; }
  /** Sources being published: some of 'mic', 'camera', 'screen'. */
  get publishedSources() { return [...this._sources.keys()]; }
  /** Every remote track being received. */
  get remoteTracks() { return [...this._remote.values()].map((r) => ({ ...r })); }
  /** The publish RTCPeerConnection (null before the first publish). */
  get publishConnection() { return this._pub; }
  /** The subscribe RTCPeerConnection (null before the server's first offer). */
  get subscribeConnection() { return this._sub; }

  // ---- entering and leaving -----------------------------------------------------------------

  /** Opens the socket and enters the room. Resolves with `{session, userId, role, users}`. */
  async enter() {
    const reply = await this._start('enter', async () => {
      await this._connect();
      return this._request(this._enterMessage(), ENTER_TIMEOUT_MS);
    });
    return { session: reply.session, userId: reply.userid, role: reply.role, users: this.users };
  }

  /** Leaves the room: `exit`, waits for `exited` (briefly), closes everything, stops local media. */
  async exit() {
    await this._stop(() => {
      if (!this._isOpen() || !this.session) return null;
      return this._request({ type: 'exit' }, EXIT_TIMEOUT_MS).catch(() => { /* leaving anyway */ });
    });
  }

  // ---- publishing ---------------------------------------------------------------------------

  /**
   * Publishes the microphone and/or camera (getUserMedia). `audio` and `video` may be `true`
   * or MediaTrackConstraints. `simulcast: true` sends the camera in three layers (rids q/h/f,
   * scaleResolutionDownBy 4/2/1) so that subscribers can pick big or small.
   * Resolves with the local MediaStream; rejects with a HearthError (403 for an audience member).
   */
  publish({ audio = true, video = true, simulcast = false } = {}) {
    return this._serialPub(async () => {
      this._mustBeEntered('publish');
      const wantAudio = !!audio && !this._sources.has('mic');
      const wantVideo = !!video && !this._sources.has('camera');
      if (!wantAudio && !wantVideo) return this._localStream;
      const media = await navigator.mediaDevices.getUserMedia({
        audio: wantAudio ? audio : false,
        video: wantVideo ? video : false,
      });
      if (!this._localStream) this._localStream = new MediaStream();
      const added = [];
      const pc = this._ensurePublishPc();
      for (const track of media.getTracks()) {
        const source = track.kind === 'audio' ? 'mic' : 'camera';
        const init = { direction: 'sendonly', streams: [this._localStream] };
        if (source === 'camera' && simulcast) init.sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
        const transceiver = pc.addTransceiver(track, init);
        if (source === 'camera') preferVideoCodecs(transceiver);
        this._localStream.addTrack(track);
        this._sources.set(source, { source, track, transceiver, muted: false, simulcast: source === 'camera' && !!simulcast });
        added.push(source);
      }
      await this._negotiatePublish(added);
      return this._localStream;
    });
  }

  /** Publishes a screen capture (getDisplayMedia) as the sub stream. Resolves with its MediaStream. */
  publishScreen({ video = true } = {}) {
    return this._serialPub(async () => {
      this._mustBeEntered('publish');
      if (this._sources.has('screen')) return this._screenStream;
      const media = await navigator.mediaDevices.getDisplayMedia({ video, audio: false });
      const track = media.getVideoTracks()[0];
      media.getAudioTracks().forEach((t) => t.stop());
      if (!track) throw new HearthError(0, 'the screen capture has no video track', 'publish');
      this._screenStream = new MediaStream([track]);
      const pc = this._ensurePublishPc();
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [this._screenStream] });
      preferVideoCodecs(transceiver);
      this._sources.set('screen', { source: 'screen', track, transceiver, muted: false, simulcast: false });
      track.addEventListener('ended', () => {
        // The person stopped sharing from the browser's own UI.
        if (this._sources.get('screen')?.track !== track) return;
        this.unpublish('screen').catch((e) => this._emitError(e)).finally(() => this.emit('screen-ended'));
      });
      await this._negotiatePublish(['screen']);
      return this._screenStream;
    });
  }

  /** Stops the screen share. */
  unpublishScreen() { return this.unpublish('screen'); }

  /** Stops publishing one source ('mic', 'camera' or 'screen'). */
  unpublish(source) {
    if (!SOURCES.includes(source)) return Promise.reject(new TypeError(`unknown source ${source}`));
    return this._serialPub(async () => {
      const s = this._sources.get(source);
      if (!s) return;
      this._sources.delete(source);
      if (this._isOpen()) this._send({ type: 'unpublish', source });
      this._stopSource(s);
      // The protocol wants the transceiver stopped in the next offer. With nothing left to
      // publish there is no offer worth sending (an offer must send something): the next
      // publish() carries the stop.
      if (this._sources.size > 0 && this._pub && this._isOpen()) await this._negotiatePublish([]);
    });
  }

  /**
   * Mutes or unmutes a published source: the track is disabled locally (silence / black) and
   * the server stops forwarding it and tells the others.
   */
  async mute(source, muted = true) {
    if (!SOURCES.includes(source)) throw new TypeError(`unknown source ${source}`);
    const s = this._sources.get(source);
    if (!s) throw new HearthError(0, `${source} is not published`, 'mute');
    s.muted = !!muted;
    s.track.enabled = !muted;
    this._send({ type: 'mute', source, muted: !!muted });
  }

  /** Whether a published source is muted (undefined if it is not published). */
  isMuted(source) { return this._sources.get(source)?.muted; }

  // ---- custom messages ----------------------------------------------------------------------

  /**
   * Sends a custom message to everyone else in the room (TRTC's custom command messages):
   * `cmdId` 1–10, `data` a string (sent as UTF-8), Uint8Array or ArrayBuffer of 1024 bytes at
   * most. Anchors only; 30 messages and 8 KB a second. Delivered in order, each numbered by
   * sender (`seq`); others get a `custom-message` event {userId, cmdId, seq, data: Uint8Array}.
   * A refusal from the server (rate, role) arrives as an `error` event with request `custom`.
   */
  sendCustomMessage(cmdId, data) {
    if (!Number.isInteger(cmdId) || cmdId < 1 || cmdId > 10) throw new TypeError('cmdId must be 1 to 10');
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data)
      : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    if (!(bytes instanceof Uint8Array)) throw new TypeError('data must be a string, Uint8Array or ArrayBuffer');
    if (bytes.length > 1024) throw new RangeError('a custom message holds 1024 bytes at most');
    if (!this._isOpen()) throw new HearthError(0, 'not connected', 'custom');
    let bin = '';
    for (const b of bytes) bin += String.fromCharCode(b);
    this._send({ type: 'custom', cmdid: cmdId, data: btoa(bin) });
  }

  // ---- subscribing --------------------------------------------------------------------------

  /**
   * Subscribes to a user's stream ('main': camera + mic, 'sub': screen), or changes the quality
   * ('big' or 'small', the latter needs a simulcast publisher). Tracks arrive as `track` events;
   * a server refusal (404: no such user or stream) arrives as an `error` event.
   */
  async subscribe(userId, { stream = 'main', quality = 'big' } = {}) {
    this._mustBeEntered('subscribe');
    this._send({ type: 'subscribe', userid: String(userId), stream, quality });
  }

  /** Stops receiving a user's stream (`{stream: 'main'|'sub'}`, default main). */
  async unsubscribe(userId, { stream = 'main' } = {}) {
    this._mustBeEntered('unsubscribe');
    this._send({ type: 'unsubscribe', userid: String(userId), stream });
  }

  /**
   * Finds the inbound-rtp stats of a received track (framesDecoded, frameWidth, packetsReceived,
   * ...), or null. For diagnostics and tests.
   */
  async getRemoteTrackStats({ userId, stream = 'main', kind = 'video' }) {
    const r = [...this._remote.values()].find((x) => x.userId === userId && x.stream === stream && x.kind === kind);
    if (!r || !this._sub) return null;
    const report = await this._sub.getStats(r.track);
    let found = null;
    report.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === kind) found = s; });
    return found;
  }

  // ---- roles --------------------------------------------------------------------------------

  /** Switches between 'anchor' and 'audience'; an audience member publishes nothing. */
  async switchRole(role) {
    if (role !== 'anchor' && role !== 'audience') throw new TypeError("role must be 'anchor' or 'audience'");
    this._mustBeEntered('role');
    const reply = await this._request({ type: 'role', role }, REQUEST_TIMEOUT_MS);
    this.role = reply.role;
    this.options.role = reply.role;
    if (reply.role === 'audience') await this._serialPub(async () => this._closePublish());
    return reply.role;
  }

  // ---- internals: socket --------------------------------------------------------------------

  _enterMessage(resume) {
    const o = this.options;
    const m = { type: 'enter', v: PROTOCOL_VERSION, sdkappid: o.sdkAppId, userid: o.userId, usersig: o.userSig };
    if (o.roomId !== undefined) m.roomid = o.roomId; else m.strroomid = o.strRoomId;
    m.role = this.role;
    if (o.privateMapKey) m.privatemapkey = o.privateMapKey;
    m.autosubscribe = o.autoSubscribe;
    if (resume) m.resume = resume;
    return m;
  }

  /** Sends a request and waits for its reply type (or an error naming it). */
  _request(msg, timeoutMs) {
    const replyType = REPLY_OF[msg.type];
    return this._waiters.add({ request: msg.type, replyType }, {
      timeoutMs,
      timeoutError: () => new HearthError(0, `no ${replyType} within ${timeoutMs} ms`, msg.type),
      send: () => this._send(msg),
    });
  }

  /** The keepalive, and alongside it the quality reports (_report). */
  _startKeepalive() {
    super._startKeepalive();
    clearInterval(this._statsTimer);
    this._statsTimer = setInterval(() => { this._report().catch(() => {}); }, STATS_INTERVAL_MS);
  }

  _stopKeepalive() {
    super._stopKeepalive();
    clearInterval(this._statsTimer);
    this._statsTimer = null;
  }

  /**
   * Every STATS_INTERVAL_MS: what this client measures and the server cannot see (capture fps,
   * render fps, freezes and audio concealment per remote user over the period), so the
   * operator's DescribeCallDetailInfo has them.
   */
  async _report() {
    if (!this._isOpen()) return;
    const msg = { type: 'stats', remote: [] };
    if (this._pub) {
      (await this._pub.getStats()).forEach((s) => {
        if (s.type === 'media-source' && s.kind === 'video' && typeof s.framesPerSecond === 'number') {
          msg.capture_fps = Math.max(msg.capture_fps ?? 0, s.framesPerSecond);
        }
      });
    }
    if (this._sub) {
      const byUser = new Map();
      (await this._sub.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        const r = this._remote.get(s.mid);
        if (!r || r.stream !== 'main') return;
        const e = byUser.get(r.userId) ?? { userid: r.userId };
        const last = this._statsTotals.get(r.userId) ?? { freezeMs: 0, concealedMs: 0 };
        if (s.kind === 'video') {
          if (typeof s.framesPerSecond === 'number') e.decode_fps = s.framesPerSecond;
          const freezeMs = Math.round((s.totalFreezesDuration ?? 0) * 1000);
          e.video_block_ms = Math.max(0, freezeMs - last.freezeMs);
          last.freezeMs = freezeMs;
        } else {
          const concealedMs = Math.round(((s.concealedSamples ?? 0) / 48000) * 1000);
          e.audio_block_ms = Math.max(0, concealedMs - last.concealedMs);
          last.concealedMs = concealedMs;
        }
        this._statsTotals.set(r.userId, last);
        byUser.set(r.userId, e);
      });
      msg.remote = [...byUser.values()];
    }
    if (this._isOpen()) this._send(msg);
  }

  _onMessage(msg) {
    switch (msg.type) {
      case 'pong':
        break;
      case 'entered':
        this._onEntered(msg);
        this._waiters.settle((w) => w.replyType === 'entered', (w) => w.resolve(msg));
        break;
      case 'publish_answer':
      case 'exited':
        this._waiters.settle((w) => w.replyType === msg.type, (w) => w.resolve(msg));
        break;
      case 'role':
        this.role = msg.role;
        if (!this._waiters.settle((w) => w.replyType === 'role', (w) => w.resolve(msg))) this.emit('role', msg.role);
        break;
      case 'offer':
        this._serialSub(() => this._onOffer(msg)).catch((e) => this._emitError(e));
        break;
      case 'user_entered': {
        const u = userFromWire(msg.user);
        if (u.userId === this.options.userId) break;
        const had = this._users.has(u.userId);
        this._users.set(u.userId, u);
        this.emit(had ? 'user-updated' : 'user-entered', { ...u });
        break;
      }
      case 'user_updated': {
        const u = userFromWire(msg.user);
        if (u.userId === this.options.userId) break;
        const had = this._users.has(u.userId);
        this._users.set(u.userId, u);
        this.emit(had ? 'user-updated' : 'user-entered', { ...u });
        break;
      }
      case 'user_exited': {
        const userId = String(msg.userid);
        if (!this._users.delete(userId)) break;
        this._forgetRemoteUser(userId);
        this.emit('user-exited', { userId });
        break;
      }
      case 'notice':
        this._onNotice(msg);
        break;
      case 'custom': {
        const bin = atob(msg.data ?? '');
        const data = Uint8Array.from(bin, (c) => c.charCodeAt(0));
        this.emit('custom-message', { userId: String(msg.userid), cmdId: msg.cmdid, seq: msg.seq, data });
        break;
      }
      case 'error':
        this._onServerError(msg, !!(msg.request && REPLY_OF[msg.request]));
        break;
      default:
        // A newer server may say more; ignore what we do not know.
        break;
    }
  }

  _onEntered(msg) {
    this.session = msg.session;
    // The TURN servers of this entry (fresh credentials after a resume, too).
    this._serverIce = msg.ice_servers || [];
    if (msg.role) this.role = msg.role;
    const roster = new Map();
    for (const w of msg.roster || []) {
      const u = userFromWire(w);
      if (u.userId !== this.options.userId) roster.set(u.userId, u);
    }
    const before = this._users;
    this._users = roster;
    this._setState('connected');
    for (const [id] of before) {
      if (!roster.has(id)) { this._forgetRemoteUser(id); this.emit('user-exited', { userId: id }); }
    }
    for (const [id, u] of roster) {
      const old = before.get(id);
      if (!old) this.emit('user-entered', { ...u });
      else if (!sameUser(old, u)) this.emit('user-updated', { ...u });
    }
  }

  /** The socket closed (its requests failed already): resume, or give up. */
  _onClose() {
    if (this._state === 'connecting' || this._state === 'reconnecting') return; // the caller decides
    if (this._state === 'disconnected') return;
    if (this._leaving || !this.session) {
      this._teardown();
      this._setState('disconnected');
      return;
    }
    this._resume();
  }

  /** Reconnects with the session token; the server keeps our media connections meanwhile. */
  _resume() {
    // _onEntered sets 'connected'; a refusal (the session ended) gives up.
    return this._reconnect(RESUME_WINDOW_MS, async () => {
      await this._connect();
      await this._request(this._enterMessage(this.session), ENTER_TIMEOUT_MS);
    });
  }

  _mustBeEntered(request) {
    if (this._state !== 'connected') throw new HearthError(0, `not in a room (${this._state})`, request);
  }

  /** Closes everything local: socket, timers, both connections, local media, remote tracks. */
  _teardown() {
    this._closeSocket('left the room');
    this._closePublish();
    if (this._sub) { this._sub.close(); this._sub = null; }
    for (const r of this._remote.values()) this.emit('track-removed', { ...r });
    this._remote.clear();
    this._remoteStreams.clear();
    this._users.clear();
    this.session = null;
  }

  // ---- internals: publish connection --------------------------------------------------------

  _serialPub(fn) {
    const run = this._pubChain.then(fn, fn);
    this._pubChain = run.catch(() => {});
    return run;
  }

  _serialSub(fn) {
    const run = this._subChain.then(fn, fn);
    this._subChain = run.catch(() => {});
    return run;
  }

  /** The configuration of a new RTCPeerConnection: the caller's ICE servers and the server's. */
  _pcConfig() {
    return {
      iceServers: [...this.options.iceServers, ...(this._serverIce || [])],
      iceTransportPolicy: this.options.iceTransportPolicy,
      bundlePolicy: 'max-bundle',
    };
  }

  _ensurePublishPc() {
    if (this._pub) return this._pub;
    const pc = new RTCPeerConnection(this._pcConfig());
    pc.addEventListener('connectionstatechange', () => this.emit('peer-state', { pc: 'publish', state: pc.connectionState }));
    this._pub = pc;
    return pc;
  }

  /** Offers the publish connection's current state and applies the answer. */
  async _negotiatePublish(added) {
    const pc = this._pub;
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const tracks = [];
      for (const s of this._sources.values()) {
        if (s.transceiver.mid !== null) tracks.push({ mid: s.transceiver.mid, source: s.source });
      }
      const reply = await this._request({ type: 'publish', sdp: pc.localDescription.sdp, tracks }, REQUEST_TIMEOUT_MS);
      await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
    } catch (e) {
      // Undo what this call added, so a refused publish leaves things as they were.
      if (pc.signalingState === 'have-local-offer') {
        try { await pc.setLocalDescription({ type: 'rollback' }); } catch { /* closed */ }
      }
      for (const source of added) {
        const s = this._sources.get(source);
        if (s) { this._sources.delete(source); this._stopSource(s); }
      }
      if (this._sources.size === 0 && pc.currentRemoteDescription === null) this._closePublish();
      throw e;
    }
  }

  _stopSource(s) {
    try { s.transceiver.stop(); } catch { /* pc closed */ }
    s.track.stop();
    if (s.source === 'screen') this._screenStream = null;
    else if (this._localStream) {
      this._localStream.removeTrack(s.track);
      if (this._localStream.getTracks().length === 0) this._localStream = null;
    }
  }

  _closePublish() {
    for (const s of this._sources.values()) this._stopSource(s);
    this._sources.clear();
    if (this._pub) { this._pub.close(); this._pub = null; }
  }

  // ---- internals: subscribe connection ------------------------------------------------------

  _ensureSubscribePc() {
    if (this._sub) return this._sub;
    const pc = new RTCPeerConnection(this._pcConfig());
    pc.addEventListener('connectionstatechange', () => this.emit('peer-state', { pc: 'subscribe', state: pc.connectionState }));
    this._sub = pc;
    return pc;
  }

  async _onOffer(msg) {
    const pc = this._ensureSubscribePc();
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
    } catch (e) {
      throw new HearthError(0, `cannot apply the server's subscribe offer: ${e.message}`, 'offer');
    }
    if (pc !== this._sub) return; // left meanwhile
    this._send({ type: 'answer', sdp: pc.localDescription.sdp });
    this._syncRemoteTracks(msg.tracks || []);
  }

  /** Compares the offer's track list with what we had; emits track-removed, then track. */
  _syncRemoteTracks(tracks) {
    const byMid = new Map();
    for (const t of this._sub.getTransceivers()) if (t.mid !== null) byMid.set(t.mid, t);
    const next = new Map();
    for (const t of tracks) {
      const mid = String(t.mid);
      const tr = byMid.get(mid);
      if (!tr || tr.currentDirection === 'stopped' || tr.currentDirection === 'inactive') continue;
      next.set(mid, {
        mid,
        userId: String(t.userid),
        stream: t.stream === 'sub' ? 'sub' : 'main',
        kind: t.kind || tr.receiver.track.kind,
        track: tr.receiver.track,
        mediaStream: null,
      });
    }
    const same = (a, b) => a.userId === b.userId && a.stream === b.stream && a.track === b.track;
    for (const [mid, old] of this._remote) {
      const n = next.get(mid);
      if (n && same(old, n)) { n.mediaStream = old.mediaStream; continue; }
      old.mediaStream?.removeTrack(old.track);
      this.emit('track-removed', { ...old });
    }
    const prev = this._remote;
    this._remote = next;
    for (const [mid, n] of next) {
      const old = prev.get(mid);
      if (old && same(old, n)) continue;
      n.mediaStream = this._remoteStream(n.userId, n.stream);
      for (const t of n.mediaStream.getTracks()) if (t.kind === n.kind && t !== n.track) n.mediaStream.removeTrack(t);
      n.mediaStream.addTrack(n.track);
      this.emit('track', { ...n });
    }
  }

  _remoteStream(userId, stream) {
    const key = `${userId}\n${stream}`;
    let ms = this._remoteStreams.get(key);
    if (!ms) { ms = new MediaStream(); this._remoteStreams.set(key, ms); }
    return ms;
  }

  /** A user left: their tracks end now (the server's next offer stops their lines). */
  _forgetRemoteUser(userId) {
    for (const [mid, r] of [...this._remote]) {
      if (r.userId !== userId) continue;
      this._remote.delete(mid);
      r.mediaStream?.removeTrack(r.track);
      this.emit('track-removed', { ...r });
    }
    for (const key of [...this._remoteStreams.keys()]) if (key.startsWith(`${userId}\n`)) this._remoteStreams.delete(key);
  }
}

/** Puts VP8 first (then H.264) on a video transceiver; Hearth forwards Opus, VP8 and H.264. */
function preferVideoCodecs(transceiver) {
  try {
    const caps = (globalThis.RTCRtpReceiver?.getCapabilities?.('video')?.codecs) || [];
    const rank = (c) => VIDEO_CODECS.indexOf(c.mimeType.toLowerCase());
    const codecs = caps.filter((c) => rank(c) >= 0).sort((a, b) => rank(a) - rank(b));
    if (codecs.some((c) => c.mimeType.toLowerCase() === 'video/vp8')) transceiver.setCodecPreferences(codecs);
  } catch {
    // Not supported here: the browser's default order applies.
  }
}

export default HearthClient;
