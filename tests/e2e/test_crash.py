"""`kill -9` in the middle of a call, then a restart: what was written before the kill is still
there, and the sessions and the call that were open are closed at their last sign of life."""

from __future__ import annotations

import asyncio
import time

from conftest import APP1, sdk_client, start_hearth, stop_hearth
from media import Publisher, Viewer, run


def test_kill_9_keeps_what_was_written_and_closes_the_open_call(tmp_path):
    h = start_hearth(tmp_path, "crash", rate_limits=False)
    started = int(time.time())

    async def body():
        pub = await Publisher(h, APP1, "crash-pub", room=777).start()
        view = await Viewer(h, APP1, "crash-view", "crash-pub", room=777).start()
        await view.wait_frames(video=30, audio=30)
        # Leave time for at least two quality samples (every 2 s) to be written.
        await asyncio.sleep(4.5)
        killed_at = time.time()
        h.proc.kill()
        h.proc.wait()
        await pub.close()
        await view.close()
        h2 = await asyncio.to_thread(start_hearth, tmp_path, "crash-restarted", rate_limits=False)
        try:
            check(h2, started, killed_at)
        finally:
            stop_hearth(h2)

    run(body())


def check(h2, started: int, killed_at: float) -> None:
    client = sdk_client(h2)
    rooms = client.call_json("DescribeRoomInfo", {"SdkAppId": APP1, "StartTime": started - 60,
                                                   "EndTime": int(time.time())})["Response"]
    calls = [r for r in rooms["RoomList"] if r["RoomString"] == "777"]
    assert len(calls) == 1, rooms
    call = calls[0]
    assert call["IsFinished"] is True, call
    assert killed_at - 6 <= call["DestroyTime"] <= killed_at + 1, (call, killed_at)
    users = client.call_json("DescribeUserInfo", {"SdkAppId": APP1, "CommId": call["CommId"],
                                                  "StartTime": started - 60, "EndTime": int(time.time())})["Response"]
    by_user = {u["UserId"]: u for u in users["UserList"]}
    assert set(by_user) == {"crash-pub", "crash-view"}, users
    for u in by_user.values():
        assert u["Finished"] is True, u
        assert killed_at - 6 <= u["LeaveTs"] <= killed_at + 1, (u, killed_at)
    events = client.call_json("DescribeUserEvent", {
        "SdkAppId": APP1, "CommId": call["CommId"], "RoomId": "777", "UserId": "crash-pub",
        "StartTime": started - 60, "EndTime": int(time.time())})["Response"]
    ids = [m["EventId"] for e in events["Data"] for m in e["Content"]]
    assert 32788 in ids and 32768 in ids and 32769 in ids, f"events written before the kill: {ids}"
    samples = client.call_json("DescribeCallDetailInfo", {
        "SdkAppId": APP1, "CommId": call["CommId"], "UserIds": ["crash-pub"], "DataType": ["bigvBit"],
        "StartTime": started - 60, "EndTime": int(time.time())})["Response"]
    points = [p for d in samples["Data"] for p in d["Content"]]
    assert len(points) >= 2, f"quality samples written before the kill: {samples}"
