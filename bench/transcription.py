"""CPU of a transcription task (StartAITranscription) on this machine, and how late its sentences
come: N aiortc speakers each play espeak-ng sentences (looped, 1.5 s of silence between) into a
room; one whole-room transcription task listens. Measured over DURATION seconds: the CPU of the
task's worker (hearth-media) and of its speech engine (the PocketSphinx process), and for every
final subtitle the delay from the moment its sentence's last sound left the speaker's microphone
track to the subtitle's arrival at a listener. Not a test: prints a markdown table.

    .venv/bin/python bench/transcription.py [--speakers 1 2 4] [--duration 30] [--skip-build]

Needs what scripts/test.sh installs (espeak-ng, the venv with aiortc, the SDK and pocketsphinx).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server  # noqa: E402 - puts tests/e2e on the path
from bench_server import Speaker, Timed  # noqa: E402
from speech_track import SpeechTrack, utterance  # noqa: E402

from conftest import sdk_client  # noqa: E402
from media import usersig  # noqa: E402
from ws_client import WsClient  # noqa: E402

APP = bench_server.APP
SENTENCES = ["turn on the kitchen lights", "what is the weather today", "good morning everyone"]
GAP = 1.5


def sentences(work: Path) -> list:
    """Each sentence and its samples."""
    return [(t, utterance(work / f"s{i}.wav", t)) for i, t in enumerate(SENTENCES)]


def ticks(pid: int) -> int:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


async def run_case(h, n: int, duration: float, script) -> dict:
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
    speakers, mics = [], {}
    for i in range(n):
        mic = SpeechTrack(loop=script, gap=GAP)
        s = Speaker(h, f"bench-speaker-{i}", room, mic)
        await s.start()
        mics[s.user] = mic
        speakers.append(s)
    await asyncio.sleep(3)
    procs = [worker, *children(worker)]
    t0, c0 = time.time(), sum(ticks(p) for p in procs)
    seen = len(listener.messages)
    await asyncio.sleep(duration)
    t1, c1 = time.time(), sum(ticks(p) for p in procs)
    engine = sum(ticks(p) for p in children(worker))
    delays, finals, exact = [], 0, 0
    for m in listener.messages[seen:]:
        if m["type"] != "custom" or m["cmdid"] != 1:
            continue
        msg = json.loads(base64.b64decode(m["data"]))
        if not msg["payload"]["end"]:
            continue
        finals += 1
        text = msg["payload"]["text"]
        exact += text in SENTENCES
        # From when the sentence's last sound left the speaker's microphone.
        ended = [t for said, t in mics[msg["sender"]].ends if said == text and t < m["_at"]]
        if ended:
            delays.append(m["_at"] - ended[-1])
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
        bench_server.build()
    with bench_server.server() as (h, work):
        script = sentences(work)
        # Arrival times of custom messages at the listener.
        orig = WsClient._read

        async def timed_read(self):
            self.messages = Timed(self.messages)
            await orig(self)

        WsClient._read = timed_read
        rows = [asyncio.run(run_case(h, n, a.duration, script)) for n in a.speakers]
    print("| speakers | task CPU (cores: worker + engine) | sentences | word-exact | delay p50 (s) | delay p95 (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        d = sorted(r["delays"])
        p50 = f"{statistics.median(d):.2f}" if d else "—"
        p95 = f"{d[min(len(d) - 1, int(0.95 * len(d)))]:.2f}" if d else "—"
        print(f"| {r['speakers']} | {r['cores']:.3f} | {r['finals']} | {r['exact']} | {p50} | {p95} |")


if __name__ == "__main__":
    main()
