"""The monitoring dashboards through the official Python SDK: DescribeTRTCRealTimeScaleData
(users and rooms online every 10 s) and DescribeTRTCMarketScaleData (peaks and distinct users and
rooms per hour or day), following real WHIP publishers as they enter and leave;
DescribeTRTCRealTimeQualityData and DescribeTRTCMarketQualityData (freeze rates from clients'
reports, join success rates from real entries, refused ones included); and their validation."""

from __future__ import annotations

import asyncio
import datetime
import random
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.trtc.v20190722 import models

from conftest import APP1, APP2, Hearth, sdk_client, start_hearth, stop_hearth
from media import Publisher, is_empty, post_sdp, run, wait_stats
from ws_client import WsClient
from test_media import close_all, media, poll_api  # noqa: F401 - `media` is a fixture


def real_time(h: Hearth, start: int, end: int, room: str | None = None, app: int = APP1):
    req = models.DescribeTRTCRealTimeScaleDataRequest()
    req.SdkAppId, req.StartTime, req.EndTime = str(app), start, end
    if room is not None:
        req.RoomId = room
    data = sdk_client(h).DescribeTRTCRealTimeScaleData(req).Data
    assert (data.StatementID, data.Total) == (0, 1)
    series = data.Series[0]
    assert series.Columns == ["time", "userCount", "roomCount"]
    return [r.RowValue for r in series.Values]


def market(h: Hearth, start: str, end: str, period: str, app: int = APP1):
    req = models.DescribeTRTCMarketScaleDataRequest()
    req.SdkAppId, req.StartTime, req.EndTime, req.Period = str(app), start, end, period
    client = sdk_client(h, h.cred2 if app == APP2 else h.cred1)
    series = client.DescribeTRTCMarketScaleData(req).Data.Series[0]
    assert series.Columns == ["time", "peakCurrentUsers", "peakCurrentChannels", "userCount", "roomCount"]
    return [r.RowValue for r in series.Values]


def today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def hour_row(rows: list, t: int) -> list:
    start = t - t % 3600
    found = [r for r in rows if r[0] == start]
    assert found, f"no row for the hour starting {start}: {rows}"
    return found[0]


def error_of(call) -> tuple[str, str]:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    assert info.value.requestId, info.value
    return info.value.code, info.value.message


def test_scale_follows_publishers_entering_and_leaving(media):
    room = random.randint(700_001, 800_000)
    users = [f"dash{room}-{i}" for i in range(3)]
    began = int(time.time())
    hour_before = hour_row(market(media, today(), today(), "h"), began)

    async def body():
        pubs = [Publisher(media, APP1, u, room=room) for u in users]
        try:
            for p in pubs:
                await p.start()

            def online(n):
                def fetch():
                    now = int(time.time())
                    rows = real_time(media, now - 30, now, room=str(room))
                    return rows[-1][1:] == [n, 1], rows

                return fetch

            rows = await poll_api(online(3), "3 users in 1 room in the last 10 s row")
            assert all(r[0] % 10 == 0 for r in rows) and [b[0] - a[0] for a, b in zip(rows, rows[1:])] == [10] * (len(rows) - 1), rows
            # The whole app counts them too; another room counts nobody.
            now = int(time.time())
            assert real_time(media, now - 20, now)[-1][1] >= 3
            assert all(r[1:] == [0, 0] for r in real_time(media, now - 20, now, room="no-such-room"))

            # Together for whole seconds (the store keeps seconds): a peak of three.
            await asyncio.sleep(2.5)
            assert await pubs[0].delete() == 200
            assert await pubs[1].delete() == 200
            await poll_api(online(1), "1 user left in the room")
            assert await pubs[2].delete() == 200
            await wait_stats(media, is_empty, 5, "an empty media plane")
            # Once everyone left (and the call ended): a row after that shows no one.
            def empty():
                now = int(time.time())
                rows = real_time(media, now - 5, now, room=str(room))
                return rows[-1][1:] == [0, 0], rows

            await poll_api(empty, "an empty room", timeout=25)
        finally:
            await close_all(*pubs)

    run(body())
    # This hour: the three were online at once in one room; they are three more distinct users
    # and one more room than before (no other test ran meanwhile).
    after = hour_row(market(media, today(), today(), "h"), began)
    assert after[1] >= 3 and after[2] >= 1, after
    assert after[3] == hour_before[3] + 3, (hour_before, after)
    assert after[4] == hour_before[4] + 1, (hour_before, after)
    day = market(media, today(), today(), "d")
    assert len(day) == 1 and day[0][0] % 86400 == 0 and day[0][3] >= 3, day


def test_scale_validation(hearth):
    now = int(time.time())
    c = sdk_client(hearth)

    def rt(start, end, app=APP1):
        req = models.DescribeTRTCRealTimeScaleDataRequest()
        req.SdkAppId, req.StartTime, req.EndTime = str(app), start, end
        return lambda: c.DescribeTRTCRealTimeScaleData(req)

    def mk(start, end, period, app=APP1):
        req = models.DescribeTRTCMarketScaleDataRequest()
        req.SdkAppId, req.StartTime, req.EndTime, req.Period = str(app), start, end, period
        return lambda: c.DescribeTRTCMarketScaleData(req)

    assert error_of(rt(now - 3601, now))[0] == "InvalidParameter"
    assert error_of(rt(now - 10, now - 20))[0] == "InvalidParameter"
    assert error_of(rt(now + 100, now + 200))[0] == "InvalidParameter"
    code, message = error_of(mk(today(), today(), "w"))
    assert code == "InvalidParameter" and "Period" in message
    assert error_of(mk("2026-13-01", today(), "d"))[0] == "InvalidParameter"
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=60)).strftime("%Y-%m-%d")
    assert error_of(mk(old, today(), "d"))[0] == "InvalidParameter", "61 days"
    assert error_of(mk(today(), "2000-01-01", "d"))[0] == "InvalidParameter"
    # An app the credential does not hold.
    assert error_of(rt(now - 10, now, app=1_400_999_999))[0] == "UnauthorizedOperation.SdkAppId"
    # An empty range is a valid answer: rows with zeros, one per 10 s up to now.
    rows = real_time(hearth, now - 25, now, room="nobody-here")
    assert 3 <= len(rows) <= 4 and all(r[1:] == [0, 0] for r in rows), rows
    yesterday = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    hours = market(hearth, yesterday, yesterday, "h", app=APP2)
    assert len(hours) == 24 and hours[1][0] - hours[0][0] == 3600, hours


# --------------------------------------------------------------------------------------------
# Quality dashboards


@pytest.fixture(scope="module")
def quality_h(tmp_path_factory):
    """A server of its own: every entry attempt and freeze report it counts is this test's."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-quality"), "quality", rate_limits=False)
    yield h
    stop_hearth(h)


def quality_real_time(h: Hearth, start: int, end: int, room: str | None = None):
    req = models.DescribeTRTCRealTimeQualityDataRequest()
    req.SdkAppId, req.StartTime, req.EndTime = str(APP1), start, end
    if room is not None:
        req.RoomId = room
    series = sdk_client(h).DescribeTRTCRealTimeQualityData(req).Data.Series[0]
    assert series.Columns == ["time", "videoFreezeRate", "audioFreezeRate"]
    return [r.RowValue for r in series.Values]


def quality_market(h: Hearth, period: str, is_float: bool | None = None):
    req = models.DescribeTRTCMarketQualityDataRequest()
    req.SdkAppId, req.StartTime, req.EndTime, req.Period = str(APP1), today(), today(), period
    if is_float is not None:
        req.IsFloat = is_float
    series = sdk_client(h).DescribeTRTCMarketQualityData(req).Data.Series[0]
    assert series.Columns == ["time", "videoFreezeRate", "audioFreezeRate", "networkDelay",
                              "joinSuccessRate", "joinSuccessIn5sRate"]
    return series.Values


def test_quality_counts_refused_entries_and_clients_freezes(quality_h):
    h = quality_h
    room = 4001
    began = int(time.time())

    async def body():
        pubs = [Publisher(h, APP1, f"q-pub{i}", room=room) for i in range(2)]
        forged = Publisher(h, APP1, "q-forger", room=room)
        viewer = WsClient(h, APP1, "q-viewer", room=room)
        refused_ws = WsClient(h, APP1, "q-refused", room=room, sig="not-a-usersig")
        try:
            await pubs[0].start()
            # A WHIP offer whose UserSig is not one: refused, and counted so.
            refused = await post_sdp(forged.url(), "not-a-usersig", await forged.offer())
            assert refused.status in (401, 403), refused
            with pytest.raises(AssertionError, match="enter refused"):
                await refused_ws.connect()
            await viewer.connect()
            await viewer.wait_media("q-pub0", video=5, audio=5)
            await pubs[1].start()
            # The viewer reports, every 2 s, a quarter of each period frozen for one publisher
            # and smooth audio (what the browser SDK sends from getStats).
            for _ in range(6):
                await viewer.send({"type": "stats", "remote": [
                    {"userid": "q-pub0", "video_block_ms": 500, "audio_block_ms": 0}]})
                await asyncio.sleep(2)
        finally:
            await close_all(*pubs, forged)
            await viewer.close()
            if refused_ws.ws is not None:
                await refused_ws.ws.close()

    run(body())

    # Real time: the rows holding the reports show 25 % video and 0 % audio freezing; the room
    # filter keeps them, another room has none.
    def reported():
        now = int(time.time())
        rows = quality_real_time(h, began - 10, now, room=str(room))
        return sum(1 for r in rows if r[1:] == [25, 0]) >= 2, rows

    rows = run(poll_api(reported, "freeze rates in the real-time rows"))
    assert all(r[1:] in ([25, 0], [0, 0]) for r in rows), rows
    now = int(time.time())
    assert all(r[1:] == [0, 0] for r in quality_real_time(h, began - 10, now, room="4002"))

    # This hour and today: 3 of 5 attempts entered (two WHIP publishers and the viewer; the
    # forged UserSig and the refused socket did not), all within 5 s; 25 % video freezing.
    hour = [v for v in quality_market(h, "h") if v.RowValue[0] == began - began % 3600]
    assert len(hour) == 1, hour
    assert hour[0].RowValue[1:] == [25, 0, 0, 60, 60], hour[0].RowValue
    day = quality_market(h, "d", is_float=True)
    assert len(day) == 1 and day[0].RowValue[0] % 86400 == 0
    assert day[0].RowValueFloat == [float(day[0].RowValue[0]), 25.0, 0.0, 0.0, 60.0, 60.0], day[0].RowValueFloat


def test_quality_validation(quality_h):
    h = quality_h
    now = int(time.time())
    c = sdk_client(h)

    def rt(start, end, app=APP1):
        req = models.DescribeTRTCRealTimeQualityDataRequest()
        req.SdkAppId, req.StartTime, req.EndTime = str(app), start, end
        return lambda: c.DescribeTRTCRealTimeQualityData(req)

    def mk(start, end, period, app=APP1):
        req = models.DescribeTRTCMarketQualityDataRequest()
        req.SdkAppId, req.StartTime, req.EndTime, req.Period = str(app), start, end, period
        return lambda: c.DescribeTRTCMarketQualityData(req)

    assert error_of(rt(now - 3601, now))[0] == "InvalidParameter"
    assert error_of(rt(now + 100, now + 200))[0] == "InvalidParameter"
    code, message = error_of(rt(now - 90_000, now - 87_000))
    assert code == "InvalidParameter" and "24 hours" in message
    assert error_of(rt(now - 10, now, app=APP2))[0] == "UnauthorizedOperation.SdkAppId"
    assert error_of(mk(today(), today(), "w"))[0] == "InvalidParameter"
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)).strftime("%Y-%m-%d")
    code, message = error_of(mk(old, today(), "d"))
    assert code == "InvalidParameter" and "30 days" in message, "31 days"
    ok = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=29)).strftime("%Y-%m-%d")
    rows = mk(ok, today(), "d")().Data.Series[0].Values
    assert len(rows) == 30 and all(r.RowValueFloat is None for r in rows)
    # No entries and no reports: zeros, not made-up figures.
    yesterday = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    hours = mk(yesterday, yesterday, "h")().Data.Series[0].Values
    assert len(hours) == 24 and all(r.RowValue[1:] == [0, 0, 0, 0, 0] for r in hours)
