"""Stream ingest end to end: clips made by ffmpeg here (a two-colour picture, a 440 Hz tone)
served over HTTP as MP4 and as HLS, and pushed into nginx-rtmp; the official SDK driving
Start/Describe/Update/StopStreamIngest; aiortc viewers judging what the robot publishes in the
room: the picture and its size, the tone's frequency and level, pauses, repeats, seeks and URL
switches; URLs the server must not fetch; every documented error."""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cdn import Nginx
from conftest import APP1, free_port, sdk_client, start_hearth, stop_hearth
from media import Viewer, metric, run, usersig, wait_for, worker_pids
from recording import call, error_of, near
from ws_client import WsClient

RED, BLUE, GREEN, MAGENTA, YELLOW = (220, 30, 30), (30, 30, 220), (30, 200, 30), (200, 30, 200), (230, 230, 30)
_room = iter(range(7100, 7999))


def room() -> int:
    return next(_room)


def hexrgb(c) -> str:
    return "0x%02X%02X%02X" % c


def clip(path: Path, *, secs: float, left, right, hz: float = 440.0, after=None, switch_at: float = 0.0,
         size=(640, 360), profile: str = "high") -> Path:
    """An MP4 (H.264 + AAC, moov first): the left half `left`, the right half `right` (from
    `switch_at` on, both halves `after`), and a sine at `hz`."""
    w, h = size
    half = f"s={w // 2}x{h}:r=30:d={secs}"
    graph = (f"color=c={hexrgb(left)}:{half}[a];color=c={hexrgb(right)}:{half}[b];[a][b]hstack[v0]")
    if after is not None:
        graph += (f";color=c={hexrgb(after)}:s={w}x{h}:r=30:d={secs}[c];"
                  f"[v0][c]overlay=enable='gte(t,{switch_at})'[v]")
    else:
        graph += ";[v0]null[v]"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-f", "lavfi", "-i",
         f"sine=frequency={hz}:sample_rate=48000:duration={secs}", "-map", "[v]", "-map", "0:a",
         "-c:v", "libx264", "-profile:v", profile, "-preset", "veryfast", "-g", "15", "-pix_fmt", "yuv420p", "-c:a", "aac",
         "-b:a", "128k", "-movflags", "+faststart", "-t", str(secs), str(path)],
        check=True, timeout=120,
    )
    return path


class Files(http.server.SimpleHTTPRequestHandler):
    """Serves the clip directory with byte ranges (souphttpsrc seeks with them), and
    `/redirect?to=URL` answering 302."""

    directory_path = "."

    def __init__(self, *a, **kw):
        super().__init__(*a, directory=self.directory_path, **kw)

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", requests_unquote(self.path.split("=", 1)[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/norange/"):
            # A server that ignores byte ranges (a seek to the start cannot work there).
            self.path = self.path.removeprefix("/norange")
            return super().do_GET()
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        start, _, end = rng.removeprefix("bytes=").partition("-")
        start = int(start or 0)
        end = int(end) if end else len(data) - 1
        if start >= len(data):
            self.send_response(416)
            self.end_headers()
            return
        body = data[start:end + 1]
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)


def requests_unquote(s: str) -> str:
    from urllib.parse import unquote
    return unquote(s)


@pytest.fixture(scope="module")
def media_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ingest-media")
    clip(d / "pattern.mp4", secs=6, left=RED, right=BLUE)
    clip(d / "short.mp4", secs=3, left=GREEN, right=GREEN, hz=440.0)
    clip(d / "seek.mp4", secs=8, left=GREEN, right=GREEN, after=MAGENTA, switch_at=4.0)
    clip(d / "other.mp4", secs=6, left=YELLOW, right=YELLOW, hz=440.0)
    clip(d / "baseline.mp4", secs=6, left=BLUE, right=RED, profile="baseline")
    hls = d / "hls"
    hls.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(d / "pattern.mp4"), "-c", "copy", "-f", "hls",
                    "-hls_time", "1", "-hls_playlist_type", "vod", str(hls / "index.m3u8")], check=True)
    # A playlist whose segment is a local file: nothing may read it.
    (hls / "evil.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
                                   "#EXTINF:2.0,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n")


    class Handler(Files):
        directory_path = str(d)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", d
    srv.shutdown()


@pytest.fixture(scope="module")
def trap(media_files):
    """A TCP port on loopback that counts who connects, and a playlist whose segment is on RTMP
    there: inside HLS only HTTP(S) is fetched, so nothing may connect."""
    import socket
    _, d = media_files
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(8)
    hits = []

    def accept():
        while True:
            try:
                conn, _ = lsn.accept()
            except OSError:
                return
            hits.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    port = lsn.getsockname()[1]
    (d / "hls" / "evil-rtmp.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:2.0,\nrtmp://127.0.0.1:{port}/live/x\n#EXT-X-ENDLIST\n")
    yield hits
    lsn.close()


@pytest.fixture(scope="module")
def ingest_server(tmp_path_factory):
    """A server whose outbound rules allow loopback (the clip server and nginx run here)."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-ingest"), "ingest", rate_limits=False,
                     env={"HEARTH_OUTBOUND_ALLOW": "127.0.0.0/8", "HEARTH_MEDIA_CPU_BUDGET": "1.6",
                          "HEARTH_MEDIA_INGEST_LIVE_RETRY_SECS": "4",
                          "HEARTH_MEDIA_EOS_TIMEOUT_SECS": "8"})
    yield h
    stop_hearth(h)


@pytest.fixture(scope="module")
def cdn(tmp_path_factory) -> Nginx:
    n = Nginx(tmp_path_factory.mktemp("nginx-ingest"))
    n.start()
    yield n
    n.stop()


STARTED: list[tuple[object, str]] = []


@pytest.fixture(autouse=True)
def stop_what_the_test_started():
    """A test that fails midway leaves no task running into the next one."""
    yield
    while STARTED:
        h, task = STARTED.pop()
        try:
            stop(h, task)
        except Exception:  # noqa: BLE001 (ended already)
            pass


def start(h, r: int, url: str, robot: str = "robot", **extra) -> str:
    params = {"SdkAppId": APP1, "RoomId": str(r), "RoomIdType": 1, "UserId": robot,
              "UserSig": usersig(h, APP1, robot), "StreamUrl": url, **extra}
    task = call(sdk_client(h), "StartStreamIngest", params)["TaskId"]
    STARTED.append((h, task))
    return task


def status(h, task: str) -> str:
    return call(sdk_client(h), "DescribeStreamIngest", {"SdkAppId": APP1, "TaskId": task})["Status"]


def update(h, task: str, **changes) -> dict:
    return call(sdk_client(h), "UpdateStreamIngest", {"SdkAppId": APP1, "TaskId": task, **changes})


def stop(h, task: str) -> None:
    call(sdk_client(h), "StopStreamIngest", {"SdkAppId": APP1, "TaskId": task})


class Watch(Viewer):
    """A WHEP viewer of the robot that keeps when each video frame came with the mean colour of
    its left and right quarters, and the audio as 48 kHz mono samples with arrival times."""

    def __init__(self, h, r: int, robot: str = "robot"):
        super().__init__(h, APP1, f"viewer{r}", robot, room=r)
        self.frames: list[tuple[float, tuple, tuple, tuple[int, int]]] = []
        self.audio: list[tuple[float, np.ndarray]] = []
        self.codecs: set[str] = set()

    def _spy_codecs(self) -> None:
        recv = next(t.receiver for t in self.pc.getTransceivers() if t.kind == "video")
        handle = recv._handle_rtp_packet

        async def spy(packet, arrival_time_ms):
            c = recv._RTCRtpReceiver__codecs.get(packet.payload_type)
            if c is not None:
                self.codecs.add(c.name)
            return await handle(packet, arrival_time_ms)

        recv._handle_rtp_packet = spy

    async def _consume(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if track.kind == "video":
                    img = frame.to_ndarray(format="rgb24")
                    hgt, wid, _ = img.shape
                    mid = img[hgt // 4: 3 * hgt // 4]
                    left = tuple(float(x) for x in mid[:, wid // 16: wid // 4].reshape(-1, 3).mean(axis=0))
                    right = tuple(float(x) for x in mid[:, 3 * wid // 4: 15 * wid // 16].reshape(-1, 3).mean(axis=0))
                    self.frames.append((now, left, right, (frame.width, frame.height)))
                else:
                    pcm = frame.to_ndarray().astype(np.float64)
                    ch = len(frame.layout.channels)
                    mono = pcm.reshape(-1, ch).mean(axis=1) if pcm.size else pcm
                    self.audio.append((now, mono))
        except MediaStreamError:
            pass

    async def begin(self, timeout: float = 15) -> "Watch":
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._spy_codecs()
                await self.start()
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
                self.pc = __import__("media").new_pc(max_bundle=True)
                self.pc.addTransceiver("audio", direction="recvonly")
                self.pc.addTransceiver("video", direction="recvonly")
                self.pc.on("track", self._on_track)
        await wait_for(lambda: len(self.frames) >= 10 and len(self.audio) >= 25, timeout,
                       f"media from the robot (has {len(self.frames)} video, {len(self.audio)} audio)")
        return self

    def pcm_since(self, t: float, secs: float) -> np.ndarray:
        parts = [a for at, a in self.audio if t <= at <= t + secs]
        return np.concatenate(parts) if parts else np.zeros(0)

    def last_frame_at(self) -> float:
        return self.frames[-1][0] if self.frames else 0.0


def dominant_hz(pcm: np.ndarray, rate: int = 48000) -> float:
    spec = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spec[1:])) + 1])


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm ** 2))) if pcm.size else 0.0


async def full_size(w: Watch, size=(640, 360)) -> None:
    """The SFU starts a viewer on the layer its downlink estimate allows and moves it up to the
    full picture: wait for that."""
    await wait_for(lambda: w.frames and all(f[3] == size for f in w.frames[-5:]), 10,
                   f"the full picture {size} (sizes seen: {sorted({f[3] for f in w.frames})})")


def check_pattern(w: Watch, size=(640, 360), left=RED, right=BLUE) -> None:
    recent = w.frames[-5:]
    assert all(f[3] == size for f in recent), [f[3] for f in recent]
    assert all(near(f[1], left) and near(f[2], right) for f in recent), [(f[1], f[2]) for f in recent]
    pcm = w.pcm_since(time.monotonic() - 1.5, 1.5)
    assert len(pcm) > 24000, len(pcm)
    assert abs(dominant_hz(pcm) - 440) < 10, dominant_hz(pcm)


async def watch_pattern(h, r: int) -> Watch:
    """A viewer of the robot once it shows the pattern clip at its size with its tone."""
    w = await Watch(h, r).begin()
    await full_size(w)
    await asyncio.sleep(1.5)
    check_pattern(w)
    return w


def push(source: Path, fmt: str, url: str) -> subprocess.Popen:
    """ffmpeg sending a clip, looped, in real time, as it is (a live source)."""
    return subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(source),
                             "-c", "copy", "-f", fmt, url])


def test_an_mp4_over_http_is_published_at_its_size_with_its_picture_and_tone(ingest_server, media_files):
    base, _ = media_files
    r = room()
    task = start(ingest_server, r, f"{base}/pattern.mp4", RepeatNum=-1)
    assert status(ingest_server, task) == "InProgress"

    async def body():
        w = await watch_pattern(ingest_server, r)
        # The volume changes live: half the amplitude.
        t0 = time.monotonic()
        await asyncio.sleep(1.2)
        loud = rms(w.pcm_since(t0, 1.2))
        await asyncio.to_thread(update, ingest_server, task, Volume=50)
        await asyncio.sleep(0.5)
        t1 = time.monotonic()
        await asyncio.sleep(1.2)
        quiet = rms(w.pcm_since(t1, 1.2))
        assert loud > 500 and 0.4 <= quiet / loud <= 0.6, (loud, quiet)
        await w.close()

    run(body())
    stop(ingest_server, task)
    assert status(ingest_server, task) == "NotExist"
    # Stopping again: the task has ended.
    assert error_of(sdk_client(ingest_server), "StopStreamIngest",
                    {"SdkAppId": APP1, "TaskId": task}) == "FailedOperation.TaskFinished"


def video_codec(w: Watch) -> set[str]:
    """The codecs of the video packets the viewer's receiver took (aiortc keeps the negotiated
    payload types by number; each packet's type names its codec)."""
    return {c for c in w.codecs if c != "rtx"}


def test_baseline_h264_is_passed_through_and_other_h264_is_encoded_as_vp8(ingest_server, media_files):
    base, _ = media_files
    r1, r2 = room(), room()
    start(ingest_server, r1, f"{base}/baseline.mp4", RepeatNum=-1)
    start(ingest_server, r2, f"{base}/pattern.mp4", RepeatNum=-1)

    async def body():
        a = await Watch(ingest_server, r1).begin()
        await full_size(a)
        await asyncio.sleep(1.0)
        check_pattern(a, left=BLUE, right=RED)
        assert video_codec(a) == {"H264"}, a.codecs
        b = await Watch(ingest_server, r2).begin()
        assert video_codec(b) == {"VP8"}, b.codecs
        await a.close()
        await b.close()

    run(body())


def test_hls_is_ingested(ingest_server, media_files):
    base, _ = media_files
    r = room()
    task = start(ingest_server, r, f"{base}/hls/index.m3u8", RepeatNum=-1)

    async def body():
        w = await watch_pattern(ingest_server, r)
        await w.close()

    run(body())
    stop(ingest_server, task)


def test_a_live_rtmp_stream_is_ingested_and_its_end_ends_the_task_after_retries(ingest_server, media_files, cdn):
    _, d = media_files
    r = room()
    key = f"src{r}"
    pusher = push(d / "pattern.mp4", "flv", cdn.url(key))
    try:
        async def body():
            await wait_for(lambda: key in cdn.publishing(), 15, "the source at nginx", step=0.25)
            task = await asyncio.to_thread(start, ingest_server, r, cdn.url(key))
            w = await watch_pattern(ingest_server, r)
            # The publisher goes away: the robot retries for the live retry time, then leaves.
            pusher.kill()
            gone = time.monotonic()
            await wait_for(lambda: status(ingest_server, task) == "NotExist", 30, "the task to end")
            assert time.monotonic() - gone >= 3, "ended before retrying"
            await w.close()

        run(body())
    finally:
        pusher.kill()
        pusher.wait()


def test_an_srt_stream_is_ingested(ingest_server, media_files):
    _, d = media_files
    r = room()
    port = free_port()
    # ffmpeg listens; the robot calls (srtsrc's default mode).
    pusher = push(d / "pattern.mp4", "mpegts", f"srt://127.0.0.1:{port}?mode=listener")
    try:
        async def body():
            await asyncio.sleep(1.0)
            await asyncio.to_thread(start, ingest_server, r, f"srt://127.0.0.1:{port}")
            w = await watch_pattern(ingest_server, r)
            await w.close()

        run(body())
    finally:
        pusher.kill()
        pusher.wait()


def test_pause_stops_frames_within_a_second_and_resume_brings_them_back(ingest_server, media_files):
    base, _ = media_files
    r = room()
    task = start(ingest_server, r, f"{base}/pattern.mp4", RepeatNum=-1)

    async def body():
        w = await Watch(ingest_server, r).begin()
        assert update(ingest_server, task, IsPause=True)["Status"] == "InProgress"
        asked = time.monotonic()
        await asyncio.sleep(2.5)
        assert w.last_frame_at() - asked < 1.0, w.last_frame_at() - asked
        assert status(ingest_server, task) == "InProgress"
        n = len(w.frames)
        update(ingest_server, task, IsPause=False)
        await wait_for(lambda: len(w.frames) > n + 15, 5, "frames after resume")
        await full_size(w)
        await asyncio.sleep(1.5)  # check_pattern hears the last 1.5 s: all of it after the pause
        check_pattern(w)
        await w.close()

    run(body())
    stop(ingest_server, task)


@pytest.mark.parametrize("where", ["", "/norange"])  # the next play: a seek back; or the file opened again
def test_repeat_num_two_plays_a_three_second_clip_twice_then_the_robot_leaves(ingest_server, media_files, where):
    base, _ = media_files
    base += where
    r = room()
    observer = WsClient(ingest_server, APP1, f"obs{r}", room=r, autosubscribe=False)

    async def body():
        await observer.connect()
        task = await asyncio.to_thread(start, ingest_server, r, f"{base}/short.mp4", RepeatNum=2)
        w = await Watch(ingest_server, r).begin()
        await wait_for(lambda: any(m["type"] == "user_exited" and m.get("userid") == "robot"
                                   for m in observer.messages), 15, "the robot to leave")
        span = w.frames[-1][0] - w.frames[0][0]
        assert 4.5 <= span <= 7.0, span
        assert status(ingest_server, task) == "NotExist"
        await w.close()
        await observer.close()

    run(body())


def test_seek_second_starts_later_and_update_switches_the_url_without_a_new_entry(ingest_server, media_files):
    base, _ = media_files
    r = room()
    observer = WsClient(ingest_server, APP1, f"obs{r}", room=r, autosubscribe=False)

    async def body():
        await observer.connect()
        # The clip is green for 4 s, then magenta: from second 5 it starts magenta.
        task = await asyncio.to_thread(start, ingest_server, r, f"{base}/seek.mp4", SeekSecond=5)
        w = await Watch(ingest_server, r).begin()
        first = w.frames[:5]
        assert all(near(f[1], MAGENTA) for f in first), [f[1] for f in first]
        await asyncio.to_thread(update, ingest_server, task, StreamUrl=f"{base}/other.mp4")
        await wait_for(lambda: near(w.frames[-1][1], YELLOW), 10, "the new URL's picture")
        await asyncio.sleep(0.5)
        entries = [m for m in observer.messages if m["type"] == "user_entered" and m["user"]["userid"] == "robot"]
        exits = [m for m in observer.messages if m["type"] == "user_exited" and m.get("userid") == "robot"]
        assert len(entries) == 1 and not exits, (entries, exits)
        await asyncio.to_thread(stop, ingest_server, task)
        await w.close()
        await observer.close()

    run(body())


def test_urls_the_server_must_not_fetch_are_refused(ingest_server, media_files, trap):
    base, _ = media_files
    r = room()
    c = sdk_client(ingest_server)
    sig = usersig(ingest_server, APP1, "robot")

    def err(url: str) -> tuple[str, str]:
        try:
            call(c, "StartStreamIngest", {"SdkAppId": APP1, "RoomId": str(r), "RoomIdType": 1,
                                          "UserId": "robot", "UserSig": sig, "StreamUrl": url})
        except Exception as e:  # noqa: BLE001
            return e.get_code(), e.get_message()
        raise AssertionError(f"{url} was taken")

    for url in ("file:///etc/hostname", "rtsp://127.0.0.1/x", "gopher://a/b",
                "http://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
                "http://10.1.2.3/a.mp4",
                f"http://127.0.0.1:{free_port()}/nothing-listens.mp4",  # unreachable
                "http://no-such-host.invalid/a.mp4",
                f"{base}/no-such-file.mp4",
                # A redirect to the metadata address is refused at the redirect.
                f"{base}/redirect?to=http%3A%2F%2F169.254.169.254%2Flatest",
                # Playlists naming a local file, and an RTMP segment.
                f"{base}/hls/evil.m3u8", f"{base}/hls/evil-rtmp.m3u8"):
        code, msg = err(url)
        assert code == "InvalidParameter.StreamUrl", (url, code, msg)
    code, msg = err(f"{base}/redirect?to=http%3A%2F%2F169.254.169.254%2Flatest")
    assert "169.254.169.254" in msg, msg
    code, msg = err(f"{base}/hls/evil-rtmp.m3u8")
    assert "rtmp://127.0.0.1" in msg and not trap, (msg, trap)
    # Nothing of those entered the room.
    observer = WsClient(ingest_server, APP1, f"obs{r}", room=r, autosubscribe=False)

    async def body():
        entered = await observer.connect()
        assert not [u for u in entered.get("roster", []) if u["userid"] == "robot"], entered
        await observer.close()

    run(body())


@pytest.mark.parametrize("name", ["pattern.mp4", "baseline.mp4"])  # VP8 layers; H.264 passed through + small
def test_small_layer_and_one_robot_per_room_and_user(ingest_server, media_files, name):
    base, _ = media_files
    r = room()
    task = start(ingest_server, r, f"{base}/{name}", RepeatNum=-1)
    c = sdk_client(ingest_server)
    try:
        assert error_of(c, "StartStreamIngest", {
            "SdkAppId": APP1, "RoomId": str(r), "RoomIdType": 1, "UserId": "robot",
            "UserSig": usersig(ingest_server, APP1, "robot"), "StreamUrl": f"{base}/pattern.mp4",
        }) == "FailedOperation.TaskExist"
        small = WsClient(ingest_server, APP1, f"weak{r}", room=r, autosubscribe=False)

        async def body():
            await small.connect()
            await wait_for(lambda: any(m["type"] in ("user_entered", "user_updated") and m["user"]["userid"] == "robot"
                                       and m["user"].get("video") for m in small.messages)
                           or any(u["userid"] == "robot" and u.get("video") for u in small.entered["roster"]),
                           10, "the robot's video")
            await small.send({"type": "subscribe", "userid": "robot", "stream": "main", "quality": "small"})
            await small.wait_media("robot", video=20, audio=10)
            assert small.counts("robot").size == (160, 90), small.counts("robot").size
            await small.close()

        run(body())
    finally:
        stop(ingest_server, task)


def test_a_killed_worker_ends_its_task_and_the_budget_bounds_concurrent_ingests(ingest_server, media_files):
    base, _ = media_files
    c = sdk_client(ingest_server)
    # Each ingest is charged for the largest picture it may publish (1280x720 at 30 fps,
    # 0.45 core): three fit the budget of 1.6 cores, a fourth does not.
    rooms = [room() for _ in range(3)]
    tasks = [start(ingest_server, r, f"{base}/pattern.mp4", RepeatNum=-1) for r in rooms]
    try:
        assert error_of(c, "StartStreamIngest", {
            "SdkAppId": APP1, "RoomId": str(room()), "RoomIdType": 1, "UserId": "robot",
            "UserSig": usersig(ingest_server, APP1, "robot"), "StreamUrl": f"{base}/pattern.mp4",
        }) == "FailedOperation.RestrictedConcurrency"
        pids = worker_pids(ingest_server)
        assert len(pids) == 3, pids
        import os
        import signal
        os.kill(pids[0], signal.SIGKILL)

        async def gone():
            await wait_for(lambda: sum(status(ingest_server, t) == "NotExist" for t in tasks) == 1, 10,
                           "the killed worker's task to end")
        run(gone())
        assert metric(ingest_server, 'hearth_media_tasks{kind="ingest",state="failed"}') >= 1
        assert metric(ingest_server, 'hearth_media_tasks{kind="ingest",state="refused"}') >= 1
        # The others go on, and the budget it held is free again.
        assert sum(status(ingest_server, t) == "InProgress" for t in tasks) == 2
        tasks.append(start(ingest_server, room(), f"{base}/pattern.mp4", RepeatNum=-1))
    finally:
        for t in tasks:
            try:
                stop(ingest_server, t)
            except Exception:  # noqa: BLE001 (the killed one has ended)
                pass


def test_every_documented_error(ingest_server, media_files):
    base, _ = media_files
    c = sdk_client(ingest_server)
    sig = usersig(ingest_server, APP1, "robot")
    ok = {"SdkAppId": APP1, "RoomId": "7001", "RoomIdType": 1, "UserId": "robot", "UserSig": sig,
          "StreamUrl": f"{base}/pattern.mp4"}
    cases = [
        ({k: v for k, v in ok.items() if k != "SdkAppId"}, "MissingParameter.SdkAppId"),
        ({**ok, "RoomId": ""}, "MissingParameter.RoomId"),
        ({**ok, "RoomId": "abc"}, "InvalidParameter.RoomId"),
        ({**ok, "RoomId": "99999999999"}, "InvalidParameter.RoomId"),
        ({**ok, "RoomId": "a" * 65, "RoomIdType": 0}, "InvalidParameter.StrRoomId"),
        ({**ok, "UserSig": "nope"}, "InvalidParameter.UserSig"),
        ({**ok, "UserSig": usersig(ingest_server, APP1, "someone-else")}, "InvalidParameter.UserSig"),
        ({k: v for k, v in ok.items() if k != "StreamUrl"}, "InvalidParameter.StreamUrl"),
        ({**ok, "StreamUrl": "ftp://a/b"}, "InvalidParameter.StreamUrl"),
        ({**ok, "AutoPush": True}, "FailedOperation.NotRtmpFunction"),
        ({**ok, "RepeatNum": 0}, "InvalidParameter.OutOfRange"),
        ({**ok, "RepeatNum": 1001}, "InvalidParameter.OutOfRange"),
        ({**ok, "RepeatNum": -1, "MaxDuration": 0}, "InvalidParameter.OutOfRange"),
        ({**ok, "Volume": 101}, "InvalidParameter.OutOfRange"),
        ({**ok, "SeekSecond": -1}, "InvalidParameter.OutOfRange"),
        ({**ok, "VideoEncodeParams": {"Width": 4000, "Height": 100}}, "InvalidParameter.OutOfRange"),
        ({**ok, "AudioEncodeParams": {"SampleRate": 8000}}, "InvalidParameter.OutOfRange"),
        ({**ok, "SdkAppId": 1}, "UnauthorizedOperation.SdkAppId"),
        ({**ok, "Volume": "loud"}, "InvalidParameter.BodyParamsError"),
        ({**ok, "RepeatNum": "twice"}, "InvalidParameter.BodyParamsError"),
    ]
    for params, code in cases:
        assert error_of(c, "StartStreamIngest", params) == code, (params, code)
    assert error_of(c, "DescribeStreamIngest", {"SdkAppId": APP1}) == "MissingParameter.TaskId"
    assert error_of(c, "DescribeStreamIngest", {"TaskId": "x"}) == "MissingParameter.SdkAppId"
    assert call(c, "DescribeStreamIngest", {"SdkAppId": APP1, "TaskId": "nope"})["Status"] == "NotExist"
    assert error_of(c, "UpdateStreamIngest", {"SdkAppId": APP1, "TaskId": "nope", "Volume": 10}) == \
        "FailedOperation.TaskNotExist"
    assert error_of(c, "UpdateStreamIngest", {"SdkAppId": APP1, "TaskId": "", "Volume": 10}) == \
        "MissingParameter.TaskId"
    assert error_of(c, "StopStreamIngest", {"SdkAppId": APP1, "TaskId": "nope"}) == "InvalidParameter.TaskId"
    # A running task refuses an update to a URL it must not fetch, and keeps running.
    r = room()
    task = start(ingest_server, r, f"{base}/pattern.mp4", RepeatNum=-1)
    try:
        assert error_of(c, "UpdateStreamIngest", {"SdkAppId": APP1, "TaskId": task,
                                                  "StreamUrl": "file:///etc/hostname"}) == "InvalidParameter.StreamUrl"
        assert error_of(c, "UpdateStreamIngest", {"SdkAppId": APP1, "TaskId": task,
                                                  "StreamUrl": "http://169.254.169.254/x.mp4"}) == "InvalidParameter.StreamUrl"
        assert error_of(c, "UpdateStreamIngest", {"SdkAppId": APP1, "TaskId": task, "Volume": -1}) == \
            "InvalidParameter.OutOfRange"
        assert status(ingest_server, task) == "InProgress"
    finally:
        stop(ingest_server, task)
