"""A microphone for the speech benchmarks: an aiortc audio track that plays utterances as 20 ms
frames in real time (silence between them) and notes, for each utterance, the wall-clock time
the frame holding its last sound was handed to aiortc, which is when the speaker stopped
talking as far as the server can know (loopback adds well under a millisecond)."""

from __future__ import annotations

import asyncio
import fractions
import time
import wave
from collections import deque
from pathlib import Path

import numpy as np
from aiortc import MediaStreamTrack
from av import AudioFrame
from speech import synthesize  # tests/e2e, on the path via bench_server

RATE = 48000
FRAME = 960


def utterance(path: Path, text: str, voice: str = "espeak") -> np.ndarray:
    """`text` spoken by espeak-ng (or flite), as 48 kHz int16 samples."""
    with wave.open(str(synthesize(path, text, voice))) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
    t = np.arange(0, len(pcm) / rate, 1 / RATE)
    return np.interp(t, np.arange(len(pcm)) / rate, pcm).astype(np.int16)


class SpeechTrack(MediaStreamTrack):
    """`say` queues an utterance; with `loop`, the given utterances repeat forever, `gap`
    seconds of silence before each. `ends` holds (text, wall time its last sound left)."""

    kind = "audio"

    def __init__(self, loop: list[tuple[str, np.ndarray]] | None = None, gap: float = 1.5):
        super().__init__()
        self.loop, self.gap = loop or [], gap
        self.next_loop = 0
        self.queue: deque = deque()  # [text, samples, last loud index, position]
        self.ends: list[tuple[str, float]] = []
        self.n = 0
        self.start: float | None = None

    def say(self, text: str, samples: np.ndarray) -> None:
        loud = np.nonzero(np.abs(samples) > 300)[0]
        self.queue.append([text, samples, int(loud[-1]) if len(loud) else 0, 0])

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.n * FRAME / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if not self.queue and self.loop:
            text, samples = self.loop[self.next_loop % len(self.loop)]
            self.next_loop += 1
            self.say(text, np.concatenate([np.zeros(int(self.gap * RATE), np.int16), samples]))
        out = np.zeros(FRAME, np.int16)
        filled = 0
        while filled < FRAME and self.queue:
            u = self.queue[0]
            take = min(FRAME - filled, len(u[1]) - u[3])
            out[filled:filled + take] = u[1][u[3]:u[3] + take]
            if u[3] <= u[2] < u[3] + take:
                self.ends.append((u[0], time.time()))
            u[3] += take
            filled += take
            if u[3] >= len(u[1]):
                self.queue.popleft()
        frame = AudioFrame.from_ndarray(out.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self.n * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self.n += 1
        return frame
