// Subtitles in Chromium: a page publishes speech (espeak-ng's voice as Chromium's fake
// microphone), a transcription task started through the official Node.js SDK listens, and another
// page receives the subtitles as `custom-message` events (CmdId 1, TRTC's type 10000), partial and
// final, from the speaker.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { after, before, describe } from 'node:test';
import { CHROMIUM, CHROMIUM_ARGS, freshRoom, scenarioTest, startHearth, SDK_APP_ID } from './harness.js';

let server;
let browser;
const env = () => ({ server, browser });

before(async () => {
  server = await startHearth({ name: 'transcription' });
  // Chromium's fake microphone plays a file (looped): a sentence and then silence.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-speech-'));
  const wav = path.join(dir, 'speech.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-s', '140', '-g', '60', '-w', wav, 'hello world. good morning everyone.']);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, `--use-file-for-fake-audio-capture=${wav}`],
  });
});

after(async () => {
  await browser?.close();
  if (server) assert.equal(await server.stop(), 0, server.stderrTail());
});

const opts = (userId, room, role = 'anchor') => ({ sdkAppId: SDK_APP_ID, userId, userSig: server.userSig(userId), roomId: room, role });

describe('transcription', () => {
  scenarioTest('a page receives the subtitles of another page\'s speech as custom messages', env, async (sc) => {
    const room = freshRoom();
    const reader = await sc.participant('reader', opts('tr-reader', room, 'audience'));
    await reader.call('enter');
    const { TaskId: task } = await server.api('StartAITranscription', {
      SdkAppId: SDK_APP_ID,
      RoomId: String(room),
      TranscriptionParams: { UserId: 'tr-bot', UserSig: server.userSig('tr-bot'), MaxIdleTime: 30 },
      RecognizeConfig: { Language: 'en' },
    });
    const speaker = await sc.participant('speaker', opts('tr-speaker', room));
    await speaker.call('enter');
    // The file as it is: no noise suppression or gain control on synthetic speech.
    await speaker.call('publish', { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false }, video: false });
    const final = await reader.waitEvent('custom-message', (e) => e.cmdId === 1 && JSON.parse(new TextDecoder().decode(Uint8Array.from(Object.values(e.data)))).payload.end, { timeout: 40_000 });
    const subs = await reader.page.evaluate(() => window.events.filter((e) => e.ev === 'custom-message')
      .map((e) => ({ userId: e.userId, cmdId: e.cmdId, msg: JSON.parse(new TextDecoder().decode(e.data)) })));
    assert.ok(final);
    assert.ok(subs.length >= 2, JSON.stringify(subs));
    for (const s of subs) {
      assert.equal(s.userId, 'tr-bot');
      assert.equal(s.cmdId, 1);
      assert.equal(s.msg.type, 10000);
      assert.equal(s.msg.sender, 'tr-speaker');
      assert.equal(typeof s.msg.payload.text, 'string');
    }
    const firstFinal = subs.findIndex((s) => s.msg.payload.end);
    assert.ok(firstFinal > 0 && subs.slice(0, firstFinal).some((s) => !s.msg.payload.end), 'partial results come before the sentence');
    assert.ok(subs[firstFinal].msg.payload.text.length > 0);
    await server.api('StopAITranscription', { TaskId: task });
  }, { timeout: 90_000 });
});
