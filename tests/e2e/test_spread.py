"""A room is not bound to one worker: once its home worker holds `media.capacity_per_worker`
sessions, further WHEP viewers are placed on the other worker, which mirrors the room and gets
the publishers' packets from the home. Every viewer on either worker decodes its publisher's
picture and tone (a WHIP publisher and a protocol client's camera); a mute and unmute, presence,
RemoveUser, leaving and a republish work across the two; a join is refused only when both
workers are full."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import time

import pytest

from conftest import APP1, sdk_client, start_hearth, stop_hearth
from media import Publisher, Viewer, media_stats, metric, run, wait_for, wait_stats
from ws_client import WsClient

ROOM = 6200
RED, BLUE, GREEN = (200, 40, 40), (40, 40, 200), (40, 200, 40)
CAPACITY = 4


@pytest.fixture(scope="module")
def spread(tmp_path_factory):
    h = start_hearth(tmp_path_factory.mktemp("hearth-spread"), "spread", rate_limits=False,
                     env={"HEARTH_MEDIA_CAPACITY_PER_WORKER": str(CAPACITY), "HEARTH_MEDIA_WORKERS": "2"})
    yield h
    stop_hearth(h)


def worker_of(c) -> int:
    m = re.fullmatch(r"/whep/v1/session/(\d+)/\d+/\w+", c.location)
    assert m, c.location
    return int(m.group(1))


def near(rgb, want, tol=40.0) -> bool:
    return rgb is not None and all(abs(a - b) < tol for a, b in zip(rgb, want))


async def sees(v: Viewer, colour, what: str, timeout: float = 15.0) -> None:
    await wait_for(lambda: near(v.counts.rgb, colour), timeout,
                   f"{v.where()} to show {what} (centre is {v.counts.rgb})")


async def flowing(v: Viewer, timeout: float = 5.0) -> None:
    n = v.counts.video
    await wait_for(lambda: v.counts.video > n + 10, timeout, f"{v.where()}'s video to go on")


async def stopped(vs: list[Viewer], what: str) -> None:
    """Within 2 s no video arrives at any of them (checked over the next second)."""
    await asyncio.sleep(2.0)
    before = [v.counts.video for v in vs]
    await asyncio.sleep(1.0)
    for v, n in zip(vs, before):
        assert v.counts.video <= n + 1, f"{v.where()} still receives video {what} ({n} -> {v.counts.video})"


def test_a_room_spread_over_two_workers_delivers_every_stream_to_every_viewer(spread):
    h = spread

    async def body():
        alice = await Publisher(h, APP1, "alice", room=ROOM, rgb=RED).start()
        bob = WsClient(h, APP1, "bob", room=ROOM, autosubscribe=False)
        await bob.connect()
        await bob.publish(BLUE)
        # The home takes the two publishers and a viewer of each; the next four go to the other
        # worker, which then is full too.
        pairs = [("a1", "alice"), ("b1", "bob"), ("a2", "alice"), ("b2", "bob"), ("a3", "alice"), ("b3", "bob")]
        viewers = {}
        for name, publisher in pairs:
            viewers[name] = await Viewer(h, APP1, name, publisher, room=ROOM).start()
        workers = [worker_of(v) for v in viewers.values()]
        home = workers[0]
        assert workers == [home, home] + [1 - home] * 4, workers
        for name, v in viewers.items():
            await v.wait_frames(video=15, audio=25)
            await sees(v, RED if name.startswith("a") else BLUE, f"{v.publisher}'s picture")
        assert metric(h, "hearth_media_packets_relayed_total") > 0
        assert metric(h, "hearth_media_relay_drops_total") == 0
        # One room with eight users, counted once (by its home).
        stats = media_stats(h)
        assert stats["rooms"] == 1 and stats["users"] == 8, stats

        # Both workers full: the next viewer is refused, once.
        late = Viewer(h, APP1, "late", "alice", room=ROOM)
        ex = await late.post_raw(await late.offer())
        assert ex.status == 503 and ex.headers.get("Retry-After") == "5", (ex.status, ex.body)
        assert metric(h, "hearth_media_refused_full_total") == 1
        await late.close()

        # Bob mutes his camera: his viewers on both workers stop; he unmutes and they all
        # resume (at a keyframe the mirror asks the home for).
        bobs = [viewers["b1"], viewers["b2"], viewers["b3"]]
        await bob.send({"type": "mute", "source": "camera", "muted": True})
        await stopped(bobs, "after bob muted his camera")
        await flowing(viewers["a2"])
        await bob.send({"type": "mute", "source": "camera", "muted": False})
        for v in bobs:
            await flowing(v, timeout=10)
            await sees(v, BLUE, "bob's picture after he unmuted")

        # An operator removes a viewer the other worker holds: it stops, the rest go on.
        kicked = viewers["a2"]
        await asyncio.to_thread(sdk_client(h).call_json, "RemoveUser",
                                {"SdkAppId": APP1, "RoomId": ROOM, "UserIds": [kicked.user]})
        await wait_stats(h, lambda s: s["users"] == 7, 5, "the kicked viewer gone from the room")
        await stopped([kicked], "after RemoveUser")
        assert await kicked.delete() == 404
        for name in ["a1", "b1", "b2", "a3", "b3"]:
            await flowing(viewers[name])

        # A viewer leaving the other worker leaves the room at its home.
        assert await viewers["b3"].delete() == 200
        await wait_stats(h, lambda s: s["users"] == 6, 5, "the leaving viewer gone from the room")

        # Alice comes back with another picture: her viewers on both workers follow.
        assert await alice.delete() == 200
        await alice.close()
        alice = await Publisher(h, APP1, "alice", room=ROOM, rgb=GREEN).start()
        for name in ["a1", "a3"]:
            await sees(viewers[name], GREEN, "alice's green picture after she republished")

        # Everyone leaves: nothing is left on either worker.
        for name in ["a1", "b1", "b2", "a3"]:
            assert await viewers[name].delete() == 200
        assert await alice.delete() == 200
        await bob.close()
        await wait_stats(h, lambda s: s["rooms"] == 0 and s["peers"] == 0 and s["users"] == 0, 5,
                         "both workers empty")
        for v in viewers.values():
            await v.close()
        await alice.close()

    run(body())


def test_an_audience_past_the_home_worker_is_spread_and_hears_the_room(spread):
    """Protocol clients of the audience past a full home go to the other worker: they get the
    roster, the anchors' media and later anchors (notices and offers cross from the home);
    RemoveUser reaches them; an anchor is not spread (it is refused), and an audience member
    on the other worker cannot become an anchor there."""
    h = spread
    room = ROOM + 1

    async def body():
        alice = WsClient(h, APP1, "alice", room=room)
        await alice.connect()
        await alice.publish(RED)
        home_audience = [WsClient(h, APP1, f"h{i}", room=room, role="audience") for i in range(3)]
        for c in home_audience:
            await c.connect()
        # The home holds four sessions now; two more audience members go to the other worker.
        # (m1 subscribes by hand: the mirror knows alice publishes.)
        spread_audience = [WsClient(h, APP1, "m0", room=room, role="audience"),
                           WsClient(h, APP1, "m1", room=room, role="audience", autosubscribe=False)]
        for c in spread_audience:
            entered = await c.connect()
            assert [u["userid"] for u in entered["roster"]] == ["alice"], entered
            assert c.session.split(".")[0] != home_audience[0].session.split(".")[0], \
                (c.session, home_audience[0].session)
        for c in home_audience + spread_audience[:1]:
            await c.wait_media("alice")
        # Alice's tracks exist now (publishing returns before her media connects).
        await spread_audience[1].send({"type": "subscribe", "userid": "alice", "stream": "main"})
        await spread_audience[1].wait_media("alice")
        assert media_stats(h)["users"] == 6
        # An anchor is not spread: the full home refuses it.
        bob = WsClient(h, APP1, "bob", room=room)
        with pytest.raises(AssertionError) as refused:
            await bob.connect()
        assert "'code': 503" in str(refused.value), refused.value

        # On the other worker an audience member cannot switch to anchor.
        m0 = spread_audience[0]
        await m0.send({"type": "role", "role": "anchor"})
        await wait_for(lambda: any(e["code"] == 403 for e in m0.errors), 5,
                       f"403 for the switch to anchor (errors: {m0.errors})")

        # A place at home frees up; a new anchor there is announced to and received by the
        # audience on the other worker.
        await home_audience[0].close()
        await wait_stats(h, lambda s: s["users"] == 5, 5, "h0 gone")
        bob = WsClient(h, APP1, "bob", room=room)
        await bob.connect()
        await bob.publish(BLUE)
        await wait_for(lambda: any(m["type"] == "user_entered" and m["user"]["userid"] == "bob"
                                   for m in m0.messages), 10, "m0 told bob entered")
        await m0.wait_media("bob")

        # RemoveUser reaches a client on the other worker.
        m1 = spread_audience[1]
        await asyncio.to_thread(sdk_client(h).call_json, "RemoveUser",
                                {"SdkAppId": APP1, "RoomId": room, "UserIds": [m1.user]})
        await wait_for(lambda: any(m["type"] == "notice" and m["reason"] == "kicked" for m in m1.messages),
                       5, "m1 told it was kicked")
        await asyncio.wait_for(m1.closed.wait(), 5)
        await wait_stats(h, lambda s: s["users"] == 5, 5, "m1 gone from the room")

        for c in [m0, *home_audience[1:], bob, alice]:
            await c.close()
        await m1.close(exit_first=False)
        await wait_stats(h, lambda s: s["rooms"] == 0 and s["peers"] == 0 and s["users"] == 0, 5,
                         "both workers empty")

    run(body())


FREEZER = "/sys/fs/cgroup/freezer"


@contextlib.contextmanager
def frozen_thread(pid: int, name: str):
    """Stops one thread of a process (cgroup v1 freezer: a group holding only that thread) for
    the block, as if its CPU were taken away; the rest of the process runs on."""
    tids = [t for t in os.listdir(f"/proc/{pid}/task")
            if pathlib.Path(f"/proc/{pid}/task/{t}/comm").read_text().strip() == name]
    assert len(tids) == 1, f"threads named {name} in {pid}: {tids}"
    assert os.access(FREEZER, os.W_OK), f"{FREEZER} (cgroup v1 freezer) is needed, writable (root)"
    group = pathlib.Path(FREEZER, f"hearth-test-{pid}-{name}")
    group.mkdir(exist_ok=True)
    try:
        (group / "tasks").write_text(tids[0])
        (group / "freezer.state").write_text("FROZEN")
        yield
    finally:
        (group / "freezer.state").write_text("THAWED")
        pathlib.Path(FREEZER, "tasks").write_text(tids[0])
        group.rmdir()


def lags(v: Viewer, since: float = 0.0) -> list[float]:
    """How far behind the publisher's clock each video frame since `since` came, in s, give or
    take a constant: its arrival minus its RTP time (the server advances a line's timestamps
    by the time that passed when it skips media, so a frame played late shows here)."""
    frames = v.counts.video_at
    t0, ts0 = frames[0]
    out = []
    for t, ts in frames:
        if t >= since:
            rtp = ((ts - ts0 + 2**31) % 2**32 - 2**31) / 90_000
            out.append(t - t0 - rtp)
    return out


def test_a_mirror_that_falls_behind_skips_to_the_present(spread):
    """The worker holding a room's mirror stops for 3 s (its thread frozen): the home's viewers
    go on, the packets handed to the mirror meanwhile are dropped as stale once it runs again
    (hearth_media_relay_stale_total), and its viewer resumes at a keyframe with the present
    picture instead of playing 3 s of old media late."""
    h = spread
    room = ROOM + 2

    async def body():
        carol = await Publisher(h, APP1, "carol", room=room, rgb=GREEN).start()
        # The home takes carol and three viewers; the fourth goes to the other worker.
        viewers = [await Viewer(h, APP1, f"c{i}", "carol", room=room).start() for i in range(4)]
        workers = [worker_of(v) for v in viewers]
        home = workers[0]
        assert workers == [home] * 3 + [1 - home], workers
        near, far = viewers[0], viewers[3]
        for v in (near, far):
            await v.wait_frames(video=30, audio=0)
        await asyncio.sleep(1.0)
        base = sorted(lags(far))[len(lags(far)) // 2]
        stale = metric(h, "hearth_media_relay_stale_total")
        shown = near.counts.video
        with frozen_thread(h.pid, f"hearth-media-{1 - home}"):
            await asyncio.sleep(3.0)
            assert near.counts.video > shown + 30, \
                f"the home's viewer stalled with the mirror ({shown} -> {near.counts.video} frames)"
        thawed = time.monotonic()
        await flowing(far, timeout=10)
        await asyncio.sleep(1.0)
        late = [round(x - base, 2) for x in lags(far, since=thawed)]
        assert late, "no frame reached the mirror's viewer after the thaw"
        # What the worker held when it stopped goes out late; nothing it was handed meanwhile.
        assert len([x for x in late if x > 0.8]) <= 2 and late[-1] < 0.3, \
            f"the mirror's viewer played old media late (s behind, frame by frame): {late}"
        assert metric(h, "hearth_media_relay_stale_total") > stale, "nothing was dropped as stale"
        await sees(far, GREEN, "carol's picture after the thaw")
        for v in viewers:
            await v.close()
        await carol.close()

    run(body())
