"""The call-inspection actions through the official Python SDK: DescribeUserEvent,
DescribeCallDetailInfo, the legacy DescribeCallDetail (trtc 2019-07-22) and GetRoomEvent (lcic
2022-08-17) — their validation against the API server, and what they show of a real call made by
an aiortc WHIP publisher and WHEP viewer (on the media server)."""

from __future__ import annotations

import random
import time

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.lcic.v20220817 import lcic_client
from tencentcloud.lcic.v20220817 import models as lcic_models
from tencentcloud.trtc.v20190722 import models

from conftest import APP1, APP2, Cred, Hearth, sdk_client
from media import Publisher, Viewer, is_empty, run, wait_stats
from test_media import close_all, media, poll_api  # noqa: F401 - `media` is a fixture

RED = (200, 40, 40)


def lcic(h: Hearth, cred: Cred | None = None) -> lcic_client.LcicClient:
    """An official-SDK LCIC client pointed at `h` over plain HTTP (TC3, service `lcic`)."""
    cred = cred or h.cred1
    http = HttpProfile(protocol="http", endpoint=h.host, reqMethod="POST", reqTimeout=30)
    return lcic_client.LcicClient(
        credential.Credential(cred.secret_id, cred.secret_key), "", ClientProfile(httpProfile=http)
    )


def now() -> int:
    return int(time.time())


def error_of(call) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    assert info.value.requestId, info.value
    return info.value.code


def user_event_req(comm_id: str, user: str, room: str, start: int, end: int, app: int = APP1):
    req = models.DescribeUserEventRequest()
    req.SdkAppId, req.CommId, req.UserId, req.RoomId = app, comm_id, user, room
    req.StartTime, req.EndTime = start, end
    return req


def room_event_req(room: int, app: int = APP1, page: int = 1, limit: int = 100, keyword=None):
    req = lcic_models.GetRoomEventRequest()
    req.RoomId, req.SdkAppId, req.Page, req.Limit = room, app, page, limit
    if keyword is not None:
        req.Keyword = keyword
    return req


# --------------------------------------------------------------------------------------------
# Validation and empty results (API server; its store holds no calls)


def test_user_event_validation_and_empty_result(hearth):
    c = sdk_client(hearth)
    t = now()
    comm = f"{APP1}_4242_{t - 600}"
    # A call the server never saw: an empty array.
    out = c.DescribeUserEvent(user_event_req(comm, "nobody", "4242", t - 3600, t))
    assert out.Data == [], out._serialize()
    # Missing and invalid inputs, with the codes of the action's page.
    raw = {"SdkAppId": APP1, "CommId": comm, "UserId": "u", "RoomId": "4242",
           "StartTime": t - 60, "EndTime": t}
    cases = [
        ({k: v for k, v in raw.items() if k != "CommId"}, "MissingParameter.CommId"),
        ({k: v for k, v in raw.items() if k != "UserId"}, "MissingParameter.UserId"),
        ({k: v for k, v in raw.items() if k != "RoomId"}, "MissingParameter.RoomId"),
        ({k: v for k, v in raw.items() if k != "StartTime"}, "MissingParameter.StartTs"),
        ({k: v for k, v in raw.items() if k != "EndTime"}, "MissingParameter.EndTs"),
        ({k: v for k, v in raw.items() if k != "SdkAppId"}, "MissingParameter.CommIdOrSdkAppId"),
        ({**raw, "EndTime": t - 120}, "InvalidParameter.EndTs"),
        ({**raw, "StartTime": t - 15 * 86400}, "InvalidParameter.StartTsOversize"),
        ({**raw, "CommId": f"{APP2}_4242_{t}"}, "InvalidParameter"),
        ({**raw, "SdkAppId": APP2, "CommId": f"{APP2}_4242_{t}"}, "UnauthorizedOperation.SdkAppId"),
    ]
    for body, want in cases:
        assert error_of(lambda: c.call_json("DescribeUserEvent", body)) == want, body


def test_call_detail_validation_and_empty_result(hearth):
    c = sdk_client(hearth)
    t = now()
    comm = f"{APP1}_4243_{t - 600}"
    req = models.DescribeCallDetailInfoRequest()
    req.SdkAppId, req.CommId, req.StartTime, req.EndTime = APP1, comm, t - 3600, t
    req.DataType = ["all"]
    out = c.DescribeCallDetailInfo(req)
    assert out.Total == 0 and not out.UserList and not out.Data, out._serialize()

    base = {"SdkAppId": APP1, "CommId": comm, "StartTime": t - 3600, "EndTime": t}
    cases = [
        ({**base, "DataType": ["aBit"], "StartTime": t - 3601}, "InvalidParameter.QueryScaleOversize"),
        ({**base, "StartTime": t - 4 * 3600 - 1}, "InvalidParameter.QueryScaleOversize"),
        ({**base, "DataType": ["aBit"], "UserIds": [f"u{i}" for i in range(7)]},
         "InvalidParameter.UserIdsMorethanSix"),
        ({**base, "DataType": ["aBit"], "PageNumber": 0, "PageSize": 7}, "InvalidParameter.PageSizeOversize"),
        ({**base, "PageNumber": 0, "PageSize": 101}, "InvalidParameter.PageSizeOversize"),
        ({**base, "DataType": ["fps"]}, "InvalidParameter"),
        ({k: v for k, v in base.items() if k != "CommId"}, "MissingParameter.CommId"),
        ({k: v for k, v in base.items() if k != "SdkAppId"}, "MissingParameter.SdkAppId"),
    ]
    for body, want in cases:
        assert error_of(lambda: c.call_json("DescribeCallDetailInfo", body)) == want, body
    # The legacy action: string SdkAppId/PageNumber/PageSize, always ≤ 1 hour.
    legacy = {**base, "SdkAppId": str(APP1), "PageNumber": "0", "PageSize": "6"}
    out = c.call_json("DescribeCallDetail", legacy)["Response"]
    assert out["Total"] == 0 and out["UserList"] == [] and out["Data"] == [], out
    assert error_of(lambda: c.call_json("DescribeCallDetail", {**legacy, "StartTime": t - 3601})) == \
        "InvalidParameter.QueryScaleOversize"


def test_get_room_event_validation(hearth):
    c = lcic(hearth)
    assert error_of(lambda: c.GetRoomEvent(room_event_req(987654))) == "ResourceNotFound.Room"
    assert error_of(lambda: c.GetRoomEvent(room_event_req(987654, app=1400000099))) == \
        "InvalidParameter.SdkAppId"
    assert error_of(lambda: c.GetRoomEvent(room_event_req(987654, app=APP2))) == \
        "UnauthorizedOperation.SdkAppId"
    assert error_of(lambda: c.GetRoomEvent(room_event_req(987654, limit=201))) == "InvalidParameter"
    assert error_of(lambda: c.GetRoomEvent(room_event_req(987654, page=0))) == "InvalidParameter"
    assert error_of(lambda: c.GetRoomEvent(room_event_req(987654, keyword="Bogus"))) == "InvalidParameter"


def test_unusual_event_validation_and_empty_result(hearth):
    c = sdk_client(hearth)
    t = now()
    req = models.DescribeUnusualEventRequest()
    req.SdkAppId, req.StartTime, req.EndTime = APP1, t - 3600, t
    out = c.DescribeUnusualEvent(req)
    assert out.Total == 0 and not out.AbnormalExperienceList, out._serialize()
    req.StartTime = t - 3601
    assert error_of(lambda: c.DescribeUnusualEvent(req)) == "InvalidParameter.QueryScaleOversize"
    req.SdkAppId, req.StartTime = APP2, t - 60
    assert error_of(lambda: c.DescribeUnusualEvent(req)) == "UnauthorizedOperation.SdkAppId"


# --------------------------------------------------------------------------------------------
# A real call


def finished_call(h: Hearth, room: int):
    req = models.DescribeRoomInfoRequest()
    req.SdkAppId = APP1
    req.EndTime = now()
    req.StartTime = req.EndTime - 3600
    req.RoomId = str(room)
    req.PageNumber, req.PageSize = 0, 100
    rooms = sdk_client(h).DescribeRoomInfo(req).RoomList or []
    if len(rooms) == 1 and rooms[0].IsFinished:
        return True, rooms[0]
    return False, [r._serialize() for r in rooms]


def user_events(h: Hearth, comm_id: str, user: str, room: int, start: int):
    out = sdk_client(h).DescribeUserEvent(user_event_req(comm_id, user, str(room), start, now() + 5))
    ids = [e.EventId for d in out.Data for e in d.Content]
    if 32789 in ids:
        return True, out.Data
    return False, ids


def test_a_real_call_shows_in_user_events_call_detail_and_room_events(media):
    room = random.randint(600_000, 700_000)
    started = now()

    async def body():
        pub = Publisher(media, APP1, "pub7", room=room, rgb=RED)
        view = Viewer(media, APP1, "view7", "pub7", room=room)
        try:
            await pub.start()
            await view.start()
            await view.wait_frames(5, 10)
            assert await view.delete() == 200
            assert await pub.delete() == 200
            await wait_stats(media, is_empty, 5, "an empty media plane")
        finally:
            await close_all(pub, view)

    run(body())
    ended = now()
    call = run(poll_api(lambda: finished_call(media, room), f"the call of room {room} finished"))
    comm_id = call.CommId
    assert comm_id.startswith(f"{APP1}_{room}_"), comm_id

    # DescribeUserEvent: the publisher entered, turned video and audio on, exited — in time order.
    data = run(poll_api(lambda: user_events(media, comm_id, "pub7", room, started - 1),
                        "the publisher's exit in DescribeUserEvent"))
    assert len(data) == 1 and data[0].PeerId == "pub7", [d._serialize() for d in data]
    content = data[0].Content
    ids = [e.EventId for e in content]
    times = [e.Time for e in content]
    assert times == sorted(times), times
    assert all((started - 1) * 1000 <= x <= (ended + 1) * 1000 for x in times), times
    for want in (32788, 32768, 32769, 32789):
        assert want in ids, f"{want} missing from {ids}"
    assert ids.index(32788) < ids.index(32768) < ids.index(32789), ids
    assert ids.index(32788) < ids.index(32769) < ids.index(32789), ids
    assert all(e.ParamOne == -1 and e.ParamTwo == -1 for e in content)
    assert next(e for e in content if e.EventId == 32768).Type == 2
    assert next(e for e in content if e.EventId == 32788).Type == 0

    # DescribeCallDetailInfo and the legacy DescribeCallDetail: both users, finished.
    req = models.DescribeCallDetailInfoRequest()
    req.SdkAppId, req.CommId, req.StartTime, req.EndTime = APP1, comm_id, started - 1, now()
    req.DataType = ["all"]
    out = sdk_client(media).DescribeCallDetailInfo(req)
    assert out.Total == 2, out._serialize()
    assert sorted(u.UserId for u in out.UserList) == ["pub7", "view7"]
    assert all(u.Finished and u.RoomStr == str(room) for u in out.UserList), out._serialize()
    # Quality samples may or may not be recorded for real calls yet; whatever is, is well formed.
    for d in out.Data or []:
        assert d.UserId in ("pub7", "view7") and d.DataType and d.Content, d._serialize()
    legacy = sdk_client(media).call_json("DescribeCallDetail", {
        "SdkAppId": str(APP1), "CommId": comm_id, "StartTime": started - 1, "EndTime": now(),
        "PageNumber": "0", "PageSize": "6"})["Response"]
    assert sorted(u["UserId"] for u in legacy["UserList"]) == ["pub7", "view7"], legacy

    # GetRoomEvent: RoomStart, the two joins and quits, RoomEnd.
    out = lcic(media).GetRoomEvent(room_event_req(room))
    kinds = [e.EventType for e in out.Events]
    # The publisher's camera and mic coming on are device events of the room.
    assert out.Total == 8 == len(kinds), [e._serialize() for e in out.Events]
    assert kinds[0] == "RoomStart" and kinds[-1] == "RoomEnd", kinds
    assert sorted(kinds[1:-1]) == ["CameraOn", "MemberJoin", "MemberJoin", "MemberQuit", "MemberQuit", "MicOn"], kinds
    assert {e.EventData.UserId for e in out.Events if e.EventType in ("CameraOn", "MicOn")} == {"pub7"}
    stamps = [e.Timestamp for e in out.Events]
    assert stamps == sorted(stamps) and started - 1 <= stamps[0] and stamps[-1] <= ended + 1, stamps
    assert all(e.EventData.RoomId == room for e in out.Events)
    joins = [e.EventData.UserId for e in out.Events if e.EventType == "MemberJoin"]
    quits = [e.EventData.UserId for e in out.Events if e.EventType == "MemberQuit"]
    assert sorted(joins) == sorted(quits) == ["pub7", "view7"], (joins, quits)
    assert out.Events[0].EventData.UserId == "pub7"
    # Keyword filters but Total stays the room's; pages follow Page/Limit.
    out = lcic(media).GetRoomEvent(room_event_req(room, keyword="MemberQuit"))
    assert out.Total == 8 and [e.EventType for e in out.Events] == ["MemberQuit"] * 2
    out = lcic(media).GetRoomEvent(room_event_req(room, page=2, limit=4))
    assert out.Total == 8 and [e.EventType for e in out.Events] == kinds[4:]
