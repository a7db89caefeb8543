"""A calling socket of Hearth's WebSocket protocol (docs/protocol.md, Calls): log in, place and
answer calls, and wait for what the server tells us. Media happens in the call's room with a
`WsClient` (ws_client.py)."""

from __future__ import annotations

import asyncio
import json
import time

import requests
import websockets

from conftest import Hearth
from media import usersig
from ws_client import ws_url

ADMIN = "administrator"


class CallLine:
    def __init__(self, h: Hearth, app: int, user: str, *, sig: str | None = None):
        self.h, self.app, self.user = h, app, user
        self.sig = sig if sig is not None else usersig(h, app, user)
        self.ws = None
        self.messages: list[dict] = []
        self.seen = 0  # messages already consumed by next()
        self.arrived = asyncio.Event()
        self.closed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def login(self) -> dict:
        self.ws = await websockets.connect(ws_url(self.h), max_size=None)
        await self.send({"type": "login", "v": 1, "sdkappid": self.app, "userid": self.user,
                         "usersig": self.sig})
        first = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        if first["type"] != "logged_in":
            raise AssertionError(f"{self.user}: login refused: {first}")
        self.tasks.append(asyncio.ensure_future(self._read()))
        self.tasks.append(asyncio.ensure_future(self._ping()))
        return first

    async def send(self, msg: dict) -> None:
        await self.ws.send(json.dumps(msg))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
                self.arrived.set()
        except Exception:
            pass
        finally:
            self.closed.set()
            self.arrived.set()

    async def _ping(self) -> None:
        try:
            while True:
                await asyncio.sleep(5)
                await self.send({"type": "ping"})
        except Exception:
            pass

    async def next(self, type_: str, timeout: float = 10) -> dict:
        """The next message of this type not consumed yet (earlier others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            while self.seen < len(self.messages):
                m = self.messages[self.seen]
                self.seen += 1
                if m["type"] == type_:
                    return m
            left = deadline - time.monotonic()
            if left <= 0 or self.closed.is_set() and self.seen >= len(self.messages):
                raise AssertionError(f"{self.user}: no {type_} within {timeout}s; got {self.messages}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    async def call(self, callees: list[str], media: str = "video", *, group: bool = False,
                   **extra) -> dict:
        await self.send({"type": "call", "callees": callees, "media": media, "group": group, **extra})
        return await self.next("call_placed")

    async def act(self, type_: str, callid: str) -> None:
        await self.send({"type": type_, "callid": callid})

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.ws is not None:
            await self.ws.close()

    def drop(self) -> None:
        """The network drops the socket (no close handshake, no logout)."""
        for t in self.tasks:
            t.cancel()
        self.ws.transport.abort()


def record_url(h: Hearth, *, app: int, identifier: str | None = ADMIN, sig: str | None = None,
               random: str | None = "12345", contenttype: str | None = "json",
               path: str = "v4/call_record_http_srv/get_record_by_callid") -> str:
    params = {"sdkappid": str(app), "identifier": identifier,
              "usersig": sig if sig is not None else (usersig(h, app, identifier) if identifier else None),
              "random": random, "contenttype": contenttype}
    query = "&".join(f"{k}={requests.utils.quote(v)}" for k, v in params.items() if v is not None)
    return f"http://{h.host}/{path}?{query}"


def get_record(h: Hearth, app: int, call_id: str, **kw) -> dict:
    """POSTs to the call-record API; returns the parsed IM envelope (HTTP 200 always)."""
    r = requests.post(record_url(h, app=app, **kw), json={"CallId": call_id}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def record_of(h: Hearth, app: int, call_id: str) -> dict:
    body = get_record(h, app, call_id)
    assert body["ErrorCode"] == 0 and body["ActionStatus"] == "OK", body
    assert body["ErrorInfo"] == ""
    assert body["RequestId"].startswith("Id-")
    return body["Response"]["CallRecord"]


async def wait_record(h: Hearth, app: int, call_id: str, result: str, timeout: float = 10) -> dict:
    """The record once it shows `result` (it is written before anyone hears the call ended, so
    this is normally immediate)."""
    deadline = time.monotonic() + timeout
    while True:
        rec = await asyncio.to_thread(record_of, h, app, call_id)
        if rec["CallResult"] == result or time.monotonic() > deadline:
            assert rec["CallResult"] == result, rec
            return rec
        await asyncio.sleep(0.2)
