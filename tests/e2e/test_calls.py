"""Calls (docs/protocol.md, Calls) played by real clients — calling sockets over WebSocket,
aiortc for the media in the call's room — and the call-record REST API (seed 003) read back
with plain HTTP and UserSigs from the official `tls-sig-api-v2` library: each of the six
outcomes with its timestamps, group calls, reconnecting, bad messages, and every error of the
record API."""

from __future__ import annotations

import asyncio
import time

import requests
from TLSSigAPIv2 import TLSSigAPIv2

from call_client import ADMIN, CallLine, get_record, record_of, record_url, wait_record
from conftest import APP1, APP2, start_hearth, stop_hearth
from media import run, usersig
from test_metrics import scrape
from ws_client import WsClient


async def lines(h, *users: str) -> list[CallLine]:
    out = []
    for u in users:
        line = CallLine(h, APP1, u)
        await line.login()
        out.append(line)
    return out


async def close_all(*xs) -> None:
    for x in xs:
        await x.close()


def test_a_video_call_answered_talked_and_hung_up_is_normal_end(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob = await lines(h, "call-alice", "call-bob")
        t0 = int(time.time())
        placed = await alice.call(["call-bob"], "video")
        call_id, room = placed["callid"], placed["roomid"]
        assert placed["callees"] == ["call-bob"] and placed["group"] is False and placed["media"] == "video"
        invited = await bob.next("invited")
        assert (invited["callid"], invited["caller"], invited["roomid"]) == (call_id, "call-alice", room)
        assert 25 <= invited["timeout"] <= 30
        # While it rings, the record exists with no result yet.
        ringing = await asyncio.to_thread(record_of, h, APP1, call_id)
        assert (ringing["CallResult"], ringing["AcceptTime"], ringing["EndTime"]) == ("", 0, 0)
        gauges = await asyncio.to_thread(scrape, h)
        assert gauges["hearth_calls_in_progress"] >= 1 and gauges["hearth_call_logins"] >= 2, gauges

        await asyncio.sleep(1.1)
        await bob.act("accept", call_id)
        assert (await alice.next("call_accepted"))["userid"] == "call-bob"
        await bob.next("call_accepted")
        # Both meet in the call's room and receive each other.
        a_room = WsClient(h, APP1, "call-alice", room=room)
        b_room = WsClient(h, APP1, "call-bob", room=room)
        await a_room.connect()
        await b_room.connect()
        await a_room.publish()
        await b_room.publish((40, 40, 200))
        await a_room.wait_media("call-bob")
        await b_room.wait_media("call-alice")

        await alice.act("hangup", call_id)
        left = await bob.next("call_left")
        assert (left["userid"], left["reason"]) == ("call-alice", "hangup")
        assert (await bob.next("call_ended"))["result"] == "NormalEnd"
        assert (await alice.next("call_ended"))["result"] == "NormalEnd"
        await close_all(a_room, b_room, alice, bob)

        rec = await wait_record(h, APP1, call_id, "NormalEnd")
        assert (await asyncio.to_thread(scrape, h))["hearth_calls_in_progress"] == 0
        assert rec["CallId"] == call_id
        assert rec["Caller_Account"] == "call-alice"
        assert rec["CalleeList_Account"] == ["call-bob"]
        assert (rec["MediaType"], rec["CallType"]) == ("Video", "SingleCall")
        assert (rec["RoomId"], rec["RoomIdType"]) == (str(room), 1)
        assert t0 <= rec["StartTime"] < rec["AcceptTime"] <= rec["EndTime"] <= int(time.time())

    run(body())


def test_a_rejected_call_is_reject_with_no_accept_time(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob = await lines(h, "rej-alice", "rej-bob")
        call_id = (await alice.call(["rej-bob"], "audio"))["callid"]
        await bob.next("invited")
        await bob.act("reject", call_id)
        await bob.send({"type": "ping"})
        await bob.next("pong")
        # What the reject caused for bob came before the pong of the ping sent after it.
        assert bob.types()[-3:] == ["call_rejected", "call_ended", "pong"], bob.types()
        assert bob.messages[-2]["result"] == "Reject"
        assert (await alice.next("call_rejected"))["userid"] == "rej-bob"
        assert (await alice.next("call_ended"))["result"] == "Reject"
        rec = await wait_record(h, APP1, call_id, "Reject")
        assert (rec["MediaType"], rec["AcceptTime"]) == ("Audio", 0)
        assert rec["EndTime"] >= rec["StartTime"] > 0
        await close_all(alice, bob)

    run(body())


def test_a_cancelled_call_is_cancel_and_only_the_caller_may_cancel(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob = await lines(h, "can-alice", "can-bob")
        call_id = (await alice.call(["can-bob"]))["callid"]
        await bob.next("invited")
        await bob.act("cancel", call_id)
        err = await bob.next("error")
        assert (err["code"], err["request"]) == (403, "cancel")
        await alice.act("cancel", call_id)
        assert (await bob.next("call_ended"))["result"] == "Cancel"
        assert (await alice.next("call_ended"))["result"] == "Cancel"
        await wait_record(h, APP1, call_id, "Cancel")
        await close_all(alice, bob)

    run(body())


def test_an_unanswered_call_is_not_answer_after_its_timeout(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob = await lines(h, "na-alice", "na-bob")
        call_id = (await alice.call(["na-bob"], timeout=2))["callid"]
        assert (await bob.next("invited"))["timeout"] == 2
        assert (await alice.next("call_no_answer"))["userid"] == "na-bob"
        assert (await alice.next("call_ended"))["result"] == "NotAnswer"
        assert (await bob.next("call_ended", timeout=5))["result"] == "NotAnswer"
        rec = await wait_record(h, APP1, call_id, "NotAnswer")
        assert 1 <= rec["EndTime"] - rec["StartTime"] <= 4, rec
        await bob.act("accept", call_id)
        assert (await bob.next("error"))["code"] == 404
        await close_all(alice, bob)

    run(body())


def test_calling_someone_in_a_call_is_call_busy(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob, carol = await lines(h, "busy-alice", "busy-bob", "busy-carol")
        first = (await alice.call(["busy-bob"]))["callid"]
        await bob.next("invited")
        second = (await carol.call(["busy-bob"]))["callid"]
        assert (await carol.next("call_busy"))["userid"] == "busy-bob"
        assert (await carol.next("call_ended"))["result"] == "CallBusy"
        rec = await wait_record(h, APP1, second, "CallBusy")
        assert rec["CalleeList_Account"] == ["busy-bob"]
        # Placing a call while in one is refused; the first call is untouched.
        await alice.send({"type": "call", "callees": ["busy-carol"], "media": "audio"})
        err = await alice.next("error")
        assert (err["code"], err["request"]) == (409, "call")
        await bob.act("accept", first)
        await alice.next("call_accepted")
        await bob.act("hangup", first)
        assert (await alice.next("call_ended"))["result"] == "NormalEnd"
        await close_all(alice, bob, carol)

    run(body())


def test_a_party_dropping_off_the_network_interrupts_the_call(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob = await lines(h, "int-alice", "int-bob")
        placed = await alice.call(["int-bob"])
        call_id = placed["callid"]
        await bob.next("invited")
        await bob.act("accept", call_id)
        await alice.next("call_accepted")
        bob.drop()
        left = await alice.next("call_left", timeout=10)
        assert (left["userid"], left["reason"]) == ("int-bob", "dropped")
        assert (await alice.next("call_ended"))["result"] == "Interrupt"
        rec = await wait_record(h, APP1, call_id, "Interrupt")
        assert rec["AcceptTime"] > 0 and rec["EndTime"] >= rec["AcceptTime"]
        await alice.close()

    run(body())


def test_logging_in_again_within_the_grace_carries_the_call_on(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob = await lines(h, "re-alice", "re-bob")
        call_id = (await alice.call(["re-bob"]))["callid"]
        await bob.next("invited")
        await bob.act("accept", call_id)
        await alice.next("call_accepted")
        bob.drop()
        bob2 = CallLine(h, APP1, "re-bob")
        await bob2.login()
        state = await bob2.next("call_state")
        assert state["callid"] == call_id and state["accepted"] == ["re-bob"] and state["ringing"] == []
        await asyncio.sleep(3)  # past the 2 s grace: still in the call
        assert "call_ended" not in alice.types()
        # A second login takes over: the first socket is told and closed.
        bob3 = CallLine(h, APP1, "re-bob")
        await bob3.login()
        notice = await bob2.next("notice")
        assert notice["reason"] == "replaced"
        await bob3.next("call_state")
        await bob3.act("hangup", call_id)
        assert (await alice.next("call_ended"))["result"] == "NormalEnd"
        await close_all(alice, bob2, bob3)

    run(body())


def test_a_group_call_in_a_string_room_is_a_multi_call(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob, carol = await lines(h, "grp-alice", "grp-bob", "grp-carol")
        placed = await alice.call(["grp-bob", "grp-carol", "grp-dave"], "audio", group=True,
                                  strroomid="standup-42")
        call_id = placed["callid"]
        assert placed["strroomid"] == "standup-42" and "roomid" not in placed
        # One answer at a time: two sockets' answers may reach the server in either order.
        await bob.act("accept", (await bob.next("invited"))["callid"])
        await alice.next("call_accepted")
        await carol.act("reject", (await carol.next("invited"))["callid"])
        await alice.next("call_rejected")
        # grp-dave logs in late and still rings.
        dave = CallLine(h, APP1, "grp-dave")
        await dave.login()
        assert (await dave.next("invited"))["callid"] == call_id
        await dave.act("accept", call_id)
        await dave.next("call_accepted")
        await alice.act("hangup", call_id)
        assert (await bob.next("call_left"))["userid"] == "grp-alice"
        ongoing = await asyncio.to_thread(record_of, h, APP1, call_id)
        assert ongoing["CallResult"] == "", "bob and dave still talk"
        await bob.act("hangup", call_id)
        assert (await dave.next("call_ended"))["result"] == "NormalEnd"
        rec = await wait_record(h, APP1, call_id, "NormalEnd")
        assert (rec["CallType"], rec["MediaType"]) == ("MultiCall", "Audio")
        assert (rec["RoomId"], rec["RoomIdType"]) == ("standup-42", 2)
        assert rec["CalleeList_Account"] == ["grp-bob", "grp-carol", "grp-dave"]
        await close_all(alice, bob, carol, dave)

    run(body())


def test_bad_call_messages_get_errors_and_keep_the_socket(hearth_calls):
    h = hearth_calls

    async def body():
        (alice,) = await lines(h, "bad-alice")
        cases = [
            ({"type": "call", "callees": [], "media": "audio"}, 400),
            ({"type": "call", "callees": ["x"], "media": "hologram"}, 400),
            ({"type": "call", "callees": ["x", "y"], "media": "audio"}, 400),
            ({"type": "call", "callees": ["bad-alice"], "media": "audio"}, 400),
            ({"type": "call", "callees": ["x"], "media": "audio", "timeout": 0}, 400),
            ({"type": "call", "callees": ["x"], "media": "audio", "roomid": 0}, 400),
            ({"type": "accept", "callid": "no-such-call"}, 404),
            ({"type": "hangup", "callid": "no-such-call"}, 404),
            ({"type": "publish", "sdp": "v=0"}, 409),
            ({"type": "login", "v": 1, "sdkappid": APP1, "userid": "bad-alice", "usersig": alice.sig}, 409),
            ({"type": "call", "callees": ["x"]}, 400),
        ]
        for msg, code in cases:
            await alice.send(msg)
            err = await alice.next("error")
            assert err["code"] == code, (msg, err)
        await alice.send({"type": "ping"})
        await alice.next("pong")
        # An app's users cannot call into another app: the callee of APP1 never hears it.
        other = CallLine(h, APP2, "bad-alice")
        await other.login()
        call_id = (await other.call(["bad-bob"], timeout=1))["callid"]
        assert (await other.next("call_ended"))["result"] == "NotAnswer"
        assert get_record(h, APP1, call_id)["ErrorCode"] == 101050
        await other.send({"type": "logout"})
        await other.next("logged_out")
        await close_all(alice, other)

    run(body())


def test_a_bad_usersig_closes_the_calling_socket(hearth_calls):
    h = hearth_calls

    async def body():
        line = CallLine(h, APP1, "sig-alice", sig=usersig(h, APP1, "someone-else"))
        try:
            await line.login()
            raise AssertionError("login with a foreign UserSig was accepted")
        except AssertionError as e:
            assert "401" in str(e), e
        await line.close()

    run(body())


def test_the_record_api_refuses_bad_requests_with_distinct_codes(hearth_calls):
    h = hearth_calls

    async def body():
        alice, bob = await lines(h, "api-alice", "api-bob")
        call_id = (await alice.call(["api-bob"]))["callid"]
        await alice.act("cancel", call_id)
        await alice.next("call_ended")
        await close_all(alice, bob)
        return call_id

    call_id = run(body())
    assert record_of(h, APP1, call_id)["CallResult"] == "Cancel"

    def code(**kw) -> int:
        body = get_record(h, APP1, call_id, **kw)
        assert body["ActionStatus"] == "FAIL" and body["ErrorInfo"], body
        assert "Response" not in body
        return body["ErrorCode"]

    key = h.app_keys[APP1]
    short_lived = TLSSigAPIv2(APP1, key).gen_sig(ADMIN, 1)
    time.sleep(2.1)
    assert code(sig=short_lived) == 70001
    assert code(sig="not-a-usersig") == 70003
    assert code(sig=TLSSigAPIv2(APP1, "0" * 64).gen_sig(ADMIN)) == 70009
    assert code(sig=usersig(h, APP2, ADMIN)) == 70014
    assert code(sig=usersig(h, APP1, "api-alice")) == 70013
    assert code(identifier="api-alice", sig=usersig(h, APP1, "api-alice")) == 60010
    assert code(identifier=None, sig=usersig(h, APP1, ADMIN)) == 60025
    assert code(sig="") == 60025
    assert code(contenttype=None) == 60025
    assert code(random=None) == 60002
    assert code(random="4294967296") == 60002
    assert get_record(h, APP1, "7d0c2f0e-0000-4000-8000-000000000000")["ErrorCode"] == 101050
    # A record is only visible to its own application's administrators.
    assert get_record(h, APP2, call_id)["ErrorCode"] == 101050

    url = record_url(h, app=APP1)
    no_app = url.replace(f"sdkappid={APP1}&", "")
    assert requests.post(no_app, json={"CallId": call_id}).json()["ErrorCode"] == 60012
    unknown_app = url.replace(f"sdkappid={APP1}", "sdkappid=1999999999")
    assert requests.post(unknown_app, json={"CallId": call_id}).json()["ErrorCode"] == 60006
    assert requests.post(url, json={}).json()["ErrorCode"] == 70402
    assert requests.post(url, json={"CallId": 7}).json()["ErrorCode"] == 70402
    assert requests.post(url, data="{not json").json()["ErrorCode"] == 60003
    assert requests.post(url, json=["CallId"]).json()["ErrorCode"] == 60003
    assert requests.get(url).json()["ErrorCode"] == 60002
    other = record_url(h, app=APP1, path="v4/call_record_http_srv/no_such_command")
    assert requests.post(other, json={"CallId": call_id}).json()["ErrorCode"] == 60009
    # After all that, the record is still there.
    assert record_of(h, APP1, call_id)["CallId"] == call_id


def test_calls_cut_off_by_a_crash_or_a_shutdown_are_recorded_as_interrupt(tmp_path):
    h = start_hearth(tmp_path, "calls-crash", rate_limits=False)

    async def placed_and_answered(server, caller: str, callee: str) -> tuple[str, CallLine]:
        a, b = await lines(server, caller, callee)
        call_id = (await a.call([callee]))["callid"]
        await b.act("accept", (await b.next("invited"))["callid"])
        await a.next("call_accepted")
        return call_id, a

    async def body():
        crashed, line = await placed_and_answered(h, "crash-alice", "crash-bob")
        killed_at = time.time()
        h.proc.kill()
        h.proc.wait()
        line.drop()
        h2 = await asyncio.to_thread(start_hearth, tmp_path, "calls-crash-2", rate_limits=False)
        rec = await asyncio.to_thread(record_of, h2, APP1, crashed)
        assert rec["CallResult"] == "Interrupt" and rec["AcceptTime"] > 0, rec
        assert killed_at - 1 <= rec["EndTime"] <= time.time() + 1, rec
        # A graceful stop ends calls in progress as Interrupt and tells the calling sockets.
        stopped, line2 = await placed_and_answered(h2, "stop-alice", "stop-bob")
        await asyncio.to_thread(stop_hearth, h2)
        assert (await line2.next("call_ended"))["result"] == "Interrupt"
        assert (await line2.next("notice"))["reason"] == "server_shutdown"
        h3 = await asyncio.to_thread(start_hearth, tmp_path, "calls-crash-3", rate_limits=False)
        try:
            assert (await asyncio.to_thread(record_of, h3, APP1, stopped))["CallResult"] == "Interrupt"
        finally:
            await asyncio.to_thread(stop_hearth, h3)

    run(body())
