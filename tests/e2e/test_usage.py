"""Usage from real minutes through the official Python SDK: DescribeTrtcUsage and
DescribeTrtcRoomUsage count what each user actually received, by class (Audio, SD, HD, FullHD,
2K, 4K), from aiortc publishers at 320x240, 1280x720 and 1920x1080 and WHEP viewers on each; a
viewer of two streams at once counts by their summed pixels; a viewer who moves to another
stream, and one whose publisher mutes its camera, change class mid-bucket; publishers who
receive nothing count nothing; the server's own freeze samples of those viewers. Then the spec's
rules and errors."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.trtc.v20190722 import models

from conftest import APP1, APP2, Hearth, sdk_client, start_hearth, stop_hearth
from media import AudioOnly, ColorVideoTrack, Publisher, Viewer, run, wait_for
from ws_client import WsClient

KEYS = ["Audio", "SD", "HD", "FullHD", "2K", "4K"]
# How long each viewer watches, seconds.
WATCH = 24.0
# Per viewer, the seconds its count may differ from what the test measured (the server samples
# what it forwarded every 2 s: a session's last part-period is not counted, its first starts with
# the first packet, a little before the test sees a decoded frame).
SLACK_PER_VIEWER = 4.0
# Audio may reach a video viewer a sample period before the video's first keyframe does: those
# seconds are Audio, rightly.
AUDIO_FIRST = 2.5


@pytest.fixture(scope="module")
def usage_h(tmp_path_factory):
    """A server of its own: its usage is this module's alone."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-usage"), "usage", rate_limits=False)
    yield h
    stop_hearth(h)


def utc(t: float, fmt: str) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(fmt)


def trtc_usage(h: Hearth, start: str, end: str, app: int | None = None, cred=None):
    req = models.DescribeTrtcUsageRequest()
    req.StartTime, req.EndTime = start, end
    if app is not None:
        req.SdkAppId = app
    out = sdk_client(h, cred).DescribeTrtcUsage(req)
    assert out.UsageKey == KEYS, out.UsageKey
    return [(u.TimeKey, u.UsageValue) for u in out.UsageList]


def room_usage(h: Hearth, start: str, end: str, app: int = APP1, cred=None) -> dict[str, dict[str, float]]:
    req = models.DescribeTrtcRoomUsageRequest()
    req.SdkAppid, req.StartTime, req.EndTime = app, start, end
    data = sdk_client(h, cred).DescribeTrtcRoomUsage(req).Data
    assert data.startswith("RoomId,Audio,SD,hd,FullHD,2K,4K\n"), data
    rows = list(csv.DictReader(io.StringIO(data)))
    return {r["RoomId"]: {k: float(r["hd" if k == "HD" else k]) for k in KEYS} for r in rows}


def error_of(call) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    assert info.value.requestId, info.value
    return info.value.code


class Watch:
    """One viewer's stretch on one class: when its first frame came, when it stopped."""

    def __init__(self, cls: str):
        self.cls, self.start, self.end = cls, 0.0, 0.0

    def secs(self) -> float:
        return self.end - self.start


async def first_frame(v: Viewer, video: bool = True) -> float:
    await wait_for(lambda: (v.counts.video if video else v.counts.audio) > 0, 20,
                   f"{v.where()} to decode its first frame")
    return time.time()


def video(width: int, height: int) -> ColorVideoTrack:
    return ColorVideoTrack((40, 160, 40), fps=5, width=width, height=height)


def test_usage_counts_the_minutes_each_user_received_by_class(usage_h):
    h = usage_h
    room, room2 = 3001, 3002
    watches: dict[str, list[Watch]] = {}

    async def body():
        began = time.time()
        sd = Publisher(h, APP1, "sd", room=room, video=video(320, 240))
        hd = Publisher(h, APP1, "hd", room=room, video=video(1280, 720))
        fhd = Publisher(h, APP1, "fhd", room=room, video=video(1920, 1080))
        voice = AudioOnly(h, APP1, "voice", room=room)
        other = Publisher(h, APP2, "p2", room=room2, video=video(320, 240))
        cam = WsClient(h, APP1, "cam", room=room, autosubscribe=False)
        pubs = [sd, hd, fhd, voice, other]
        viewers: list[Viewer] = []

        def viewer(user: str, publisher: str, app: int = APP1, r: int = room) -> Viewer:
            v = Viewer(h, app, user, publisher, room=r)
            viewers.append(v)
            return v

        try:
            for p in pubs:
                await p.start()
            await cam.connect()
            await cam.publish()
            await wait_for(lambda: any(m["type"] == "publish_answer" for m in cam.messages), 10, "cam's answer")
            await asyncio.sleep(1.0)

            plain = {"v-sd": ("sd", "SD"), "v-hd": ("hd", "HD"), "v-fhd": ("fhd", "FullHD"),
                     "v-voice": ("voice", "Audio")}
            singles = {u: viewer(u, p) for u, (p, _) in plain.items()}
            agg = [viewer("v-agg", "sd"), viewer("v-agg", "hd")]
            switch1 = viewer("v-switch", "sd")
            mute = viewer("v-mute", "cam")
            v2 = viewer("v2", "p2", APP2, room2)
            await asyncio.gather(*(v.start() for v in viewers))

            async def watched(user: str, cls: str, vs: list[Viewer], audio_only: bool = False) -> Watch:
                w = Watch(cls)
                watches.setdefault(user, []).append(w)
                starts = await asyncio.gather(*(first_frame(v, not audio_only) for v in vs))
                w.start = max(starts)
                return w

            ws = await asyncio.gather(
                *(watched(u, c, [singles[u]], c == "Audio") for u, (_, c) in plain.items()),
                watched("v-agg", "FullHD", agg),  # 76,800 + 921,600 pixels: above HD
                watched("v-switch", "SD", [switch1]),
                watched("v-mute", "SD", [mute]),
                watched("v2", "SD", [v2]),
            )
            by_user = {u: w for u, w in zip([*plain, "v-agg", "v-switch", "v-mute", "v2"], ws)}

            # Halfway: v-switch moves to the 1080p publisher (a new session), cam mutes its camera.
            await asyncio.sleep(WATCH / 2)
            await switch1.delete()
            by_user["v-switch"].end = time.time()
            switch2 = viewer("v-switch", "fhd")
            await cam.send({"type": "mute", "source": "camera", "muted": True})
            by_user["v-mute"].end = time.time()
            w_mute = Watch("Audio")
            w_mute.start = time.time()
            watches["v-mute"].append(w_mute)
            await switch2.start()
            w_switch = await watched("v-switch", "FullHD", [switch2])
            await asyncio.sleep(WATCH / 2)

            for v in viewers:
                if not v.deleted:
                    await v.delete()
            now = time.time()
            for ws_ in watches.values():
                for w in ws_:
                    if w.end == 0.0:
                        w.end = now
            assert w_switch.secs() > 5, "the second half of v-switch was too short to count"
        finally:
            for c in [*viewers, *pubs]:
                if c.location and not c.deleted:
                    await c.delete()
                await c.close()
            await cam.close()
        return began

    began = run(body())
    ended = time.time()

    expected: dict[str, dict[str, float]] = {"app1": {k: 0.0 for k in KEYS}, "app2": {k: 0.0 for k in KEYS}}
    viewers_per: dict[tuple[str, str], int] = {}
    sessions_per = {"app1": 0, "app2": 0}
    for user, ws in watches.items():
        app = "app2" if user == "v2" else "app1"
        sessions_per[app] += len(ws)
        for w in ws:
            expected[app][w.cls] += w.secs() / 60
            viewers_per[(app, w.cls)] = viewers_per.get((app, w.cls), 0) + 1

    def check(got: dict[str, float], app: str, what: str):
        for k in KEYS:
            slack = (SLACK_PER_VIEWER * viewers_per.get((app, k), 0) + 1) / 60
            if k == "Audio":
                slack += AUDIO_FIRST * sessions_per[app] / 60
            assert abs(got[k] - expected[app][k]) <= slack, (
                f"{what}: {k} is {got[k]} min, expected {expected[app][k]:.2f} ± {slack:.2f}\n"
                f"got {got}\nexpected {expected[app]}\nwatches "
                f"{ {u: [(w.cls, round(w.secs(), 1)) for w in ws] for u, ws in watches.items()} }"
            )

    # The recorder writes within a moment of the last sample.
    time.sleep(1.5)
    start_min, end_min = utc(began - 60, "%Y-%m-%d %H:%M"), utc(ended + 60, "%Y-%m-%d %H:%M")
    rooms = room_usage(h, start_min, end_min)
    assert set(rooms) == {str(room)}, f"only the viewers' room has usage: {rooms}"
    check(rooms[str(room)], "app1", "DescribeTrtcRoomUsage")
    rooms2 = room_usage(h, start_min, end_min, APP2, h.cred2)
    check(rooms2[str(room2)], "app2", "DescribeTrtcRoomUsage of APP2")
    assert rooms2[str(room2)]["SD"] > 0.2

    # The server also says how long each WHEP viewer's picture stood still (they report
    # nothing themselves): a sample every 2 s, smooth on loopback once the first keyframe came.
    rooms_req = models.DescribeRoomInfoRequest()
    rooms_req.SdkAppId, rooms_req.StartTime, rooms_req.EndTime = APP1, int(began) - 5, int(ended)
    rooms_req.RoomId = str(room)
    (call,) = sdk_client(h).DescribeRoomInfo(rooms_req).RoomList
    detail = models.DescribeCallDetailInfoRequest()
    detail.SdkAppId, detail.CommId = APP1, call.CommId
    detail.StartTime, detail.EndTime = int(began) - 5, int(ended)
    detail.UserIds, detail.DataType = ["v-hd"], ["bigvBlock"]
    (series,) = [d for d in sdk_client(h).DescribeCallDetailInfo(detail).Data if d.PeerId == "hd"]
    blocks = sorted(p.Value for p in series.Content)
    assert len(blocks) >= 8 and blocks[len(blocks) // 2] == 0, blocks
    assert all(0 <= b <= 2500 for b in blocks), blocks

    day = utc(began, "%Y-%m-%d")
    if utc(ended, "%Y-%m-%d") != day:
        pytest.skip("the run crossed midnight UTC: the daily tables are checked on other runs")

    def totals(rows) -> dict[str, float]:
        return {k: sum(v[i] for _, v in rows) for i, k in enumerate(KEYS)}

    # One day: 288 rows of 5 minutes, from 00:00 UTC.
    one = trtc_usage(h, day, day, APP1)
    assert len(one) == 288 and one[0][0] == f"{day} 00:00:00" and one[1][0] == f"{day} 00:05:00"
    check(totals(one), "app1", "DescribeTrtcUsage")
    busy = [t for t, v in one if sum(v) > 0]
    assert busy and all(t[:10] == day for t in busy), busy
    # SdkAppId omitted: every app of the credential (cred1: APP1; the two-app key: both).
    assert totals(trtc_usage(h, day, day)) == totals(one)
    both = totals(trtc_usage(h, day, day, cred=h.cred_all))
    for k in KEYS:
        assert both[k] == pytest.approx(totals(one)[k] + totals(trtc_usage(h, day, day, APP2, h.cred2))[k], abs=0.02)
    assert both["SD"] > totals(one)["SD"]
    # More than a day: one row per day; the day's row holds the same minutes.
    d = datetime.date.fromisoformat(day)
    week = trtc_usage(h, str(d - datetime.timedelta(days=6)), day, APP1)
    assert [t for t, _ in week] == [f"{d - datetime.timedelta(days=i)} 00:00:00" for i in range(6, -1, -1)]
    for i, k in enumerate(KEYS):
        assert week[-1][1][i] == pytest.approx(totals(one)[k], abs=0.02 * 288)
        assert all(v[i] == 0 for _, v in week[:-1])


def test_usage_rules_and_errors(usage_h, hearth_limited):
    h = usage_h
    assert error_of(lambda: trtc_usage(h, "2026-01-01", "2026-02-01")) == "InvalidParameter.QueryScaleOversize"
    assert len(trtc_usage(h, "2026-01-01", "2026-01-31")) == 31, "31 days is the most"
    assert error_of(lambda: trtc_usage(h, "2026-01-02", "2026-01-01")) == "InvalidParameter"
    assert error_of(lambda: trtc_usage(h, "2026/01/01", "2026-01-01")) == "InvalidParameter"
    assert error_of(lambda: trtc_usage(h, "2026-01-01", "2026-01-01", 1400009999)) == "InvalidParameter.SdkAppId"
    assert error_of(lambda: trtc_usage(h, "2026-01-01", "2026-01-01", APP2)) == "UnauthorizedOperation.SdkAppId"

    assert room_usage(h, "2026-01-01 00:00", "2026-01-02 00:00") == {}, "24 hours is the most"
    assert error_of(lambda: room_usage(h, "2026-01-01 00:00", "2026-01-02 00:01")) == "InvalidParameter"
    assert error_of(lambda: room_usage(h, "2026-01-01 10:00", "2026-01-01 09:00")) == "InvalidParameter"
    assert error_of(lambda: room_usage(h, "2026-01-01", "2026-01-01 09:00")) == "InvalidParameter"
    assert error_of(lambda: room_usage(h, "2026-01-01 25:00", "2026-01-01 26:00")) == "InvalidParameter"
    assert error_of(lambda: room_usage(h, "2026-01-01 00:00", "2026-01-01 01:00", 1400009999)) == (
        "FailedOperation.SdkAppIdNotExist")
    assert error_of(lambda: room_usage(h, "2026-01-01 00:00", "2026-01-01 01:00", APP2)) == (
        "UnauthorizedOperation.SdkAppId")
    req = models.DescribeTrtcRoomUsageRequest()
    req.StartTime, req.EndTime = "2026-01-01 00:00", "2026-01-01 01:00"
    assert error_of(lambda: sdk_client(h).DescribeTrtcRoomUsage(req)).startswith("MissingParameter")
    # The spec's spelling only: `SdkAppId` is not a parameter of this action.
    wrong = {"SdkAppId": APP1, "StartTime": "2026-01-01 00:00", "EndTime": "2026-01-01 01:00"}
    assert error_of(lambda: sdk_client(h).call_json("DescribeTrtcRoomUsage", wrong)).startswith(
        ("MissingParameter", "UnknownParameter", "InvalidParameter"))

    # Its own limit: one call per 15 seconds per key.
    room_usage(hearth_limited, "2026-01-01 00:00", "2026-01-01 01:00")
    assert error_of(lambda: room_usage(hearth_limited, "2026-01-01 00:00", "2026-01-01 01:00")) == (
        "RequestLimitExceeded")
