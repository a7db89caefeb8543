"""An aiortc client of Hearth's WebSocket protocol v1 (known limit: when one server offer adds
several media lines at once — two publishers starting at the same moment — aiortc 1.16 decodes
only some of them; Chromium receives all. Tests let publishers arrive one after the other.)

An aiortc client of Hearth's WebSocket protocol v1 (docs/protocol.md): one socket, a publish
connection (we offer) and a subscribe connection (the server offers), counting what it decodes
per remote user and stream."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import websockets
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from conftest import Hearth
from media import ColorVideoTrack, Counts, ToneAudioTrack, new_pc, usersig, wait_for


def ws_url(h: Hearth) -> str:
    return f"ws://{h.host}/ws/v1"


@dataclass
class Remote:
    """What we decoded from one remote user's stream."""

    counts: Counts = field(default_factory=Counts)


class WsClient:
    def __init__(self, h: Hearth, app: int, user: str, *, room: int = 1, role: str = "anchor",
                 autosubscribe: bool = True, sig: str | None = None):
        self.h, self.app, self.user, self.room, self.role = h, app, user, room, role
        self.autosubscribe = autosubscribe
        self.sig = sig if sig is not None else usersig(h, app, user)
        self.ws = None
        self.session: str | None = None
        self.entered: dict | None = None
        self.messages: list[dict] = []  # everything the server sent, in order
        self.errors: list[dict] = []
        self.pub = None
        self.sub = new_pc()
        self.sub.on("track", self._on_track)
        self.mid_owner: dict[str, tuple[str, str]] = {}  # subscribe mid -> (userid, stream)
        self.remote: dict[tuple[str, str], Remote] = {}
        self.tasks: list[asyncio.Task] = []
        self.closed = asyncio.Event()
        self.offers: asyncio.Queue[str] = asyncio.Queue()
        self.video_track: ColorVideoTrack | None = None

    # --- socket -------------------------------------------------------------------------

    async def connect(self, resume: str | None = None) -> dict:
        self.ws = await websockets.connect(ws_url(self.h), max_size=None)
        self.closed = asyncio.Event()
        enter = {"type": "enter", "v": 1, "sdkappid": self.app, "userid": self.user, "usersig": self.sig,
                 "roomid": self.room, "role": self.role, "autosubscribe": self.autosubscribe}
        if resume:
            enter["resume"] = resume
        await self.send(enter)
        first = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        self.messages.append(first)
        if first["type"] != "entered":
            raise AssertionError(f"{self.user}: enter refused: {first}")
        self.entered, self.session = first, first["session"]
        self.tasks.append(asyncio.ensure_future(self._read()))
        self.tasks.append(asyncio.ensure_future(self._ping()))
        self.tasks.append(asyncio.ensure_future(self._answer_offers()))
        return first

    async def send(self, msg: dict) -> None:
        await self.ws.send(json.dumps(msg))

    async def _answer_offers(self) -> None:
        try:
            while True:
                sdp = await self.offers.get()
                await self.sub.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
                await self.sub.setLocalDescription(await self.sub.createAnswer())
                await self.send({"type": "answer", "sdp": self.sub.localDescription.sdp})
        except Exception:
            pass

    async def _ping(self) -> None:
        try:
            while True:
                await asyncio.sleep(5)
                await self.send({"type": "ping"})
        except Exception:
            pass

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                self.messages.append(m)
                t = m["type"]
                if t == "publish_answer":
                    await self.pub.setRemoteDescription(RTCSessionDescription(m["sdp"], "answer"))
                elif t == "offer":
                    for tr in m["tracks"]:
                        self.mid_owner[tr["mid"]] = (tr["userid"], tr["stream"])
                    # Answered in order by another task, so reading (and recording notices)
                    # never waits for aiortc's negotiation.
                    self.offers.put_nowait(m["sdp"])
                elif t == "error":
                    self.errors.append(m)
        except Exception:
            pass
        finally:
            self.closed.set()

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    # --- media --------------------------------------------------------------------------

    async def publish(self, rgb=(200, 40, 40)) -> None:
        self.pub = new_pc()
        self.video_track = ColorVideoTrack(rgb)
        a = self.pub.addTransceiver(ToneAudioTrack(), direction="sendonly")
        v = self.pub.addTransceiver(self.video_track, direction="sendonly")
        await self.pub.setLocalDescription(await self.pub.createOffer())
        await self.send({"type": "publish", "sdp": self.pub.localDescription.sdp,
                         "tracks": [{"mid": a.mid, "source": "mic"}, {"mid": v.mid, "source": "camera"}]})

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next((t.mid for t in self.sub.getTransceivers() if t.receiver.track is track), None)
        self.tasks.append(asyncio.ensure_future(self._consume(track, mid)))

    async def _consume(self, track: MediaStreamTrack, mid: str | None) -> None:
        await wait_for(lambda: mid in self.mid_owner, 10, f"{self.user}: owner of mid {mid}")
        owner = self.mid_owner[mid]
        c = self.remote.setdefault(owner, Remote()).counts
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    c.video += 1
                    c.size = (frame.width, frame.height)
                    if c.video % 5 == 1:
                        img = frame.to_ndarray(format="rgb24")
                        hgt, wid, _ = img.shape
                        centre = img[hgt // 4: 3 * hgt // 4, wid // 4: 3 * wid // 4]
                        c.rgb = tuple(float(x) for x in centre.reshape(-1, 3).mean(axis=0))
                else:
                    c.audio += 1
        except MediaStreamError:
            pass

    def counts(self, userid: str, stream: str = "main") -> Counts:
        return self.remote.get((userid, stream), Remote()).counts

    async def wait_media(self, userid: str, video: int = 20, audio: int = 20, timeout: float = 20) -> None:
        await wait_for(lambda: self.counts(userid).video >= video and self.counts(userid).audio >= audio,
                       timeout, f"{self.user} to decode {userid}'s audio and video "
                                 f"(has {self.counts(userid)})")

    async def close(self, exit_first: bool = True) -> None:
        if exit_first and self.ws is not None:
            try:
                await self.send({"type": "exit"})
                await asyncio.wait_for(self.closed.wait(), 5)
            except Exception:
                pass
        for t in self.tasks:
            t.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.pub is not None:
            await self.pub.close()
        await self.sub.close()

    async def drop_socket(self) -> None:
        """The network drops the signaling socket; the media connections stay."""
        for t in self.tasks[:3]:
            t.cancel()
        self.tasks = self.tasks[3:]
        self.ws.transport.abort() if hasattr(self.ws, "transport") else await self.ws.close()
