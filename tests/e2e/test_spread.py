"""A room is not bound to one worker: once its home worker holds `media.capacity_per_worker`
sessions, further WHEP viewers are placed on the other worker, which mirrors the room and gets
the publisher's packets from the home. Every viewer on either worker decodes the publisher's
picture and tone; presence, RemoveUser, leaving and a republish work across the two; a join is
refused only when both workers are full."""

from __future__ import annotations

import asyncio
import re

import pytest

from conftest import APP1, sdk_client, start_hearth, stop_hearth
from media import Publisher, Viewer, media_stats, metric, run, wait_for, wait_stats

ROOM = 6200
RED, BLUE = (200, 40, 40), (40, 40, 200)
CAPACITY = 3


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


def test_a_room_spread_over_two_workers_delivers_every_stream_to_every_viewer(spread):
    h = spread

    async def body():
        alice = await Publisher(h, APP1, "alice", room=ROOM, rgb=RED).start()
        viewers = []
        # The home takes alice and two viewers; the next three go to the other worker.
        for name in ["v1", "v2", "v3", "v4", "v5"]:
            v = await Viewer(h, APP1, name, "alice", room=ROOM).start()
            viewers.append(v)
        workers = [worker_of(v) for v in viewers]
        home = workers[0]
        assert workers == [home, home, 1 - home, 1 - home, 1 - home], workers
        for v in viewers:
            await v.wait_frames(video=15, audio=25)
            await sees(v, RED, "alice's red picture")
        assert metric(h, "hearth_media_packets_relayed_total") > 0
        assert metric(h, "hearth_media_relay_drops_total") == 0
        # One room with six users, counted once (by its home).
        stats = media_stats(h)
        assert stats["rooms"] == 1 and stats["users"] == 6, stats

        # Both workers full: the next viewer is refused, once.
        late = Viewer(h, APP1, "v6", "alice", room=ROOM)
        ex = await late.post_raw(await late.offer())
        assert ex.status == 503 and ex.headers.get("Retry-After") == "5", (ex.status, ex.body)
        assert metric(h, "hearth_media_refused_full_total") == 1
        await late.close()

        # An operator removes a viewer the other worker holds: it stops, the rest go on.
        kicked = viewers[3]
        await asyncio.to_thread(sdk_client(h).call_json, "RemoveUser",
                                {"SdkAppId": APP1, "RoomId": ROOM, "UserIds": [kicked.user]})
        await wait_stats(h, lambda s: s["users"] == 5, 5, "the kicked viewer gone from the room")
        await asyncio.sleep(1.0)
        n = kicked.counts.video
        await asyncio.sleep(1.0)
        assert kicked.counts.video <= n + 1, "the kicked viewer still receives video"
        assert await kicked.delete() == 404
        for v in viewers[:3] + viewers[4:]:
            n = v.counts.video
            await wait_for(lambda: v.counts.video > n + 10, 5, f"{v.where()} to go on")

        # A viewer leaving the other worker leaves the room at its home.
        assert await viewers[4].delete() == 200
        await wait_stats(h, lambda s: s["users"] == 4, 5, "the leaving viewer gone from the room")

        # The publisher comes back with another picture: viewers on both workers follow.
        assert await alice.delete() == 200
        await alice.close()
        alice = await Publisher(h, APP1, "alice", room=ROOM, rgb=BLUE).start()
        for v in (viewers[0], viewers[2]):
            await sees(v, BLUE, "alice's blue picture after she republished")

        # Everyone leaves: nothing is left on either worker.
        for v in (viewers[0], viewers[1], viewers[2]):
            assert await v.delete() == 200
        assert await alice.delete() == 200
        await wait_stats(h, lambda s: s["rooms"] == 0 and s["peers"] == 0 and s["users"] == 0, 5,
                         "both workers empty")
        for v in viewers:
            await v.close()
        await alice.close()

    run(body())
