"""Hearth's WebSocket client protocol with aiortc clients: multi-party media both ways, WHIP
publishers in the roster, roles, bad input per client, and resuming a dropped socket."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from conftest import APP1, APP2
from media import Publisher, run, usersig, wait_for, wait_stats, is_empty
from ws_client import WsClient, ws_url

RED, BLUE = (200, 40, 40), (40, 40, 200)


def close_to(rgb, want, tol=40) -> bool:
    return rgb is not None and all(abs(a - b) <= tol for a, b in zip(rgb, want))


def test_two_clients_receive_each_other(hearth_media):
    async def body():
        alice = WsClient(hearth_media, APP1, "ws-alice", room=501)
        bob = WsClient(hearth_media, APP1, "ws-bob", room=501)
        await alice.connect()
        await bob.connect()
        assert [u["userid"] for u in bob.entered["roster"]] == ["ws-alice"]
        await alice.publish(RED)
        await bob.publish(BLUE)
        await alice.wait_media("ws-bob")
        await bob.wait_media("ws-alice")
        assert alice.counts("ws-bob").size == (640, 360)
        assert bob.counts("ws-alice").size == (640, 360)
        await wait_for(lambda: close_to(alice.counts("ws-bob").rgb, BLUE) and close_to(bob.counts("ws-alice").rgb, RED),
                       10, f"colours: alice sees {alice.counts('ws-bob').rgb}, bob sees {bob.counts('ws-alice').rgb}")
        assert "user_entered" in alice.types(), alice.types()
        await bob.close()
        await wait_for(lambda: any(m["type"] == "user_exited" and m["userid"] == "ws-bob" for m in alice.messages),
                       10, "alice told that bob exited")
        await alice.close()
        await wait_stats(hearth_media, is_empty, 15, "everything gone after both exited")

    run(body())


def test_a_whip_publisher_is_in_the_roster_and_received(hearth_media):
    async def body():
        carol = WsClient(hearth_media, APP1, "ws-carol", room=502)
        await carol.connect()
        whip = await Publisher(hearth_media, APP1, "whip-dave", room=502, rgb=RED).start()
        await wait_for(lambda: any(m["type"] in ("user_entered", "user_updated") and m["user"]["userid"] == "whip-dave"
                                   and m["user"]["video"] for m in carol.messages), 10, "whip-dave in carol's roster")
        await carol.wait_media("whip-dave")
        assert carol.counts("whip-dave").size == (640, 360)
        await whip.delete()
        await whip.close()
        await wait_for(lambda: any(m["type"] == "user_exited" and m["userid"] == "whip-dave" for m in carol.messages),
                       10, "carol told that whip-dave left")
        await carol.close()

    run(body())


def test_an_audience_member_receives_but_cannot_publish(hearth_media):
    async def body():
        anchor = WsClient(hearth_media, APP1, "ws-anchor", room=503)
        viewer = WsClient(hearth_media, APP1, "ws-viewer", room=503, role="audience")
        await anchor.connect()
        await viewer.connect()
        await anchor.publish(RED)
        await viewer.wait_media("ws-anchor")
        await viewer.publish(BLUE)
        await wait_for(lambda: any(e["code"] == 403 and e.get("request") == "publish" for e in viewer.errors),
                       10, f"403 for the audience's publish (errors: {viewer.errors})")
        assert not any(m["type"] == "user_entered" and m["user"]["userid"] == "ws-viewer" for m in anchor.messages), \
            "audience members are not announced"
        # Switching role without re-entering makes publishing possible.
        await viewer.send({"type": "role", "role": "anchor"})
        await wait_for(lambda: any(m["type"] == "role" and m["role"] == "anchor" for m in viewer.messages), 5, "role confirmed")
        await viewer.publish(BLUE)
        await anchor.wait_media("ws-viewer")
        await viewer.close()
        await anchor.close()

    run(body())


async def raw_enter(h, **fields) -> websockets.WebSocketClientProtocol:
    ws = await websockets.connect(ws_url(h), max_size=None)
    msg = {"type": "enter", "v": 1, "sdkappid": APP1, "userid": "bad", "usersig": usersig(h, APP1, "bad"),
           "roomid": 504, "role": "anchor"}
    msg.update(fields)
    await ws.send(json.dumps(msg))
    return ws


ROOM_CHATTER = {"offer", "user_entered", "user_updated", "user_exited"}


async def recv_json(ws, timeout=5) -> dict:
    """The next reply, skipping what the room says meanwhile (offers, roster updates)."""
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if m["type"] not in ROOM_CHATTER:
            return m


async def closed(ws, timeout=5) -> bool:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed:
        return True
    except asyncio.TimeoutError:
        return False


def test_bad_input_hurts_only_the_offender(hearth_media):
    async def body():
        h = hearth_media
        alice = WsClient(h, APP1, "ok-alice", room=504)
        bob = WsClient(h, APP1, "ok-bob", room=504)
        await alice.connect()
        await bob.connect()
        await alice.publish(RED)
        await bob.wait_media("ok-alice")

        # Wrong key, another app's sig, another user's sig: 401 and closed.
        for fields in ({"usersig": "garbage"}, {"usersig": usersig(h, APP2, "bad")},
                       {"usersig": usersig(h, APP1, "someone-else")}):
            ws = await raw_enter(h, **fields)
            m = await recv_json(ws)
            assert (m["type"], m["code"]) == ("error", 401), (fields, m)
            assert await closed(ws), fields
        # An expired UserSig.
        expired = usersig(h, APP1, "bad", expire=1)
        await asyncio.sleep(2.1)
        ws = await raw_enter(h, usersig=expired)
        assert (await recv_json(ws))["code"] == 401
        # A message before enter: 409 and closed.
        ws = await websockets.connect(ws_url(h))
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_json(ws))["code"] == 409
        assert await closed(ws)
        # Malformed JSON, unknown type, bad field: 400 and the connection stays.
        ws = await raw_enter(h, userid="bad-2", usersig=usersig(h, APP1, "bad-2"))
        assert (await recv_json(ws))["type"] == "entered"
        for junk in ["{not json", json.dumps({"type": "fly"}), json.dumps({"type": "mute", "source": "nose", "muted": True}),
                     json.dumps({"type": "publish", "sdp": "v=0 nonsense"}), json.dumps({"type": "answer", "sdp": "x"}),
                     json.dumps({"type": "stats", "capture_fps": -1}),
                     json.dumps({"type": "stats", "remote": [{"userid": "x", "decode_fps": 1e9}]})]:
            await ws.send(junk)
            m = await recv_json(ws)
            assert (m["type"], m["code"]) == ("error", 400), (junk, m)
        await ws.send(json.dumps({"type": "subscribe", "userid": "nobody"}))
        assert (await recv_json(ws))["code"] == 404
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_json(ws))["type"] == "pong", "still connected after 400s"
        # A binary frame: 415 and closed. An oversized frame: closed.
        await ws.send(b"\x00\x01")
        assert (await recv_json(ws))["code"] == 415
        assert await closed(ws)
        ws = await raw_enter(h, userid="bad-3", usersig=usersig(h, APP1, "bad-3"))
        assert (await recv_json(ws))["type"] == "entered"
        await ws.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        assert await closed(ws), "an oversized frame closes the socket"

        before = bob.counts("ok-alice").video
        await wait_for(lambda: bob.counts("ok-alice").video > before + 10, 10, "bob still receiving alice")
        assert h.alive()
        await bob.close()
        await alice.close()

    run(body())


def test_a_dropped_socket_resumes_without_a_new_entry(hearth_media):
    async def body():
        alice = WsClient(hearth_media, APP1, "rs-alice", room=505)
        bob = WsClient(hearth_media, APP1, "rs-bob", room=505)
        await alice.connect()
        await bob.connect()
        await alice.publish(RED)
        await bob.wait_media("rs-alice")
        session = alice.session
        await alice.drop_socket()
        await asyncio.sleep(1)
        again = await alice.connect(resume=session)
        assert again["session"] == session
        before = bob.counts("rs-alice").video
        await wait_for(lambda: bob.counts("rs-alice").video > before + 15, 10, "media kept flowing across the resume")
        exits = [m for m in bob.messages if m["type"] in ("user_exited", "user_entered") and
                 (m.get("userid") == "rs-alice" or m.get("user", {}).get("userid") == "rs-alice")]
        assert [u["userid"] for u in bob.entered["roster"]] == ["rs-alice"]
        assert exits == [], f"the resume must not look like an exit and a new entry to others: {exits}"
        await alice.close()
        await bob.close()

    run(body())


def test_a_client_that_stops_answering_is_removed_and_the_others_carry_on(hearth_media):
    """The socket stays open but the client goes quiet (no pings, no reads): after the 30 s idle
    timeout the server detaches it, after the 30 s resume window it ends the session; the other
    client is told and keeps its own media."""

    async def body():
        quiet = WsClient(hearth_media, APP1, "quiet", room=506)
        loud = WsClient(hearth_media, APP1, "loud", room=506)
        await quiet.connect()
        await loud.connect()
        await quiet.publish(RED)
        await loud.publish(BLUE)
        await loud.wait_media("quiet")
        await quiet.wait_media("loud")
        # Go quiet: stop pinging and reading; keep the TCP connection and media as they are.
        for t in quiet.tasks[:2]:
            t.cancel()
        took = await wait_for(
            lambda: any(m["type"] == "user_exited" and m["userid"] == "quiet" for m in loud.messages),
            75, "loud to be told that quiet is gone", step=0.5)
        assert took > 50, f"removed after {took:.0f}s: sooner than idle timeout + resume window"
        assert hearth_media.alive()
        stats = await wait_stats(hearth_media, lambda m: m["peers"] >= 2, 5, "loud's connections still up")
        assert stats["rooms"] >= 1
        # The one left in the room keeps working: a newcomer receives it.
        other = WsClient(hearth_media, APP1, "newcomer", room=506)
        await other.connect()
        await other.wait_media("loud")
        await other.close()
        await loud.close()
        await quiet.close(exit_first=False)

    run(body())


def test_custom_messages_reach_the_rest_of_the_room_in_order_within_limits(hearth_media):
    import base64

    def custom_from(c: WsClient, sender: str) -> list[dict]:
        return [m for m in c.messages if m["type"] == "custom" and m["userid"] == sender]

    def errors_for(c: WsClient) -> list[dict]:
        return [e for e in c.errors if e.get("request") == "custom"]

    async def body():
        alice = WsClient(hearth_media, APP1, "cm-alice", room=511)
        bob = WsClient(hearth_media, APP1, "cm-bob", room=511)
        carol = WsClient(hearth_media, APP1, "cm-carol", room=511, role="audience")
        other = WsClient(hearth_media, APP1, "cm-other", room=512)
        clients = [alice, bob, carol, other]
        try:
            for c in clients:
                await c.connect()
            payloads = [f"subtitle {i}: héllo".encode() for i in range(5)] + [bytes(range(256)) * 4]
            for i, p in enumerate(payloads):
                await alice.send({"type": "custom", "cmdid": 1 + i % 10, "data": base64.b64encode(p).decode()})
            for c in (bob, carol):
                await wait_for(lambda c=c: len(custom_from(c, "cm-alice")) == len(payloads), 5,
                               f"{c.user} to get alice's {len(payloads)} messages")
                got = custom_from(c, "cm-alice")
                assert [m["seq"] for m in got] == list(range(1, len(payloads) + 1)), got
                assert [base64.b64decode(m["data"]) for m in got] == payloads
                assert [m["cmdid"] for m in got] == [1 + i % 10 for i in range(len(payloads))]
            assert not custom_from(alice, "cm-alice"), "the sender does not get its own"
            assert not [m for m in other.messages if m["type"] == "custom"], "another room gets nothing"

            # Bad input: each refused with its code; the socket stays.
            bad = [({"cmdid": 0, "data": ""}, 400), ({"cmdid": 11, "data": ""}, 400),
                   ({"cmdid": 1, "data": base64.b64encode(b"x" * 1025).decode()}, 400),
                   ({"cmdid": 1, "data": "not base64!"}, 400)]
            for fields, _ in bad:
                await alice.send({"type": "custom", **fields})
            await wait_for(lambda: len(errors_for(alice)) == len(bad), 5, "alice's bad messages refused")
            assert [e["code"] for e in errors_for(alice)] == [code for _, code in bad], alice.errors
            await carol.send({"type": "custom", "cmdid": 1, "data": ""})
            await wait_for(lambda: errors_for(carol), 5, "the audience refused")
            assert errors_for(carol)[0]["code"] == 403
            assert not custom_from(bob, "cm-carol")

            # A flood: 30 a second pass, the rest are refused with 429; the room carries on.
            before = len(custom_from(bob, "cm-alice"))
            for i in range(60):
                await alice.send({"type": "custom", "cmdid": 2, "data": base64.b64encode(b"%d" % i).decode()})
            await wait_for(lambda: len(errors_for(alice)) >= len(bad) + 20, 5, "the flood refused")
            await asyncio.sleep(0.5)
            passed = len(custom_from(bob, "cm-alice")) - before
            refused = len([e for e in errors_for(alice) if e["code"] == 429])
            assert 24 <= passed <= 40 and passed + refused == 60, (passed, refused)
            seqs = [m["seq"] for m in custom_from(bob, "cm-alice")]
            assert seqs == list(range(1, len(seqs) + 1)), "numbered without gaps: refused ones take no number"
            await bob.send({"type": "custom", "cmdid": 3, "data": base64.b64encode(b"still here").decode()})
            await wait_for(lambda: custom_from(alice, "cm-bob"), 5, "the room still carries messages")
        finally:
            for c in clients:
                await c.close()

    run(body())
