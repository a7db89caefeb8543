// Custom messages between Chromium pages through the SDK: an anchor's messages (text and bytes)
// reach another page in order with their sender, command id and number; an audience member's are
// refused with an `error` event; bad arguments throw.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { freshRoom, launchBrowser, scenarioTest, startHearth, SDK_APP_ID } from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'custom' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) assert.equal(await server.stop(), 0, server.stderrTail());
});

const opts = (userId, room, role = 'anchor') => ({ sdkAppId: SDK_APP_ID, userId, userSig: server.userSig(userId), roomId: room, role });

describe('custom messages', () => {
  scenarioTest('an anchor page sends, the others receive in order; the audience is refused', env, async (sc) => {
    const room = freshRoom();
    const alice = await sc.participant('alice', opts('cm-alice', room));
    const bob = await sc.participant('bob', opts('cm-bob', room, 'audience'));
    await alice.call('enter');
    await bob.call('enter');
    await alice.page.evaluate(() => {
      window.client.sendCustomMessage(1, 'subtitle: héllo');
      window.client.sendCustomMessage(2, new Uint8Array([0, 1, 2, 255]));
      window.client.sendCustomMessage(10, new Uint8Array(1024).fill(7).buffer);
    });
    await bob.waitEvent('custom-message', (e) => e.seq === 3, { timeout: 5000 });
    const got = await bob.page.evaluate(() => window.events.filter((e) => e.ev === 'custom-message')
      .map((e) => ({ userId: e.userId, cmdId: e.cmdId, seq: e.seq, data: Array.from(e.data) })));
    assert.deepEqual(got.map((m) => [m.userId, m.cmdId, m.seq]), [['cm-alice', 1, 1], ['cm-alice', 2, 2], ['cm-alice', 10, 3]]);
    assert.equal(new TextDecoder().decode(Uint8Array.from(got[0].data)), 'subtitle: héllo');
    assert.deepEqual(got[1].data, [0, 1, 2, 255]);
    assert.equal(got[2].data.length, 1024);

    // The audience may not send: the server's refusal is an error event.
    await bob.page.evaluate(() => window.client.sendCustomMessage(1, 'from the audience'));
    const refused = await bob.waitEvent('error', (e) => e.request === 'custom', { timeout: 5000 });
    assert.equal(refused.code, 403);
    // Bad arguments throw in the page, before anything is sent.
    const thrown = await alice.page.evaluate(() => {
      const out = [];
      for (const [id, data] of [[0, 'x'], [11, 'x'], [1, new Uint8Array(1025)], [1, 42]]) {
        try { window.client.sendCustomMessage(id, data); out.push('sent'); } catch (e) { out.push(e.name); }
      }
      return out;
    });
    assert.deepEqual(thrown, ['TypeError', 'TypeError', 'RangeError', 'TypeError']);
  });
});
