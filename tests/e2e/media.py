"""aiortc WHIP publishers and WHEP viewers against a real server, plus what the media tests need
around them: the HTTP exchanges, /healthz counts, process RSS and fds, SDP munging.

Clients gather ICE candidates on 127.0.0.1 only (aioice skips loopback by default; the server
announces a loopback candidate), with no STUN server, so nothing leaves the machine. The offer is
POSTed after gathering completed (aiortc gathers inside setLocalDescription); the answer carries
the server's candidate (ICE-lite, no trickle).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import math
import pathlib
import re
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, TypeVar

import aioice.ice
import numpy as np
import requests
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame
from TLSSigAPIv2 import TLSSigAPIv2

from conftest import Hearth

# Loopback host candidates only (the default excludes 127.0.0.1 and lists every interface).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []

WIDTH, HEIGHT = 640, 360
FPS = 15
VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
CONNECT_TIMEOUT = 15.0
HTTP_TIMEOUT = 15.0

T = TypeVar("T")


# ------------------------------------------------------------------------------------------
# Running async test bodies


def run(coro: Awaitable[T]) -> T:
    """Runs a test body in a fresh event loop with room for many encoders and HTTP calls in
    the default executor (aiortc encodes there; the default pool is only cpu+4 threads)."""

    async def main() -> T:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=48))
        return await coro

    return asyncio.run(main())


async def wait_for(pred: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Polls `pred` until true; returns the seconds it took; fails with `what` at the deadline."""
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(step)
    return time.monotonic() - start


# ------------------------------------------------------------------------------------------
# Server-side observations


def media_stats(h: Hearth) -> dict:
    r = requests.get(f"http://{h.host}/healthz", timeout=5)
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()
    assert body.get("status") == "ok", body
    return body["media"]


EMPTY_KEYS = ("rooms", "peers", "addr_routes", "ufrag_routes", "tracks", "subscriptions")


def is_empty(stats: dict) -> bool:
    return all(stats[k] == 0 for k in EMPTY_KEYS)


async def wait_stats(h: Hearth, pred: Callable[[dict], bool], timeout: float, what: str) -> dict:
    """Polls /healthz until `pred(media)`; fails with the last counts and the log's tail."""
    start = time.monotonic()
    last: dict = {}
    while True:
        last = await asyncio.to_thread(media_stats, h)
        if pred(last):
            return last
        if time.monotonic() - start > timeout:
            tail = "\n".join(h.stderr().splitlines()[-30:])
            raise AssertionError(
                f"healthz never showed {what} within {timeout:.0f}s; last media counts: {last}\n"
                f"server log tail:\n{tail}"
            )
        await asyncio.sleep(0.1)


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def metric(h: Hearth, name: str) -> float:
    """A value of the server's /metrics (`name` with its labels, as written there); 0 if absent."""
    text = requests.get(f"http://{h.host}/metrics", timeout=5).text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def worker_pids(h) -> list[int]:
    """The hearth-media processes `h` started."""
    pids = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1: text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        if comm == "hearth-media" and ppid == h.pid:
            pids.append(int(stat.parent.name))
    return pids


def fd_count(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


# ------------------------------------------------------------------------------------------
# UserSigs


def usersig(h: Hearth, app: int, user: str, expire: int = 3600) -> str:
    """A UserSig made by the official library with the app's key."""
    return TLSSigAPIv2(app, h.app_keys[app]).gen_sig(user, expire)


# ------------------------------------------------------------------------------------------
# HTTP


@dataclass
class Exchange:
    status: int
    location: str | None
    body: str
    headers: requests.structures.CaseInsensitiveDict


def _post(url: str, sig: str | None, body: bytes, content_type: str | None) -> Exchange:
    headers = {}
    if sig is not None:
        headers["Authorization"] = f"Bearer {sig}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    r = requests.post(url, data=body, headers=headers, timeout=HTTP_TIMEOUT)
    return Exchange(r.status_code, r.headers.get("Location"), r.text, r.headers)


def endpoint_url(h: Hearth, kind: str, app: int, *, room: int | None = None, strroom: str | None = None,
                 publisher: str | None = None, stream: str | None = None) -> str:
    q = [f"sdkappid={app}"]
    if room is not None:
        q.append(f"roomid={room}")
    if strroom is not None:
        q.append(f"strroomid={requests.utils.quote(strroom, safe='')}")
    if publisher is not None:
        q.append(f"userid={requests.utils.quote(publisher, safe='')}")
    if stream is not None:
        q.append(f"stream={stream}")
    return f"http://{h.host}/{kind}/v1?{'&'.join(q)}"


async def post_sdp(url: str, sig: str | None, body: bytes | str,
                   content_type: str | None = "application/sdp") -> Exchange:
    if isinstance(body, str):
        body = body.encode()
    return await asyncio.to_thread(_post, url, sig, body, content_type)


def _delete(url: str) -> int:
    return requests.delete(url, timeout=HTTP_TIMEOUT).status_code


async def delete(h: Hearth, location: str) -> int:
    return await asyncio.to_thread(_delete, f"http://{h.host}{location}")


# ------------------------------------------------------------------------------------------
# Synthetic media


def yuv_of(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range, what libswscale uses for rgb24 <-> yuv420p by default."""
    r, g, b = rgb
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return round(y), round(u), round(v)


class ColorVideoTrack(MediaStreamTrack):
    """640x360 frames of one solid colour with a small white square moving along the top edge
    (so the encoder has motion to code), at `fps`."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int], fps: int = FPS, width: int = WIDTH, height: int = HEIGHT):
        super().__init__()
        self.fps, self.width, self.height = fps, width, height
        y, u, v = yuv_of(rgb)
        plane = np.empty((height * 3 // 2, width), dtype=np.uint8)
        plane[:height] = y
        # yuv420p as one array: Y rows, then U and V planes each (h/2 x w/2) packed two per row.
        plane[height : height + height // 4] = u
        plane[height + height // 4 :] = v
        self._base = plane
        self._n = 0
        self._start: float | None = None
        self.sent = 0

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self._n / self.fps - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        img = self._base.copy()
        x = (self._n * 8) % (self.width - 32)
        img[8:40, x : x + 32] = 235
        frame = VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts = int(self._n * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._n += 1
        self.sent += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A 440 Hz tone, 48 kHz mono, 20 ms frames."""

    kind = "audio"

    def __init__(self, hz: float = 440.0):
        super().__init__()
        n = int(AUDIO_RATE * AUDIO_PTIME)
        self._samples = n
        t = np.arange(AUDIO_RATE, dtype=np.float64) / AUDIO_RATE  # one second, looped
        self._wave = (0.2 * 32767 * np.sin(2 * math.pi * hz * t)).astype(np.int16)
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self._n * AUDIO_PTIME - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        off = (self._n * self._samples) % AUDIO_RATE
        chunk = np.roll(self._wave, -off)[: self._samples]
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._n * self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._n += 1
        return frame


# ------------------------------------------------------------------------------------------
# Clients


class MediaHTTPError(AssertionError):
    def __init__(self, what: str, ex: Exchange):
        super().__init__(f"{what}: HTTP {ex.status}: {ex.body.strip()[:300]}")
        self.exchange = ex


def new_pc(*, max_bundle: bool = False) -> RTCPeerConnection:
    """A peer connection with no STUN server (aiortc defaults to Google's).

    max_bundle: one transport from the start, as WHIP/WHEP clients do; the remote description
    must then go through `candidates_in_every_section`. With aiortc's default "balanced", audio
    and video start on separate transports and the BUNDLE answer moves video onto audio's; that
    works for one line per kind, but a second video line stays on the discarded transport and
    its track is never sent (aiortc 1.16), so the sub-stream publisher needs max-bundle."""
    policy = RTCBundlePolicy.MAX_BUNDLE if max_bundle else RTCBundlePolicy.BALANCED
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=policy))


def candidates_in_every_section(answer: str) -> str:
    """The answer with the bundle's ICE candidates copied into every m-section lacking them.

    The server puts its candidate in the tagged (first) m-section only, as RFC 8843 has it;
    aiortc (1.16) adds the remote candidates of a transport from the *last* m-section using it,
    so with max-bundle it would see none and never send a connectivity check."""
    nl = "\r\n" if "\r\n" in answer else "\n"
    parts = re.split(r"(?m)^(?=m=)", answer)
    cands = [l for sec in parts[1:] for l in sec.splitlines() if l.startswith("a=candidate:")]
    if not cands:
        return answer
    out = [parts[0]]
    for sec in parts[1:]:
        if "a=candidate:" not in sec:
            sec = sec.rstrip("\r\n") + nl + nl.join(dict.fromkeys(cands)) + nl
        out.append(sec)
    return "".join(out)


async def gathered_offer(pc: RTCPeerConnection) -> str:
    """The complete offer: aiortc's setLocalDescription returns once gathering is complete."""
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.iceGatheringState == "complete", pc.iceGatheringState
    sdp = pc.localDescription.sdp
    assert "a=candidate:" in sdp, f"the offer has no ICE candidate:\n{sdp}"
    return sdp


class Client:
    """A WHIP or WHEP session: its peer connection and its Location once accepted."""

    kind = ""

    def __init__(self, h: Hearth, app: int, user: str, *, room: int | None = None,
                 strroom: str | None = None):
        self.h, self.app, self.user = h, app, user
        self.room, self.strroom = room, strroom
        self.pc = new_pc(max_bundle=True)
        self.location: str | None = None
        self.answer: str | None = None
        self.deleted = False

    def url(self) -> str:
        raise NotImplementedError

    def where(self) -> str:
        room = f"room {self.room}" if self.room is not None else f"strroom {self.strroom!r}"
        return f"{self.kind} {self.user!r} in {room} (app {self.app})"

    async def offer(self) -> str:
        return await gathered_offer(self.pc)

    async def post_raw(self, sdp: str) -> Exchange:
        """POSTs the offer with this client's own UserSig; no checks."""
        return await post_sdp(self.url(), usersig(self.h, self.app, self.user), sdp)

    async def post(self, sdp: str) -> None:
        ex = await self.post_raw(sdp)
        if ex.status != 201:
            raise MediaHTTPError(f"POST {self.where()}", ex)
        assert ex.location and re.fullmatch(rf"/{self.kind}/v1/session/\d+/\d+/\w+", ex.location), (
            f"{self.where()}: bad Location {ex.location!r}"
        )
        assert ex.headers.get("Content-Type", "").startswith("application/sdp"), ex.headers
        assert "a=ice-lite" in ex.body, f"answer is not ICE-lite:\n{ex.body}"
        assert "a=candidate:" in ex.body, f"answer has no candidate:\n{ex.body}"
        self.location, self.answer = ex.location, ex.body

    async def start(self, *, connect: bool = True) -> "Client":
        await self.post(await self.offer())
        answer = candidates_in_every_section(self.answer)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        if connect:
            await self.wait_connected()
        return self

    async def wait_connected(self, timeout: float = CONNECT_TIMEOUT) -> None:
        def ok() -> bool:
            if self.pc.connectionState == "failed":
                raise AssertionError(f"{self.where()}: connection failed")
            return self.pc.connectionState == "connected"

        await wait_for(ok, timeout, f"{self.where()} to connect (ICE + DTLS)")

    async def delete(self) -> int:
        assert self.location, f"{self.where()} was never accepted"
        self.deleted = True
        return await delete(self.h, self.location)

    async def close(self) -> None:
        await self.pc.close()

    def kill_transport(self) -> None:
        """Goes silent without a word: closes the UDP sockets under ICE, so no DELETE, no DTLS
        close_notify, no RTCP BYE and no more consent checks reach the server."""
        closed = 0
        seen = set()
        for t in self.pc.getTransceivers():
            for dtls in (t.sender.transport, t.receiver.transport):
                if dtls is None or id(dtls) in seen:
                    continue
                seen.add(id(dtls))
                conn = dtls.transport._connection  # RTCIceTransport -> aioice.Connection
                for proto in conn._protocols:
                    if proto.transport is not None:
                        proto.transport.close()
                        closed += 1
        assert closed, "no UDP socket found under the peer connection"


class Publisher(Client):
    kind = "whip"

    def __init__(self, h: Hearth, app: int, user: str, *, rgb: tuple[int, int, int] = (200, 40, 40),
                 fps: int = FPS, hz: float = 440.0, video: MediaStreamTrack | None = None,
                 audio: MediaStreamTrack | None = None, **room):
        super().__init__(h, app, user, **room)
        self.video = video or ColorVideoTrack(rgb, fps=fps)
        self.audio = audio or ToneAudioTrack(hz)
        self.pc.addTransceiver(self.audio, direction="sendonly")
        self.pc.addTransceiver(self.video, direction="sendonly")

    def url(self) -> str:
        return endpoint_url(self.h, "whip", self.app, room=self.room, strroom=self.strroom)


class AudioOnly(Publisher):
    """A publisher with a microphone (a tone, 660 Hz unless told) and no camera."""

    def __init__(self, h, app, user, *, hz: float = 660.0, **room):
        Client.__init__(self, h, app, user, **room)
        self.audio = ToneAudioTrack(hz)
        self.pc.addTransceiver(self.audio, direction="sendonly")



async def publishers(h: Hearth, app: int, room: int, *specs) -> list[Publisher]:
    """Publishers `(user, rgb, hz)` in `room`, started one after the other so that each enters
    before the next (entry order is layout order)."""
    pubs = [Publisher(h, app, user, rgb=rgb, hz=hz, room=room) for user, rgb, hz in specs]
    for p in pubs:
        await p.start()
        await asyncio.sleep(0.3)
    return pubs


@dataclass
class Counts:
    video: int = 0
    audio: int = 0
    size: tuple[int, int] | None = None
    sizes: set = field(default_factory=set)
    rgb: tuple[float, float, float] | None = None
    first_video_at: float | None = None
    # Each decoded video frame: when it came (monotonic s) and its RTP timestamp (90 kHz).
    video_at: list = field(default_factory=list)


class Viewer(Client):
    """Plays a publisher's audio and video and counts the decoded frames; every 5th video frame
    is converted to RGB and the mean of its central region kept."""

    kind = "whep"

    def __init__(self, h: Hearth, app: int, user: str, publisher: str, *, stream: str | None = None,
                 **room):
        super().__init__(h, app, user, **room)
        self.publisher, self.stream = publisher, stream
        self.counts = Counts()
        self.tasks: list[asyncio.Task] = []
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.on("track", self._on_track)

    def url(self) -> str:
        return endpoint_url(self.h, "whep", self.app, room=self.room, strroom=self.strroom,
                            publisher=self.publisher, stream=self.stream)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        c = self.counts
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    c.video += 1
                    c.video_at.append((time.monotonic(), frame.pts))
                    if c.first_video_at is None:
                        c.first_video_at = time.monotonic()
                    c.size = (frame.width, frame.height)
                    c.sizes.add(c.size)
                    if c.video % 5 == 1:
                        img = frame.to_ndarray(format="rgb24")
                        hgt, wid, _ = img.shape
                        centre = img[hgt // 4 : 3 * hgt // 4, wid // 4 : 3 * wid // 4]
                        c.rgb = tuple(float(x) for x in centre.reshape(-1, 3).mean(axis=0))
                else:
                    c.audio += 1
        except MediaStreamError:
            pass

    async def wait_frames(self, video: int, audio: int, timeout: float = 15.0) -> float:
        return await wait_for(
            lambda: self.counts.video >= video and self.counts.audio >= audio,
            timeout,
            f"{self.where()} to decode {video} video and {audio} audio frames "
            f"(has {self.counts.video} video, {self.counts.audio} audio)",
        )

    async def close(self) -> None:
        await super().close()
        for t in self.tasks:
            t.cancel()


class ProgressWatch:
    """Checks, every `period` seconds while running, that a viewer's video and audio frame
    counts grew; records every window in which one did not."""

    def __init__(self, viewer: Viewer, period: float = 1.0):
        self.viewer, self.period = viewer, period
        self.stalls: list[str] = []
        self.windows = 0
        self._task: asyncio.Task | None = None
        self._t0 = time.monotonic()

    def start(self) -> "ProgressWatch":
        self._task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        c = self.viewer.counts
        last = (c.video, c.audio)
        while True:
            await asyncio.sleep(self.period)
            now = (c.video, c.audio)
            self.windows += 1
            if now[0] <= last[0] or now[1] <= last[1]:
                self.stalls.append(
                    f"t={time.monotonic() - self._t0:.1f}s video {last[0]}->{now[0]} audio {last[1]}->{now[1]}"
                )
            last = now

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def check(self) -> None:
        assert self.windows >= 1, "the watch never ran"
        assert not self.stalls, (
            f"{self.viewer.where()} stopped receiving during {len(self.stalls)} of {self.windows} "
            f"windows of {self.period}s: {self.stalls}"
        )


# ------------------------------------------------------------------------------------------
# SDP munging


def only_unsupported_codecs(sdp: str) -> str:
    """The offer with Opus, VP8 and H.264 gone: Opus and H.264 payload types (and the RTX
    types bound to them) are removed; VP8 is renamed VP9. Audio keeps PCMU/PCMA, video VP9."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    # Split into session part and m-sections.
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    for sec in sections:
        if not sec or not sec[0].startswith("m="):
            out += sec
            continue
        names = {}
        apt = {}
        for line in sec:
            m = re.match(r"a=rtpmap:(\d+) ([^/]+)/", line)
            if m:
                names[m.group(1)] = m.group(2).lower()
            m = re.match(r"a=fmtp:(\d+) .*apt=(\d+)", line)
            if m:
                apt[m.group(1)] = m.group(2)
        drop = {pt for pt, n in names.items() if n in ("opus", "h264")}
        drop |= {pt for pt, target in apt.items() if target in drop}
        for line in sec:
            if line.startswith("m="):
                parts = line.split(" ")
                line = " ".join(parts[:3] + [p for p in parts[3:] if p not in drop])
            else:
                m = re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\d+)[ /]", line)
                if m and m.group(2) in drop:
                    continue
                line = line.replace(" VP8/90000", " VP9/90000")
            out.append(line)
    munged = "\r\n".join(out)
    assert not re.search(r"(?i)a=rtpmap:\d+ (opus|vp8|h264)/", munged), munged
    return munged
