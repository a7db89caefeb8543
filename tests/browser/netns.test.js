// Real networks, in Chromium: a second Chromium runs in a network namespace whose UDP to the
// server is dropped (iptables inside the namespace only). With the SDK's defaults it connects
// over ICE-TCP (the server's passive TCP candidates); told to use relays only, it connects
// through Debian's coturn over TCP with the credentials the server handed out in `entered` (the
// test gives the SDK no ICE servers). Each time, media goes both ways with a Chromium on the
// host, and the selected candidate pair says which path it took. Needs root, `ip`, `iptables`
// and `turnserver` (scripts/test.sh installs them).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, freeTcpPort, freshRoom, launchBrowser, scenarioTest, sleep, startHearth, SDK_APP_ID } from './harness.js';

const NS = `hearth-br-${crypto.randomBytes(2).toString('hex')}`;
const HOST_IP = '10.92.0.1';
const NS_IP = '10.92.0.2';
const HOST_IF = 'hv92br';
const NS_IF = 'nv92br';
const SECRET = crypto.randomBytes(16).toString('hex');

let server; // hands out TURN credentials
let plain; // no TURN: only ICE-TCP can carry a client without UDP
let nearBrowser;
let farBrowser;
let coturn;
let dir;

const sh = (...argv) => execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
const inNs = (...argv) => sh('ip', 'netns', 'exec', NS, ...argv);

function namespaceUp() {
  sh('ip', 'netns', 'add', NS);
  sh('ip', 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
  sh('ip', 'link', 'set', NS_IF, 'netns', NS);
  sh('ip', 'addr', 'add', `${HOST_IP}/24`, 'dev', HOST_IF);
  sh('ip', 'link', 'set', HOST_IF, 'up');
  inNs('ip', 'addr', 'add', `${NS_IP}/24`, 'dev', NS_IF);
  inNs('ip', 'link', 'set', NS_IF, 'up');
  inNs('ip', 'link', 'set', 'lo', 'up');
  // Only UDP is dropped: HTTP, ICE-TCP and TURN over TCP still reach the host.
  inNs('iptables', '-A', 'OUTPUT', '-p', 'udp', '-j', 'DROP');
  inNs('iptables', '-A', 'INPUT', '-p', 'udp', '-j', 'DROP');
}

function namespaceDown() {
  try { sh('ip', 'netns', 'del', NS); } catch { /* gone */ }
  try { sh('ip', 'link', 'del', HOST_IF); } catch { /* gone */ }
}

async function startCoturn(port) {
  const log = fs.openSync(path.join(dir, 'coturn.log'), 'w');
  const proc = spawn('turnserver', [
    '-n', '--log-file', 'stdout', '--simple-log', '--verbose',
    '--listening-ip', HOST_IP, '--listening-port', String(port), '--relay-ip', HOST_IP,
    '--min-port', '46000', '--max-port', '46999',
    '--use-auth-secret', '--static-auth-secret', SECRET, '--realm', 'hearth.test',
    '--no-tls', '--no-dtls', '--no-cli', '--fingerprint',
    '--userdb', path.join(dir, 'turndb'), '--pidfile', path.join(dir, 'turn.pid'),
  ], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, HOST_IP, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return proc;
    await sleep(100);
  }
  throw new Error(`coturn did not start:\n${fs.readFileSync(path.join(dir, 'coturn.log'), 'utf8')}`);
}

/** Chromium in the namespace: playwright starts it through `ip netns exec` (the pipes survive).
 *  The server's origin there is not localhost, so it is declared secure (camera access). */
function launchInNamespace() {
  const wrapper = path.join(dir, 'chromium-in-netns.sh');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${NS} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  const origins = [server, plain].map((h) => `http://${HOST_IP}:${h.httpPort}`).join(',');
  return chromium.launch({
    executablePath: wrapper,
    headless: true,
    args: [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${origins}`],
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-netns-'));
  namespaceUp();
  const turnPort = await freeTcpPort();
  coturn = await startCoturn(turnPort);
  server = await startHearth({
    name: 'netns',
    httpIp: '0.0.0.0',
    mediaIp: HOST_IP,
    env: {
      HEARTH_TURN_URLS: `turn:${HOST_IP}:${turnPort}?transport=udp,turn:${HOST_IP}:${turnPort}?transport=tcp`,
      HEARTH_TURN_SECRET: SECRET,
    },
  });
  plain = await startHearth({ name: 'netns-plain', httpIp: '0.0.0.0', mediaIp: HOST_IP });
  nearBrowser = await launchBrowser();
  farBrowser = await launchInNamespace();
});

after(async () => {
  await farBrowser?.close();
  await nearBrowser?.close();
  for (const h of [server, plain]) await h?.stopChecked();
  coturn?.kill('SIGTERM');
  namespaceDown();
});

function options(h, userId, room, extra = {}) {
  return { sdkAppId: SDK_APP_ID, userId, userSig: h.userSig(userId), roomId: room, ...extra };
}

/** A server as the namespace sees it: the host's end of the veth pair. */
function farView(h) {
  return Object.create(h, { url: { value: `http://${HOST_IP}:${h.httpPort}` } });
}

/** The selected pair of a connection: its local candidate's {candidateType, protocol,
 *  relayProtocol} and the remote's {remoteType, remoteProtocol}. */
function selectedPair(p, which) {
  return p.page.evaluate(async (w) => {
    const pc = w === 'publish' ? window.client.publishConnection : window.client.subscribeConnection;
    const stats = await pc.getStats();
    let found = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        const c = stats.get(pair.localCandidateId);
        const r = stats.get(pair.remoteCandidateId);
        found = {
          candidateType: c.candidateType, protocol: c.protocol, relayProtocol: c.relayProtocol ?? null,
          remoteType: r.candidateType, remoteProtocol: r.protocol,
        };
      }
    });
    return found;
  }, which);
}

const decoding = (n) => (s) => s.framesDecoded >= n;

/** A near (host) and a far (namespace) participant in one room, media both ways. */
async function bothWays(sc, farOptions) {
  const room = freshRoom();
  const h = sc.server;
  const near = await sc.participant('near', options(h, 'near', room));
  await near.call('enter');
  await near.call('publish', { audio: true, video: { width: 320, height: 240, frameRate: 15 } });
  const farScenario = Object.create(sc, { browser: { value: farBrowser }, server: { value: farView(h) } });
  const far = await farScenario.participant('far', options(h, 'far', room, farOptions));
  await far.call('enter');
  await far.call('publish', { audio: true, video: { width: 320, height: 240, frameRate: 15 } });
  await far.waitStats('near', 'main', 'video', decoding(30), { what: "near's video at far" });
  await far.waitStats('near', 'main', 'audio', (s) => s.totalSamplesReceived > 48_000, { what: "near's audio at far" });
  await near.waitStats('far', 'main', 'video', decoding(30), { what: "far's video at near" });
  await near.waitStats('far', 'main', 'audio', (s) => s.totalSamplesReceived > 48_000, { what: "far's audio at near" });
  return { near, far };
}

describe('networks without UDP', () => {
  scenarioTest('a Chromium without UDP connects over ICE-TCP and media goes both ways', () => ({ server: plain, browser: nearBrowser }), async (sc) => {
    const { far } = await bothWays(sc, {});
    for (const which of ['publish', 'subscribe']) {
      // Chromium's active TCP candidate shows as peer-reflexive: its real port is learned from
      // the server's answer to its check (the candidate itself says port 9).
      const pair = await selectedPair(far, which);
      assert.ok(['host', 'prflx'].includes(pair?.candidateType) && pair.protocol === 'tcp', `${which}: ${JSON.stringify(pair)}`);
      assert.deepEqual([pair.remoteType, pair.remoteProtocol], ['host', 'tcp'], `${which}: ${JSON.stringify(pair)}`);
    }
    assert.ok(await plain.metric('hearth_media_tcp_connections') >= 2, 'the server counts the ICE-TCP connections');
  });

  scenarioTest('told to use relays only, the SDK connects through TURN over TCP with the credentials the server handed out', () => ({ server, browser: nearBrowser }), async (sc) => {
    const { far } = await bothWays(sc, { iceTransportPolicy: 'relay' });
    for (const which of ['publish', 'subscribe']) {
      const pair = await selectedPair(far, which);
      assert.deepEqual([pair?.candidateType, pair?.relayProtocol], ['relay', 'tcp'], `${which}: ${JSON.stringify(pair)}`);
    }
    const log = fs.readFileSync(path.join(dir, 'coturn.log'), 'utf8');
    assert.match(log, /username=<\d+:far>/, 'coturn saw the far user\'s credential');
    assert.match(log, /ALLOCATE processed, success/);
  });
});
