// The signaling socket HearthClient (hearth.js) and HearthCalls (calls.js) both extend: one
// WebSocket to `/ws/v1` speaking JSON (docs/protocol.md).
//
// Owns: checking the identity options (sdkAppId, userId, userSig, url); opening the socket and
// the error a failed open rejects with; sending and receiving frames (JSON, debug logging);
// the keepalive (a ping every pingInterval, and closing a socket silent for SILENCE_LIMIT_MS);
// the server's notices and errors (a closing notice or a fatal error sets `_leaving`; an error
// rejects the request it names, else becomes an `error` event); the connection state and its
// `connection-state` event; the requests waiting on the socket (a Waiters, rejected when the
// socket closes); starting, stopping, and the retry loop after a drop; closing the socket.
//
// Does not own: what is sent on it or what a message means (a subclass's `_onMessage(msg)`),
// how a request is matched to its reply (a subclass's `_request`), what happens when the
// socket closes (`_onClose(ev)`), how to get back in after a drop (the `attempt` given to
// `_reconnect`), nor what else `_teardown()` closes.
//
// A subclass passes, once, the request its connect errors name ('enter', 'login'), its log
// prefix ('hearth', 'hearth calls') and whether debug logging shows the pings it sends; it may
// override `_ping()` (one keepalive ping; HearthCalls counts them) and `_startKeepalive()` /
// `_stopKeepalive()` (HearthClient runs its stats timer alongside), calling super's.
//
// This module imports nothing of hearth.js or calls.js (they import it; hearth.js re-exports
// HearthError, signalingUrl and the constants below as they always were).

import { Emitter } from './emitter.js';
import { Waiters } from './waiters.js';

/** Error codes after which the server closes the socket (docs/protocol.md, Errors). */
export const FATAL_CODES = new Set([401, 408, 413, 415, 503]);
/** Notices after which the server closes the socket (the server also ends sessions with
 *  `timeout` and `server_shutdown`); `blocked` keeps it. */
export const CLOSING_NOTICES = new Set(['kicked', 'room_dismissed', 'replaced', 'timeout', 'server_shutdown']);
/** No message at all (not even a pong) for this long: the socket is taken as dead. */
export const SILENCE_LIMIT_MS = 15_000;

/** An error reported by the server (`code` as in the protocol) or by the SDK (`code` 0). */
export class HearthError extends Error {
  constructor(code, message, request) {
    super(message || `error ${code}`);
    this.name = 'HearthError';
    this.code = code;
    this.request = request;
  }
}

/** The WebSocket address: a ws(s) URL as is; an http(s) URL or nothing → `/ws/v1` on that host. */
export function signalingUrl(url) {
  if (url && /^wss?:\/\//i.test(url)) return url;
  const base = new URL(url || globalThis.location.href, globalThis.location?.href);
  const scheme = base.protocol === 'https:' ? 'wss:' : 'ws:';
  const path = !url || base.pathname === '/' || base.pathname === '' ? '/ws/v1' : base.pathname;
  return `${scheme}//${base.host}${path}${base.search}`;
}

/**
 * Checks the options every signaling socket needs and returns them normalised:
 * `{url, sdkAppId, userId, userSig}`. Throws a TypeError for a bad one.
 */
export function identityOptions(o) {
  const sdkAppId = Number(o.sdkAppId);
  if (!Number.isInteger(sdkAppId) || sdkAppId <= 0) throw new TypeError('sdkAppId must be a positive integer');
  if (!o.userId || typeof o.userId !== 'string') throw new TypeError('userId must be a non-empty string');
  if (!o.userSig || typeof o.userSig !== 'string') throw new TypeError('userSig must be a non-empty string');
  return { url: signalingUrl(o.url), sdkAppId, userId: o.userId, userSig: o.userSig };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class SignalingSocket extends Emitter {
  /**
   * The subclass sets `this.options` (with `url`, `pingInterval`, `debug`) in its constructor.
   * @param {{request: string, logPrefix: string, logPings: boolean}} kind `request`: named by
   *   the errors of a failed connect; `logPrefix`: of console output; `logPings`: whether
   *   debug logging shows the pings sent.
   */
  constructor({ request, logPrefix, logPings }) {
    super();
    this._kind = { request, logPrefix, logPings };
    this._state = 'disconnected';
    this._ws = null;
    this._waiters = new Waiters();
    this._pingTimer = null;
    this._lastHeard = 0;
    this._leaving = false; // leaving on purpose, a closing notice or a fatal error seen
  }

  /** 'disconnected' | 'connecting' | 'connected' | 'reconnecting' */
  get connectionState() { return this._state; }

  // ---- the socket ---------------------------------------------------------------------------

  /** Opens a new socket; resolves once it is open, rejects if it closes first. */
  _connect() {
    return new Promise((resolve, reject) => {
      const { url } = this.options;
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        reject(new HearthError(0, `cannot open ${url}: ${e.message}`, this._kind.request));
        return;
      }
      this._ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this._lastHeard = Date.now();
        this._startKeepalive();
        resolve();
      };
      ws.onmessage = (ev) => this._receive(ws, ev);
      ws.onerror = () => { /* the close event follows and tells the rest */ };
      ws.onclose = (ev) => {
        if (!opened) reject(new HearthError(0, `cannot connect to ${url} (close code ${ev.code})`, this._kind.request));
        this._closed(ws, ev);
      };
    });
  }

  _isOpen() { return !!this._ws && this._ws.readyState === WebSocket.OPEN; }

  _send(msg) {
    if (!this._isOpen()) throw new HearthError(0, `not connected (${this._state})`, msg.type);
    if (this.options.debug && (this._kind.logPings || msg.type !== 'ping')) {
      console.debug(`${this._kind.logPrefix} →`, msg.type, msg);
    }
    this._ws.send(JSON.stringify(msg));
  }

  /** A frame from the socket: parsed and handed to the subclass's `_onMessage(msg)`. */
  _receive(ws, ev) {
    if (ws !== this._ws) return;
    this._lastHeard = Date.now();
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      this._emitError(new HearthError(0, 'the server sent malformed JSON'));
      return;
    }
    if (this.options.debug && msg.type !== 'pong') console.debug(`${this._kind.logPrefix} ←`, msg.type, msg);
    this._onMessage(msg);
  }

  /** The socket closed: its requests fail, then the subclass's `_onClose(ev)` decides. */
  _closed(ws, ev) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._stopKeepalive();
    this._waiters.rejectAll(new HearthError(0, `the connection closed (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`));
    this._onClose(ev);
  }

  /** Closes the socket (if any) on purpose; its requests fail with `reason`. */
  _closeSocket(reason) {
    this._stopKeepalive();
    this._waiters.rejectAll(new HearthError(0, reason));
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      try { ws.close(1000, 'bye'); } catch { /* already closed */ }
    }
  }

  // ---- keepalive ----------------------------------------------------------------------------

  _startKeepalive() {
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (!this._isOpen()) return;
      if (Date.now() - this._lastHeard > SILENCE_LIMIT_MS) {
        // Nothing heard, not even pongs: the path is dead even if the socket does not know yet.
        try { this._ws.close(4000, 'silent'); } catch { /* closing */ }
        return;
      }
      try { this._ping(); } catch { /* closing */ }
    }, this.options.pingInterval);
  }

  _stopKeepalive() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  /** Sends one keepalive ping. */
  _ping() {
    this._send({ type: 'ping' });
  }

  // ---- what the server says about the socket --------------------------------------------------

  /** A `notice`: after a closing one the socket is not reconnected. Emits `notice`. */
  _onNotice(msg) {
    if (CLOSING_NOTICES.has(msg.reason)) this._leaving = true;
    this.emit('notice', { reason: msg.reason, message: msg.message || '' });
  }

  /**
   * An `error`, as a HearthError: rejects the oldest request waiting under the name it gives
   * (unless `pending` is false), else is emitted as `error`. After a fatal one the socket is not
   * reconnected.
   */
  _onServerError(msg, pending = true) {
    const err = new HearthError(msg.code, msg.message, msg.request);
    if (FATAL_CODES.has(msg.code)) this._leaving = true;
    const taken = pending && this._waiters.settle((w) => w.request === msg.request, (w) => w.reject(err));
    if (!taken) this._emitError(err);
  }

  // ---- state --------------------------------------------------------------------------------

  /**
   * Runs `open` (connect and get in) from 'disconnected' via 'connecting'; on failure tears
   * down, goes back to 'disconnected' and rethrows. `request` names the method in the error
   * of a call while not disconnected.
   */
  async _start(request, open) {
    if (this._state !== 'disconnected') throw new HearthError(0, `${request}() while ${this._state}`, request);
    this._leaving = false;
    this._setState('connecting');
    try {
      return await open();
    } catch (e) {
      this._teardown();
      this._setState('disconnected');
      throw e;
    }
  }

  /**
   * Leaves on purpose: `farewell()` returns a promise to wait for (one that never rejects) or
   * nothing (then the rest happens at once); then tears down and goes 'disconnected'.
   */
  async _stop(farewell) {
    if (this._state === 'disconnected') return;
    this._leaving = true;
    const said = farewell();
    if (said) await said;
    this._teardown();
    this._setState('disconnected');
  }

  /**
   * After a dropped socket: 'reconnecting', then `attempt()` (connect and get back in, which
   * sets 'connected') with a growing pause between tries, for up to `windowMs`. A refusal by
   * the server (a HearthError with a code) gives up at once and is emitted as `error`. Giving
   * up tears down and goes 'disconnected'.
   */
  async _reconnect(windowMs, attempt) {
    this._setState('reconnecting');
    const deadline = Date.now() + windowMs;
    let delay = 250;
    while (Date.now() < deadline && this._state === 'reconnecting' && !this._leaving) {
      try {
        await attempt();
        return;
      } catch (e) {
        if (e instanceof HearthError && e.code !== 0) {
          // The server refused (the session ended, a UserSig expired meanwhile, ...): give up.
          this._leaving = true;
          this._emitError(e);
          break;
        }
        if (this._ws) { try { this._ws.close(); } catch { /* already */ } this._ws = null; }
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 4_000);
    }
    if (this._state === 'disconnected') return;
    this._teardown();
    this._setState('disconnected');
  }

  _setState(state) {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    this.emit('connection-state', state, previous);
  }

  _emitError(e) {
    const err = e instanceof HearthError ? e : new HearthError(0, e?.message || String(e));
    if (this.listenerCount('error') === 0) console.error(`${this._kind.logPrefix}:`, err);
    this.emit('error', err);
  }
}
