"""Room management on live sessions through the official SDK: RemoveUser, SetUserBlocked and
DismissRoom act on WebSocket clients and WHIP/WHEP sessions within a second or two; the users
who were not targeted keep their media."""

from __future__ import annotations

import asyncio
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import APP1, APP2, sdk_client
from media import Publisher, Viewer, run, wait_for
from ws_client import WsClient

RED, BLUE, GREEN = (200, 40, 40), (40, 40, 200), (40, 200, 40)


def api(h, action, params):
    return sdk_client(h).call_json(action, params)["Response"]


async def api_async(h, action, params):
    return await asyncio.to_thread(api, h, action, params)


def notices(c: WsClient, reason: str) -> list[dict]:
    return [m for m in c.messages if m["type"] == "notice" and m["reason"] == reason]


async def flowing(counter, what: str, timeout: float = 4.0) -> None:
    """The count grows within `timeout`."""
    before = counter()
    await wait_for(lambda: counter() > before + 3, timeout, f"{what} to keep flowing")


async def stopped(counter, what: str, within: float = 2.0) -> None:
    """The count stops growing within `within` seconds (checked over the next second)."""
    await asyncio.sleep(within)
    before = counter()
    await asyncio.sleep(1.0)
    assert counter() <= before + 1, f"{what} still flowing ({before} -> {counter()})"


def test_remove_user_kicks_clients_and_whip_sessions_alone(hearth_media):
    h = hearth_media

    async def body():
        alice = WsClient(h, APP1, "mod-alice", room=601)
        bob = WsClient(h, APP1, "mod-bob", room=601)
        await alice.connect()
        await bob.connect()
        await alice.publish(RED)
        await bob.wait_media("mod-alice")
        # Publishers arrive one after the other (see the note on aiortc in ws_client.py).
        carol = await Publisher(h, APP1, "mod-carol", room=601, rgb=GREEN).start()
        dave = await Viewer(h, APP1, "mod-dave", "mod-carol", room=601).start()
        await bob.wait_media("mod-carol")
        await dave.wait_frames(video=10, audio=10)

        kicked_at = time.monotonic()
        await api_async(h, "RemoveUser", {"SdkAppId": APP1, "RoomId": 601, "UserIds": ["mod-alice", "nobody"]})
        await wait_for(lambda: notices(alice, "kicked"), 2, "alice told she was kicked")
        await asyncio.wait_for(alice.closed.wait(), 2)
        await wait_for(lambda: any(m["type"] == "user_exited" and m["userid"] == "mod-alice" for m in bob.messages),
                       2, "bob told alice left")
        assert time.monotonic() - kicked_at < 2.5
        await stopped(lambda: bob.counts("mod-alice").video, "alice's video at bob")
        await flowing(lambda: bob.counts("mod-carol").video, "carol's video at bob")
        await flowing(lambda: dave.counts.video, "carol's video at dave")

        # A WHIP publisher is removed the same way; its viewer stops receiving.
        await api_async(h, "RemoveUser", {"SdkAppId": APP1, "RoomId": 601, "UserIds": ["mod-carol"]})
        await stopped(lambda: dave.counts.video, "carol's video at dave")
        assert await carol.delete() == 404, "the kicked WHIP session is gone"

        # Alice can come back with a valid UserSig.
        again = WsClient(h, APP1, "mod-alice", room=601)
        await again.connect()
        await again.publish(RED)
        await flowing(lambda: bob.counts("mod-alice").video, "alice's video at bob after rejoining", timeout=15)
        for c in (again, bob):
            await c.close()
        await alice.close(exit_first=False)
        await dave.delete()
        await dave.close()
        await carol.close()

    run(body())


def test_set_user_blocked_stops_and_resumes_media(hearth_media):
    h = hearth_media

    async def body():
        alice = WsClient(h, APP1, "blk-alice", room=602)
        bob = WsClient(h, APP1, "blk-bob", room=602)
        await alice.connect()
        await bob.connect()
        await alice.publish(RED)
        await bob.publish(BLUE)
        await bob.wait_media("blk-alice")
        await alice.wait_media("blk-bob")

        await api_async(h, "SetUserBlocked", {"SdkAppId": APP1, "RoomId": 602, "UserId": "blk-alice", "IsMute": 1})
        await wait_for(lambda: notices(alice, "blocked"), 2, "alice told she is blocked")
        await stopped(lambda: bob.counts("blk-alice").video, "alice's video at bob")
        await stopped(lambda: bob.counts("blk-alice").audio, "alice's audio at bob", within=0.1)
        await flowing(lambda: alice.counts("blk-bob").video, "bob's video at alice (bob is not blocked)")
        # Publishing is refused while blocked.
        await alice.send({"type": "publish", "sdp": alice.pub.localDescription.sdp,
                          "tracks": [{"mid": "0", "source": "mic"}]})
        await wait_for(lambda: any(e["code"] == 403 and e.get("request") == "publish" for e in alice.errors),
                       3, f"403 for publishing while blocked: {alice.errors}")

        unblocked_at = time.monotonic()
        await api_async(h, "SetUserBlocked", {"SdkAppId": APP1, "RoomId": 602, "UserId": "blk-alice", "IsMute": 0})
        await wait_for(lambda: notices(alice, "unblocked"), 2, "alice told she is unblocked")
        before = bob.counts("blk-alice").video
        await wait_for(lambda: bob.counts("blk-alice").video > before + 2, 2.0,
                       "alice's video decoded again at bob within 2 s (keyframe on unblock)")
        assert time.monotonic() - unblocked_at < 2.5

        # IsMute=3: video only.
        await api_async(h, "SetUserBlocked",
                        {"SdkAppId": APP1, "RoomId": 602, "UserId": "blk-alice", "IsMute": 3})
        await stopped(lambda: bob.counts("blk-alice").video, "alice's video at bob (video blocked)")
        await flowing(lambda: bob.counts("blk-alice").audio, "alice's audio at bob (audio not blocked)")
        await api_async(h, "SetUserBlocked", {"SdkAppId": APP1, "RoomId": 602, "UserId": "blk-alice", "IsMute": 0})
        await alice.close()
        await bob.close()

    run(body())


def test_blocking_a_whip_publisher_in_a_string_room(hearth_media):
    h = hearth_media

    async def body():
        pub = await Publisher(h, APP1, "blk-whip", strroom="blk-room", rgb=GREEN).start()
        view = await Viewer(h, APP1, "blk-view", "blk-whip", strroom="blk-room").start()
        await view.wait_frames(video=10, audio=10)
        await api_async(h, "SetUserBlockedByStrRoomId",
                        {"SdkAppId": APP1, "StrRoomId": "blk-room", "UserId": "blk-whip", "IsMute": 2})
        await stopped(lambda: view.counts.audio, "the blocked audio")
        await flowing(lambda: view.counts.video, "the video (only audio blocked)")
        await api_async(h, "SetUserBlockedByStrRoomId",
                        {"SdkAppId": APP1, "StrRoomId": "blk-room", "UserId": "blk-whip", "IsMute": 0})
        await flowing(lambda: view.counts.audio, "the audio after unblocking")
        await view.delete()
        await pub.delete()
        await view.close()
        await pub.close()

    run(body())


def test_dismiss_room_tells_and_removes_everyone_and_ends_the_call(hearth_media):
    h = hearth_media
    started = int(time.time())

    async def body():
        alice = WsClient(h, APP1, "dis-alice", room=603)
        bob = WsClient(h, APP1, "dis-bob", room=603)
        await alice.connect()
        await bob.connect()
        await alice.publish(RED)
        await bob.wait_media("dis-alice")
        await api_async(h, "DismissRoom", {"SdkAppId": APP1, "RoomId": 603})
        for c in (alice, bob):
            await wait_for(lambda c=c: notices(c, "room_dismissed"), 2, f"{c.user} told the room was dismissed")
            await asyncio.wait_for(c.closed.wait(), 2)
        with pytest.raises(TencentCloudSDKException) as e:
            await api_async(h, "DismissRoom", {"SdkAppId": APP1, "RoomId": 603})
        assert e.value.code == "FailedOperation.RoomNotExist"
        # A later entry starts a new call.
        carol = WsClient(h, APP1, "dis-carol", room=603)
        await carol.connect()
        await asyncio.sleep(1)
        rooms = await api_async(h, "DescribeRoomInfo", {"SdkAppId": APP1, "StartTime": started - 5,
                                                        "EndTime": int(time.time()), "RoomId": "603"})
        assert [r["IsFinished"] for r in rooms["RoomList"]] == [True, False], rooms
        await carol.close()
        for c in (alice, bob):
            await c.close(exit_first=False)

    run(body())


def test_kicked_exits_are_recorded(hearth_media):
    h = hearth_media
    started = int(time.time())

    async def body():
        eve = WsClient(h, APP1, "rec-eve", room=604)
        frank = WsClient(h, APP1, "rec-frank", room=604)
        await eve.connect()
        await frank.connect()
        rooms = await api_async(h, "DescribeRoomInfo", {"SdkAppId": APP1, "StartTime": started - 5,
                                                        "EndTime": int(time.time()), "RoomId": "604"})
        comm_id = rooms["RoomList"][0]["CommId"]
        await api_async(h, "RemoveUser",
                        {"SdkAppId": APP1, "RoomId": 604, "UserIds": ["rec-eve"]})
        await asyncio.wait_for(eve.closed.wait(), 2)
        await asyncio.sleep(1.2)
        events = await api_async(h, "DescribeUserEvent", {"SdkAppId": APP1, "CommId": comm_id, "RoomId": "604",
                                                          "UserId": "rec-eve", "StartTime": started - 5,
                                                          "EndTime": int(time.time())})
        ids = [m["EventId"] for e in events["Data"] for m in e["Content"]]
        assert ids[0] == 32788 and ids[-1] == 32789, ids
        await frank.close()
        await eve.close(exit_first=False)

    run(body())


@pytest.mark.parametrize("action,params,code", [
    ("RemoveUser", {"SdkAppId": APP1, "RoomId": 699, "UserIds": ["x"]}, "FailedOperation.RoomNotExist"),
    ("RemoveUser", {"SdkAppId": APP1, "RoomId": 699, "UserIds": [f"u{i}" for i in range(11)]}, "InvalidParameter.UserIds"),
    ("RemoveUser", {"SdkAppId": APP1, "RoomId": "abc", "UserIds": ["x"]}, "InvalidParameter.RoomId"),
    ("RemoveUser", {"SdkAppId": APP2, "RoomId": 699, "UserIds": ["x"]}, "UnauthorizedOperation.SdkAppId"),
    ("RemoveUserByStrRoomId", {"SdkAppId": APP1, "RoomId": "no/such", "UserIds": ["x"]}, "InvalidParameterValue.RoomId"),
    ("SetUserBlocked", {"SdkAppId": APP1, "RoomId": 699, "UserId": "x", "IsMute": 1}, "FailedOperation.RoomNotExist"),
    ("SetUserBlocked", {"SdkAppId": APP1, "RoomId": 699, "UserId": "x", "IsMute": 9}, "InvalidParameter"),
    ("SetUserBlockedByStrRoomId", {"SdkAppId": APP1, "StrRoomId": "nobody-here", "UserId": "x", "IsMute": 1}, "FailedOperation.RoomNotExist"),
    ("SetUserBlockedByStrRoomId", {"SdkAppId": APP2, "StrRoomId": "r", "UserId": "x", "IsMute": 1}, "UnauthorizedOperation.SdkAppId"),
])
def test_moderation_errors(hearth_media, action, params, code):
    with pytest.raises(TencentCloudSDKException) as e:
        api(hearth_media, action, params)
    assert e.value.code == code, e.value.message


def test_blocking_someone_not_in_the_room_is_user_not_exist(hearth_media):
    h = hearth_media

    async def body():
        gina = WsClient(h, APP1, "ne-gina", room=605)
        await gina.connect()
        with pytest.raises(TencentCloudSDKException) as e:
            await api_async(h, "SetUserBlocked", {"SdkAppId": APP1, "RoomId": 605, "UserId": "ne-ghost", "IsMute": 1})
        assert e.value.code == "FailedOperation.UserNotExist"
        await gina.close()

    run(body())
