"""Quality samples from real sessions, through DescribeCallDetailInfo: the server's upstream
bitrate matches what the sender measured, the resolution is what was sent, loss is ~0 on
loopback, and downstream series name the remote user."""

from __future__ import annotations

import asyncio
import time

from conftest import APP1, sdk_client
from media import Publisher, Viewer, run


async def bytes_sent(pc, kind: str) -> int:
    stats = await pc.getStats()
    return sum(s.bytesSent for s in stats.values() if s.type == "outbound-rtp" and s.kind == kind)


def series(resp: dict, user: str, peer: str, metric: str) -> list[tuple[int, float]]:
    return [(p["Time"], p["Value"]) for d in resp["Data"]
            if d["UserId"] == user and d["PeerId"] == peer and d["DataType"] == metric for p in d["Content"]]


def test_call_detail_matches_what_the_sender_measured(hearth_media):
    h = hearth_media
    started = int(time.time())

    async def body():
        pub = await Publisher(h, APP1, "q-pub", room=808).start()
        view = await Viewer(h, APP1, "q-view", "q-pub", room=808).start()
        await view.wait_frames(video=30, audio=30)
        t0, b0 = time.time(), await bytes_sent(pub.pc, "video")
        await asyncio.sleep(8)
        t1, b1 = time.time(), await bytes_sent(pub.pc, "video")
        sender_bps = (b1 - b0) * 8 / (t1 - t0)
        await asyncio.sleep(2.5)  # the last sample of the window is written
        resp = sdk_client(h).call_json("DescribeCallDetailInfo", {
            "SdkAppId": APP1, "CommId": comm_id(h, started), "UserIds": ["q-pub", "q-view"], "DataType": ["all"],
            "StartTime": int(t0) + 2, "EndTime": int(t1)})["Response"]
        up = [v for _, v in series(resp, "q-pub", "", "bigvBit")]
        assert up, resp
        server_bps = sum(up) / len(up)
        assert abs(server_bps - sender_bps) <= 0.3 * sender_bps, (server_bps, sender_bps, up)
        assert {v for _, v in series(resp, "q-pub", "", "bigvWidth")} == {640.0}, resp
        assert {v for _, v in series(resp, "q-pub", "", "bigvHeight")} == {360.0}, resp
        assert max(v for _, v in series(resp, "q-pub", "", "aLoss")) < 1.0
        assert max(v for _, v in series(resp, "q-view", "q-pub", "bigvLoss")) < 1.0
        down = [v for _, v in series(resp, "q-view", "q-pub", "bigvBit")]
        assert down and abs(sum(down) / len(down) - server_bps) <= 0.3 * server_bps, (down, server_bps)
        assert {v for _, v in series(resp, "q-view", "q-pub", "bigvWidth")} == {640.0}
        times = [t for t, _ in series(resp, "q-pub", "", "bigvBit")]
        assert times == sorted(times) and all(b - a in (1, 2, 3) for a, b in zip(times, times[1:])), times
        await view.delete()
        await pub.delete()
        await view.close()
        await pub.close()

    run(body())


def comm_id(h, since: int) -> str:
    rooms = sdk_client(h).call_json("DescribeRoomInfo", {"SdkAppId": APP1, "StartTime": since - 5,
                                                          "EndTime": int(time.time()), "RoomId": "808",
                                                          "PageNumber": 0, "PageSize": 100})["Response"]
    live = [r for r in rooms["RoomList"] if not r["IsFinished"]]
    assert len(live) == 1, rooms
    return live[0]["CommId"]
