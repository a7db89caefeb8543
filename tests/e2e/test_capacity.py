"""A media server at its configured capacity (`media.capacity_per_worker`) refuses new joins
clearly instead of degrading everyone: WHIP and WHEP answer 503 with Retry-After, the WebSocket
protocol answers error 503 and closes, /metrics counts the refusals, the sessions already in go
on, and a place freed is taken again."""

from __future__ import annotations

import asyncio

import pytest

from conftest import APP1, start_hearth, stop_hearth
from media import Publisher, Viewer, metric, run, wait_for
from ws_client import WsClient

ROOM = 6100


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    h = start_hearth(tmp_path_factory.mktemp("hearth-capacity"), "capacity", rate_limits=False,
                     env={"HEARTH_MEDIA_CAPACITY_PER_WORKER": "2", "HEARTH_MEDIA_WORKERS": "1"})
    yield h
    stop_hearth(h)


def test_joins_past_capacity_are_refused_and_a_freed_place_is_taken_again(full):
    async def body():
        alice = Publisher(full, APP1, "alice", room=ROOM)
        await alice.start()
        bob = Viewer(full, APP1, "bob", "alice", room=ROOM)
        await bob.start()
        await bob.wait_frames(10, 10)
        # A third session: refused, with when to come back.
        carol = Viewer(full, APP1, "carol", "alice", room=ROOM)
        ex = await carol.post_raw(await carol.offer())
        assert ex.status == 503 and ex.headers.get("Retry-After") == "5", (ex.status, ex.headers, ex.body)
        assert "capacity" in ex.body, ex.body
        dave = Publisher(full, APP1, "dave", room=ROOM + 1)
        ex = await dave.post_raw(await dave.offer())
        assert ex.status == 503, ex.status
        # The protocol's clients are refused at enter.
        eve = WsClient(full, APP1, "eve", room=ROOM)
        with pytest.raises(AssertionError) as refused:
            await eve.connect()
        assert "'code': 503" in str(refused.value) and "capacity" in str(refused.value), refused.value
        assert metric(full, "hearth_media_refused_full_total") == 3
        # Those in go on.
        n = bob.counts.video
        await wait_for(lambda: bob.counts.video > n + 15, 5, "bob's video to go on")
        # A place freed is taken.
        assert await bob.delete() == 200
        await bob.close()
        await asyncio.sleep(0.2)
        frank = Viewer(full, APP1, "frank", "alice", room=ROOM)
        await frank.start()
        await frank.wait_frames(10, 10)
        await frank.close()
        await carol.close()
        await dave.close()
        await eve.close(exit_first=False)
        await alice.close()

    run(body())
