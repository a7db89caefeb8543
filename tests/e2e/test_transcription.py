"""Real-time transcription (StartAITranscription, DescribeAITranscription, StopAITranscription)
through the official Python SDK: speech made with espeak-ng is published by an aiortc user, and a
room member receives the robot's subtitles as custom messages (CmdId 1, TRTC's type 10000), partial
results first, then each sentence word for word (recognition restricted to the HotWordList's
phrases). Then de-duplication, Describe by TaskId and SessionId, Stop, and the documented errors."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import wave
from pathlib import Path

import pytest
from aiortc.contrib.media import MediaPlayer
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import APP1, APP2, Hearth, sdk_client
from media import ColorVideoTrack, Publisher, run, usersig, wait_for
from test_media import media  # noqa: F401 - `media` is a fixture
from speech import synthesize
from ws_client import WsClient

PHRASES = ["turn on the kitchen lights", "what is the weather today", "good morning everyone"]
SPOKEN = PHRASES[:2]


def speech_wav(path: Path, sentences: list[str], voice: str = "espeak") -> Path:
    """espeak-ng's (or flite's) voice saying each sentence, 1.5 s of silence before, between and
    after."""
    frames, rate = [], None
    for i, s in enumerate(sentences):
        part = synthesize(path.with_suffix(f".{i}.wav"), s, voice)
        with wave.open(str(part)) as w:
            rate = w.getframerate()
            frames.append(w.readframes(w.getnframes()))
    silence = b"\0\0" * int(rate * 1.5)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(silence + silence.join(frames) + silence * 2)
    return path


def call(h: Hearth, action: str, params: dict, cred=None) -> dict:
    return sdk_client(h, cred).call_json(action, params)["Response"]


def error_of(h: Hearth, action: str, params: dict, cred=None) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        call(h, action, params, cred)
    return info.value.code


def start_params(h: Hearth, room: int, bot: str = "stt-bot", **extra) -> dict:
    p = {"SdkAppId": APP1, "RoomId": str(room),
         "TranscriptionParams": {"UserId": bot, "UserSig": usersig(h, APP1, bot), "MaxIdleTime": 30},
         "RecognizeConfig": {"Language": "en", "HotWordList": ",".join(f"{x}|10" for x in PHRASES),
                             "VadSilenceTime": 600}}
    p.update(extra)
    return p


def subtitles(c: WsClient) -> list[dict]:
    out = []
    for m in c.messages:
        if m["type"] == "custom" and m["cmdid"] == 1:
            out.append({"from": m["userid"], **json.loads(base64.b64decode(m["data"]))})
    return out


def test_speech_in_the_room_comes_back_as_subtitles(media, tmp_path):
    room = 8101
    wav = speech_wav(tmp_path / "speech.wav", SPOKEN)

    async def body():
        viewer = WsClient(media, APP1, "stt-viewer", room=room, role="audience")
        await viewer.connect()
        task = call(media, "StartAITranscription", start_params(media, room, SessionId="s-8101"))["TaskId"]
        d = call(media, "DescribeAITranscription", {"TaskId": task})
        assert d["Status"] == "InProgress" and d["SessionId"] == "s-8101", d
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", d["StartTime"]), d
        by_session = call(media, "DescribeAITranscription", {"TaskId": "", "SdkAppId": APP1, "SessionId": "s-8101"})
        assert by_session["TaskId"] == task
        # One task per SessionId; without one, one whole-room task per room.
        assert error_of(media, "StartAITranscription", start_params(media, room, "stt-bot2", SessionId="s-8101")) \
            == "FailedOperation.TaskExist"
        assert error_of(media, "StartAITranscription", start_params(media, room, "stt-bot")) \
            == "FailedOperation.TaskExist"

        player = MediaPlayer(str(wav))
        speaker = Publisher(media, APP1, "stt-speaker", room=room, audio=player.audio,
                            video=ColorVideoTrack((90, 90, 90), fps=5, width=160, height=120))
        try:
            await speaker.start()

            def finals():
                return [s for s in subtitles(viewer) if s["payload"]["end"]]

            await wait_for(lambda: len(finals()) >= len(SPOKEN), 40,
                           f"the spoken sentences as final subtitles (got {subtitles(viewer)})", step=0.2)
        finally:
            await speaker.delete()
            await speaker.close()
        subs = subtitles(viewer)
        finals = [s for s in subs if s["payload"]["end"]]
        assert [s["payload"]["text"] for s in finals] == SPOKEN, subs
        for s in subs:
            assert s["type"] == 10000 and s["sender"] == "stt-speaker" and s["receiver"] == [], s
            assert s["from"] == "stt-bot", "the robot sends them"
            assert s["payload"]["language"] == "en"
            assert re.fullmatch(r"\d\d:\d\d:\d\d", s["payload"]["start_time"]), s
        for f in finals:
            # Partial results of the same sentence came first.
            round_id = f["payload"]["roundid"]
            partials = [s for s in subs if s["payload"]["roundid"] == round_id and not s["payload"]["end"]]
            assert partials and subs.index(partials[0]) < subs.index(f), (round_id, subs)
            assert f["payload"]["start_time"] <= f["payload"]["end_time"]
        assert finals[0]["payload"]["roundid"] != finals[1]["payload"]["roundid"]

        call(media, "StopAITranscription", {"TaskId": task})
        await wait_for(lambda: call(media, "DescribeAITranscription", {"TaskId": task})["Status"] == "Stopped",
                       15, "the task to stop", step=0.5)
        assert error_of(media, "StopAITranscription", {"TaskId": task}) == "FailedOperation.TaskNotExist"
        await viewer.close()

    run(body())


def test_transcription_errors(media):
    room = 8102
    assert error_of(media, "StartAITranscription",
                    start_params(media, room, RecognizeConfig={"Language": "zh"})) == "FailedOperation.NotAbility"
    assert error_of(media, "StartAITranscription",
                    start_params(media, room, RecognizeConfig={"Language": "xx"})) == "InvalidParameter"
    bad_sig = start_params(media, room)
    bad_sig["TranscriptionParams"]["UserSig"] = usersig(media, APP1, "someone-else")
    assert error_of(media, "StartAITranscription", bad_sig) == "InvalidParameter.UserSig"
    no_target = start_params(media, room)
    no_target["TranscriptionParams"]["TranscriptionMode"] = 1
    assert error_of(media, "StartAITranscription", no_target) == "InvalidParameter"
    assert error_of(media, "StartAITranscription", {**start_params(media, room), "SdkAppId": APP2}) \
        == "FailedOperation.SdkAppIdNotUnderAppId"
    assert error_of(media, "StartAITranscription", start_params(media, room, RoomId="")).startswith("MissingParameter")
    assert error_of(media, "StartAITranscription",
                    start_params(media, room, RecognizeConfig={"VadSilenceTime": 100})).startswith("InvalidParameter")
    assert error_of(media, "DescribeAITranscription", {"TaskId": "no-such-task"}) == "FailedOperation.TaskNotExist"
    assert error_of(media, "DescribeAITranscription", {"TaskId": ""}) == "InvalidParameter.TaskId"
    assert error_of(media, "StopAITranscription", {"TaskId": "no-such-task"}) == "FailedOperation.TaskNotExist"
    # Another credential's task is not visible.
    task = call(media, "StartAITranscription", start_params(media, room))["TaskId"]
    try:
        assert error_of(media, "DescribeAITranscription", {"TaskId": task}, media.cred2) == "FailedOperation.TaskNotExist"
        assert error_of(media, "StopAITranscription", {"TaskId": task}, media.cred2) == "FailedOperation.TaskNotExist"
    finally:
        call(media, "StopAITranscription", {"TaskId": task})
    run(asyncio.sleep(0.5))


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


async def transcribe_in_room(h, room: int, wav: Path, sentences: int, timeout: float):
    """A whole-room transcription while an aiortc user plays `wav`, until `sentences` final
    subtitles came; returns (the task, the listener, every subtitle it got)."""
    viewer = WsClient(h, APP1, "stt-viewer", room=room, role="audience")
    await viewer.connect()
    params = start_params(h, room)
    params["RecognizeConfig"] = {"Language": "en", "VadSilenceTime": 600}
    task = call(h, "StartAITranscription", params)["TaskId"]
    speaker = Publisher(h, APP1, "stt-speaker", room=room, audio=MediaPlayer(str(wav)).audio,
                        video=ColorVideoTrack((90, 90, 90), fps=5, width=160, height=120))
    try:
        await speaker.start()
        await wait_for(lambda: len([s for s in subtitles(viewer) if s["payload"]["end"]]) >= sentences, timeout,
                       f"the sentences as final subtitles (got {subtitles(viewer)})", step=0.2)
    finally:
        await speaker.delete()
        await speaker.close()
    return task, viewer, subtitles(viewer)


def test_whisper_transcribes_open_vocabulary_speech(tmp_path_factory, tmp_path):
    """A server whose speech engine is Whisper (ai.stt_engine): sentences nobody listed as hot
    words come back word for word, partial results first; a language PocketSphinx does not know
    is accepted."""
    from conftest import start_hearth, stop_hearth

    h = start_hearth(tmp_path_factory.mktemp("hearth-whisper"), "whisper", rate_limits=False,
                     env={"HEARTH_AI_STT_ENGINE": "whisper"})
    spoken = ["we will meet at the station at noon", "please send the report by friday"]
    wav = speech_wav(tmp_path / "speech.wav", spoken, voice="flite")
    room = 8104

    async def body():
        task, viewer, subs = await transcribe_in_room(h, room, wav, len(spoken), 60)
        finals = [s for s in subs if s["payload"]["end"]]
        assert [words(s["payload"]["text"]) for s in finals] == spoken, subs
        first = finals[0]["payload"]["roundid"]
        partials = [s for s in subs if s["payload"]["roundid"] == first and not s["payload"]["end"]]
        assert partials and subs.index(partials[0]) < subs.index(finals[0]), subs
        call(h, "StopAITranscription", {"TaskId": task})
        # Whisper knows Chinese; PocketSphinx does not (the other server refuses it).
        params = start_params(h, room + 1)
        params["RecognizeConfig"] = {"Language": "zh"}
        zh = call(h, "StartAITranscription", params)["TaskId"]
        call(h, "StopAITranscription", {"TaskId": zh})
        await viewer.close()

    try:
        run(body())
    finally:
        stop_hearth(h)


def test_a_server_whose_engine_is_an_openai_transcription_endpoint(tmp_path_factory, tmp_path):
    """ai.stt_engine openai: each sentence of each speaker goes to the server's transcription
    endpoint (a scripted one here, which recognizes the WAV it gets), and its text is the final
    subtitle."""
    from conftest import start_hearth, stop_hearth
    from test_conversation import ScriptedTranscription

    stt = ScriptedTranscription(SPOKEN)
    h = start_hearth(tmp_path_factory.mktemp("hearth-stt-endpoint"), "stt-endpoint", rate_limits=False,
                     env={"HEARTH_AI_STT_ENGINE": "openai", "HEARTH_AI_STT_URL": stt.url,
                          "HEARTH_AI_STT_KEY": "sk-server", "HEARTH_OUTBOUND_ALLOW": "127.0.0.0/8"})
    wav = speech_wav(tmp_path / "speech.wav", SPOKEN)
    room = 8106

    async def body():
        task, viewer, subs = await transcribe_in_room(h, room, wav, len(SPOKEN), 40)
        finals = [s["payload"]["text"] for s in subs if s["payload"]["end"]]
        assert finals == SPOKEN, subs
        assert len(stt.requests) == len(SPOKEN)
        assert stt.requests[0]["headers"]["authorization"] == "Bearer sk-server"
        assert stt.requests[0]["fields"]["model"] == "whisper-1"
        call(h, "StopAITranscription", {"TaskId": task})
        await viewer.close()

    try:
        run(body())
    finally:
        stop_hearth(h)
        stt.close()


def test_a_server_without_its_speech_engine_says_so(tmp_path_factory):
    from conftest import start_hearth, stop_hearth

    h = start_hearth(tmp_path_factory.mktemp("hearth-no-stt"), "no-stt", rate_limits=False,
                     env={"HEARTH_AI_STT_PYTHON": "/usr/bin/false"})
    try:
        with pytest.raises(TencentCloudSDKException) as info:
            call(h, "StartAITranscription", start_params(h, 8103))
        assert info.value.code == "FailedOperation", info.value
        assert "speech engine" in info.value.message, info.value.message
        assert error_of(h, "DescribeAITranscription", {"TaskId": "x"}) == "FailedOperation.TaskNotExist"
    finally:
        stop_hearth(h)
