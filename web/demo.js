// Hearth demo page: join a room, see and hear everyone, share a screen; calls (demo-calls.js)
// enter their room through this page's room UI. Owns the room form, the tiles and the toggles.
// Uses only the browser SDK (/sdk/hearth.js); no build step.

import { HearthClient } from '/sdk/hearth.js';
import { setupCalls } from '/demo-calls.js';

const $ = (sel) => document.querySelector(sel);
const els = {
  form: $('#join-form'),
  sdkappid: $('#sdkappid'),
  room: $('#room'),
  userid: $('#userid'),
  usersig: $('#usersig'),
  role: $('#role'),
  simulcast: $('#simulcast'),
  devUsersig: $('#dev-usersig'),
  join: $('#join'),
  leave: $('#leave'),
  mic: $('#toggle-mic'),
  camera: $('#toggle-camera'),
  screen: $('#toggle-screen'),
  status: $('#status'),
  grid: $('#grid'),
  screens: $('#screens'),
};

let client = null;
let speaking = null;
let roomLabel = '';
let roomCallId = null; // the call whose room this is (null: joined with the form)
let roomTyped = ''; // the form's room before a call's room replaced it
let calls = null; // the calling controls (demo-calls.js)

// ---- status -------------------------------------------------------------------------------

function status(text, isError = false) {
  els.status.textContent = text;
  els.status.classList.toggle('error', isError);
}

function describe(e) {
  if (!e) return 'unknown error';
  return e.code ? `${e.message} (${e.code})` : e.message || String(e);
}

// ---- the form -----------------------------------------------------------------------------

/** `/#room=1234&userid=alice` prefills the form (a query string on `/` would go to the API). */
function prefillFromHash() {
  const q = new URLSearchParams(location.hash.replace(/^#/, ''));
  for (const name of ['sdkappid', 'room', 'userid', 'usersig', 'role']) {
    const v = q.get(name);
    if (v) els[name].value = v;
  }
}

/** In the zero-config dev setup the server tells its SdkAppId at GET /dev/usersig. */
async function prefillSdkAppId() {
  try {
    const r = await fetch('/dev/usersig', { headers: { accept: 'application/json' } });
    if (!r.ok) {
      if (r.status === 404) els.devUsersig.title = 'This server has no dev UserSig endpoint (it has a configured key)';
      return;
    }
    const body = await r.json();
    if (body.sdkappid && !els.sdkappid.value) els.sdkappid.value = String(body.sdkappid);
  } catch {
    // No dev endpoint here: the form is filled by hand.
  }
}

async function fetchDevUsersig() {
  const userid = els.userid.value.trim();
  if (!userid) { status('Type a user name first.', true); els.userid.focus(); return; }
  els.devUsersig.disabled = true;
  try {
    if (!els.sdkappid.value.trim()) await prefillSdkAppId();
    const sdkappid = els.sdkappid.value.trim();
    const q = new URLSearchParams({ userid });
    if (sdkappid) q.set('sdkappid', sdkappid);
    const r = await fetch(`/dev/usersig?${q}`, { headers: { accept: 'application/json' } });
    const text = await r.text();
    if (!r.ok) throw new Error(`GET /dev/usersig answered ${r.status}: ${text.slice(0, 200)}`);
    const body = JSON.parse(text);
    if (!body.usersig) throw new Error('GET /dev/usersig answered without a usersig');
    if (body.sdkappid) els.sdkappid.value = String(body.sdkappid);
    els.usersig.value = body.usersig;
    status(`Got a dev UserSig for ${userid}.`);
  } catch (e) {
    status(describe(e), true);
  } finally {
    lockForm();
  }
}

function roomOptions(room) {
  const n = Number(room);
  if (/^[0-9]+$/.test(room) && n >= 1 && n <= 4294967294) return { roomId: n };
  return { strRoomId: room };
}

/** The SdkAppId, user and UserSig of the form, or null (and the status says what is missing). */
function credentials() {
  const sdkAppId = Number(els.sdkappid.value.trim());
  const userId = els.userid.value.trim();
  const userSig = els.usersig.value.trim();
  if (!sdkAppId || !userId || !userSig) {
    status('Fill in SdkAppId, user and UserSig (or click Get dev UserSig).', true);
    return null;
  }
  return { sdkAppId, userId, userSig };
}

const IDENTITY = ['sdkappid', 'userid', 'usersig'];

/** In a room, the form is locked; logged in for calls, the identity fields are. */
function lockForm() {
  const joined = !!client;
  const loggedIn = !!calls?.loggedIn();
  for (const el of els.form.querySelectorAll('input, select')) el.disabled = joined || (loggedIn && IDENTITY.includes(el.id));
  els.devUsersig.disabled = joined || loggedIn;
  els.join.disabled = joined;
  els.leave.disabled = !joined;
}

function setJoined(joined) {
  lockForm();
  for (const b of [els.mic, els.camera, els.screen]) b.disabled = !joined;
  if (!joined) {
    for (const b of [els.mic, els.camera, els.screen]) b.setAttribute('aria-pressed', 'false');
    els.mic.textContent = 'Mute mic';
    els.camera.textContent = 'Stop camera';
    els.screen.textContent = 'Share screen';
  }
}

// ---- tiles --------------------------------------------------------------------------------

function cssEscape(s) {
  return window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/["\\]/g, '\\$&');
}

function tileOf(userId) {
  return els.grid.querySelector(`.tile[data-user="${cssEscape(userId)}"]`);
}

function ensureTile(userId, { local = false } = {}) {
  let tile = tileOf(userId);
  if (tile) return tile;
  tile = document.createElement('div');
  tile.className = 'tile no-video';
  tile.dataset.user = userId;
  if (local) { tile.classList.add('local'); tile.dataset.local = 'true'; }
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  if (local) video.muted = true; // never play our own microphone back
  const label = document.createElement('div');
  label.className = 'label';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = local ? `${userId} (you)` : userId;
  const badges = document.createElement('span');
  badges.className = 'badges';
  label.append(name, badges);
  tile.append(video, label);
  if (local) els.grid.prepend(tile); else els.grid.append(tile);
  return tile;
}

function attach(video, stream) {
  // Re-assigning makes the element pick up tracks added to the same stream later.
  video.srcObject = null;
  video.srcObject = stream;
  video.play().catch(() => { /* autoplay refused: the next user gesture plays it */ });
}

function refreshTile(userId, user) {
  const tile = tileOf(userId);
  if (!tile) return;
  const video = tile.querySelector('video');
  const hasVideo = !!video.srcObject && video.srcObject.getVideoTracks().some((t) => t.readyState === 'live');
  const videoOn = user ? user.video && !user.videoMuted : true;
  tile.classList.toggle('no-video', !(hasVideo && videoOn));
  const badges = [];
  if (user) {
    if (!user.audio) badges.push('no mic');
    else if (user.audioMuted) badges.push('mic muted');
    if (user.video && user.videoMuted) badges.push('camera off');
    if (user.sub) badges.push('sharing');
  }
  tile.querySelector('.badges').textContent = badges.join(' · ');
}

function screenTileOf(userId) {
  return els.screens.querySelector(`.screen-tile[data-user="${cssEscape(userId)}"]`);
}

function ensureScreenTile(userId, label) {
  let tile = screenTileOf(userId);
  if (tile) return tile;
  tile = document.createElement('div');
  tile.className = 'screen-tile';
  tile.dataset.user = userId;
  tile.dataset.stream = 'sub';
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true;
  const l = document.createElement('div');
  l.className = 'label';
  l.textContent = label;
  tile.append(video, l);
  els.screens.append(tile);
  return tile;
}

function removeTiles(userId) {
  tileOf(userId)?.remove();
  screenTileOf(userId)?.remove();
  speaking?.remove(userId);
}

function clearTiles() {
  els.grid.replaceChildren();
  els.screens.replaceChildren();
}

// ---- speaking indicator -----------------------------------------------------------------------

/** Measures each user's audio with an AnalyserNode and marks their tile while they speak. */
class SpeakingIndicator {
  constructor() {
    this.ctx = new AudioContext();
    this.meters = new Map(); // userId -> {source, analyser, buf, until}
    this.timer = setInterval(() => this.tick(), 100);
  }

  add(userId, track) {
    this.remove(userId);
    const source = this.ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.ctx.createAnalyser();
    // The window (8192 samples, 170 ms at 48 kHz) is longer than the 100 ms tick, so a short
    // sound between two ticks is still in the buffer at the next one.
    analyser.fftSize = 8192;
    source.connect(analyser);
    this.meters.set(userId, { source, analyser, buf: new Float32Array(analyser.fftSize), until: 0 });
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  remove(userId) {
    const m = this.meters.get(userId);
    if (!m) return;
    m.source.disconnect();
    this.meters.delete(userId);
    tileOf(userId)?.classList.remove('speaking');
  }

  tick() {
    const now = performance.now();
    for (const [userId, m] of this.meters) {
      m.analyser.getFloatTimeDomainData(m.buf);
      if (loudestBlockRms(m.buf) > 0.02) m.until = now + 400; // hold so the mark does not flicker
      const tile = tileOf(userId);
      if (!tile) continue;
      const on = now < m.until;
      tile.classList.toggle('speaking', on);
      tile.dataset.speaking = on ? 'true' : 'false';
    }
  }

  close() {
    clearInterval(this.timer);
    for (const id of [...this.meters.keys()]) this.remove(id);
    this.ctx.close().catch(() => {});
  }
}

/** The highest RMS of the 10 ms blocks in `buf` (a word or a beep, not diluted by the silence around it). */
function loudestBlockRms(buf, block = 480) {
  let loudest = 0;
  for (let start = 0; start + block <= buf.length; start += block) {
    let sum = 0;
    for (let i = start; i < start + block; i++) sum += buf[i] * buf[i];
    loudest = Math.max(loudest, Math.sqrt(sum / block));
  }
  return loudest;
}

// ---- joining and leaving ----------------------------------------------------------------------

async function join(ev) {
  ev?.preventDefault();
  if (client) return;
  const room = els.room.value.trim();
  const creds = credentials();
  if (!creds) return;
  if (!room) { status('Type a room (a number or a name).', true); return; }
  await enterRoom({ ...creds, role: els.role.value, ...roomOptions(room) }, { label: room });
}

/** Enters a room with this page's UI (tiles, speaking indicator, toggles) and publishes. */
async function enterRoom(options, { label, video = true, callId = null }) {
  let c;
  try {
    c = new HearthClient(options);
  } catch (e) {
    status(describe(e), true);
    return;
  }
  client = c;
  roomLabel = label;
  roomCallId = callId;
  speaking = new SpeakingIndicator(); // created on a click (Join, Call, Accept), so audio may start
  wire(c);
  setJoined(true);
  status('Connecting…');
  try {
    await c.enter();
  } catch (e) {
    if (client === c) cleanup();
    status(`Could not join: ${describe(e)}`, true);
    return;
  }
  ensureTile(options.userId, { local: true });
  status(`In room ${label} as ${options.userId} (${c.role}).`);
  if (c.role === 'anchor') await publishLocal(video);
  else updateControls();
}

/** Enters a call's room (leaving any other room first): what calls.enter() does. */
async function enterCallRoom(call, creds) {
  if (client && roomCallId === call.callId) return;
  if (client) await leaveRoom();
  const room = call.strRoomId !== undefined ? { strRoomId: call.strRoomId } : { roomId: call.roomId };
  roomTyped = els.room.value;
  els.room.value = String(call.strRoomId ?? call.roomId);
  const { sdkAppId, userId, userSig } = creds;
  await enterRoom({ sdkAppId, userId, userSig, role: 'anchor', privateMapKey: call.privateMapKey, ...room },
    { label: `${els.room.value} (the call's)`, video: call.media === 'video', callId: call.callId });
}

async function publishLocal(video = true) {
  const c = client;
  try {
    const stream = await c.publish({ audio: true, video, simulcast: els.simulcast.checked });
    if (client !== c) return;
    const tile = ensureTile(c.options.userId, { local: true });
    attach(tile.querySelector('video'), stream);
    const mic = stream.getAudioTracks()[0];
    if (mic) speaking.add(c.options.userId, mic);
    refreshTile(c.options.userId, null);
  } catch (e) {
    status(`Could not publish: ${describe(e)}`, true);
  }
  updateControls();
}

function wire(c) {
  c.on('user-entered', (u) => { ensureTile(u.userId); refreshTile(u.userId, u); });
  c.on('user-updated', (u) => {
    ensureTile(u.userId);
    refreshTile(u.userId, u);
    if (!u.sub) screenTileOf(u.userId)?.remove();
  });
  c.on('user-exited', ({ userId }) => removeTiles(userId));
  c.on('track', (t) => {
    if (t.stream === 'sub') {
      if (t.kind === 'video') attach(ensureScreenTile(t.userId, `${t.userId}'s screen`).querySelector('video'), t.mediaStream);
      return;
    }
    const tile = ensureTile(t.userId);
    attach(tile.querySelector('video'), t.mediaStream);
    if (t.kind === 'audio') speaking.add(t.userId, t.track);
    const user = c.users.find((u) => u.userId === t.userId);
    refreshTile(t.userId, user);
    t.track.addEventListener('unmute', () => refreshTile(t.userId, c.users.find((u) => u.userId === t.userId)));
  });
  c.on('track-removed', (t) => {
    if (t.stream === 'sub') {
      if (t.kind === 'video') screenTileOf(t.userId)?.remove();
      return;
    }
    if (t.kind === 'audio') speaking?.remove(t.userId);
    refreshTile(t.userId, c.users.find((u) => u.userId === t.userId));
  });
  c.on('notice', (n) => status(`Notice from the server: ${n.reason}${n.message ? ` (${n.message})` : ''}`, true));
  c.on('error', (e) => status(describe(e), true));
  c.on('screen-ended', () => { updateControls(); screenTileOf(c.options.userId)?.remove(); });
  c.on('connection-state', (state) => {
    document.body.dataset.state = state;
    if (state === 'reconnecting') status('Connection lost, reconnecting…', true);
    if (state === 'connected' && client === c && c.session) status(`In room ${roomLabel} as ${c.options.userId} (${c.role}).`);
    if (state === 'disconnected' && client === c) {
      cleanup();
      if (!els.status.classList.contains('error')) status('Disconnected.');
    }
  });
}

function cleanup() {
  client = null;
  if (roomCallId) els.room.value = roomTyped;
  roomCallId = null;
  speaking?.close();
  speaking = null;
  clearTiles();
  setJoined(false);
  document.body.dataset.state = 'disconnected';
}

async function leaveRoom() {
  const c = client;
  if (!c) return;
  els.leave.disabled = true;
  client = null; // the disconnected event of our own exit is no error
  await c.exit();
  cleanup();
  status('Left the room.');
}

/** Leave: in a call's room, hanging up (which leaves the room). */
async function leave() {
  if (client && roomCallId && calls.inCall()) await calls.hangup();
  else await leaveRoom();
}

// ---- the toggles ------------------------------------------------------------------------------

function updateControls() {
  const c = client;
  if (!c) return;
  const published = c.publishedSources;
  const micMuted = !!c.isMuted('mic');
  const camMuted = !!c.isMuted('camera');
  els.mic.disabled = !published.includes('mic');
  els.mic.textContent = micMuted ? 'Unmute mic' : 'Mute mic';
  els.mic.setAttribute('aria-pressed', String(micMuted));
  els.camera.disabled = !published.includes('camera');
  els.camera.textContent = camMuted ? 'Start camera' : 'Stop camera';
  els.camera.setAttribute('aria-pressed', String(camMuted));
  const sharing = published.includes('screen');
  els.screen.disabled = c.role !== 'anchor';
  els.screen.textContent = sharing ? 'Stop sharing' : 'Share screen';
  els.screen.setAttribute('aria-pressed', String(sharing));
  const local = tileOf(c.options.userId);
  if (local) {
    local.classList.toggle('no-video', !published.includes('camera') || camMuted);
    const badges = [];
    if (micMuted) badges.push('mic muted');
    if (sharing) badges.push('sharing');
    local.querySelector('.badges').textContent = badges.join(' · ');
  }
}

async function toggleMute(source) {
  const c = client;
  if (!c) return;
  try {
    await c.mute(source, !c.isMuted(source));
  } catch (e) {
    status(describe(e), true);
  }
  updateControls();
}

async function toggleScreen() {
  const c = client;
  if (!c) return;
  els.screen.disabled = true;
  try {
    if (c.publishedSources.includes('screen')) {
      await c.unpublishScreen();
      screenTileOf(c.options.userId)?.remove();
    } else {
      const stream = await c.publishScreen();
      if (client === c) attach(ensureScreenTile(c.options.userId, 'Your screen').querySelector('video'), stream);
    }
  } catch (e) {
    status(`Screen share: ${describe(e)}`, true);
  }
  updateControls();
}

// ---- start --------------------------------------------------------------------------------------

els.form.addEventListener('submit', join);
els.leave.addEventListener('click', leave);
els.devUsersig.addEventListener('click', fetchDevUsersig);
els.mic.addEventListener('click', () => toggleMute('mic'));
els.camera.addEventListener('click', () => toggleMute('camera'));
els.screen.addEventListener('click', toggleScreen);
window.addEventListener('pagehide', () => { client?.exit(); });

calls = setupCalls({
  credentials,
  describe,
  lockForm,
  enter: enterCallRoom,
  leave: async (callId) => { if (client && roomCallId === callId) await leaveRoom(); },
});
prefillFromHash();
prefillSdkAppId();
setJoined(false);
// For tests and the console: the current client.
Object.defineProperty(window, 'hearthClient', { get: () => client });
