// The operator console (/console) in Chromium: signing in with an API credential (a server-side
// session in an HttpOnly, SameSite cookie; the secret kept nowhere in the page), a live room of two
// Chromium publishers with roles and streams, a user's quality charts drawn from real samples, the
// call's timeline, usage and tasks pages, removing a user from the page (who leaves the room), and
// signing out (after which the old session is refused). Then the refusals: wrong credentials, an
// expired session, a request without the CSRF token. Screenshots of each page go to artifacts/
// (docs/console/ holds copies).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, freshRoom, launchBrowser, scenarioTest, sleep, startHearth, SDK_APP_ID } from './harness.js';

let server;
let shortLived;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'console' });
  shortLived = await startHearth({ name: 'console-short', env: { HEARTH_CONSOLE_SESSION_SECS: '3' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of [server, shortLived]) if (s) assert.equal(await s.stop(), 0, s.stderrTail());
});

const opts = (userId, room) => ({ sdkAppId: SDK_APP_ID, userId, userSig: server.userSig(userId), roomId: room });

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true });
}

/** Signs in from Node: returns {cookie, csrf} (the cookie as a request header value). */
async function signIn(h, secretKey = h.secretKey) {
  const r = await fetch(`${h.url}/console/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ SecretId: h.secretId, SecretKey: secretKey }),
  });
  const body = await r.json();
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0];
  return { status: r.status, body, cookie, csrf: body.Csrf, setCookie: r.headers.get('set-cookie') };
}

function act(h, action, params, { cookie, csrf }) {
  const headers = { 'content-type': 'application/json' };
  if (cookie) headers.cookie = cookie;
  if (csrf !== undefined) headers['x-hearth-csrf'] = csrf;
  return fetch(`${h.url}/console/api/${action}`, { method: 'POST', headers, body: JSON.stringify(params) });
}

/** Pixels of a canvas close to `rgb` (the first series' stroke), counted in the page. */
function strokePixels(page, selector, rgb) {
  return page.evaluate(([sel, [r, g, b]]) => {
    const canvas = document.querySelector(sel);
    if (!canvas) return -1;
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - r) < 30 && Math.abs(data[i + 1] - g) < 30 && Math.abs(data[i + 2] - b) < 30 && data[i + 3] > 128) n++;
    }
    return n;
  }, [selector, rgb]);
}

describe('console', () => {
  scenarioTest('sign in, see a live room of two publishers, a quality chart, the call, usage and tasks; remove a user; sign out', env, async (sc) => {
    const room = freshRoom();
    const alice = await sc.participant('alice', opts('con-alice', room));
    const bob = await sc.participant('bob', opts('con-bob', room));
    for (const p of [alice, bob]) await p.call('enter');
    await Promise.all([alice, bob].map((p) => p.call('publish', { audio: true, video: true })));
    await alice.waitStats('con-bob', 'main', 'video', (s) => s.framesDecoded > 10, { what: "bob's camera at alice" });

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const pageLog = [];
    page.on('console', (m) => pageLog.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
    try {
      await page.goto(`${server.url}/console`);
      await page.fill('input[name=SecretId]', server.secretId);
      await page.fill('input[name=SecretKey]', server.secretKey);
      await shot(page, 'sign-in');
      await page.click('form.sign-in button[type=submit]');

      // The live room: both publishers, anchors, with mic and camera.
      const card = page.locator(`.card.room[data-room="${room}"]`);
      await card.waitFor({ timeout: 15_000 });
      await page.waitForFunction((r) => document.querySelectorAll(`.card.room[data-room="${r}"] tbody tr`).length === 2, room, { timeout: 10_000 });
      const rows = await card.locator('tbody tr').allInnerTexts();
      for (const u of ['con-alice', 'con-bob']) {
        const row = rows.find((t) => t.startsWith(u));
        assert.ok(row, `${u} listed: ${rows}`);
        assert.match(row, /anchor/);
      }
      assert.equal(await card.locator('.pill.on', { hasText: 'camera' }).count(), 2, 'both cameras on');
      await shot(page, 'rooms');

      // The secret is nowhere in the page or the browser's storage; the session cookie is
      // HttpOnly and SameSite=Strict.
      const kept = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.documentElement.outerHTML + document.cookie);
      assert.ok(!kept.includes(server.secretKey), 'the SecretKey is not kept by the page');
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 'hearth_console');
      assert.ok(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));

      // Alice's quality: upstream charts with points drawn (samples every 2 s).
      await sleep(5000);
      await card.locator('a', { hasText: 'con-alice' }).click();
      const upstream = page.locator('section.direction[data-peer=""] .chart canvas').first();
      await upstream.waitFor({ timeout: 15_000 });
      const points = await page.evaluate(() => document.querySelector('section.direction[data-peer=""] .chart').plot.data[0].length);
      assert.ok(points >= 2, `the bitrate chart has ${points} points`);
      const drawn = await strokePixels(page, 'section.direction[data-peer=""] .chart canvas', [37, 99, 235]);
      assert.ok(drawn > 50, `the bitrate chart's line is drawn (${drawn} pixels)`);
      assert.ok(await page.locator('section.direction[data-peer="con-bob"] .chart canvas').count() > 0, 'downstream from bob charted');
      await shot(page, 'quality');

      // The call: both users, and a timeline with their entry.
      await page.click('a:has-text("the call")');
      await page.locator('.card[data-user="con-alice"] li[data-event="32788"]').waitFor({ timeout: 10_000 });
      await shot(page, 'call');
      await page.click('nav a[data-page=calls]');
      await page.locator(`#page-calls a:has-text("${room}")`).first().waitFor({ timeout: 10_000 });
      await shot(page, 'calls');
      await page.click('nav a[data-page=usage]');
      await page.locator('#page-usage .chart canvas').first().waitFor({ timeout: 10_000 });
      assert.equal(await page.locator('[data-figure=users] b').innerText(), '2', 'two users online');
      await shot(page, 'usage');
      // A recording into the VOD store: the tasks page lists it, finished, with a link to its
      // file that plays.
      const { TaskId: task } = await server.api('CreateCloudRecording', {
        SdkAppId: SDK_APP_ID, RoomId: String(room), UserId: 'con-recbot', UserSig: server.userSig('con-recbot'),
        RecordParams: { RecordMode: 2 },
        StorageParams: { CloudVod: { TencentVod: { MediaType: 0, ExpireTime: 3600 } } },
      });
      await sleep(4000);
      await server.api('DeleteCloudRecording', { SdkAppId: SDK_APP_ID, TaskId: task });
      const finished = page.locator(`#page-tasks tr:has(code:text-is("${task}"))`);
      for (let i = 0; i < 40; i++) {
        await page.click('nav a[data-page=tasks]');
        await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
        await page.locator('#page-tasks h1').waitFor();
        if (await finished.locator('a').count()) break;
        await sleep(500);
      }
      const row = await finished.innerText();
      assert.match(row, /recording/);
      assert.match(row, /Finished/);
      const href = await finished.locator('a').getAttribute('href');
      assert.match(href, /^\/vod\//);
      const file = await fetch(`${server.url}${href}`);
      assert.equal(file.status, 200, href);
      assert.ok((await file.arrayBuffer()).byteLength > 10_000, 'the recording has media');
      await shot(page, 'tasks');

      // Remove bob from the page: he is told, and his row goes.
      await page.click('nav a[data-page=rooms]');
      await card.locator('button[data-action=kick][data-user="con-bob"]').click();
      await bob.waitEvent('notice', (e) => e.reason === 'kicked', { timeout: 5000 });
      await page.waitForFunction((r) => {
        const rows = [...document.querySelectorAll(`.card.room[data-room="${r}"] tbody tr`)].map((t) => t.innerText);
        return rows.length === 1 && rows[0].startsWith('con-alice');
      }, room, { timeout: 10_000 });
      await alice.waitEvent('user-exited', (e) => e.userId === 'con-bob', { timeout: 5000 });

      // Sign out: the page asks for credentials again, and the old session is refused.
      const csrf = await page.evaluate(async () => (await fetch('/console/session')).json().then((s) => s.Csrf));
      const old = `hearth_console=${session.value}`;
      await page.click('#sign-out');
      await page.locator('form.sign-in').waitFor();
      const r = await act(server, 'DescribeRoomInfo', { SdkAppId: SDK_APP_ID, StartTime: 1, EndTime: 2 }, { cookie: old, csrf });
      assert.equal(r.status, 401, 'the signed-out session is refused');
    } catch (e) {
      console.error(pageLog.join('\n'));
      await shot(page, 'failure').catch(() => {});
      throw e;
    } finally {
      await context.close();
    }
  }, { timeout: 180_000 });

  test('wrong credentials are refused, in the page and by the server', async () => {
    const wrong = await signIn(server, 'not-the-key');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.setCookie, null, 'no cookie for a refused sign-in');
    const unknown = await fetch(`${server.url}/console/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ SecretId: 'AKIDnobody', SecretKey: server.secretKey }),
    });
    assert.equal(unknown.status, 401);
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${server.url}/console`);
      await page.fill('input[name=SecretId]', server.secretId);
      await page.fill('input[name=SecretKey]', 'wrong');
      await page.click('form.sign-in button[type=submit]');
      await page.locator('form.sign-in .error', { hasText: 'Wrong SecretId or SecretKey' }).waitFor({ timeout: 5000 });
      assert.equal(await page.inputValue('input[name=SecretKey]'), '', 'the wrong key is cleared');
      assert.equal((await context.cookies()).length, 0);
    } finally {
      await context.close();
    }
  });

  test('a request without the session or its CSRF token is refused; an expired session is refused', async () => {
    const s = await signIn(server);
    assert.equal(s.status, 200);
    assert.match(s.setCookie, /HttpOnly/);
    assert.match(s.setCookie, /SameSite=Strict/);
    assert.match(s.setCookie, /Path=\/console/);
    assert.ok(!JSON.stringify(s.body).includes(server.secretKey), 'the session never carries the secret');
    const params = { SdkAppId: SDK_APP_ID, StartTime: Math.floor(Date.now() / 1000) - 60, EndTime: Math.floor(Date.now() / 1000) };
    const ok = await act(server, 'DescribeRoomInfo', params, s);
    assert.equal(ok.status, 200);
    assert.ok('RoomList' in (await ok.json()).Response);
    assert.equal((await act(server, 'DescribeRoomInfo', params, { cookie: s.cookie })).status, 403, 'no CSRF token');
    assert.equal((await act(server, 'DescribeRoomInfo', params, { cookie: s.cookie, csrf: 'x'.repeat(64) })).status, 403, 'a wrong CSRF token');
    assert.equal((await act(server, 'DescribeRoomInfo', params, { csrf: s.csrf })).status, 401, 'no cookie');
    const signOut = await fetch(`${server.url}/console/session`, { method: 'DELETE', headers: { cookie: s.cookie } });
    assert.equal(signOut.status, 403, 'signing out needs the CSRF token too');
    // Actions answer in the API's envelope, with its errors.
    const bad = await (await act(server, 'NoSuchAction', {}, s)).json();
    assert.equal(bad.Response.Error.Code, 'InvalidAction');
    const other = await (await act(server, 'DescribeRoomInfo', { ...params, SdkAppId: 1400999999 }, s)).json();
    assert.equal(other.Response.Error.Code, 'UnauthorizedOperation.SdkAppId');

    const short = await signIn(shortLived);
    assert.equal(short.status, 200);
    assert.equal((await act(shortLived, 'DescribeRoomInfo', params, short)).status, 200);
    await sleep(3500);
    assert.equal((await act(shortLived, 'DescribeRoomInfo', params, short)).status, 401, 'expired');
    assert.equal((await fetch(`${shortLived.url}/console/session`, { headers: { cookie: short.cookie } })).status, 401);
  });
});
