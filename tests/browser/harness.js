// Test harness of the browser tests: a real `hearth serve` on free ports, Debian's Chromium driven
// by playwright-core, participants (pages using the SDK) and diagnostics on failure.
//
// Nothing is built here: the server is target/debug/hearth (or $HEARTH_BIN), the browser
// /usr/bin/chromium (or $CHROMIUM). run.sh builds and installs both.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import TLSSigAPIv2 from 'tls-sig-api-v2';
import tencentcloud from 'tencentcloud-sdk-nodejs-intl-en';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const HEARTH_BIN = process.env.HEARTH_BIN || path.join(REPO, 'target', 'debug', 'hearth');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.HEARTH_BROWSER_ARTIFACTS || path.join(HERE, 'artifacts');
export const SDK_APP_ID = 1400000001;

const STARTUP_TIMEOUT_MS = 20_000;
const SHUTDOWN_TIMEOUT_MS = 15_000;
const MEDIA_WORKERS = 2;

/** The flags of /work/.library/env/machines/rust.md "Known to work", plus fake media. */
export const CHROMIUM_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--auto-select-desktop-capture-source=Entire',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function log(...args) {
  if (process.env.HEARTH_BROWSER_VERBOSE) console.error('[harness]', ...args);
}

// ---- ports --------------------------------------------------------------------------------------

export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const claimedUdp = new Set();

function bindUdp(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => { s.close(); resolve(null); });
    s.bind(port, '127.0.0.1', () => resolve(s));
  });
}

/** `count` consecutive UDP ports on 127.0.0.1, free right now, not handed out before in this run. */
export async function freeUdpRange(count) {
  for (let i = 0; i < 500; i++) {
    const first = 40000 + crypto.randomInt(20000 - count);
    const ports = Array.from({ length: count }, (_, k) => first + k);
    if (ports.some((p) => claimedUdp.has(p))) continue;
    const socks = [];
    let ok = true;
    for (const p of ports) {
      const s = await bindUdp(p);
      if (!s) { ok = false; break; }
      socks.push(s);
    }
    await Promise.all(socks.map((s) => new Promise((r) => s.close(r))));
    if (!ok) continue;
    ports.forEach((p) => claimedUdp.add(p));
    return [first, first + count - 1];
  }
  throw new Error(`no ${count} consecutive free UDP ports in 40000-60000`);
}

// ---- the server ---------------------------------------------------------------------------------

/** A running `hearth serve`. */
export class Hearth {
  constructor({ name, dir, proc, httpPort, mediaPorts, stderrPath, appKey, zeroConfig, secretId, secretKey }) {
    Object.assign(this, { name, dir, proc, httpPort, mediaPorts, stderrPath, appKey, zeroConfig, secretId, secretKey });
    this.exitCode = null;
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
      this.exitCode = code ?? signal;
      resolve(this.exitCode);
    }));
  }

  get url() { return `http://127.0.0.1:${this.httpPort}`; }
  get alive() { return this.exitCode === null; }

  stderr() {
    try { return fs.readFileSync(this.stderrPath, 'utf8'); } catch { return ''; }
  }

  stderrTail(lines = 80) {
    return this.stderr().split('\n').slice(-lines - 1).join('\n');
  }

  /** A counter or gauge of the server's /metrics (without labels); 0 when absent. */
  async metric(name) {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
    return m ? Number(m[1]) : 0;
  }

  /** A UserSig made with the official npm library and the app key of the config file. */
  userSig(userId, expire = 86400) {
    if (!this.appKey) throw new Error('a zero-config server: its key is in its data dir, use /dev/usersig');
    return new TLSSigAPIv2.Api(SDK_APP_ID, this.appKey).genUserSig(userId, expire);
  }

  /** The SDK's options for `userId` in `room` of the test app (with `extra` on top). */
  clientOptions(userId, room, extra = {}) {
    return { sdkAppId: SDK_APP_ID, userId, userSig: this.userSig(userId), roomId: room, ...extra };
  }

  /** Stops the server (SIGTERM) and asserts it exited 0 without a panic. */
  async stopChecked() {
    const code = await this.stop();
    if (code !== 0) throw new Error(`hearth exited ${code} after SIGTERM:\n${this.stderrTail()}`);
    if (this.stderr().includes('panicked')) throw new Error(`hearth panicked:\n${this.stderrTail()}`);
  }

  /**
   * Calls a TRTC API action with the official Node.js SDK (tencentcloud-sdk-nodejs-intl-en)
   * signed with `signMethod` (TC3-HMAC-SHA256 by default); resolves with the response object.
   */
  async api(action, params, { signMethod = 'TC3-HMAC-SHA256' } = {}) {
    const { Credential, ClientProfile, HttpProfile } = tencentcloud.common;
    const http = new HttpProfile();
    http.endpoint = `127.0.0.1:${this.httpPort}`;
    http.protocol = 'http://';
    const profile = new ClientProfile();
    profile.httpProfile = http;
    profile.signMethod = signMethod;
    const trtc = tencentcloud.trtc.v20190722;
    const client = new trtc.Client(new Credential(this.secretId, this.secretKey), 'ap-guangzhou', profile);
    const req = new trtc.Models[`${action}Request`]();
    req.from_json_string(JSON.stringify(params));
    return new Promise((resolve, reject) => client[action](req, (err, resp) => {
      if (err) reject(Object.assign(new Error(`${action}: ${err.code} ${err.message}`), { code: err.code }));
      else resolve(JSON.parse(resp.to_json_string()));
    }));
  }

  /**
   * Calls an IM-style REST API (`POST /v4/<service>/<command>?sdkappid&identifier&usersig&random
   * &contenttype=json`) as `identifier` (default the config's app admin); resolves the JSON
   * envelope ({ErrorCode, ErrorInfo, ActionStatus, ...}).
   */
  async rest(command, body, { identifier = 'administrator' } = {}) {
    const q = new URLSearchParams({
      sdkappid: String(SDK_APP_ID),
      identifier,
      usersig: this.userSig(identifier),
      random: String(crypto.randomInt(1, 2 ** 31)),
      contenttype: 'json',
    });
    const r = await fetch(`${this.url}/v4/${command}?${q}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`POST /v4/${command} answered ${r.status} with no JSON: ${text.slice(0, 300)}`);
    }
  }

  /** SIGTERM; resolves with the exit code. Throws if it does not exit in time. */
  async stop() {
    if (!this.alive) return this.exitCode;
    this.proc.kill('SIGTERM');
    const timeout = sleep(SHUTDOWN_TIMEOUT_MS).then(() => 'timeout');
    const r = await Promise.race([this.exited, timeout]);
    if (r === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.exited;
      throw new Error(`hearth (${this.name}) did not exit within ${SHUTDOWN_TIMEOUT_MS} ms of SIGTERM:\n${this.stderrTail()}`);
    }
    return r;
  }
}

function hearthEnv(extra, logFilter) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEARTH_')) env[k] = v;
  env.HEARTH_LOG = process.env.HEARTH_BROWSER_SERVER_LOG || logFilter;
  // The demo page and the SDK are served from web/ of this checkout.
  env.HEARTH_WEB_DIR = path.join(REPO, 'web');
  // Transcription's speech engine: the e2e venv has pocketsphinx (scripts/test.sh makes it).
  env.HEARTH_AI_STT_PYTHON = path.join(REPO, '.venv', 'bin', 'python');
  return { ...env, ...extra };
}

async function waitHealthy(h) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!h.alive) return false;
    try {
      const r = await fetch(`${h.url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (r.ok && (await r.json()).status === 'ok') return true;
    } catch { /* not yet */ }
    await sleep(50);
  }
  h.proc.kill('SIGKILL');
  throw new Error(`hearth (${h.name}) not healthy within ${STARTUP_TIMEOUT_MS} ms:\n${h.stderrTail()}`);
}

/**
 * Starts `hearth serve`. Default: a config file with HTTP on a free port, `[media]` on a free UDP
 * range and one app (SDK_APP_ID) with a random key. `zeroConfig: true`: no config file, a fresh
 * HEARTH_DATA_DIR (the server generates its app and offers /dev/usersig); ports by environment.
 * `env`: more HEARTH_* settings; `httpIp`, `mediaIp`: where the API and the media bind (tests
 * reach the API on loopback either way).
 */
export async function startHearth({ name = 'main', zeroConfig = false, logFilter = 'info', env: extraEnv = {}, httpIp = '127.0.0.1', mediaIp = '127.0.0.1' } = {}) {
  if (!fs.existsSync(HEARTH_BIN)) {
    throw new Error(`${HEARTH_BIN} does not exist: run \`cargo build -p hearth\` first (or set HEARTH_BIN)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hearth-browser-${name}-`));
  for (let attempt = 0; attempt < 3; attempt++) {
    const httpPort = await freeTcpPort();
    const mediaPorts = await freeUdpRange(MEDIA_WORKERS);
    const stderrPath = path.join(dir, `stderr-${attempt}.log`);
    let args;
    let env;
    let appKey = null;
    let secretId = null;
    let secretKey = null;
    if (zeroConfig) {
      args = ['serve'];
      env = hearthEnv({
        HEARTH_DATA_DIR: path.join(dir, 'data'),
        HEARTH_HTTP: `127.0.0.1:${httpPort}`,
        HEARTH_MEDIA_IP: '127.0.0.1',
        HEARTH_MEDIA_PORTS: `${mediaPorts[0]}-${mediaPorts[1]}`,
        HEARTH_MEDIA_WORKERS: String(MEDIA_WORKERS),
        HEARTH_RATE_LIMITS: 'false',
        ...extraEnv,
      }, logFilter);
    } else {
      appKey = crypto.randomBytes(32).toString('hex');
      secretId = `AKIDbrowser${crypto.randomBytes(12).toString('hex')}`;
      secretKey = crypto.randomBytes(16).toString('hex');
      const config = path.join(dir, 'hearth.toml');
      fs.writeFileSync(config, [
        '[server]',
        `http = "${httpIp}:${httpPort}"`,
        `data_dir = "${path.join(dir, 'data')}"`,
        'rate_limits = false',
        '',
        '[media]',
        `ip = "${mediaIp}"`,
        `ports = "${mediaPorts[0]}-${mediaPorts[1]}"`,
        `workers = ${MEDIA_WORKERS}`,
        '',
        '[[apps]]',
        `sdk_app_id = ${SDK_APP_ID}`,
        `secret_key = "${appKey}"`,
        'admins = ["administrator"]',
        '',
        '[[credentials]]',
        `secret_id = "${secretId}"`,
        `secret_key = "${secretKey}"`,
        `apps = [${SDK_APP_ID}]`,
        '',
      ].join('\n'));
      args = ['serve', '--config', config];
      env = hearthEnv(extraEnv, logFilter);
    }
    const fd = fs.openSync(stderrPath, 'w');
    const proc = spawn(HEARTH_BIN, args, { cwd: REPO, env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const h = new Hearth({ name, dir, proc, httpPort, mediaPorts, stderrPath, appKey, zeroConfig, secretId, secretKey });
    if (await waitHealthy(h)) {
      log(`hearth (${name}) at ${h.url}, media ${mediaPorts.join('-')}, dir ${dir}`);
      return h;
    }
    const out = h.stderr();
    if (attempt < 2 && /in use|os error 98/.test(out)) continue;
    throw new Error(`hearth (${name}) exited with ${h.exitCode} at start:\n${out}`);
  }
  throw new Error('unreachable');
}

// ---- the browser --------------------------------------------------------------------------------

/** Debian's Chromium, headless, with a fresh profile (playwright makes a new temp user-data-dir). */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} does not exist: apt-get install -y chromium (run.sh does)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

// ---- scenarios: pages and diagnostics -------------------------------------------------------------

function short(v) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 400 ? `${s.slice(0, 400)}… (${s.length} chars)` : s;
}

/** Replaces SDP in a signaling frame by its length and m-lines, for readable logs. */
function summarizeFrame(payload) {
  try {
    const m = JSON.parse(payload);
    if (typeof m.sdp === 'string') {
      const mlines = m.sdp.split(/\r?\n/).filter((l) => l.startsWith('m=') || l.startsWith('a=mid') || /^a=(send|recv|inactive)/.test(l) || l.startsWith('a=simulcast') || l.startsWith('a=rid'));
      m.sdp = `<${m.sdp.length} bytes: ${mlines.join(' | ')}>`;
    }
    if (typeof m.usersig === 'string') m.usersig = '<usersig>';
    return JSON.stringify(m);
  } catch {
    return short(String(payload));
  }
}

/**
 * What one test creates: pages (each in its own browser context) and their logs. On failure
 * `dump()` prints every page's console, signaling frames, a screenshot path and the server's
 * stderr tail.
 */
export class Scenario {
  constructor(name, { browser, server }) {
    this.name = name;
    this.browser = browser;
    this.server = server;
    this.pages = [];
    this.slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase().slice(0, 60);
  }

  /** A new page with its console, errors and WebSocket frames recorded. */
  async page(label) {
    const context = await this.browser.newContext({ viewport: { width: 1100, height: 760 } });
    await context.grantPermissions(['camera', 'microphone'], { origin: this.server.url }).catch(() => {});
    const page = await context.newPage();
    const logs = [];
    const stamp = () => new Date().toISOString().slice(11, 23);
    page.on('console', (m) => logs.push(`${stamp()} console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`${stamp()} pageerror: ${e.stack || e.message}`));
    page.on('requestfailed', (r) => logs.push(`${stamp()} requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    page.on('response', (r) => { if (r.status() >= 400) logs.push(`${stamp()} http ${r.status()}: ${r.request().method()} ${r.url()}`); });
    page.on('websocket', (ws) => {
      logs.push(`${stamp()} websocket open ${ws.url()}`);
      ws.on('framesent', (f) => { if (!/"type":"ping"/.test(f.payload)) logs.push(`${stamp()} ws → ${summarizeFrame(f.payload)}`); });
      ws.on('framereceived', (f) => { if (!/"type":"pong"/.test(f.payload)) logs.push(`${stamp()} ws ← ${summarizeFrame(f.payload)}`); });
      ws.on('socketerror', (e) => logs.push(`${stamp()} websocket error ${e}`));
      ws.on('close', () => logs.push(`${stamp()} websocket closed`));
    });
    const entry = { label, page, context, logs };
    this.pages.push(entry);
    return entry;
  }

  /** A page using the SDK directly (see Participant). */
  async participant(label, options) {
    const entry = await this.page(label);
    const p = new Participant(this, entry, options);
    await p.setup();
    return p;
  }

  async dump(error) {
    const out = [];
    out.push(`\n======== diagnostics: ${this.name} ========`);
    out.push(`error: ${error?.stack || error}`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const { label, page, logs } of this.pages) {
      out.push(`\n---- page ${label}: console, errors and signaling (last 150 lines) ----`);
      out.push(...logs.slice(-150));
      try {
        const state = await page.evaluate(() => (window.__hearthState ? window.__hearthState() : null));
        if (state) out.push(`state: ${short(JSON.stringify(state)).replace(/… \(\d+ chars\)$/, '…')}`);
      } catch { /* page gone */ }
      try {
        const file = path.join(ARTIFACTS, `${this.slug}-${label}.png`);
        await page.screenshot({ path: file, timeout: 5000 });
        out.push(`screenshot: ${file}`);
      } catch { /* page gone */ }
    }
    if (this.server) {
      out.push(`\n---- hearth (${this.server.name}) stderr, last 80 lines (${this.server.stderrPath}) ----`);
      out.push(this.server.stderrTail(80));
    }
    out.push(`======== end of diagnostics: ${this.name} ========\n`);
    const text = out.join('\n');
    fs.writeFileSync(path.join(ARTIFACTS, `${this.slug}.log`), text);
    process.stderr.write(`${text}\n`);
  }

  async close() {
    for (const { page, context } of this.pages) {
      try { await page.evaluate(() => window.client?.exit?.()); } catch { /* gone */ }
      await context.close().catch(() => {});
    }
    this.pages = [];
  }
}

/**
 * Registers a test that gets a Scenario and dumps diagnostics when it fails.
 * `env()` returns {browser, server} at run time (they are made in before()).
 */
export function scenarioTest(name, env, fn, { timeout = 120_000 } = {}) {
  return test(name, { timeout }, async (t) => {
    const sc = new Scenario(name, env());
    try {
      await fn(sc, t);
    } catch (e) {
      await sc.dump(e);
      throw e;
    } finally {
      await sc.close();
    }
  });
}

// ---- a participant: a page using the SDK --------------------------------------------------------

/** Runs in the page: imports the SDK, makes `window.client`, records events, plays what arrives. */
function pageSetup(options) {
  return import('/sdk/hearth.js').then(({ HearthClient }) => {
    const c = new HearthClient(options);
    window.client = c;
    window.events = [];
    const names = ['user-entered', 'user-exited', 'user-updated', 'track', 'track-removed', 'notice',
      'error', 'connection-state', 'peer-state', 'role', 'custom-message'];
    for (const ev of names) {
      c.on(ev, (p, q) => {
        let rec;
        if (ev === 'track' || ev === 'track-removed') rec = { userId: p.userId, stream: p.stream, kind: p.kind, mid: p.mid };
        else if (ev === 'error') rec = { code: p.code, message: p.message, request: p.request };
        else if (ev === 'connection-state') rec = { state: p, previous: q };
        else rec = p;
        window.events.push({ ev, at: Date.now(), ...(typeof rec === 'object' ? rec : { value: rec }) });
        console.log(`hearth event ${ev} ${JSON.stringify(rec)}`);
      });
    }
    // Play every received track, as an app would (and so that the browser renders it).
    const box = document.createElement('div');
    document.body.append(box);
    c.on('track', (t) => {
      const el = document.createElement(t.kind === 'video' ? 'video' : 'audio');
      el.autoplay = true;
      el.muted = true;
      el.playsInline = true;
      el.dataset.user = t.userId;
      el.dataset.stream = t.stream;
      el.dataset.kind = t.kind;
      el.dataset.mid = t.mid;
      el.srcObject = new MediaStream([t.track]);
      box.append(el);
      el.play().catch(() => {});
    });
    c.on('track-removed', (t) => box.querySelector(`[data-mid="${t.mid}"]`)?.remove());
    window.__hearthState = () => ({
      state: c.connectionState,
      role: c.role,
      session: c.session,
      users: c.users,
      published: c.publishedSources,
      remote: c.remoteTracks.map((r) => ({ mid: r.mid, userId: r.userId, stream: r.stream, kind: r.kind, state: r.track.readyState, muted: r.track.muted })),
      publishPc: c.publishConnection && { conn: c.publishConnection.connectionState, ice: c.publishConnection.iceConnectionState, sig: c.publishConnection.signalingState },
      subscribePc: c.subscribeConnection && { conn: c.subscribeConnection.connectionState, ice: c.subscribeConnection.iceConnectionState, sig: c.subscribeConnection.signalingState },
    });
    return true;
  });
}

/** Runs `tc` (traffic control; the suite runs as root). */
export function tc(...args) {
  execFileSync('tc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Takes any shaping off loopback. */
export function unshapeLoopback() {
  try { tc('qdisc', 'del', 'dev', 'lo', 'root'); } catch { /* none */ }
}

/**
 * UDP datagrams to `port` on loopback go through a `kbit` link with a 50-packet queue; everything
 * else passes unshaped. An htb root without a default class sends what no filter picks through
 * its direct queue, at no rate limit (this kernel has no prio qdisc). A default class at
 * 10 Gbit/s throttled the rest of loopback too (its overlimits grew): that stalled the
 * publisher's own estimate and the other subscribers along with the shaped one.
 */
export function shapeLoopbackPort(port, kbit) {
  unshapeLoopback();
  tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'direct_qlen', '10000');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', `${kbit}kbit`, 'ceil', `${kbit}kbit`);
  tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:20', 'handle', '20:', 'pfifo', 'limit', '50');
  tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
    'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', 'dport', String(port), '0xffff', 'flowid', '1:20');
}

const LOSS_CHAIN = 'HEARTH_LOSS';
const iptables = (...args) => execFileSync('iptables', ['-w', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Takes the loss off loopback (any port). */
export function undropLoopback() {
  let rules = '';
  try { rules = iptables('-S', 'OUTPUT'); } catch { return; }
  for (const rule of rules.split('\n').filter((r) => r.includes(`-j ${LOSS_CHAIN}`))) {
    iptables('-D', ...rule.replace(/^-A /, '').split(' '));
  }
  try { iptables('-F', LOSS_CHAIN); iptables('-X', LOSS_CHAIN); } catch { /* none */ }
}

/**
 * UDP datagrams to `port` on loopback are dropped at random with `probability` (iptables'
 * statistic match: this kernel has no netem), as a lossy downlink would lose them.
 */
export function dropOnLoopbackPort(port, probability) {
  undropLoopback();
  iptables('-N', LOSS_CHAIN);
  iptables('-A', LOSS_CHAIN, '-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP');
  iptables('-I', 'OUTPUT', '-o', 'lo', '-p', 'udp', '--dport', String(port), '-j', LOSS_CHAIN);
}

/** Datagrams to the lossy port so far, and how many of them were dropped. */
export function lossCounters() {
  const count = (chain, target) => {
    const line = iptables('-L', chain, '-v', '-x', '-n').split('\n').find((l) => l.trim().split(/\s+/)[2] === target);
    if (!line) throw new Error(`no ${target} rule in ${chain}`);
    return Number(line.trim().split(/\s+/)[0]);
  };
  return { offered: count('OUTPUT', LOSS_CHAIN), dropped: count(LOSS_CHAIN, 'DROP') };
}

export class Participant {
  constructor(scenario, entry, options) {
    this.scenario = scenario;
    this.label = entry.label;
    this.page = entry.page;
    this.options = options;
    /** The page global whose methods call() runs: the HearthClient (a subclass may change it). */
    this.target = 'client';
  }

  async setup() {
    // Any page of the server's origin will do: the SDK is imported from /sdk/hearth.js.
    await this.page.goto(`${this.scenario.server.url}/healthz`);
    await this.page.evaluate(pageSetup, this.options);
  }

  /** Calls window[target][method](...args) in the page; resolves its result or throws its error. */
  async call(method, ...args) {
    const r = await this.tryCall(method, ...args);
    if (!r.ok) {
      const e = new Error(`${this.label}: ${method}() failed: ${r.error.name} ${r.error.code ?? ''} ${r.error.message}`);
      e.code = r.error.code;
      throw e;
    }
    return r.value;
  }

  /** Calls window[target][method](...args); resolves {ok, value} or {ok: false, error: {name, code, message}}. */
  tryCall(method, ...args) {
    return this.page.evaluate(async ([t, m, a]) => {
      try {
        const v = await window[t][m](...a);
        const plain = v instanceof MediaStream ? { mediaStream: v.id, tracks: v.getTracks().map((t) => t.kind) } : v;
        return { ok: true, value: plain === undefined ? null : JSON.parse(JSON.stringify(plain)) };
      } catch (e) {
        return { ok: false, error: { name: e.name, code: e.code, message: e.message, request: e.request } };
      }
    }, [this.target, method, args]);
  }

  state() { return this.page.evaluate(() => window.__hearthState()); }
  events(name) { return this.page.evaluate((n) => window.events.filter((e) => !n || e.ev === n), name); }

  stats(userId, stream = 'main', kind = 'video') {
    return this.page.evaluate((w) => window.client.getRemoteTrackStats(w).then((s) => s && JSON.parse(JSON.stringify(s))), { userId, stream, kind });
  }

  /** The local UDP port of this participant's receiving connection (its selected candidate pair). */
  receivingPort() {
    return this.page.evaluate(async () => {
      const stats = await window.client.subscribeConnection.getStats();
      let port = null;
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = stats.get(s.selectedCandidatePairId);
          port = stats.get(pair.localCandidateId).port;
        }
      });
      return port;
    });
  }

  /** The publish connection's video layers: [{rid, frameWidth, framesSent, targetBitrate, ...}]
   *  and the uplink estimate (availableOutgoingBitrate). */
  outboundVideo() {
    return this.page.evaluate(async () => {
      const pc = window.client.publishConnection;
      if (!pc) return null;
      const layers = [];
      let uplink = null;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          layers.push({ rid: s.rid, frameWidth: s.frameWidth, framesSent: s.framesSent, bytesSent: s.bytesSent, retransmitted: s.retransmittedPacketsSent, keyFrames: s.keyFramesEncoded, targetBitrate: s.targetBitrate, limitation: s.qualityLimitationReason });
        }
        if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) uplink = s.availableOutgoingBitrate;
      });
      layers.sort((a, b) => String(a.rid).localeCompare(String(b.rid)));
      return { uplink, layers };
    });
  }

  /** Polls getRemoteTrackStats until `pred(stats)` holds; returns those stats. */
  async waitStats(userId, stream, kind, pred, { timeout = 30_000, what = '' } = {}) {
    const deadline = Date.now() + timeout;
    let last = null;
    while (Date.now() < deadline) {
      last = await this.stats(userId, stream, kind);
      if (last && pred(last)) return last;
      await sleep(250);
    }
    const pick = last && Object.fromEntries(Object.entries(last).filter(([k]) => /^(framesDecoded|framesReceived|frameWidth|frameHeight|packetsReceived|bytesReceived|totalSamplesReceived|packetsLost|nackCount|pliCount|keyFramesDecoded|decoderImplementation|codecId|mid)$/.test(k)));
    throw new Error(`${this.label}: ${what || `${userId}/${stream}/${kind}`} not received within ${timeout} ms; last inbound-rtp: ${JSON.stringify(pick)}`);
  }

  /** Waits until a recorded event matches `pred`; returns it. */
  async waitEvent(name, pred = () => true, { timeout = 20_000 } = {}) {
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      const found = (await this.events(name)).find(pred);
      if (found) return found;
      await sleep(100);
    }
    throw new Error(`${this.label}: no matching '${name}' event within ${timeout} ms; events: ${short(await this.events())}`);
  }
}

/** A participant 'pub' that publishes a 1280x720 camera at 15 fps in three simulcast layers
 *  (q/h/f), once every layer is being sent. */
export async function simulcastPublisher(sc, options) {
  const pub = await sc.participant('pub', options);
  await pub.call('enter');
  await pub.call('publish', { audio: false, video: { width: 1280, height: 720, frameRate: 15 }, simulcast: true });
  let sent = null;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    sent = await pub.outboundVideo();
    if (sent?.layers.length === 3 && sent.layers.every((l) => l.framesSent > 0)) return pub;
    await sleep(500);
  }
  throw new Error(`the publisher does not send three simulcast layers within 30 s: ${JSON.stringify(sent)}`);
}

/** A room number that no other test of this run uses. */
let roomCounter = 1000 + crypto.randomInt(100000);
export function freshRoom() { return roomCounter++; }
