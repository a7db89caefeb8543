"""Turn latency of a voice conversation (StartAIConversation): from the moment the user's last
sound leaves their microphone to the robot's first audible audio at a listener, over TURNS turns.
An aiortc user asks a question (espeak-ng), a scripted OpenAI-compatible LLM streams a short
answer (first token after --llm-ttft seconds), the robot speaks it; a WHEP viewer of the robot
notes when each 20 ms frame arrives. Per turn it also notes when the user's final subtitle
arrived (speech recognition) and when the LLM was asked. Not a test: prints a markdown table.

    .venv/bin/python bench/conversation.py [--turns 20] [--vad 600 1000] [--stt pocketsphinx]
        [--tts espeak] [--llm-ttft 0] [--skip-build]

Needs what scripts/test.sh installs (espeak-ng, flite, the venv with aiortc, the SDK,
pocketsphinx, piper-tts and faster-whisper).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server  # noqa: E402 - puts tests/e2e on the path
from bench_server import Speaker, Timed  # noqa: E402
from speech_track import SpeechTrack, utterance  # noqa: E402

from conftest import sdk_client  # noqa: E402
from media import usersig  # noqa: E402
from test_conversation import Recorder, ScriptedLlm  # noqa: E402
from ws_client import WsClient  # noqa: E402

APP = bench_server.APP
QUESTION = "what is the weather today"
ANSWER = "The weather is sunny today."


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def run_case(h, room: int, turns: int, vad: int, stt: str, tts: str, ttft: float, question) -> dict:
    llm = ScriptedLlm([ANSWER], delay=0.0)
    if ttft:
        llm.delay = ttft  # the first word waits this long (then the rest, as fast)
    watcher = WsClient(h, APP, "bench-watcher", room=room, role="audience", autosubscribe=False)
    watcher.messages = Timed()
    await watcher.connect()
    bot = "bench-bot"
    custom = {"HotWordList": QUESTION}
    if stt != "pocketsphinx":
        custom["STTType"] = stt
    params = {"SdkAppId": APP, "RoomId": str(room),
              "AgentConfig": {"UserId": bot, "UserSig": usersig(h, APP, bot), "TargetUserId": "bench-user",
                              "WelcomeMessage": "", "MaxIdleTime": 120},
              "STTConfig": {"Language": "en", "VadSilenceTime": vad, "CustomParam": json.dumps(custom)},
              "LLMConfig": json.dumps({"LLMType": "openai", "Model": "scripted", "APIKey": "k",
                                       "APIUrl": llm.url, "History": 0}),
              "TTSConfig": json.dumps({"TTSType": tts})}
    task = sdk_client(h).call_json("StartAIConversation", params)["Response"]["TaskId"]
    robot = None
    for _ in range(100):
        robot = Recorder(h, APP, "bench-listener", bot, room=room)
        try:
            await robot.start()
            break
        except Exception:
            await robot.close()
            await asyncio.sleep(0.2)
    mic = SpeechTrack()
    user = Speaker(h, "bench-user", room, mic)
    await user.start()
    await asyncio.sleep(2)
    rows = []
    for turn in range(turns):
        asked = len(llm.requests)
        mic.say(QUESTION, question)
        # Wait for the answer to be spoken, then for silence.
        deadline = time.time() + 20
        while len(llm.requests) == asked and time.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(3.5)
        if len(llm.requests) == asked or not mic.ends:
            rows.append(None)
            continue
        ended = mic.ends[-1][1]
        mono_off = time.time() - time.monotonic()
        heard = [mono_off + t for t, a in robot.arrivals
                 if mono_off + t > ended and float((a.astype("float64") ** 2).mean() ** 0.5) > 300]
        subtitle = [m["_at"] for m in watcher.messages if m.get("type") == "custom" and m.get("_at", 0) > ended
                    and _final_of(m, "bench-user")]
        rows.append({"audio": heard[0] - ended if heard else None,
                     "stt": subtitle[0] - ended if subtitle else None,
                     "llm": llm.requests[asked]["at"] + mono_off - ended})
    sdk_client(h).call_json("StopAIConversation", {"TaskId": task})
    await user.delete()
    await user.close()
    await robot.delete()
    await robot.close()
    await watcher.close()
    llm.close()
    return {"rows": rows}


def _final_of(m: dict, sender: str) -> bool:
    if m.get("cmdid") != 1:
        return False
    msg = json.loads(base64.b64decode(m["data"]))
    return msg.get("type") == 10000 and msg.get("sender") == sender and msg["payload"].get("end")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--vad", type=int, nargs="+", default=[600, 1000])
    ap.add_argument("--stt", nargs="+", default=["pocketsphinx"])
    ap.add_argument("--tts", nargs="+", default=["espeak"])
    ap.add_argument("--llm-ttft", type=float, default=0.0)
    ap.add_argument("--skip-build", action="store_true")
    a = ap.parse_args()
    if not a.skip_build:
        bench_server.build()
    out = []
    with bench_server.server({"HEARTH_OUTBOUND_ALLOW": "127.0.0.0/8"}) as (h, work):
        question = utterance(work / "q.wav", QUESTION)
        room = 9300
        for stt in a.stt:
            for tts in a.tts:
                for vad in a.vad:
                    room += 1
                    r = asyncio.run(run_case(h, room, a.turns, vad, stt, tts, a.llm_ttft, question))
                    out.append((stt, tts, vad, r["rows"]))
    print("| STT | TTS | VadSilenceTime (ms) | turns answered | to final subtitle p50 | to LLM request p50 "
          "| **to first robot audio p50** | p95 |")
    print("|---|---|---|---|---|---|---|---|")
    for stt, tts, vad, rows in out:
        ok = [r for r in rows if r and r["audio"] is not None]
        if not ok:
            print(f"| {stt} | {tts} | {vad} | 0/{len(rows)} | — | — | — | — |")
            continue
        sub = [r["stt"] for r in ok if r["stt"] is not None]
        print(f"| {stt} | {tts} | {vad} | {len(ok)}/{len(rows)} | "
              f"{statistics.median(sub):.2f} s | {statistics.median([r['llm'] for r in ok]):.2f} s | "
              f"**{statistics.median([r['audio'] for r in ok]):.2f} s** | {pct([r['audio'] for r in ok], 0.95):.2f} s |")


if __name__ == "__main__":
    main()
