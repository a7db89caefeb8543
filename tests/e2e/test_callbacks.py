"""Event callbacks to an app's server, as a third party receives them: receivers started here
check `Sign` with TRTC's algorithm (base64 of HMAC-SHA256 of the raw body with the app's key)
and record every request. An aiortc user enters a room, publishes and leaves: the room and media
events arrive in order. Then the faults: a receiver that is down for 30 s, a `kill -9` of Hearth
with events queued, a slow receiver of one app beside another app's, a receiver that answers
500 until the retry horizon, and a URL changed in the configuration file without a restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from conftest import APP1, APP2, free_port, start_hearth, stop_hearth
from media import AudioOnly, Publisher, run, wait_for
from ws_client import WsClient

KEY1 = "hearthKey1"
KEY2 = "otherAppKey2"


class Receiver:
    """An app's callback server. `status` is what it answers (200 unless told), `delay` how
    long it takes; `stop()` and `start()` take it off the network and back on the same port."""

    def __init__(self, key: str, port: int | None = None):
        self.key, self.port = key, port or free_port()
        self.requests: list[dict] = []
        self.status, self.delay = 200, 0.0
        self.server = None
        self.start()

    def start(self):
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                expected = base64.b64encode(hmac.new(rx.key.encode(), raw, hashlib.sha256).digest()).decode()
                rx.requests.append({"at": time.monotonic(), "raw": raw, "body": json.loads(raw),
                                    "sign_ok": self.headers.get("Sign") == expected,
                                    "app": self.headers.get("SdkAppId"), "path": self.path})
                if rx.delay:
                    time.sleep(rx.delay)
                self.send_response(rx.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"code":0}')

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/trtc") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def events(self, room=None) -> list[dict]:
        return [r["body"] for r in self.requests
                if room is None or r["body"]["EventInfo"].get("RoomId") == room]

    def types(self, room=None) -> list[int]:
        return [b["EventType"] for b in self.events(room)]


def settings(**callbacks) -> dict:
    return {"outbound": {"allow": '["127.0.0.0/8"]'}, "callbacks": callbacks}


def metrics(h) -> dict[str, float]:
    text = requests.get(f"http://{h.host}/metrics", timeout=5).text
    out = {}
    for m in re.finditer(r'^(hearth_callbacks[a-z_]*(?:\{[^}]*\})?) (\d+)$', text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


async def visit(h, app: int, user: str, room, *, audio_only: bool = False, secs: float = 2.0):
    """A user enters `room` (numeric, or a string room), publishes for `secs` and leaves."""
    where = {"strroom": room} if isinstance(room, str) else {"room": room}
    cls = AudioOnly if audio_only else Publisher
    p = cls(h, app, user, **where)
    await p.start()
    await asyncio.sleep(secs)
    await p.delete()
    await p.close()


def test_room_and_media_events_arrive_signed_and_in_order(tmp_path):
    a, b = Receiver(KEY1), Receiver(KEY2)
    h = start_hearth(tmp_path, "callbacks", rate_limits=False, settings=settings(),
                     callbacks={APP1: {"key": KEY1, "room": a.url("/room"), "media": a.url("/media")},
                                APP2: {"key": KEY2, "media": b.url()}})
    try:
        run(visit(h, APP1, "cb-alice", 9101))
        run(wait_for(lambda: 102 in a.types(9101), 15, f"the room's end (got {a.types(9101)})"))
        types = a.types(9101)
        assert types[:2] == [101, 103] and types[-2:] == [104, 102], types
        assert sorted(types[2:-2]) == [201, 203], types
        for r in a.requests:
            assert r["sign_ok"] and r["app"] == str(APP1), r
            assert r["path"] == ("/room" if r["body"]["EventGroupId"] == 1 else "/media"), r
            assert r["body"]["EventGroupId"] == (1 if r["body"]["EventType"] < 200 else 2)
            assert abs(r["body"]["CallbackTs"] / 1000 - time.time()) < 60
        events = {e["EventType"]: e["EventInfo"] for e in a.events(9101)}
        entered = events[103]
        assert entered["UserId"] == "cb-alice" and entered["Role"] == 20 and entered["Reason"] == 1, entered
        assert entered["EventMsTs"] // 1000 == entered["EventTs"] and entered["UserType"] == 1, entered
        assert events[104]["Reason"] == 1 and events[104]["Role"] == 20, events[104]
        assert len({e["EventInfo"]["UniqueId"] for e in a.events(9101)}) == len(types), "UniqueIds repeat"
        assert events[101]["UserId"] == "cb-alice" and events[101]["RoomId"] == 9101
        # A string room id is a string; an app listens only to its groups (APP2: media only).
        run(visit(h, APP2, "cb-bob", "cb-room", audio_only=True))
        run(wait_for(lambda: b.types("cb-room"), 15, f"APP2's media events (got {b.events()})"))
        run(asyncio.sleep(1.5))
        # Leaving is 104 only (TRTC: no 202/204 for an exit), which APP2 does not listen to.
        assert b.types("cb-room") == [203], b.types("cb-room")
        assert all(r["sign_ok"] and r["app"] == str(APP2) for r in b.requests)
        assert not a.events("cb-room"), "APP1's receiver heard of APP2's room"

        # A WebSocket anchor mutes its camera (202), unpublishes its microphone (204), becomes
        # audience (105, Role 21) and leaves (104 with that role).
        async def anchor():
            c = WsClient(h, APP1, "cb-frank", room=9103)
            await c.connect()
            await c.publish()
            await wait_for(lambda: {201, 203} <= set(a.types(9103)), 15, f"published (got {a.types(9103)})")
            await c.send({"type": "mute", "source": "camera", "muted": True})
            await wait_for(lambda: 202 in a.types(9103), 10, "the camera muted")
            await c.send({"type": "unpublish", "source": "mic"})
            await wait_for(lambda: 204 in a.types(9103), 10, "the microphone unpublished")
            await c.send({"type": "role", "role": "audience"})
            await wait_for(lambda: 105 in a.types(9103), 10, "the role switch")
            await c.close()
            await wait_for(lambda: 102 in a.types(9103), 10, "the room's end")

        run(anchor())
        assert a.types(9103) == [101, 103, 201, 203, 202, 204, 105, 104, 102] or \
            a.types(9103) == [101, 103, 203, 201, 202, 204, 105, 104, 102], a.types(9103)
        by_type = {e["EventType"]: e["EventInfo"] for e in a.events(9103)}
        assert by_type[105]["Role"] == 21 and by_type[104]["Role"] == 21 and by_type[103]["Role"] == 20, by_type

        # The URL changes in the configuration file: new events go to the new receiver, with no
        # restart.
        c = Receiver(KEY1)
        h.config.write_text(h.config.read_text().replace(a.url("/room"), c.url("/room2")))
        time.sleep(2.5)
        run(visit(h, APP1, "cb-carol", 9102, audio_only=True, secs=1.0))
        run(wait_for(lambda: 102 in c.types(9102), 15, f"the new receiver's events (got {c.types(9102)})"))
        assert c.types(9102) == [101, 103, 104, 102], c.types(9102)
        assert not a.types(9102) or set(a.types(9102)) <= {203, 204}, a.types(9102)
        assert all(r["sign_ok"] and r["path"] == "/room2" for r in c.requests)
        m = metrics(h)
        assert m['hearth_callbacks_total{outcome="delivered"}'] >= 12, m
    finally:
        stop_hearth(h)
        a.stop()
        b.stop()


def test_nothing_is_lost_while_the_receiver_is_down_or_hearth_is_killed(tmp_path):
    """The receiver is down for 30 s: every event arrives after it comes back, in order, each
    once (retries are what the UniqueIds de-duplicate). Then, with the receiver down again and
    events queued, `kill -9` of Hearth: the restarted server delivers them."""
    rx = Receiver(KEY1)
    cbs = {APP1: {"key": KEY1, "room": rx.url(), "media": rx.url()}}
    opts = settings(max_backoff_secs=3)
    h = start_hearth(tmp_path, "callbacks-down", rate_limits=False, settings=opts, callbacks=cbs)
    try:
        rx.stop()
        down_at = time.monotonic()
        run(visit(h, APP1, "cb-dave", 9201, secs=1.0))
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        assert not rx.requests
        m = metrics(h)
        assert m["hearth_callbacks_queued"] >= 6 and m['hearth_callbacks_total{outcome="retried"}'] >= 1, m
        rx.start()
        run(wait_for(lambda: 102 in rx.types(9201), 20, f"the events after the outage (got {rx.types(9201)})"))
        run(asyncio.sleep(1.0))
        types = rx.types(9201)
        assert types[:2] == [101, 103] and types[-2:] == [104, 102] and sorted(types[2:-2]) == [201, 203], types
        assert len({e["EventInfo"]["UniqueId"] for e in rx.events(9201)}) == len(types) == 6
        assert metrics(h)["hearth_callbacks_queued"] == 0

        # kill -9 with events queued.
        rx.stop()
        run(visit(h, APP1, "cb-erin", 9202, audio_only=True, secs=1.0))
        run(wait_for(lambda: metrics(h)["hearth_callbacks_queued"] >= 5, 10, "the events queued"))
        h.proc.kill()
        h.proc.wait()
        rx.start()
        time.sleep(1.0)
        assert not rx.events(9202), "delivered by a dead server?"
        h = start_hearth(tmp_path, "callbacks-restarted", rate_limits=False, settings=opts, callbacks=cbs)
        run(wait_for(lambda: 102 in rx.types(9202), 20, f"the queued events after the restart (got {rx.types(9202)})"))
        assert rx.types(9202) == [101, 103, 203, 104, 102], rx.types(9202)
        assert all(r["sign_ok"] for r in rx.requests)
    finally:
        stop_hearth(h)
        rx.stop()


def test_a_slow_receiver_holds_up_only_its_app_and_a_failing_one_is_abandoned(tmp_path):
    """APP1's receiver takes 10 s to answer (the 5 s timeout fails each attempt); APP2's
    receiver answers 500. APP2's events are tried again and again, then abandoned at the 6 s
    horizon and counted; meanwhile a third receiver of APP2's media group is served at once."""
    slow, failing, fine = Receiver(KEY1), Receiver(KEY2), Receiver(KEY2)
    slow.delay, failing.status = 10.0, 500
    h = start_hearth(tmp_path, "callbacks-faults", rate_limits=False,
                     settings=settings(max_backoff_secs=1, retry_horizon_secs=6),
                     callbacks={APP1: {"key": KEY1, "room": slow.url(), "media": slow.url()},
                                APP2: {"key": KEY2, "room": failing.url(), "media": fine.url()}})
    try:
        started = time.monotonic()
        run(visit(h, APP1, "cb-slow", 9301, audio_only=True, secs=0.5))
        run(visit(h, APP2, "cb-fast", 9302, audio_only=True, secs=0.5))
        # APP2's media events come while APP1's first callback is still waiting for its answer.
        run(wait_for(lambda: fine.types(9302) == [203], 10, f"APP2's media events (got {fine.types(9302)})"))
        assert time.monotonic() - started < 8, "APP2 waited for APP1's slow receiver"
        assert slow.types(9301)[:1] == [101] and 104 not in slow.types(9301), slow.types(9301)
        # 500: retried (the same event again), then abandoned after the horizon, and counted.
        run(wait_for(lambda: metrics(h).get('hearth_callbacks_total{outcome="abandoned"}', 0) >= 1, 20,
                     "the failing receiver's callbacks abandoned"))
        first = failing.requests[0]["body"]["EventInfo"]["UniqueId"]
        assert sum(1 for r in failing.requests if r["body"]["EventInfo"]["UniqueId"] == first) >= 3, failing.types()
        m = metrics(h)
        assert m['hearth_callbacks_total{outcome="retried"}'] >= 2, m
        assert m["hearth_callbacks_abandoned_kept"] >= 1, m
    finally:
        stop_hearth(h)
        for r in (slow, failing, fine):
            r.stop()


def test_a_recording_reports_its_lifecycle_and_its_files(tmp_path, tmp_path_factory):
    """TRTC's recording group: 301 started, 303 upload started, 307 the playlist begun, 304 the
    playlist stored, then 302 the recorder out, 305 the uploads done and 310 the MP4 files, each
    naming files that are in the bucket."""
    from recording import S3Server, call, cloud_storage
    from conftest import sdk_client
    from media import usersig

    s3 = S3Server(tmp_path_factory.mktemp("s3-callbacks"), free_port())
    s3.start()
    rx = Receiver(KEY1)
    h = start_hearth(tmp_path, "callbacks-recording", rate_limits=False, settings=settings(),
                     env={"HEARTH_MEDIA_HLS_SEGMENT_SECS": "2", "HEARTH_MEDIA_EOS_TIMEOUT_SECS": "8"},
                     callbacks={APP1: {"key": KEY1, "recording": rx.url("/rec")}})
    try:
        async def body():
            pub = Publisher(h, APP1, "cb-rec-alice", room=9401)
            await pub.start()
            task = call(sdk_client(h), "CreateCloudRecording", {
                "SdkAppId": APP1, "RoomId": "9401", "UserId": "cb-recbot", "UserSig": usersig(h, APP1, "cb-recbot"),
                "RecordParams": {"RecordMode": 2, "OutputFormat": 1},
                "StorageParams": cloud_storage(s3, ["cb"])})["TaskId"]
            await wait_for(lambda: 304 in rx.types(), 30, f"the first playlist stored (got {rx.types()})")
            call(sdk_client(h), "DeleteCloudRecording", {"SdkAppId": APP1, "TaskId": task})
            await wait_for(lambda: 310 in rx.types(), 60, f"the MP4 files reported (got {rx.types()})")
            await pub.delete()
            await pub.close()
            return task

        task = run(body())
        types = rx.types()
        assert types[:3] == [301, 303, 307] and types[3] == 304 and types[-3:] == [302, 305, 310], types
        assert all(r["sign_ok"] and r["path"] == "/rec" and r["body"]["EventGroupId"] == 3 for r in rx.requests)
        by_type = {e["EventType"]: e["EventInfo"] for e in rx.events()}
        for info in by_type.values():
            assert info["TaskId"] == task and info["RoomId"] == 9401 and info["UserId"] == "cb-recbot", info
        assert by_type[301]["Payload"] == {"Status": 0}
        assert by_type[302]["Payload"]["LeaveCode"] == 0 and by_type[305]["Payload"] == {"LeaveCode": 0}
        objects = s3.objects(f"cb/{task}/")
        playlist = by_type[307]["Payload"]["FileName"]
        assert playlist.endswith(".m3u8") and by_type[304]["Payload"]["FileList"] == playlist
        assert f"cb/{task}/{playlist}" in objects, objects.keys()
        assert by_type[307]["Payload"]["TrackType"] == "audio_video"
        mp4 = by_type[310]["Payload"]
        assert mp4["Status"] == 0 and mp4["FileList"] and all(f"cb/{task}/{n}" in objects for n in mp4["FileList"]), (mp4, objects.keys())
        m = mp4["FileMessage"][0]
        assert m["MediaId"] == "mix" and m["EndTimeStamp"] - m["StartTimeStamp"] >= 2000, m
    finally:
        stop_hearth(h)
        rx.stop()
        s3.stop()


def test_ai_tasks_report_their_start_and_end(tmp_path):
    """A transcription's start and stop are TRTC's 1401 and 1402 (group 14); a voice
    conversation's are Hearth's task group (100): 10001 and 10002 with its kind."""
    from conftest import sdk_client
    from media import usersig

    rx = Receiver(KEY1)
    h = start_hearth(tmp_path, "callbacks-ai", rate_limits=False, settings=settings(),
                     callbacks={APP1: {"key": KEY1, "transcription": rx.url("/stt"), "tasks": rx.url("/tasks")}})
    try:
        client = sdk_client(h)
        stt = client.call_json("StartAITranscription", {
            "SdkAppId": APP1, "RoomId": "9501",
            "TranscriptionParams": {"UserId": "cb-stt", "UserSig": usersig(h, APP1, "cb-stt"), "MaxIdleTime": 30},
            "RecognizeConfig": {"Language": "en"}})["Response"]["TaskId"]
        conv = client.call_json("StartAIConversation", {
            "SdkAppId": APP1, "RoomId": "9502",
            "AgentConfig": {"UserId": "cb-bot", "UserSig": usersig(h, APP1, "cb-bot"), "TargetUserId": "someone"},
            "LLMConfig": json.dumps({"LLMType": "openai", "Model": "m", "APIKey": "k",
                                     "APIUrl": "http://127.0.0.1:9/v1/chat/completions"})})["Response"]["TaskId"]
        run(wait_for(lambda: len(rx.requests) >= 2, 15, f"the starts (got {rx.types()})"))
        client.call_json("StopAITranscription", {"TaskId": stt})
        client.call_json("StopAIConversation", {"TaskId": conv})
        run(wait_for(lambda: len(rx.requests) >= 4, 20, f"the ends (got {rx.types()})"))
        by_task = {}
        for r in rx.requests:
            assert r["sign_ok"], r
            info = r["body"]["EventInfo"]
            by_task.setdefault(info["TaskId"], []).append((r["path"], r["body"]["EventGroupId"], r["body"]["EventType"]))
        assert by_task[stt] == [("/stt", 14, 1401), ("/stt", 14, 1402)], by_task
        assert by_task[conv] == [("/tasks", 100, 10001), ("/tasks", 100, 10002)], by_task
        ends = {r["body"]["EventInfo"]["TaskId"]: r["body"]["EventInfo"]["Payload"] for r in rx.requests
                if r["body"]["EventType"] in (1402, 10002)}
        assert ends[stt]["LeaveCode"] == 0 and ends[conv]["Kind"] == "conversation", ends
    finally:
        stop_hearth(h)
        rx.stop()


def test_calls_report_their_start_and_end_as_tuicallkit_does(tmp_path):
    """TUICallKit's call-status callbacks: `Call.CallbackAfterStartCall` when a call is placed
    (the caller calling, the invitee waiting), `Call.CallbackAfterEndCall` with the call's
    record once it ends; the command and SdkAppid in the URL's query, as TUICallKit sends them."""
    from call_client import CallLine

    rx = Receiver(KEY1)
    h = start_hearth(tmp_path, "callbacks-calls", rate_limits=False, settings=settings(),
                     callbacks={APP1: {"key": KEY1, "calls": rx.url("/calls?tenant=a")}})
    try:
        async def body():
            alice, bob = CallLine(h, APP1, "cb-call-alice"), CallLine(h, APP1, "cb-call-bob")
            await alice.login()
            await bob.login()
            placed = await alice.call(["cb-call-bob"], "audio")
            await bob.next("invited")
            await bob.act("reject", placed["callid"])
            await alice.next("call_ended")
            await wait_for(lambda: len(rx.requests) >= 2, 10, f"the call's callbacks (got {rx.requests})")
            for c in (alice, bob):
                await c.close()
            return placed

        placed = run(body())
        start, end = rx.requests[0], rx.requests[1]
        assert start["path"] == f"/calls?tenant=a&SdkAppid={APP1}&CallbackCommand=Call.CallbackAfterStartCall&contenttype=json&ClientIP=&OptPlatform=Hearth", start["path"]
        assert start["sign_ok"] and end["sign_ok"]
        info = start["body"]["CallInfo"]
        assert (info["CallId"], info["CallMediaType"], info["RoomId"]) == (placed["callid"], "Audio", str(placed["roomid"])), start["body"]
        assert start["body"]["UserList"] == [{"User_Account": "cb-call-alice", "Status": "Calling"},
                                             {"User_Account": "cb-call-bob", "Status": "Waiting"}]
        assert "CallbackCommand=Call.CallbackAfterEndCall" in end["path"]
        record = end["body"]["CallRecord"]
        assert (record["CallId"], record["CallResult"], record["CallType"], record["Caller_Account"]) == \
            (placed["callid"], "Reject", "SingleCall", "cb-call-alice"), record
        assert record["AcceptTime"] == 0 and record["EndTime"] >= record["StartTime"] > 0
    finally:
        stop_hearth(h)
        rx.stop()
