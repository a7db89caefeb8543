"""CPU of a transcription task (StartAITranscription) on this machine, and how late its sentences
come: N aiortc speakers each play espeak-ng sentences (looped, 1.5 s of silence between) into a
room; one whole-room transcription task listens. Measured over DURATION seconds: the CPU of the
task's worker (hearth-media) and of its speech engine (the PocketSphinx process), and for every
final subtitle the delay from the end of its sentence in the speaker's audio to its arrival at a
listener. Not a test: prints a markdown table.

    .venv/bin/python bench/transcription.py [--speakers 1 2 4] [--duration 30] [--skip-build]

Needs what scripts/test.sh installs (espeak-ng, the venv with aiortc, the SDK and pocketsphinx).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from aiortc.contrib.media import MediaPlayer  # noqa: E402

from conftest import Cred, sdk_client  # noqa: E402
from media import Client, endpoint_url, usersig  # noqa: E402
from ws_client import WsClient  # noqa: E402

APP = 1400000001
SENTENCES = ["turn on the kitchen lights", "what is the weather today", "good morning everyone"]
GAP = 1.5


class Speaker(Client):
    """A WHIP publisher of one audio track."""

    kind = "whip"

    def __init__(self, h, user, room, audio):
        super().__init__(h, APP, user, room=room)
        self.pc.addTransceiver(audio, direction="sendonly")

    def url(self) -> str:
        return endpoint_url(self.h, "whip", self.app, room=self.room)


def speech(path: Path) -> tuple[Path, list[float]]:
    """The sentences with GAP s of silence before each; returns the file and when (s from its
    start) each sentence ends."""
    frames, rate, ends, t = [], 22050, [], 0.0
    for i, s in enumerate(SENTENCES):
        part = path.with_suffix(f".{i}.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(part), s], check=True)
        with wave.open(str(part)) as w:
            rate = w.getframerate()
            data = w.readframes(w.getnframes())
        frames.append(b"\0\0" * int(rate * GAP) + data)
        t += GAP + len(data) / 2 / rate
        ends.append(t)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(frames))
    return path, ends


def ticks(pid: int) -> int:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


async def run_case(h, n: int, duration: float, wav: Path, ends: list[float]) -> dict:
    room = 9000 + n
    listener = WsClient(h, APP, "bench-listener", room=room, role="audience")
    await listener.connect()
    bot = "bench-stt"
    params = {"SdkAppId": APP, "RoomId": str(room),
              "TranscriptionParams": {"UserId": bot, "UserSig": usersig(h, APP, bot), "MaxIdleTime": 60},
              "RecognizeConfig": {"Language": "en", "VadSilenceTime": 600,
                                  "HotWordList": ",".join(SENTENCES)}}
    task = sdk_client(h).call_json("StartAITranscription", params)["Response"]["TaskId"]
    worker = int(subprocess.run(["pgrep", "-n", "-x", "hearth-media"], capture_output=True, text=True).stdout)
    speakers, started = [], {}
    for i in range(n):
        s = Speaker(h, f"bench-speaker-{i}", room, MediaPlayer(str(wav), loop=True).audio)
        await s.start()
        started[s.user] = time.time()
        speakers.append(s)
    await asyncio.sleep(3)
    procs = [worker, *children(worker)]
    t0, c0 = time.time(), sum(ticks(p) for p in procs)
    seen = len(listener.messages)
    await asyncio.sleep(duration)
    t1, c1 = time.time(), sum(ticks(p) for p in procs)
    engine = sum(ticks(p) for p in children(worker))
    delays, finals, exact = [], 0, 0
    period = ends[-1]
    for m in listener.messages[seen:]:
        if m["type"] != "custom" or m["cmdid"] != 1:
            continue
        msg = json.loads(base64.b64decode(m["data"]))
        if not msg["payload"]["end"]:
            continue
        finals += 1
        exact += msg["payload"]["text"] in SENTENCES
        # When the sentence ended in the speaker's audio (the file loops from its start).
        at = m.get("_at", None)
        if at is None or msg["payload"]["text"] not in SENTENCES:
            continue
        k = SENTENCES.index(msg["payload"]["text"])
        since = at - started[msg["sender"]]
        loops = (since - ends[k]) // period
        delays.append(since - (loops * period + ends[k]))
    sdk_client(h).call_json("StopAITranscription", {"TaskId": task})
    for s in speakers:
        await s.delete()
        await s.close()
    await listener.close()
    return {"speakers": n, "cores": (c1 - c0) / 100 / (t1 - t0), "engine_ticks": engine,
            "finals": finals, "exact": exact, "delays": delays}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--speakers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--skip-build", action="store_true")
    a = ap.parse_args()
    if not a.skip_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "hearth", "-p", "hearth-media"], cwd=REPO, check=True)
    work = Path(tempfile.mkdtemp())
    wav, ends = speech(work / "speech.wav")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = "bench-transcription-key-0123456789abcdef0123"
    cred = Cred("AKIDbenchtranscription00000000000000", "benchtranscriptionsecret", (APP,))
    (work / "hearth.toml").write_text(f"""
[server]
http = "127.0.0.1:{port}"
data_dir = "{work / 'data'}"
rate_limits = false
web_dir = "{REPO / 'web'}"
[media]
ports = "55000-55001"
workers = 1
cpu_budget = 8
[[apps]]
sdk_app_id = {APP}
secret_key = "{key}"
[[credentials]]
secret_id = "{cred.secret_id}"
secret_key = "{cred.secret_key}"
apps = [{APP}]
""")
    env = {**os.environ, "HEARTH_LOG": "warn", "HEARTH_AI_STT_PYTHON": sys.executable}
    log = open(work / "hearth.log", "wb")
    proc = subprocess.Popen([str(REPO / "target/release/hearth"), "serve", "--config", str(work / "hearth.toml")],
                            env=env, stdout=log, stderr=log)
    h = SimpleNamespace(host=f"127.0.0.1:{port}", http_port=port, app_keys={APP: key}, cred1=cred)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        # Arrival times of custom messages at the listener.
        orig = WsClient._read

        async def timed_read(self):
            self.messages = _Timed(self.messages)
            await orig(self)

        WsClient._read = timed_read
        rows = [asyncio.run(run_case(h, n, a.duration, wav, ends)) for n in a.speakers]
    finally:
        proc.terminate()
        proc.wait(15)
    print("| speakers | task CPU (cores: worker + engine) | sentences | word-exact | delay p50 (s) | delay p95 (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        d = sorted(r["delays"])
        p50 = f"{statistics.median(d):.2f}" if d else "—"
        p95 = f"{d[min(len(d) - 1, int(0.95 * len(d)))]:.2f}" if d else "—"
        print(f"| {r['speakers']} | {r['cores']:.3f} | {r['finals']} | {r['exact']} | {p50} | {p95} |")


class _Timed(list):
    """A message list that stamps each message with its arrival time."""

    def append(self, m):
        if isinstance(m, dict):
            m["_at"] = time.time()
        super().append(m)


if __name__ == "__main__":
    main()
