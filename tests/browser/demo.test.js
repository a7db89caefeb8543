// The demo page (web/index.html) driven as a person would, against a zero-config `hearth serve`
// (fresh HEARTH_DATA_DIR, so it generates its app and offers GET /dev/usersig): type a room and a
// name, click "Get dev UserSig", click Join, in two pages; each shows a live tile for both.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { freshRoom, launchBrowser, scenarioTest, sleep, startHearth } from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'demo', zeroConfig: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stopChecked();
});

/** Opens the demo page and joins as `user`, by typing and clicking. */
async function joinAs(sc, user, room, sdkappid) {
  const { page } = await sc.page(user);
  await page.goto(`${server.url}/`);
  // The page asks GET /dev/usersig for the SdkAppId and fills it in.
  await page.waitForFunction((id) => document.querySelector('#sdkappid').value === String(id), sdkappid, { timeout: 10_000 });
  await page.locator('#room').click();
  await page.locator('#room').pressSequentially(String(room));
  await page.locator('#userid').click();
  await page.locator('#userid').pressSequentially(user);
  await page.locator('#dev-usersig').click();
  await page.waitForFunction(() => document.querySelector('#usersig').value.length > 20, null, { timeout: 10_000 });
  await page.locator('#join').click();
  await page.waitForFunction(() => document.body.dataset.state === 'connected', null, { timeout: 15_000 });
  return page;
}

/** The tile of `user` shows live video: videoWidth > 0 and currentTime advancing. */
async function assertLiveTile(page, who, user) {
  const video = page.locator(`.tile[data-user="${user}"] video`);
  await video.waitFor({ state: 'attached', timeout: 20_000 });
  await page.waitForFunction((u) => {
    const v = document.querySelector(`.tile[data-user="${u}"] video`);
    return v && v.videoWidth > 0 && v.currentTime > 0;
  }, user, { timeout: 30_000 });
  const t1 = await video.evaluate((v) => v.currentTime);
  await sleep(1500);
  const [t2, width, paused] = await video.evaluate((v) => [v.currentTime, v.videoWidth, v.paused]);
  assert.ok(width > 0, `${who}: ${user}'s tile has videoWidth ${width}`);
  assert.ok(!paused, `${who}: ${user}'s video is playing`);
  assert.ok(t2 > t1, `${who}: ${user}'s video advances (currentTime ${t1} → ${t2})`);
  const name = await page.locator(`.tile[data-user="${user}"] .name`).textContent();
  assert.ok(name.includes(user), `${who}: ${user}'s tile shows the name (${name})`);
}

describe('demo page', () => {
  scenarioTest('two people join by typing and clicking; each sees a live tile for both', env, async (sc) => {
    const r = await fetch(`${server.url}/dev/usersig`);
    assert.equal(r.status, 200, 'a zero-config server offers GET /dev/usersig');
    const { sdkappid } = await r.json();
    assert.ok(Number.isInteger(sdkappid) && sdkappid > 0, `GET /dev/usersig tells the SdkAppId (${sdkappid})`);

    const room = freshRoom();
    const alice = await joinAs(sc, 'alice', room, sdkappid);
    const bob = await joinAs(sc, 'bob', room, sdkappid);

    for (const [who, page] of [['alice', alice], ['bob', bob]]) {
      assert.equal(await page.locator('.tile').count(), 2, `${who} sees two tiles`);
      await assertLiveTile(page, who, 'alice');
      await assertLiveTile(page, who, 'bob');
    }
    assert.equal(await alice.locator('.tile[data-user="alice"]').getAttribute('data-local'), 'true');

    // Speaking indicator: the fake microphone beeps; bob's tile at alice lights up at some point.
    await alice.waitForFunction(() => document.querySelector('.tile[data-user="bob"]')?.classList.contains('speaking'), null, { timeout: 15_000, polling: 50 });

    // Screen share from the toggle arrives at the other page.
    await bob.locator('#toggle-screen').click();
    await alice.waitForFunction(() => {
      const v = document.querySelector('.screen-tile[data-user="bob"] video');
      return v && v.videoWidth > 0;
    }, null, { timeout: 20_000 });
    await bob.locator('#toggle-screen').click();
    await alice.locator('.screen-tile[data-user="bob"]').waitFor({ state: 'detached', timeout: 15_000 });

    // Mute the mic: the other page shows it.
    await bob.locator('#toggle-mic').click();
    await alice.waitForFunction(() => /mic muted/.test(document.querySelector('.tile[data-user="bob"] .badges')?.textContent || ''), null, { timeout: 10_000 });

    // Leave: the other page drops the tile.
    await bob.locator('#leave').click();
    await alice.locator('.tile[data-user="bob"]').waitFor({ state: 'detached', timeout: 15_000 });
    // Bob's own page clears its tiles when its exit completes, which may come after alice saw
    // him go.
    await bob.waitForFunction(() => document.querySelectorAll('.tile').length === 0, null, { timeout: 5_000 })
      .catch(() => {});
    assert.equal(await bob.locator('.tile').count(), 0, 'after leaving, bob sees no tiles');
  }, { timeout: 180_000 });
});
