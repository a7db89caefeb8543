"""Voice conversation (StartAIConversation, DescribeAIConversation, StopAIConversation) through the
official Python SDK, against a scripted OpenAI-compatible LLM that streams its answer as
server-sent events: an aiortc user asks a question (espeak-ng speech); the LLM receives the
transcribed question; the robot greets and speaks the answer, which, transcribed back from the
robot's audio track, holds the answer's words; subtitles and the robot's states reach the room.
Barge-in: the user talking over the robot stops its audio. Then the documented errors."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from aiortc.contrib.media import MediaPlayer
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import APP1, APP2, Hearth, sdk_client, start_hearth, stop_hearth
from media import ColorVideoTrack, MediaHTTPError, Publisher, Viewer, run, usersig, wait_for
from test_media import media  # noqa: F401 - `media` is a fixture
from test_transcription import speech_wav
from ws_client import WsClient

WELCOME = "hello world"
QUESTION = "what is the weather today"
ANSWER = "The weather is sunny today."


class ScriptedLlm:
    """An OpenAI-compatible chat-completions server: each request gets the next scripted answer,
    streamed word by word as server-sent events (`delay` s apart). Requests are recorded."""

    def __init__(self, answers: list[str], delay: float = 0.05, status: int = 200, meta: dict | None = None):
        self.answers, self.delay, self.requests = answers, delay, []
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                llm.requests.append({"body": body, "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "at": time.monotonic()})
                if status != 200:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "scripted failure"}}')
                    return
                answer = llm.answers[min(len(llm.requests), len(llm.answers)) - 1]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()

                def event(delta):
                    chunk = {"object": "chat.completion.chunk",
                             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()

                event({"role": "assistant"})
                if meta is not None:  # TRTC's pass-through of data for the app
                    self.wfile.write(f"data: {json.dumps({'type': 'meta.info', 'metainfo': meta})}\n\n".encode())
                for i, w in enumerate(answer.split(" ")):
                    time.sleep(llm.delay)
                    event({"content": (" " if i else "") + w})
                self.wfile.write(b"data: [DONE]\n\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1/chat/completions"

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    """A server that may reach loopback (the scripted LLM runs here)."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-conv"), "conversation", rate_limits=False,
                     env={"HEARTH_OUTBOUND_ALLOW": "127.0.0.0/8"})
    yield h
    stop_hearth(h)


def call(h: Hearth, action: str, params: dict, cred=None) -> dict:
    return sdk_client(h, cred).call_json(action, params)["Response"]


def error_of(h: Hearth, action: str, params: dict, cred=None) -> tuple[str, str]:
    with pytest.raises(TencentCloudSDKException) as info:
        call(h, action, params, cred)
    return info.value.code, info.value.message


def start_params(h: Hearth, room: int, llm_url: str, bot="conv-bot", **extra) -> dict:
    p = {"SdkAppId": APP1, "RoomId": str(room),
         "AgentConfig": {"UserId": bot, "UserSig": usersig(h, APP1, bot), "TargetUserId": "conv-user",
                         "WelcomeMessage": WELCOME, "InterruptSpeechDuration": 500, "MaxIdleTime": 30},
         "STTConfig": {"Language": "en", "VadSilenceTime": 600,
                       "CustomParam": json.dumps({"HotWordList": f"{QUESTION},good morning everyone"})},
         "LLMConfig": json.dumps({"LLMType": "openai", "Model": "scripted", "APIKey": "sk-test-key",
                                  "APIUrl": llm_url, "Streaming": True, "History": 3, "HistoryMode": 1})}
    p.update(extra)
    return p


class Recorder(Viewer):
    """A WHEP viewer of the robot that keeps its audio as 16 kHz mono samples, placed by their
    RTP time (the silences between sentences are kept)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.frames: list[tuple[int, np.ndarray]] = []
        # (arrival, samples) of each frame, by the monotonic clock.
        self.arrivals: list[tuple[float, np.ndarray]] = []

    async def _consume(self, track):
        try:
            while True:
                frame = await track.recv()
                if track.kind != "audio":
                    continue
                a = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0].astype(np.float32)
                # 48 kHz to 16 kHz: the mean of each three samples.
                n = len(a) // 3 * 3
                mono = a[:n].reshape(-1, 3).mean(axis=1)
                self.frames.append((int(frame.pts * frame.time_base * 16000), mono))
                self.arrivals.append((time.monotonic(), mono))
        except Exception:
            pass

    def samples(self) -> np.ndarray:
        if not self.frames:
            return np.zeros(0, np.float32)
        t0 = self.frames[0][0]
        end = max(t - t0 + len(a) for t, a in self.frames)
        out = np.zeros(min(end, 16000 * 120), np.float32)
        for t, a in self.frames:
            at = t - t0
            if 0 <= at and at + len(a) <= len(out):
                out[at:at + len(a)] = a
        return out


def transcribe(samples: np.ndarray, phrases: list[str]) -> str:
    """What PocketSphinx hears in 16 kHz samples: each stretch of sound between silences of
    0.5 s or more decoded whole, recognition restricted to the phrases."""
    from pocketsphinx import Decoder

    grammar = Path(__file__).parent / ".conv.jsgf"
    grammar.write_text("#JSGF V1.0;\ngrammar g;\npublic <s> = <p>+;\n<p> = "
                       + " | ".join(p.lower().strip(".") for p in phrases) + ";\n")
    d = Decoder(samprate=16000, jsgf=str(grammar), loglevel="FATAL")
    grammar.unlink()
    frame = 320  # 20 ms
    loud = [float(np.sqrt(np.mean(samples[i:i + frame] ** 2))) > 100 for i in range(0, len(samples), frame)]
    stretches, start, quiet = [], None, 0
    for k, on in enumerate(loud + [False] * 25):
        if on:
            start = k if start is None else start
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= 25:
                stretches.append((max(0, start - 10) * frame, (k - quiet + 10) * frame))
                start, quiet = None, 0
    heard = []
    for a, b in stretches:
        pcm = np.clip(samples[a:b], -32768, 32767).astype(np.int16).tobytes()
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        if d.hyp():
            heard.append(d.hyp().hypstr)
    return " | ".join(heard)


def bot_messages(c: WsClient) -> list[dict]:
    return [json.loads(base64.b64decode(m["data"])) for m in c.messages
            if m["type"] == "custom" and m["cmdid"] == 1 and m["userid"] == "conv-bot"]


def bot_states(c: WsClient) -> list[int]:
    """The robot's states (type 10001) a client received, in order."""
    return [m["payload"]["state"] for m in bot_messages(c) if m["type"] == 10001]


def loud_times(robot: Recorder) -> list[float]:
    """When each audible frame of the robot arrived (monotonic s)."""
    return [t for t, a in robot.arrivals if float(np.sqrt(np.mean(a ** 2))) > 300]


def interrupt_signal(receiver: list[str]) -> dict:
    """TRTC's client interrupt signal from conv-user, as the protocol's custom message."""
    body = {"type": 20001, "sender": "conv-user", "receiver": receiver,
            "payload": {"id": "x1", "timestamp": int(time.time() * 1000)}}
    return {"type": "custom", "cmdid": 2, "data": base64.b64encode(json.dumps(body).encode()).decode()}


async def play_robot(h: Hearth, room: int) -> Recorder:
    """A viewer of the robot's audio, once the robot publishes it."""
    for _ in range(50):
        v = Recorder(h, APP1, "conv-listener", "conv-bot", room=room)
        try:
            await v.start()
            return v
        except MediaHTTPError:
            await v.close()
            await asyncio.sleep(0.2)
    raise AssertionError("the robot never published its audio")


def test_the_robot_answers_a_spoken_question_with_the_llms_words(conv, tmp_path):
    room = 8201
    question = speech_wav(tmp_path / "question.wav", [QUESTION])
    llm = ScriptedLlm([ANSWER])

    async def body():
        room_view = WsClient(conv, APP1, "conv-watcher", room=room, role="audience", autosubscribe=False)
        await room_view.connect()
        task = call(conv, "StartAIConversation", start_params(conv, room, llm.url, SessionId="c-8201"))["TaskId"]
        d = call(conv, "DescribeAIConversation", {"TaskId": task})
        assert d["Status"] == "InProgress" and d["SessionId"] == "c-8201", d
        assert error_of(conv, "StartAIConversation", start_params(conv, room, llm.url, "conv-bot2",
                                                                  SessionId="c-8201"))[0] == "FailedOperation.TaskExist"
        robot = await play_robot(conv, room)
        # The welcome is spoken first; then the user asks.
        await wait_for(lambda: any(m["type"] == 10000 and m["payload"]["text"] == WELCOME for m in bot_messages(room_view)),
                       10, "the welcome subtitle")
        await asyncio.sleep(2.5)
        user = Publisher(conv, APP1, "conv-user", room=room, audio=MediaPlayer(str(question)).audio,
                         video=ColorVideoTrack((90, 90, 90), fps=5, width=160, height=120))
        try:
            await user.start()
            await wait_for(lambda: llm.requests, 30, "the LLM asked", step=0.2)
            await wait_for(lambda: any(m["type"] == 10000 and m["sender"] == "conv-bot" and m["payload"]["end"]
                                       and m["payload"]["text"] == ANSWER for m in bot_messages(room_view)),
                           20, f"the answer's subtitle (got {bot_messages(room_view)})", step=0.2)
            states = [m["payload"]["state"] for m in bot_messages(room_view) if m["type"] == 10001]
            await wait_for(lambda: [m["payload"]["state"] for m in bot_messages(room_view) if m["type"] == 10001][-1] == 1,
                           15, f"the robot listening again after speaking (states {states})", step=0.2)
        finally:
            await user.delete()
            await user.close()
        await asyncio.sleep(0.5)
        await robot.delete()
        await robot.close()
        req = llm.requests[0]
        assert req["body"]["model"] == "scripted" and req["body"]["stream"] is True
        assert req["body"]["messages"][-1] == {"role": "user", "content": QUESTION}, req["body"]
        assert req["headers"]["authorization"] == "Bearer sk-test-key"
        assert "x-invoke-llm" not in req["headers"]
        states = [m["payload"]["state"] for m in bot_messages(room_view) if m["type"] == 10001]
        assert 2 in states and 3 in states and states.index(2, 1) < len(states), states
        subs = [m for m in bot_messages(room_view) if m["type"] == 10000]
        assert any(m["sender"] == "conv-user" and m["payload"]["text"] == QUESTION and m["payload"]["end"] for m in subs), subs
        # The robot's audio, transcribed back, says the answer (the welcome may have gone by before
        # the viewer connected: its subtitle was checked).
        heard = transcribe(robot.samples(), [WELCOME, ANSWER, "weather is sunny today", "good morning everyone"])
        assert "weather is sunny today" in heard, heard
        call(conv, "StopAIConversation", {"TaskId": task})
        await wait_for(lambda: call(conv, "DescribeAIConversation", {"TaskId": task})["Status"] == "Stopped",
                       15, "the task to stop", step=0.5)
        assert error_of(conv, "StopAIConversation", {"TaskId": task})[0] == "FailedOperation.TaskNotExist"
        await room_view.close()

    try:
        run(body())
    finally:
        llm.close()


class ScriptedSpeech:
    """An OpenAI-compatible speech endpoint (`/v1/audio/speech`): renders `input` with espeak-ng
    and answers the WAV file. Requests are recorded."""

    def __init__(self):
        self.requests = []
        speech = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                speech.requests.append({"body": body, "headers": {k.lower(): v for k, v in self.headers.items()}})
                wav = subprocess.run(["espeak-ng", "--stdout", "-v", "en-us", body["input"]],
                                     check=True, capture_output=True).stdout
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(wav)))
                self.end_headers()
                self.wfile.write(wav)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1/audio/speech"

    def close(self):
        self.server.shutdown()


class ScriptedTranscription:
    """An OpenAI-compatible transcription endpoint (`/v1/audio/transcriptions`): reads the
    multipart form, recognizes the WAV file with PocketSphinx restricted to `phrases` and answers
    `{"text": …}`. Requests are recorded (fields, headers, the audio's length)."""

    def __init__(self, phrases: list[str]):
        self.requests = []
        stt = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                import email.parser
                import io
                import wave

                raw = self.rfile.read(int(self.headers["Content-Length"]))
                msg = email.parser.BytesParser().parsebytes(
                    f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + raw)
                fields, wav = {}, None
                for part in msg.get_payload():
                    name = part.get_param("name", header="content-disposition")
                    if name == "file":
                        wav = part.get_payload(decode=True)
                    else:
                        fields[name] = part.get_payload(decode=True).decode()
                with wave.open(io.BytesIO(wav)) as w:
                    rate, channels = w.getframerate(), w.getnchannels()
                    samples = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
                stt.requests.append({"fields": fields, "rate": rate, "channels": channels,
                                     "secs": len(samples) / rate,
                                     "headers": {k.lower(): v for k, v in self.headers.items()}})
                text = transcribe(np.concatenate([samples, np.zeros(16000, np.float32)]), phrases)
                body = json.dumps({"text": text}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1/audio/transcriptions"

    def close(self):
        self.server.shutdown()


def test_the_users_speech_through_an_openai_transcription_endpoint(conv, tmp_path):
    """STTType openai: each sentence of the user goes to the endpoint as a 16 kHz WAV file with
    the model and language; its text is the LLM's question and the user's subtitle."""
    room = 8215
    question = speech_wav(tmp_path / "q.wav", [QUESTION])
    llm = ScriptedLlm([ANSWER])
    stt = ScriptedTranscription([QUESTION, "good morning everyone"])

    async def body():
        watcher = WsClient(conv, APP1, "conv-watcher7", room=room, role="audience", autosubscribe=False)
        await watcher.connect()
        params = start_params(conv, room, llm.url)
        params["AgentConfig"]["WelcomeMessage"] = ""
        params["STTConfig"] = {"Language": "en", "VadSilenceTime": 600, "CustomParam": json.dumps(
            {"STTType": "openai", "APIUrl": stt.url, "APIKey": "sk-stt", "Model": "whisper-test"})}
        task = call(conv, "StartAIConversation", params)["TaskId"]
        user = Publisher(conv, APP1, "conv-user", room=room, audio=MediaPlayer(str(question)).audio,
                         video=ColorVideoTrack((90, 90, 90), fps=5, width=160, height=120))
        try:
            await user.start()
            await wait_for(lambda: llm.requests, 30, "the LLM asked", step=0.2)
        finally:
            await user.delete()
            await user.close()
        assert llm.requests[0]["body"]["messages"][-1] == {"role": "user", "content": QUESTION}
        req = stt.requests[0]
        assert req["fields"] == {"model": "whisper-test", "language": "en", "response_format": "json"}, req
        assert req["headers"]["authorization"] == "Bearer sk-stt"
        assert (req["rate"], req["channels"]) == (16000, 1) and 1.0 < req["secs"] < 5.0, req
        subs = [m for m in bot_messages(watcher) if m["type"] == 10000 and m["sender"] == "conv-user"]
        assert any(m["payload"]["text"] == QUESTION and m["payload"]["end"] for m in subs), subs
        call(conv, "StopAIConversation", {"TaskId": task})
        await watcher.close()

    try:
        run(body())
    finally:
        llm.close()
        stt.close()


def test_speech_engine_errors(conv):
    """An engine this server does not have, an endpoint without a URL or aimed where the address
    rules refuse, and a language the default engine does not know."""
    llm = ScriptedLlm(["unused"])

    def stt_config(**custom):
        return {"Language": "en", "CustomParam": json.dumps(custom)}

    try:
        for stt, want in [(stt_config(STTType="azure"), "FailedOperation.NotAbility"),
                          (stt_config(STTType="openai", APIKey="k"), "InvalidParameter"),
                          ({"Language": "zh"}, "FailedOperation.NotAbility"),
                          ({"Language": "xx"}, "InvalidParameter")]:
            assert error_of(conv, "StartAIConversation", start_params(conv, 8216, llm.url, STTConfig=stt))[0] == want, stt
        code, msg = error_of(conv, "StartAIConversation", start_params(
            conv, 8216, llm.url, STTConfig=stt_config(STTType="openai", APIKey="k",
                                                      APIUrl="http://169.254.169.254/v1/audio/transcriptions")))
        assert code.startswith("InvalidParameter") and "APIUrl" in msg, (code, msg)
    finally:
        llm.close()


@pytest.mark.parametrize("engine", ["espeak", "flite", "piper", "openai"])
def test_the_robot_speaks_with_each_voice_engine(conv, engine):
    """TTSType flite and piper (on the server) and openai (an OpenAI-compatible endpoint): the
    pushed text, transcribed back from the robot's audio track, is the text's words."""
    room = {"espeak": 8210, "flite": 8211, "piper": 8212, "openai": 8213}[engine]
    speech = ScriptedSpeech()
    llm = ScriptedLlm(["unused"])
    tts = {"TTSType": engine}
    if engine == "openai":
        tts.update({"APIUrl": speech.url, "APIKey": "sk-speech", "Model": "tts-test", "VoiceId": "nova",
                    "Speed": 1.0})

    async def body():
        params = start_params(conv, room, llm.url, TTSConfig=json.dumps(tts))
        params["AgentConfig"]["WelcomeMessage"] = ""
        task = call(conv, "StartAIConversation", params)["TaskId"]
        robot = await play_robot(conv, room)
        await asyncio.sleep(0.5)
        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "ServerPushText",
                                             "ServerPushText": {"Text": "good morning everyone"}})
        await wait_for(lambda: len(robot.frames) > 40, 15, "the robot's speech", step=0.1)
        await asyncio.sleep(3)
        heard = transcribe(robot.samples(), [WELCOME, "good morning everyone", QUESTION])
        assert "good morning everyone" in heard, heard
        if engine == "openai":
            req = speech.requests[0]
            assert req["headers"]["authorization"] == "Bearer sk-speech"
            assert req["body"] == {"model": "tts-test", "input": "good morning everyone", "voice": "nova",
                                   "speed": 1.0, "response_format": "wav"}, req["body"]
        call(conv, "StopAIConversation", {"TaskId": task})
        await robot.delete()
        await robot.close()

    try:
        run(body())
    finally:
        speech.close()
        llm.close()


def test_voice_engine_errors(conv):
    """A speech endpoint the address rules refuse, a vendor this server cannot reach and a
    voice an engine does not have are refused at the start and at an update."""
    llm = ScriptedLlm(["unused"])
    try:
        bad = {"TTSType": "openai", "APIUrl": "http://169.254.169.254/v1/audio/speech", "APIKey": "k"}
        code, msg = error_of(conv, "StartAIConversation", start_params(conv, 8214, llm.url, TTSConfig=json.dumps(bad)))
        assert code.startswith("InvalidParameter") and "TTSConfig.APIUrl" in msg, (code, msg)
        for cfg, want in [({"TTSType": "tencent", "AppId": 1, "VoiceType": 1008}, "FailedOperation.NotAbility"),
                          ({"TTSType": "flite", "VoiceId": "nobody"}, "InvalidParameter"),
                          ({"TTSType": "openai", "APIKey": "k"}, "InvalidParameter")]:
            assert error_of(conv, "StartAIConversation",
                            start_params(conv, 8214, llm.url, TTSConfig=json.dumps(cfg)))[0] == want, cfg
    finally:
        llm.close()


def test_conversation_errors(conv, media):
    room = 8202
    llm = ScriptedLlm(["ok."])
    try:
        def start(**over):
            return error_of(conv, "StartAIConversation", start_params(conv, room, llm.url, **over))

        assert start(LLMConfig="{broken")[0] == "InvalidParameter"
        assert start(LLMConfig=json.dumps({"LLMType": "openai", "Model": "m", "APIKey": "k"}))[0] == "InvalidParameter"
        assert start(LLMConfig=json.dumps({"LLMType": "other", "Model": "m", "APIKey": "k", "APIUrl": llm.url}))[0] \
            == "FailedOperation.NotAbility"
        code, message = start(TTSConfig=json.dumps({"TTSType": "tencent", "AppId": 1, "SecretId": "x",
                                                    "SecretKey": "y", "VoiceType": 1008}))
        assert code == "FailedOperation.NotAbility" and "espeak" in message
        assert start(TTSConfig=json.dumps({"TTSType": "flow", "VoiceId": "v", "Model": "flow_01_turbo"}))[0] \
            == "FailedOperation.NotAbility"
        assert start(STTConfig={"Language": "zh"})[0] == "FailedOperation.NotAbility"
        bad_sig = start_params(conv, room, llm.url)
        bad_sig["AgentConfig"]["UserSig"] = usersig(conv, APP1, "someone")
        assert error_of(conv, "StartAIConversation", bad_sig)[0] == "InvalidParameter.UserSig"
        assert error_of(conv, "StartAIConversation", {**start_params(conv, room, llm.url), "SdkAppId": APP2})[0] \
            == "FailedOperation.SdkAppIdNotUnderAppId"
        assert error_of(conv, "DescribeAIConversation", {"TaskId": "nope"})[0] == "FailedOperation.TaskNotExist"
        assert error_of(conv, "StopAIConversation", {"TaskId": "nope"})[0] == "FailedOperation.TaskNotExist"
        # A server whose outbound rules do not allow loopback refuses the LLM URL up front.
        code, message = error_of(media, "StartAIConversation", start_params(media, room, llm.url))
        assert code == "InvalidParameter" and "loopback" in message, message
    finally:
        llm.close()


class SpeechTrack:
    """A microphone the test speaks into: 20 ms frames of what was queued, silence otherwise."""

    def __init__(self):
        from aiortc import MediaStreamTrack

        outer = self

        class Track(MediaStreamTrack):
            kind = "audio"

            async def recv(self):
                return await outer._next()

        self.track = Track()
        self.queue = np.zeros(0, np.int16)
        self.n = 0
        self.start: float | None = None

    def say(self, wav: Path) -> float:
        """Queues the file's speech; returns when it starts playing (monotonic s, estimated)."""
        import wave as wavmod

        with wavmod.open(str(wav)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
        t = np.arange(0, len(pcm) / rate, 1 / 48000)
        resampled = np.interp(t, np.arange(len(pcm)) / rate, pcm).astype(np.int16)
        # Leading silence (1.5 s) is skipped: the speech starts at the next frame.
        lead = int(1.5 * 48000)
        self.queue = np.concatenate([self.queue, resampled[lead:]])
        return time.monotonic()

    async def _next(self):
        from av import AudioFrame
        import fractions

        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.n * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk, self.queue = self.queue[:960], self.queue[960:]
        if len(chunk) < 960:
            chunk = np.concatenate([chunk, np.zeros(960 - len(chunk), np.int16)])
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self.n += 1
        return frame


LONG_ANSWER = ("Today will be sunny and warm. The morning starts cool. Clouds come in the afternoon. "
               "A light wind blows from the west. The evening stays clear and calm. Tomorrow brings rain.")


def test_the_user_talking_over_the_robot_interrupts_it(conv, tmp_path):
    room = 8203
    question = speech_wav(tmp_path / "q.wav", [QUESTION])
    talk_over = speech_wav(tmp_path / "over.wav", ["good morning everyone"])
    llm = ScriptedLlm([LONG_ANSWER, "Good morning."], delay=0.01)

    async def body():
        watcher = WsClient(conv, APP1, "conv-watcher2", room=room, role="audience", autosubscribe=False)
        await watcher.connect()
        params = start_params(conv, room, llm.url)
        params["AgentConfig"]["WelcomeMessage"] = ""
        task = call(conv, "StartAIConversation", params)["TaskId"]
        robot = await play_robot(conv, room)
        mic = SpeechTrack()
        user = Publisher(conv, APP1, "conv-user", room=room, audio=mic.track,
                         video=ColorVideoTrack((90, 90, 90), fps=5, width=160, height=120))
        await user.start()
        try:
            await asyncio.sleep(1)
            mic.say(question)
            # Once the robot speaks (its second sentence, so that a sentence was whole), talk over it.
            def speaking_for(secs):
                return sum(1 for t, _ in robot.frames) * 0.02 >= secs

            await wait_for(lambda: len(llm.requests) == 1, 20, "the question asked", step=0.1)
            await wait_for(lambda: speaking_for(3.5), 20, "the robot speaking", step=0.05)
            said_at = mic.say(talk_over)
            threshold = said_at + 0.5  # InterruptSpeechDuration
            await wait_for(lambda: any(m["type"] == 10001 and m["payload"]["state"] == 4 for m in bot_messages(watcher)),
                           10, "the robot interrupted", step=0.05)
            await wait_for(lambda: len(llm.requests) == 2, 20, "the next question asked", step=0.1)
            await asyncio.sleep(1)
        finally:
            await user.delete()
            await user.close()
        await robot.delete()
        await robot.close()
        # The robot's audio stopped within 500 ms of the user having spoken for
        # InterruptSpeechDuration (counted from when the test queued the speech).
        # When the answer stopped: its last loud frame (the next answer is asked for later).
        asked_again = llm.requests[1]["at"]
        stopped = max(t for t, a in robot.arrivals
                      if t < asked_again and float(np.sqrt(np.mean(a ** 2))) > 300)
        assert stopped - threshold <= 0.5, (stopped - threshold)
        print(f"the robot's audio stopped {stopped - threshold:.3f} s after the user had spoken 500 ms")
        # HistoryMode 1: the next request's history holds only what was spoken of the answer.
        second = llm.requests[1]["body"]["messages"]
        assert [m["role"] for m in second] == ["user", "assistant", "user"], second
        spoken = second[1]["content"]
        assert spoken and LONG_ANSWER.startswith(spoken.split(".")[0]), spoken
        assert "Tomorrow brings rain" not in spoken and len(spoken) < len(LONG_ANSWER), spoken
        assert second[2] == {"role": "user", "content": "good morning everyone"}
        call(conv, "StopAIConversation", {"TaskId": task})
        await watcher.close()

    try:
        run(body())
    finally:
        llm.close()


def test_interrupt_mode_1_the_users_client_stops_the_robot(conv):
    """InterruptMode 1: the target user's client sends TRTC's interrupt signal (CmdId 2, type
    20001); the robot's audio stops at once. A signal addressed to another robot, or sent by
    another user, does not stop it."""
    room = 8206
    llm = ScriptedLlm([LONG_ANSWER], delay=0.01)

    async def body():
        watcher = WsClient(conv, APP1, "conv-watcher6", room=room, role="audience", autosubscribe=False)
        await watcher.connect()
        other = WsClient(conv, APP1, "conv-other", room=room, autosubscribe=False)
        await other.connect()
        user = WsClient(conv, APP1, "conv-user", room=room, autosubscribe=False)
        await user.connect()
        params = start_params(conv, room, llm.url)
        params["AgentConfig"].update({"WelcomeMessage": "", "InterruptMode": 1})
        task = call(conv, "StartAIConversation", params)["TaskId"]
        robot = await play_robot(conv, room)

        def loud_at():
            return loud_times(robot)

        def states():
            return bot_states(watcher)

        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "InvokeLLM",
                                             "InvokeLLM": {"Content": QUESTION}})
        await wait_for(lambda: len(loud_at()) > 50, 20, "the robot speaking", step=0.05)
        # Not for this robot, or not from its user: it talks on.
        await user.send(interrupt_signal(["another-bot"]))
        await other.send(interrupt_signal(["conv-bot"]))
        await asyncio.sleep(1.5)
        assert 4 not in states(), states()
        assert loud_at()[-1] > time.monotonic() - 0.8, "the robot stopped without the signal"
        sent = time.monotonic()
        await user.send(interrupt_signal(["conv-bot"]))
        await wait_for(lambda: 4 in states(), 5, "the robot interrupted", step=0.02)
        await asyncio.sleep(1.5)
        stopped = loud_at()[-1]
        assert stopped - sent <= 0.5, stopped - sent
        print(f"the robot's audio stopped {stopped - sent:.3f} s after the client's signal")
        assert call(conv, "DescribeAIConversation", {"TaskId": task})["Status"] == "InProgress"
        call(conv, "StopAIConversation", {"TaskId": task})
        await robot.delete()
        await robot.close()
        for c in (user, other, watcher):
            await c.close()

    try:
        run(body())
    finally:
        llm.close()


def test_push_text_priority_audio_and_metainfo(conv, tmp_path):
    """ServerPushText Priority 1 is not interrupted by the user's client; a server Interrupt
    still stops it. MetaInfo and the LLM's `metainfo` reach the room as type 10002 messages.
    Audio is played instead of a text: transcribed back from the robot's track."""
    room = 8207
    llm = ScriptedLlm(["Sunny."], delay=0.01, meta={"card": "weather", "temp": 21})
    audio = speech_wav(tmp_path / "a.wav", ["good morning everyone"])

    async def body():
        watcher = WsClient(conv, APP1, "conv-watcher8", room=room, role="audience", autosubscribe=False)
        await watcher.connect()
        user = WsClient(conv, APP1, "conv-user", room=room, autosubscribe=False)
        await user.connect()
        params = start_params(conv, room, llm.url)
        params["AgentConfig"].update({"WelcomeMessage": "", "InterruptMode": 1})
        task = call(conv, "StartAIConversation", params)["TaskId"]
        robot = await play_robot(conv, room)

        def states():
            return bot_states(watcher)

        def metas():
            return [m for m in bot_messages(watcher) if m["type"] == 10002]

        def loud_at():
            return loud_times(robot)

        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "ServerPushText", "ServerPushText": {
            "Text": LONG_ANSWER, "Priority": 1, "MetaInfo": json.dumps({"slide": 3})}})
        await wait_for(lambda: len(loud_at()) > 50, 20, "the robot speaking", step=0.05)
        await user.send(interrupt_signal(["conv-bot"]))
        await asyncio.sleep(1.5)
        assert 4 not in states(), states()
        assert loud_at()[-1] > time.monotonic() - 0.8, "the protected text was cut by the user"
        assert [m["payload"] for m in metas()] == [{"slide": 3}], metas()
        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "ServerPushText",
                                             "ServerPushText": {"Text": "hello world", "Interrupt": True}})
        await wait_for(lambda: 4 in states(), 5, "the server's interrupt", step=0.05)
        # The LLM's metainfo comes to the room with its round.
        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "InvokeLLM",
                                             "InvokeLLM": {"Content": QUESTION}})
        await wait_for(lambda: len(metas()) == 2, 10, "the LLM's metainfo", step=0.05)
        assert metas()[1]["payload"] == {"card": "weather", "temp": 21} and metas()[1]["roundid"], metas()
        await asyncio.sleep(2)
        # Audio instead of a text.
        start = len(robot.frames)
        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "ServerPushText", "ServerPushText": {
            "Audio": base64.b64encode(audio.read_bytes()).decode()}})
        await wait_for(lambda: len(robot.frames) - start > 60, 10, "the pushed audio", step=0.1)
        await asyncio.sleep(3)
        robot.frames = robot.frames[start:]
        heard = transcribe(robot.samples(), [WELCOME, "good morning everyone", QUESTION])
        assert "good morning everyone" in heard, heard
        for bad in [{"Audio": "not base64!"}, {"MetaInfo": "[1]", "Text": "x"}, {"Priority": 2, "Text": "x"}]:
            assert error_of(conv, "ControlAIConversation", {"TaskId": task, "Command": "ServerPushText",
                                                            "ServerPushText": bad})[0].startswith("InvalidParameter"), bad
        call(conv, "StopAIConversation", {"TaskId": task})
        await robot.delete()
        await robot.close()
        for c in (user, watcher):
            await c.close()

    try:
        run(body())
    finally:
        llm.close()


def test_an_llm_that_fails_is_reported_and_the_robot_listens_on(conv, tmp_path):
    room = 8204
    question = speech_wav(tmp_path / "q.wav", [QUESTION])
    llm = ScriptedLlm([], status=500)

    async def body():
        watcher = WsClient(conv, APP1, "conv-watcher3", room=room, role="audience", autosubscribe=False)
        await watcher.connect()
        task = call(conv, "StartAIConversation", start_params(conv, room, llm.url))["TaskId"]
        user = Publisher(conv, APP1, "conv-user", room=room, audio=MediaPlayer(str(question)).audio,
                         video=ColorVideoTrack((90, 90, 90), fps=5, width=160, height=120))
        await user.start()
        try:
            await wait_for(lambda: any(m["type"] == 10001 and "HTTP 500" in m["payload"].get("error", "")
                                       for m in bot_messages(watcher)), 30,
                           f"the failure in a state message (got {bot_messages(watcher)})", step=0.2)
        finally:
            await user.delete()
            await user.close()
        failed = [m for m in bot_messages(watcher) if m["type"] == 10001 and m["payload"].get("error")]
        assert failed[-1]["payload"]["state"] == 1, "the robot listens on"
        assert "sk-test-key" not in json.dumps(bot_messages(watcher))
        assert call(conv, "DescribeAIConversation", {"TaskId": task})["Status"] == "InProgress"
        assert "sk-test-key" not in conv.stderr()
        call(conv, "StopAIConversation", {"TaskId": task})
        await watcher.close()

    try:
        run(body())
    finally:
        llm.close()


def test_control_push_text_invoke_llm_and_update(conv):
    room = 8205
    llm1 = ScriptedLlm([LONG_ANSWER, "Sunny."], delay=0.01)
    llm2 = ScriptedLlm(["From the second model."], delay=0.01)

    async def body():
        watcher = WsClient(conv, APP1, "conv-watcher4", room=room, role="audience", autosubscribe=False)
        await watcher.connect()
        params = start_params(conv, room, llm1.url)
        params["AgentConfig"]["WelcomeMessage"] = ""
        task = call(conv, "StartAIConversation", params)["TaskId"]

        def said(text):
            return any(m["type"] == 10000 and m["sender"] == "conv-bot" and m["payload"]["text"] == text
                       and m["payload"]["end"] for m in bot_messages(watcher))

        def states():
            return [m["payload"]["state"] for m in bot_messages(watcher) if m["type"] == 10001]

        # InvokeLLM: a round the server starts; the request carries X-Invoke-LLM: 1.
        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "InvokeLLM",
                                             "InvokeLLM": {"Content": QUESTION}})
        await wait_for(lambda: llm1.requests, 10, "the invoked LLM request", step=0.1)
        assert llm1.requests[0]["headers"].get("x-invoke-llm") == "1"
        assert llm1.requests[0]["body"]["messages"][-1] == {"role": "user", "content": QUESTION}
        await wait_for(lambda: 3 in states(), 10, "the robot speaking the long answer", step=0.05)
        await asyncio.sleep(1.5)
        # ServerPushText with Interrupt: said at once, over the long answer.
        pushed_at = time.monotonic()
        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "ServerPushText",
                                             "ServerPushText": {"Text": "good morning everyone", "Interrupt": True}})
        await wait_for(lambda: said("good morning everyone"), 5, "the pushed text", step=0.02)
        assert time.monotonic() - pushed_at < 2.0
        assert 4 in states(), states()
        # UpdateAIConversation: the next round asks the second model.
        call(conv, "UpdateAIConversation", {"TaskId": task, "LLMConfig": json.dumps(
            {"LLMType": "openai", "Model": "second", "APIKey": "k2", "APIUrl": llm2.url})})
        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "InvokeLLM",
                                             "InvokeLLM": {"Content": "good morning everyone", "Interrupt": True}})
        await wait_for(lambda: llm2.requests, 10, "the second model asked", step=0.1)
        assert llm2.requests[0]["body"]["model"] == "second" and len(llm1.requests) == 1
        await wait_for(lambda: said("From the second model."), 10, "the second model's answer", step=0.1)
        # Errors.
        assert error_of(conv, "ControlAIConversation", {"TaskId": task, "Command": "Dance"})[0] == "InvalidParameter"
        assert error_of(conv, "ControlAIConversation", {"TaskId": task, "Command": "ServerPushText"})[0] \
            == "InvalidParameter"
        assert error_of(conv, "ControlAIConversation", {"TaskId": "nope", "Command": "ServerPushText",
                                                        "ServerPushText": {"Text": "x"}})[0] == "FailedOperation.TaskNotExist"
        assert error_of(conv, "UpdateAIConversation", {"TaskId": task, "InterruptMode": 2})[0] \
            == "InvalidParameter.OutOfRange"
        assert error_of(conv, "UpdateAIConversation", {"TaskId": "nope", "InterruptSpeechDuration": 300})[0] \
            == "FailedOperation.TaskNotExist"
        assert error_of(conv, "UpdateAIConversation", {"TaskId": task, "LLMConfig": "{broken"})[0] == "InvalidParameter"
        # StopAfterPlay: the task ends once the text is said.
        await asyncio.sleep(1)
        call(conv, "ControlAIConversation", {"TaskId": task, "Command": "ServerPushText",
                                             "ServerPushText": {"Text": "hello world", "Interrupt": True,
                                                                "StopAfterPlay": True}})
        await wait_for(lambda: call(conv, "DescribeAIConversation", {"TaskId": task})["Status"] == "Stopped",
                       15, "the task to end after the text", step=0.3)
        assert said("hello world")
        await watcher.close()

    try:
        run(body())
    finally:
        llm1.close()
        llm2.close()
