"""Limits at the client edge (docs/protocol.md, Limits) and calls tied to their rooms, played by
real clients: a WebSocket that floods messages or bytes is closed with error 429 while aiortc
users in its room keep their media and their sockets; sockets past the per-user and
per-application limits are refused; the IM-style REST API answers Tencent Chat's 60007 past
200 requests per second; RemoveUser and DismissRoom (official SDK) end calls for the parties in
the room, and a party who never enters the call's room leaves the call."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets

from call_client import CallLine, get_record, wait_record
from conftest import APP1, APP2, start_hearth, stop_hearth
from media import Publisher, delete, endpoint_url, gathered_offer, new_pc, post_sdp, run, usersig
from test_metrics import scrape
from test_moderation import api_async
from ws_client import WsClient, ws_url


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """Low limits, so that tests reach them quickly, and a short enter bound for calls."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-edge"), "edge", rate_limits=False, env={
        "HEARTH_LIMITS_WS_MESSAGES_PER_SEC": "20",
        "HEARTH_LIMITS_WS_MESSAGE_BURST": "40",
        "HEARTH_LIMITS_WS_BYTES_PER_SEC": "65536",
        "HEARTH_LIMITS_WS_SOCKETS_PER_USER": "2",
        "HEARTH_LIMITS_WS_SOCKETS_PER_APP": "12",
        "HEARTH_CALLS_ENTER_TIMEOUT_SECS": "3",
        "HEARTH_LIMITS_SESSIONS_PER_USER": "3",
        "HEARTH_LIMITS_SESSIONS_PER_APP": "30",
    })
    yield h
    stop_hearth(h)


async def raw_enter(h, app: int, user: str, room: int):
    """A bare room socket (no media) that entered; returns it."""
    ws = await websockets.connect(ws_url(h), max_size=None)
    await ws.send(json.dumps({"type": "enter", "v": 1, "sdkappid": app, "userid": user,
                              "usersig": usersig(h, app, user), "roomid": room, "role": "anchor"}))
    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert first["type"] == "entered", first
    return ws


async def collect(ws, got: list[dict]) -> None:
    """Appends every message to `got` until the server closes the socket."""
    try:
        async for raw in ws:
            got.append(json.loads(raw))
    except websockets.ConnectionClosed:
        pass


async def until_closed(ws, timeout: float = 10) -> list[dict]:
    """Every message until the server closes the socket."""
    got: list[dict] = []
    try:
        await asyncio.wait_for(collect(ws, got), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"the socket was not closed within {timeout}s; got {got}") from None
    return got


async def pong(c: WsClient) -> None:
    """The client's socket still answers."""
    seen = len(c.messages)
    await c.send({"type": "ping"})
    for _ in range(50):
        if any(m["type"] == "pong" for m in c.messages[seen:]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{c.user}: no pong; got {c.messages[seen:]}")


def test_a_flooding_socket_is_closed_and_its_room_carries_on(edge):
    h = edge

    async def body():
        before = (await asyncio.to_thread(scrape, h)).get('hearth_ws_refused_total{limit="flooding"}', 0)
        alice = WsClient(h, APP1, "lim-alice", room=701)
        bob = WsClient(h, APP1, "lim-bob", room=701)
        await alice.connect()
        await bob.connect()
        await alice.publish()
        await bob.wait_media("lim-alice")

        flood = await raw_enter(h, APP1, "lim-flooder", 701)
        got: list[dict] = []
        reading = asyncio.ensure_future(collect(flood, got))
        for _ in range(200):
            try:
                await flood.send(json.dumps({"type": "ping"}))
            except websockets.ConnectionClosed:
                break
        await asyncio.wait_for(reading, 10)
        errors = [m for m in got if m["type"] == "error"]
        assert errors and errors[-1]["code"] == 429, got
        assert "messages per second" in errors[-1]["message"], errors
        # Up to the burst (40, the enter one of them), the pings were answered.
        assert sum(m["type"] == "pong" for m in got) >= 39, got

        # The others keep their sockets and their media.
        seen = bob.counts("lim-alice").video
        await asyncio.sleep(2)
        assert bob.counts("lim-alice").video >= seen + 20, bob.counts("lim-alice")
        assert not alice.closed.is_set() and not bob.closed.is_set()
        await pong(alice)
        await pong(bob)
        assert not any(e["code"] == 429 for e in alice.errors + bob.errors)

        # Bytes have their own budget: two 40 KB frames in a second are too many.
        big = await raw_enter(h, APP1, "lim-big", 701)
        got = []
        reading = asyncio.ensure_future(collect(big, got))
        junk = json.dumps({"type": "ping", "pad": "x" * 40_000})
        await big.send(junk)
        await big.send(junk)
        await asyncio.wait_for(reading, 10)
        # The first is answered (an unknown field: 400, the socket kept); the second is over.
        errors = [m for m in got if m["type"] == "error"]
        assert [m["code"] for m in errors] == [400, 429], got
        assert "bytes per second" in errors[-1]["message"], got

        after = (await asyncio.to_thread(scrape, h))['hearth_ws_refused_total{limit="flooding"}']
        assert after >= before + 2
        await alice.close()
        await bob.close()

    run(body())


def test_sockets_past_the_user_and_app_limits_are_refused(edge):
    h = edge

    async def body():
        # Per user: two sockets (a room in each), the third is refused until one closes.
        a = await raw_enter(h, APP1, "lim-many", 711)
        b = await raw_enter(h, APP1, "lim-many", 712)
        third = await websockets.connect(ws_url(h))
        await third.send(json.dumps({"type": "enter", "v": 1, "sdkappid": APP1, "userid": "lim-many",
                                     "usersig": usersig(h, APP1, "lim-many"), "roomid": 713}))
        got = await until_closed(third)
        assert got[-1]["code"] == 429 and "lim-many" in got[-1]["message"], got
        await a.close()
        for _ in range(50):  # the server notices the close
            try:
                c = await raw_enter(h, APP1, "lim-many", 713)
                break
            except AssertionError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("a socket freed by a close was not given back")
        await b.close()
        await c.close()

        # Per application (APP2 here): twelve calling sockets, the thirteenth is refused.
        lines = []
        for i in range(12):
            line = CallLine(h, APP2, f"lim-app-{i}")
            await line.login()
            lines.append(line)
        extra = await websockets.connect(ws_url(h))
        await extra.send(json.dumps({"type": "login", "v": 1, "sdkappid": APP2, "userid": "lim-app-x",
                                     "usersig": usersig(h, APP2, "lim-app-x")}))
        got = await until_closed(extra)
        assert got[-1]["code"] == 429 and "application" in got[-1]["message"], got
        m = await asyncio.to_thread(scrape, h)
        assert m['hearth_ws_refused_total{limit="user_sockets"}'] >= 1
        assert m['hearth_ws_refused_total{limit="app_sockets"}'] >= 1
        assert m["hearth_ws_sockets"] >= 12
        for line in lines:
            await line.close()

    run(body())


def test_media_sessions_past_the_user_and_app_limits_are_refused(edge):
    h = edge

    async def body():
        # One user: three WHIP sessions in three rooms; the fourth is refused until one ends.
        pubs = [Publisher(h, APP1, "sess-u", room=r) for r in (721, 722, 723)]
        for p in pubs:
            await p.start()
        extra = Publisher(h, APP1, "sess-u", room=724)
        ex = await extra.post_raw(await extra.offer())
        assert ex.status == 429, (ex.status, ex.body)
        assert "sess-u holds 3 media sessions" in ex.body, ex.body
        assert await pubs[0].delete() == 200
        await extra.start()
        m1 = await asyncio.to_thread(scrape, h)
        assert m1['hearth_media_refused_sessions_total{limit="user"}'] >= 1
        assert m1["hearth_media_sessions"] >= 3, m1

        # One application (APP2): thirty sessions (offers that never connect), then refusals.
        pc = new_pc(max_bundle=True)
        pc.addTransceiver("video", direction="sendonly")
        offer = await gathered_offer(pc)
        locations = []
        for i in range(30):
            ex = await post_sdp(endpoint_url(h, "whip", APP2, room=731), usersig(h, APP2, f"app-{i}"), offer)
            assert ex.status == 201, (i, ex.status, ex.body)
            locations.append(ex.location)
        ex = await post_sdp(endpoint_url(h, "whip", APP2, room=731), usersig(h, APP2, "app-x"), offer)
        assert ex.status == 429 and "application 1400000002 holds 30" in ex.body, (ex.status, ex.body)
        # The protocol refuses an enter past the limit too (429, closed).
        ws = await websockets.connect(ws_url(h))
        await ws.send(json.dumps({"type": "enter", "v": 1, "sdkappid": APP2, "userid": "app-ws",
                                  "usersig": usersig(h, APP2, "app-ws"), "roomid": 732}))
        got = await until_closed(ws)
        assert got[-1]["code"] == 429 and "application" in got[-1]["message"], got
        m2 = await asyncio.to_thread(scrape, h)
        assert m2['hearth_media_refused_sessions_total{limit="app"}'] >= 2
        for loc in locations:
            assert await delete(h, loc) == 200
        for p in pubs[1:] + [extra]:
            assert await p.delete() == 200
            await p.close()

        # Ended sessions give their places back: thirty again for the app, three for the user.
        for i in range(30):
            ex = await post_sdp(endpoint_url(h, "whip", APP2, room=733), usersig(h, APP2, f"again-{i}"), offer)
            assert ex.status == 201, (i, ex.status, ex.body)
            assert await delete(h, ex.location) == 200
        again = [Publisher(h, APP1, "sess-u", room=r) for r in (741, 742, 743)]
        for p in again:
            await p.start()
        for p in again:
            await p.delete()
            await p.close()
        await pc.close()

    run(body())


async def connected_call(h, caller: str, callee: str, *, enter: tuple[str, ...]):
    """A call from caller to callee, accepted; `enter`: who enters the call's room (a bare room
    socket each). Returns (call id, room, lines, room sockets)."""
    a, b = CallLine(h, APP1, caller), CallLine(h, APP1, callee)
    await a.login()
    await b.login()
    placed = await a.call([callee], "audio")
    call_id, room = placed["callid"], placed["roomid"]
    await b.next("invited")
    sockets = [await raw_enter(h, APP1, u, room) for u in enter]
    await b.act("accept", call_id)
    await a.next("call_accepted")
    return call_id, room, (a, b), sockets


def test_remove_user_and_dismiss_room_end_the_calls_in_the_room(edge):
    h = edge

    async def body():
        call_id, room, (alice, bob), _ = await connected_call(
            h, "rm-alice", "rm-bob", enter=("rm-alice", "rm-bob"))
        await api_async(h, "RemoveUser", {"SdkAppId": APP1, "RoomId": room, "UserIds": ["rm-bob"]})
        left = await alice.next("call_left")
        assert (left["userid"], left["reason"]) == ("rm-bob", "removed"), left
        assert (await alice.next("call_ended"))["result"] == "Interrupt"
        assert (await bob.next("call_ended"))["result"] == "Interrupt"
        rec = await wait_record(h, APP1, call_id, "Interrupt")
        assert rec["AcceptTime"] > 0 and rec["EndTime"] >= rec["AcceptTime"]
        await alice.close()
        await bob.close()

        call_id, room, (carol, dave), _ = await connected_call(
            h, "dis-carol", "dis-dave", enter=("dis-carol", "dis-dave"))
        await api_async(h, "DismissRoom", {"SdkAppId": APP1, "RoomId": room})
        assert (await carol.next("call_ended"))["result"] == "Interrupt"
        assert (await dave.next("call_ended"))["result"] == "Interrupt"
        await wait_record(h, APP1, call_id, "Interrupt")
        await carol.close()
        await dave.close()

    run(body())


def test_a_party_who_never_enters_the_call_room_leaves_the_call(edge):
    h = edge

    async def body():
        # Erin is in the room; Frank accepts but never comes (the bound is 3 s here).
        call_id, _, (erin, frank), sockets = await connected_call(
            h, "ne-erin", "ne-frank", enter=("ne-erin",))
        t0 = time.monotonic()
        left = await erin.next("call_left", timeout=10)
        assert (left["userid"], left["reason"]) == ("ne-frank", "not_entered"), left
        assert 2 <= time.monotonic() - t0 <= 6
        assert (await frank.next("call_ended"))["result"] == "Interrupt"
        await wait_record(h, APP1, call_id, "Interrupt")

        # Both in the room in time: the call outlives the bound.
        call_id, _, (gina, hal), more = await connected_call(
            h, "ne-gina", "ne-hal", enter=("ne-gina", "ne-hal"))
        await asyncio.sleep(4.5)
        assert "call_left" not in gina.types() and "call_ended" not in gina.types()
        await hal.act("hangup", call_id)
        assert (await gina.next("call_ended"))["result"] == "NormalEnd"
        for x in (erin, frank, gina, hal, *sockets, *more):
            await x.close()

    run(body())


def test_the_im_rest_api_answers_60007_past_200_requests_per_second(hearth_limited):
    h = hearth_limited

    def one(_):
        body = get_record(h, APP1, "no-such-call")
        return body["ErrorCode"], body["ErrorInfo"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(500)))
    codes = [c for c, _ in answers]
    assert codes.count(60007) > 0, codes
    # What was admitted was answered (the call does not exist), at least a second's worth.
    assert set(codes) <= {101050, 60007}, set(codes)
    assert codes.count(101050) >= 200, codes.count(101050)
    info = next(i for c, i in answers if c == 60007)
    assert "200 requests per second" in info, info
    # Another application has its own budget; this one's refills within a second.
    assert get_record(h, APP2, "no-such-call")["ErrorCode"] == 101050
    time.sleep(1.1)
    assert get_record(h, APP1, "no-such-call")["ErrorCode"] == 101050
