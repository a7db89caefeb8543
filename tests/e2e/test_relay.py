"""Mixing and CDN relay end to end: aiortc publishers with distinct pictures and tones in a room,
the official SDK driving Start/Update/StopPublishCdnStream, nginx with Debian's RTMP module as
the CDN on loopback, and ffprobe/ffmpeg judging what reached it: codecs, size, frame rate, GOP,
the colour in each layout cell, the watermarks' pixels, the SEI; a robot publishing the mix
back into another room, seen by a WebRTC viewer there; URLs that refuse; every documented
error."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time

import pytest
import numpy as np
import requests

from cdn import Nginx, flv_h264, live_frame, nal_types, probe_live, sei_messages
from conftest import APP1, sdk_client, start_hearth, stop_hearth
from media import AudioOnly, Publisher, Viewer, metric, publishers, run, usersig, wait_for, worker_pids
from recording import audio_pcm, call, cell_rgb, error_of, frame_at, near, probe, tone_power

RED, BLUE, GREEN, WHITE = (220, 30, 30), (30, 30, 220), (30, 200, 30), (255, 255, 255)
# (Not x264's: it writes its own type-5 SEI, its version, on the first IDR.)
UUID = bytes.fromhex("6865617274682d7365692d7465737431")


@pytest.fixture(scope="module")
def cdn(tmp_path_factory) -> Nginx:
    n = Nginx(tmp_path_factory.mktemp("nginx"))
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    """A server whose outbound rules allow loopback (nginx and the image host run here)."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-relay"), "relay", rate_limits=False,
                     env={"HEARTH_OUTBOUND_ALLOW": "127.0.0.0/8",
                          "HEARTH_MEDIA_CPU_BUDGET": "1.6",
                          "HEARTH_MEDIA_EOS_TIMEOUT_SECS": "8", **({"HEARTH_LOG": __import__("os").environ["DBG_LOG"]} if "DBG_LOG" in __import__("os").environ else {})})
    yield h
    stop_hearth(h)


_rooms = iter(range(8100, 8999))


def room() -> int:
    return next(_rooms)


AUDIO = {"AudioEncode": {"SampleRate": 48000, "Channel": 2, "BitRate": 64}}
VIDEO_640 = {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 800, "Gop": 2}


def start(h, r: int, *, bot: str = "relaybot", **params) -> str:
    p = {"SdkAppId": APP1, "RoomId": str(r), "RoomIdType": 0,
         "AgentParams": {"UserId": bot, "UserSig": usersig(h, APP1, bot), "MaxIdleTime": 30},
         "WithTranscoding": 1, "AudioParams": AUDIO}
    p.update(params)
    return call(sdk_client(h), "StartPublishCdnStream", p)["TaskId"]


def update(h, task: str, seq: int, **params) -> dict:
    p = {"SdkAppId": APP1, "TaskId": task, "SequenceNumber": seq, "WithTranscoding": 1}
    p.update(params)
    return call(sdk_client(h), "UpdatePublishCdnStream", p)


def stop(h, task: str) -> dict:
    return call(sdk_client(h), "StopPublishCdnStream", {"SdkAppId": APP1, "TaskId": task})


def cdn_params(*urls: str) -> list[dict]:
    return [{"PublishCdnUrl": u, "IsTencentCdn": 0} for u in urls]


async def frame_where(url: str, w: int, h: int, ok, timeout: float, what: str):
    """Takes frames of the live stream until `ok(frame)` holds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(live_frame, url, w, h)
        if ok(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: last frame {describe_frame(last, w, h)}")


def describe_frame(img, w, h) -> str:
    if img is None:
        return "none"
    return f"left {cell_rgb(img, 0, 0, w // 2, h)} right {cell_rgb(img, w // 2, 0, w // 2, h)}"


def halves(img, w, h, left, right) -> bool:
    return (near(cell_rgb(img, w // 8, h // 4, w // 4, h // 2), left)
            and near(cell_rgb(img, w // 2 + w // 8, h // 4, w // 4, h // 2), right))


def test_grid_mix_to_two_cdns_with_watermarks_then_swap_and_stop(relay, cdn, images):
    r = room()
    a, b = f"grid{r}a", f"grid{r}b"

    async def body():
        pubs = await publishers(relay, APP1, r, ("alice", RED, 440.0), ("bob", BLUE, 1000.0))
        task = start(relay, r, PublishCdnParams=cdn_params(cdn.url(a), cdn.url(b)), VideoParams={
            "VideoEncode": VIDEO_640, "LayoutParams": {"MixLayoutMode": 3},
            "WaterMarkList": [
                {"WaterMarkType": 1, "WaterMarkText": {
                    "Text": "HEARTH", "LocationX": 16, "LocationY": 300, "WaterMarkWidth": 160,
                    "WaterMarkHeight": 40, "FontSize": 28, "FontColor": "0xFFFFFF",
                    "BackGroundColor": "0x1EC81E"}},
                {"WaterMarkType": 0, "WaterMarkImage": {
                    "WaterMarkUrl": f"{images}/yellow.png", "LocationX": 560, "LocationY": 16,
                    "WaterMarkWidth": 64, "WaterMarkHeight": 64}}]})
        # Both CDNs receive the stream.
        await wait_for(lambda: {a, b} <= set(cdn.publishing()), 15, "both publishes at nginx", step=0.25)
        info = await asyncio.to_thread(probe_live, cdn.url(a))
        v = next(s for s in info["streams"] if s["codec_type"] == "video")
        au = next(s for s in info["streams"] if s["codec_type"] == "audio")
        assert (v["codec_name"], v["width"], v["height"]) == ("h264", 640, 360), v
        assert v["r_frame_rate"] in ("15/1", "30/2"), v
        assert (au["codec_name"], int(au["sample_rate"]), au["channels"]) == ("aac", 48000, 2), au
        img = await frame_where(cdn.url(a), 640, 360, lambda f: halves(f, 640, 360, RED, BLUE), 10,
                                "alice (red) left and bob (blue) right")
        # The text watermark's box and the image watermark.
        assert near(cell_rgb(img, 20, 304, 8, 8), (30, 200, 30)), cell_rgb(img, 20, 304, 8, 8)
        text = img[300:340, 16:176].astype(int)
        assert (text.min(axis=2) > 200).sum() > 50, "white text pixels over the green box"
        assert near(cell_rgb(img, 570, 26, 40, 40), (230, 230, 30)), cell_rgb(img, 570, 26, 40, 40)
        # Swap the cells with a custom layout: within 2 s on the wire.
        began_a = cdn.publishing()[a]
        t_up = cdn.publishing()[b]
        t = time.monotonic()
        update(relay, task, 1, VideoParams={"LayoutParams": {"MixLayoutMode": 4, "MixLayoutList": [
            {"UserMediaStream": {"UserInfo": {"UserId": "bob"}}, "LocationX": 0, "LocationY": 0,
             "ImageWidth": 320, "ImageHeight": 360},
            {"UserMediaStream": {"UserInfo": {"UserId": "alice"}}, "LocationX": 320, "LocationY": 0,
             "ImageWidth": 320, "ImageHeight": 360}]}})
        await frame_where(cdn.url(b), 640, 360, lambda f: halves(f, 640, 360, BLUE, RED), 6,
                          "bob (blue) left and alice (red) right after the update")
        swap = time.monotonic() - t
        # A stale sequence number is refused.
        err = error_of(sdk_client(relay), "UpdatePublishCdnStream", {
            "SdkAppId": APP1, "TaskId": task, "SequenceNumber": 1, "WithTranscoding": 1,
            "VideoParams": {"LayoutParams": {"MixLayoutMode": 3}}})
        assert err == "InvalidParameter", err
        # The update did not reconnect the pushes.
        assert cdn.publishing()[a] >= began_a + swap - 0.5, cdn.publishing()
        # Watermarks change live: the text goes, the image moves to the bottom right.
        update(relay, task, 2, VideoParams={"WaterMarkList": [{"WaterMarkType": 0, "WaterMarkImage": {
            "WaterMarkUrl": f"{images}/yellow.png", "LocationX": 560, "LocationY": 280,
            "WaterMarkWidth": 64, "WaterMarkHeight": 64}}]})
        await frame_where(cdn.url(a), 640, 360, lambda f: near(cell_rgb(f, 570, 290, 40, 40), (230, 230, 30))
                          and near(cell_rgb(f, 570, 26, 40, 40), RED) and near(cell_rgb(f, 20, 304, 8, 8), BLUE),
                          6, "the image watermark moved, the text watermark gone")
        stop(relay, task)
        t = time.monotonic()
        await wait_for(lambda: not ({a, b} & set(cdn.publishing())), 2.0, "the publishes to end", step=0.1)
        ended = time.monotonic() - t
        err = error_of(sdk_client(relay), "StopPublishCdnStream", {"SdkAppId": APP1, "TaskId": task})
        assert err.startswith("ResourceNotFound"), err
        for p in pubs:
            await p.close()
        return swap, ended, t_up

    swap, ended, t_up = run(body())
    assert ended <= 2.0, ended
    # Usage once the task has ended: minutes of an SD H.264 mix, and the bitrate pushed.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    period = {"StartTime": today, "EndTime": today, "SdkAppId": APP1}

    def usage(action: str) -> tuple[list, list]:
        out = call(sdk_client(relay), action, period)
        return out["UsageKey"], [sum(col) for col in zip(*(row["UsageValue"] for row in out["UsageList"]))]

    run(wait_for(lambda: usage("DescribeMixTranscodingUsage")[1][1] > 0, 10, "mixing usage", step=0.5))
    keys, mix = usage("DescribeMixTranscodingUsage")
    assert keys[:3] == ["Audio", "SDH264", "HDH264"] and len(keys) == 11, keys
    # About 15 s of mixing (this test's task), in minutes.
    assert 0.1 < mix[1] < 1.0 and mix[0] == 0 and sum(mix[2:]) == 0, mix
    keys, bw = usage("DescribeRelayUsage")
    # What the two pushes carried (nginx recorded all of it), as Mbit/s over a 5-minute bucket.
    pushed = (cdn.recorded(a).stat().st_size + cdn.recorded(b).stat().st_size) * 8 / 1e6 / 300
    assert keys == ["Bandwidth"] and bw[0] > 0 and abs(bw[0] - pushed) <= 0.006 + 0.2 * pushed, (bw, pushed)
    # In the stream as recorded by the CDN: the old layout before the update, the new one at
    # most 2 s after it, and no freeze around it (frames keep their 15 fps spacing).
    flv = cdn.recorded(b)
    assert halves(frame_at(flv, max(t_up - 0.5, 0.1), 640, 360), 640, 360, RED, BLUE)
    assert halves(frame_at(flv, t_up + 2.0, 640, 360), 640, 360, BLUE, RED), describe_frame(
        frame_at(flv, t_up + 2.0, 640, 360), 640, 360)
    times = [ms for ms, _, _ in flv_h264(flv)]
    around = [b - a for a, b in zip(times, times[1:]) if t_up * 1000 - 3000 < a < t_up * 1000 + 3000]
    assert around and max(around) < 250, around
    # What nginx recorded: the asked GOP (an IDR every 2 s at 15 fps).
    frames = flv_h264(cdn.recorded(a))
    keys = [ms for ms, key, _ in frames if key]
    assert len(frames) > 60 and len(keys) >= 3, (len(frames), keys)
    gaps = [b - a for a, b in zip(keys, keys[1:])]
    assert all(1800 <= g <= 2200 for g in gaps), gaps


class VideoOnly(Publisher):
    """A publisher with a camera and no microphone."""

    def __init__(self, h, app, user, *, rgb, **room):
        from media import Client, ColorVideoTrack

        Client.__init__(self, h, app, user, **room)
        self.video = ColorVideoTrack(rgb)
        self.pc.addTransceiver(self.video, direction="sendonly")


def test_sei_follows_who_speaks_a_dead_url_is_retried_and_a_new_url_leaves_the_first_alone(relay, cdn):
    r = room()
    k1, k2 = f"sei{r}a", f"sei{r}b"
    dead = f"rtmp://127.0.0.1:{__import__('conftest').free_port()}/live/nobody"

    async def body():
        alice = Publisher(relay, APP1, "alice", rgb=RED, hz=440.0, room=r)
        await alice.start()
        await asyncio.sleep(0.3)
        bob = VideoOnly(relay, APP1, "bob", rgb=BLUE, room=r)
        await bob.start()
        task = start(relay, r, PublishCdnParams=cdn_params(cdn.url(k1), dead),
                     VideoParams={"VideoEncode": VIDEO_640, "LayoutParams": {"MixLayoutMode": 3}},
                     SeiParams={"LayoutVolume": {"AppData": "sei_test", "PayloadType": 100,
                                                 "Interval": 1000, "FollowIdr": 1},
                                "PassThrough": {"PayloadType": 5, "PayloadUuid": UUID.hex(),
                                                "PayloadContent": "hello-cdn", "Interval": 500}})
        await wait_for(lambda: k1 in cdn.publishing(), 15, "the good URL at nginx", step=0.25)
        # The dead URL is retried (with backoff) while the good one streams.
        await wait_for(lambda: metric(relay, "hearth_relay_push_failures_total") >= 2, 15,
                       "retries of the dead URL", step=0.5)
        assert metric(relay, 'hearth_relay_pushes{state="retrying"}') == 1
        await asyncio.sleep(3)
        began = cdn.publishing()[k1]
        update(relay, task, 7, PublishCdnParams=cdn_params(cdn.url(k1), dead, cdn.url(k2)))
        await wait_for(lambda: k2 in cdn.publishing(), 10, "the added URL at nginx", step=0.25)
        await asyncio.sleep(2)
        now = cdn.publishing()
        # The first publish went on (nginx's time of it kept growing from before the update).
        assert now[k1] >= began + 2, (began, now)
        stop(relay, task)
        await wait_for(lambda: not ({k1, k2} & set(cdn.publishing())), 3, "the publishes to end", step=0.1)
        await alice.close()
        await bob.close()

    run(body())
    aus = flv_h264(cdn.recorded(k1))
    seis = []
    for ms, key, au in aus:
        for pt, payload in sei_messages(au):
            if pt == 100:
                seis.append((ms, key, json.loads(payload)))
    assert len(seis) >= 5, len(seis)
    # The pass-through SEI: user data unregistered, its UUID then the content, twice a second.
    passed = [(ms, p) for ms, key, au in aus for pt, p in sei_messages(au) if pt == 5 and p[:16] == UUID]
    assert passed and all(p == UUID + b"hello-cdn" for _, p in passed), passed[:3]
    span = (passed[-1][0] - passed[0][0]) / 1000
    assert len(passed) >= 1.6 * span, (len(passed), span)
    # With every IDR (FollowIdr) and about every second in between. (An IDR has NAL type 5; the
    # FLV key flag also marks x264's scene-cut I frames, which are not IDRs.)
    idrs = {ms for ms, _, au in aus if 5 in nal_types(au)}
    with_sei = {ms for ms, _, au in aus if any(pt == 100 for pt, _ in sei_messages(au))}
    assert idrs and idrs <= with_sei, (sorted(idrs), sorted(with_sei))
    assert all(b - a <= 1300 for a, b in zip([s[0] for s in seis], [s[0] for s in seis][1:])), seis
    last = seis[-1][2]
    assert last["app_data"] == "sei_test" and last["canvas"] == {"w": 640, "h": 360}, last
    regions = {reg["uid"]: reg for reg in last["regions"]}
    assert set(regions) == {"alice", "bob"}, last
    assert (regions["alice"]["x"], regions["alice"]["w"], regions["bob"]["x"]) == (0, 320, 320), last
    # Alice makes the tone; bob has no microphone.
    loud = [s[2] for s in seis[len(seis) // 2:]]
    assert all({g["uid"]: g for g in s["regions"]}["alice"]["volume"] > 30 for s in loud), loud
    assert all({g["uid"]: g for g in s["regions"]}["bob"]["volume"] == 0 for s in loud), loud


def test_relay_errors(relay, cdn):
    c = sdk_client(relay)
    bot = "errbot"
    base = {"SdkAppId": APP1, "RoomId": "8999", "RoomIdType": 0,
            "AgentParams": {"UserId": bot, "UserSig": usersig(relay, APP1, bot)},
            "WithTranscoding": 1, "AudioParams": AUDIO,
            "PublishCdnParams": cdn_params(cdn.url("never"))}

    def err(**over) -> str:
        p = dict(base)
        p.update(over)
        return error_of(c, "StartPublishCdnStream", {k: v for k, v in p.items() if v is not None})

    assert err(AudioParams=None) == "MissingParameter"
    assert err(PublishCdnParams=None) == "MissingParameter"
    assert err(AudioParams={"AudioEncode": {"SampleRate": 48000, "Channel": 2, "BitRate": 64, "Codec": 1}}) == "InvalidParameter"
    assert err(AudioParams={"AudioEncode": {"SampleRate": 22050, "Channel": 2, "BitRate": 64}}).startswith("InvalidParameter")
    assert err(WithTranscoding=0) == "MissingParameter"
    assert err(PublishCdnParams=cdn_params("http://127.0.0.1/live/x")) == "InvalidParameter"
    assert err(PublishCdnParams=cdn_params(*[cdn.url(f"k{i}") for i in range(11)])).startswith("InvalidParameter")
    assert err(AgentParams={"UserId": bot, "UserSig": "bad"}) == "InvalidParameter.UserSig"
    assert err(RoomIdType=0, RoomId="not-a-number").startswith("InvalidParameter")
    assert err(VideoParams={"VideoEncode": VIDEO_640, "LayoutParams": {"MixLayoutMode": 2}}) == "InvalidParameter"
    # A CDN address the outbound rules do not allow is never dialled.
    assert err(PublishCdnParams=cdn_params("rtmp://169.254.169.254/live/x")) == "InvalidParameter"
    for action in ("StopPublishCdnStream",):
        assert error_of(c, action, {"SdkAppId": APP1, "TaskId": "no-such-task"}) == "ResourceNotFound"
    assert error_of(c, "UpdatePublishCdnStream", {"SdkAppId": APP1, "TaskId": "no-such-task",
                                                  "SequenceNumber": 1, "WithTranscoding": 1}) == "ResourceNotFound"
    # An audio-only mix cannot switch to audio and video, nor change its audio encoding.
    r = room()

    async def body():
        alice = Publisher(relay, APP1, "alice", rgb=RED, hz=440.0, room=r)
        await alice.start()
        task = start(relay, r, bot="audiobot", PublishCdnParams=cdn_params(cdn.url(f"audio{r}")))
        assert error_of(c, "UpdatePublishCdnStream", {
            "SdkAppId": APP1, "TaskId": task, "SequenceNumber": 1, "WithTranscoding": 1,
            "VideoParams": {"VideoEncode": VIDEO_640}}) == "InvalidParameter"
        assert error_of(c, "UpdatePublishCdnStream", {
            "SdkAppId": APP1, "TaskId": task, "SequenceNumber": 2, "WithTranscoding": 1,
            "AudioParams": {"AudioEncode": {"SampleRate": 44100, "Channel": 2, "BitRate": 64}}}) == "InvalidParameter"
        assert error_of(c, "UpdatePublishCdnStream", {
            "SdkAppId": APP1, "TaskId": task, "SequenceNumber": 3, "WithTranscoding": 0}) == "InvalidParameter"
        await wait_for(lambda: f"audio{r}" in cdn.publishing(), 15, "the audio-only publish", step=0.25)
        info = await asyncio.to_thread(probe_live, cdn.url(f"audio{r}"))
        assert [s["codec_name"] for s in info["streams"]] == ["aac"], info
        stop(relay, task)
        await alice.close()

    run(body())


def test_the_mix_is_published_back_into_another_room(relay, cdn):
    r, back = room(), room()

    async def body():
        alice = Publisher(relay, APP1, "alice", rgb=RED, hz=440.0, room=r)
        await alice.start()
        task = start(relay, r, VideoParams={"VideoEncode": VIDEO_640, "LayoutParams": {"MixLayoutMode": 3}},
                     FeedBackRoomParams=[{"RoomId": str(back), "RoomIdType": 0, "UserId": "fbbot",
                                          "UserSig": usersig(relay, APP1, "fbbot")}])
        # A WebRTC viewer in the other room watches the robot there: the mixed picture (alice
        # fills the grid) and its sound.
        await asyncio.sleep(2)
        viewer = Viewer(relay, APP1, "watcher", "fbbot", room=back)
        await viewer.start()
        await viewer.wait_frames(30, 50, timeout=20)
        await wait_for(lambda: viewer.counts.rgb is not None and near(viewer.counts.rgb, RED), 10,
                       f"the mixed picture in the other room (rgb {viewer.counts.rgb})")
        assert viewer.counts.size == (640, 360), viewer.counts.size
        # A mix of the other room leaves the pushed-back stream out (it is a bot): its grid
        # stays the background, not alice's red.
        key = f"back{back}"
        task2 = start(relay, back, bot="backbot", PublishCdnParams=cdn_params(cdn.url(key)),
                      VideoParams={"VideoEncode": VIDEO_640, "LayoutParams": {"MixLayoutMode": 3},
                                   "BackGroundColor": "0x1EC81E"})
        await wait_for(lambda: key in cdn.publishing(), 15, "the second mix", step=0.25)
        await asyncio.sleep(2)
        img = await asyncio.to_thread(live_frame, cdn.url(key), 640, 360)
        assert near(cell_rgb(img, 160, 90, 320, 180), (30, 200, 30)), cell_rgb(img, 160, 90, 320, 180)
        stop(relay, task2)
        # Push-back rooms change live: without them the robot leaves the other room.
        update(relay, task, 1, FeedBackRoomParams=[])
        seen = viewer.counts.video
        await asyncio.sleep(3)
        assert viewer.counts.video - seen < 10, (seen, viewer.counts.video)
        stop(relay, task)
        await viewer.close()
        await alice.close()

    run(body())


class H264Publisher(Publisher):
    """A publisher whose camera is sent as H.264 (aiortc's x264, constrained baseline)."""

    def __init__(self, h, app, user, **kw):
        from aiortc import RTCRtpSender

        super().__init__(h, app, user, **kw)
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        for t in self.pc.getTransceivers():
            if t.kind == "video":
                t.setCodecPreferences(codecs)


def video_of(info: dict) -> dict:
    found = [s for s in info["streams"] if s["codec_type"] == "video"]
    assert found, info
    return found[0]


def test_single_stream_relay_of_vp8_is_transcoded_and_of_h264_passed_through(relay, cdn):
    r = room()
    k_vp8, k_h264 = f"vp8{r}", f"h264{r}"

    async def body():
        vp8 = Publisher(relay, APP1, "vp8user", rgb=RED, hz=440.0, room=r)
        h264 = H264Publisher(relay, APP1, "h264user", rgb=BLUE, hz=880.0, room=r)
        await vp8.start()
        await h264.start()
        single = lambda user, key, bot: start(  # noqa: E731
            relay, r, bot=bot, WithTranscoding=0,
            VideoParams={"VideoEncode": {"Width": 480, "Height": 270, "Fps": 15, "BitRate": 500, "Gop": 2}},
            SingleSubscribeParams={"UserMediaStream": {"UserInfo": {"UserId": user}, "StreamType": 0}},
            PublishCdnParams=cdn_params(cdn.url(key)))
        t1 = single("vp8user", k_vp8, "single1")
        t2 = single("h264user", k_h264, "single2")
        await wait_for(lambda: {k_vp8, k_h264} <= set(cdn.publishing()), 20, "both relays at nginx", step=0.25)
        a = await asyncio.to_thread(probe_live, cdn.url(k_vp8))
        # VP8 (which FLV cannot carry) is transcoded to the asked size.
        va = video_of(a)
        assert (va["codec_name"], va["width"], va["height"]) == ("h264", 480, 270), va
        assert [s["codec_name"] for s in a["streams"] if s["codec_type"] == "audio"] == ["aac"], a
        img = await asyncio.to_thread(live_frame, cdn.url(k_vp8), 480, 270)
        assert near(cell_rgb(img, 180, 100, 120, 70), RED), cell_rgb(img, 180, 100, 120, 70)
        await asyncio.sleep(3)
        for t in (t1, t2):
            stop(relay, t)
        await vp8.close()
        await h264.close()

    run(body())
    # H.264 goes out as the publisher sent it (its size, its encoder's profile), read from what
    # the CDN recorded (a live player waits for the publisher's next IDR, which may be far).
    b = probe(cdn.recorded(k_h264))
    vb = video_of(b)
    assert (vb["codec_name"], vb["width"], vb["height"]) == ("h264", 640, 360), vb
    assert "Baseline" in vb.get("profile", ""), vb
    assert [s["codec_name"] for s in b["streams"] if s["codec_type"] == "audio"] == ["aac"], b
    img = frame_at(cdn.recorded(k_h264), 1.0, 640, 360)
    assert near(cell_rgb(img, 240, 130, 160, 100), BLUE), cell_rgb(img, 240, 130, 160, 100)
    # Not re-encoded: the access units are the publisher's, as many as it sent (15 fps).
    aus = flv_h264(cdn.recorded(k_h264))
    assert len(aus) > 40, len(aus)


def test_each_layout_mode_puts_each_publisher_in_its_cell(relay, cdn, images):
    r = room()
    key = f"modes{r}"
    W, H = 640, 360
    YELLOW = (230, 230, 30)

    def at(img, x, y, w, h, rgb) -> bool:
        # The middle of a cell (edges are blended by scaling).
        return near(cell_rgb(img, x + w // 4, y + h // 4, max(w // 2, 1), max(h // 2, 1)), rgb)

    async def body():
        pubs = await publishers(relay, APP1, r, ("alice", RED, 440.0), ("bob", BLUE, 1000.0))
        carol = AudioOnly(relay, APP1, "carol", room=r)
        await carol.start()
        user = lambda u: {"UserMediaStream": {"UserInfo": {"UserId": u}}}  # noqa: E731
        # 1 floating: the big-picture user fills the canvas, the others float bottom-left in
        # quarter cells; the audio-only user takes no place.
        task = start(relay, r, PublishCdnParams=cdn_params(cdn.url(key)), VideoParams={
            "VideoEncode": VIDEO_640, "BackGroundColor": "0x000000",
            "LayoutParams": {"MixLayoutMode": 1, "MaxVideoUser": user("bob")}})
        await wait_for(lambda: key in cdn.publishing(), 15, "the publish", step=0.25)
        await frame_where(cdn.url(key), W, H, lambda f: at(f, 0, 0, W, 270, BLUE)
                          and at(f, 0, 270, 160, 90, RED) and at(f, 160, 270, 160, 90, BLUE), 10,
                          "floating: bob big, alice small at the bottom left")
        # 2 screen sharing: the big-picture user on the left, the others in a column on the right.
        update(relay, task, 1, VideoParams={"LayoutParams": {"MixLayoutMode": 2, "MaxVideoUser": user("alice")}})
        await frame_where(cdn.url(key), W, H, lambda f: at(f, 0, 0, 480, 360, RED)
                          and at(f, 480, 0, 80, 45, BLUE) and at(f, 480, 90, 80, 45, (0, 0, 0)), 10,
                          "screen sharing: alice big on the left, bob top right")
        # 3 grid holding a place for the audio-only user: 2×2, carol's cell empty.
        update(relay, task, 2, VideoParams={"LayoutParams": {"MixLayoutMode": 3, "PureAudioHoldPlaceMode": 1}})
        await frame_where(cdn.url(key), W, H, lambda f: at(f, 0, 0, 320, 180, RED)
                          and at(f, 320, 0, 320, 180, BLUE) and at(f, 0, 180, 320, 180, (0, 0, 0)), 10,
                          "grid: alice, bob and carol's empty place")
        # 4 custom: a position reserved for a user not in the room shows its image; bob fills
        # an unnamed position.
        update(relay, task, 3, VideoParams={"LayoutParams": {"MixLayoutMode": 4, "MixLayoutList": [
            {**user("dave"), "LocationX": 0, "LocationY": 0, "ImageWidth": 320, "ImageHeight": 360,
             "BackgroundImageUrl": f"{images}/yellow.png"},
            {"LocationX": 320, "LocationY": 0, "ImageWidth": 320, "ImageHeight": 180}]}})
        await frame_where(cdn.url(key), W, H, lambda f: at(f, 0, 0, 320, 360, YELLOW)
                          and at(f, 320, 0, 320, 180, RED) and at(f, 320, 180, 320, 180, (0, 0, 0)), 10,
                          "custom: dave's image, alice (first in entry order) in the free position")
        # The canvas background changes live: an image where no position is.
        update(relay, task, 4, VideoParams={"BackgroundImageUrl": f"{images}/green.png"})
        await frame_where(cdn.url(key), W, H, lambda f: at(f, 320, 180, 320, 180, (30, 200, 30))
                          and at(f, 320, 0, 320, 180, RED), 10, "the background image behind the positions")
        stop(relay, task)
        await carol.close()
        for p in pubs:
            await p.close()

    run(body())


def test_idle_room_removed_robot_and_killed_worker_each_end_only_their_task(relay, cdn):
    import os
    import signal

    r = room()
    k_idle, k_removed, k_killed, k_other = (f"{n}{r}" for n in ("idle", "removed", "killed", "other"))

    async def body():
        alice = Publisher(relay, APP1, "alice", rgb=RED, hz=440.0, room=r)
        await alice.start()
        audio_only = lambda key, bot, idle=30: start(  # noqa: E731
            relay, r, bot=bot, AgentParams={"UserId": bot, "UserSig": usersig(relay, APP1, bot), "MaxIdleTime": idle},
            PublishCdnParams=cdn_params(cdn.url(key)))
        idle = audio_only(k_idle, "bot-idle", idle=5)
        removed = audio_only(k_removed, "bot-removed")
        before = set(worker_pids(relay))
        killed = audio_only(k_killed, "bot-killed")
        victim = (set(worker_pids(relay)) - before).pop()
        other = audio_only(k_other, "bot-other")
        everyone = {k_idle, k_removed, k_killed, k_other}
        await wait_for(lambda: everyone <= set(cdn.publishing()), 20, "four publishes", step=0.25)
        # The robot removed from the room: its task ends.
        call(sdk_client(relay), "RemoveUser", {"SdkAppId": APP1, "RoomId": r, "UserIds": ["bot-removed"]})
        # A worker killed: its task ends (failed), its push with it.
        os.kill(victim, signal.SIGKILL)
        await wait_for(lambda: not ({k_removed, k_killed} & set(cdn.publishing())), 10,
                       "the removed and killed tasks' publishes to end", step=0.25)
        seq = iter(range(1, 1000))

        def gone(t: str) -> bool:
            # An empty update changes nothing on a running task; an ended one is not found.
            try:
                update(relay, t, next(seq))
                return False
            except Exception as e:  # noqa: BLE001
                assert "ResourceNotFound" in str(e), e
                return True

        for t in (removed, killed):
            await wait_for(lambda t=t: gone(t), 10, "the task to be gone", step=0.5)
        assert not gone(other)
        # The anchor leaves: after MaxIdleTime (5 s) the idle task ends, the other (30 s) goes on.
        await alice.close()
        t = time.monotonic()
        await wait_for(lambda: k_idle not in cdn.publishing(), 15, "the idle task to end", step=0.25)
        waited = time.monotonic() - t
        assert 4.0 <= waited <= 10.0, waited
        assert k_other in cdn.publishing(), cdn.publishing()
        await wait_for(lambda: gone(idle), 10, "the idle task to be gone", step=0.5)
        stop(relay, other)

    run(body())


def test_audio_lists_and_sound_levels_decide_whose_tone_is_heard(relay, cdn):
    r = room()
    key = f"levels{r}"

    async def body():
        pubs = []
        for user, hz in (("alice", 440.0), ("bob", 1000.0), ("carol", 2500.0)):
            p = AudioOnly(relay, APP1, user, hz=hz, room=r)
            pubs.append(p)
            await p.start()
        entry = lambda u, level: {"UserInfo": {"UserId": u}, "SoundLevel": level}  # noqa: E731
        # Alice at full volume, bob silenced by his level, carol blocked.
        task = start(relay, r, PublishCdnParams=cdn_params(cdn.url(key)), AudioParams={
            **AUDIO, "SubscribeAudioList": [entry("alice", 100), entry("bob", 0)],
            "UnSubscribeAudioList": [{"UserInfo": {"UserId": "carol"}}]})
        await wait_for(lambda: key in cdn.publishing(), 15, "the publish", step=0.25)
        await asyncio.sleep(4)
        t_up = cdn.publishing()[key]
        # Now bob only.
        update(relay, task, 1, AudioParams={"SubscribeAudioList": [entry("bob", 100)], "UnSubscribeAudioList": []})
        await asyncio.sleep(5)
        stop(relay, task)
        for p in pubs:
            await p.close()
        return t_up

    t_up = run(body())
    pcm = audio_pcm(cdn.recorded(key))
    rate = 16000
    before = pcm[int(1.0 * rate):int((t_up - 0.5) * rate)]
    after = pcm[int((t_up + 1.5) * rate):int((t_up + 4.0) * rate)]
    p = {hz: (tone_power(before, hz), tone_power(after, hz)) for hz in (440.0, 1000.0, 2500.0)}
    assert p[440.0][0] > 20 * max(p[1000.0][0], p[2500.0][0]), p
    assert p[1000.0][1] > 20 * max(p[440.0][1], p[2500.0][1]), p


def test_a_custom_layout_mixes_streams_of_two_rooms(relay, cdn):
    r, other = room(), room()
    key = f"pk{r}"

    async def body():
        alice = Publisher(relay, APP1, "alice", rgb=RED, hz=440.0, room=r)
        bob = Publisher(relay, APP1, "bob", rgb=BLUE, hz=1000.0, room=other)
        await alice.start()
        await bob.start()
        in_other = {"UserId": "bob", "RoomId": str(other), "RoomIdType": 0}
        # Dynamic layouts take the task's room only.
        assert error_of(sdk_client(relay), "StartPublishCdnStream", {
            "SdkAppId": APP1, "RoomId": str(r), "RoomIdType": 0, "WithTranscoding": 1,
            "AgentParams": {"UserId": "pkbot", "UserSig": usersig(relay, APP1, "pkbot")}, "AudioParams": AUDIO,
            "VideoParams": {"VideoEncode": VIDEO_640, "LayoutParams": {
                "MixLayoutMode": 1, "MaxVideoUser": {"UserMediaStream": {"UserInfo": in_other}}}},
            "PublishCdnParams": cdn_params(cdn.url(key))}) == "InvalidParameter"
        task = start(relay, r, bot="pkbot", PublishCdnParams=cdn_params(cdn.url(key)),
                     AudioParams={**AUDIO, "SubscribeAudioList": [
                         {"UserInfo": {"UserId": "alice"}}, {"UserInfo": in_other}]},
                     VideoParams={"VideoEncode": VIDEO_640, "LayoutParams": {"MixLayoutMode": 4, "MixLayoutList": [
                         {"UserMediaStream": {"UserInfo": {"UserId": "alice", "RoomId": str(r), "RoomIdType": 0}},
                          "LocationX": 0, "LocationY": 0, "ImageWidth": 320, "ImageHeight": 360},
                         {"UserMediaStream": {"UserInfo": in_other},
                          "LocationX": 320, "LocationY": 0, "ImageWidth": 320, "ImageHeight": 360}]}})
        await wait_for(lambda: key in cdn.publishing(), 15, "the publish", step=0.25)
        await frame_where(cdn.url(key), 640, 360, lambda f: halves(f, 640, 360, RED, BLUE), 12,
                          "alice (this room) left and bob (the other room) right")
        await asyncio.sleep(3)
        stop(relay, task)
        await alice.close()
        await bob.close()

    run(body())
    pcm = audio_pcm(cdn.recorded(key))[16000:]
    both = tone_power(pcm, 440.0), tone_power(pcm, 1000.0), tone_power(pcm, 2500.0)
    assert both[0] > 20 * both[2] and both[1] > 20 * both[2], both


def test_custom_crop_shows_the_asked_part_of_a_picture(relay, cdn):
    import av

    from media import ColorVideoTrack

    class Split(ColorVideoTrack):
        """Left half red, right half blue."""

        def __init__(self):
            super().__init__(RED)
            rgb = np.zeros((self.height, self.width, 3), np.uint8)
            rgb[:, : self.width // 2] = RED
            rgb[:, self.width // 2:] = BLUE
            self._base = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()

    r = room()
    key = f"crop{r}"

    async def body():
        pub = Publisher(relay, APP1, "alice", video=Split(), room=r)
        await pub.start()
        cell = lambda crop: {"MixLayoutMode": 4, "MixLayoutList": [{  # noqa: E731
            "UserMediaStream": {"UserInfo": {"UserId": "alice"}}, "LocationX": 0, "LocationY": 0,
            "ImageWidth": 640, "ImageHeight": 360, "RenderMode": 1, **({"CustomCrop": crop} if crop else {})}]}
        # The right half of alice's picture (blue), kept in its aspect (RenderMode 1).
        task = start(relay, r, PublishCdnParams=cdn_params(cdn.url(key)), VideoParams={
            "VideoEncode": VIDEO_640, "LayoutParams": cell(
                {"LocationX": 320, "LocationY": 0, "Width": 320, "Height": 360})})
        await wait_for(lambda: key in cdn.publishing(), 15, "the publish", step=0.25)
        await frame_where(cdn.url(key), 640, 360, lambda f: near(cell_rgb(f, 200, 60, 240, 240), BLUE), 10,
                          "only the blue half, scaled up")
        # Then the left half: red.
        update(relay, task, 1, VideoParams={"LayoutParams": cell(
            {"LocationX": 0, "LocationY": 0, "Width": 320, "Height": 360})})
        await frame_where(cdn.url(key), 640, 360, lambda f: near(cell_rgb(f, 200, 60, 240, 240), RED), 10,
                          "only the red half")
        # No crop: both halves.
        update(relay, task, 2, VideoParams={"LayoutParams": cell(None)})
        await frame_where(cdn.url(key), 640, 360, lambda f: halves(f, 640, 360, RED, BLUE), 10, "the whole picture")
        stop(relay, task)
        await pub.close()

    run(body())
