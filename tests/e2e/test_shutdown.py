"""Graceful shutdown: on SIGTERM the server stops accepting, finishes the request in flight,
and exits 0 (spec of `hearth serve`). Uses its own server so the shared one is untouched."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
import requests

import tc3
from conftest import APP1, SHUTDOWN_TIMEOUT, start_hearth


def test_sigterm_finishes_the_request_in_flight(tmp_path):
    h = start_hearth(tmp_path, "shutdown", rate_limits=True)
    try:
        t = int(time.time())
        body = json.dumps({"SdkAppId": APP1, "StartTime": t - 3600, "EndTime": t}).encode()
        hdrs = tc3.signed_headers(
            h.cred1.secret_id, h.cred1.secret_key, action="DescribeRoomInfo", host=h.host, payload=body
        )
        head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        s = socket.create_connection(("127.0.0.1", h.http_port), timeout=10)
        s.sendall(head.encode() + body[:10])  # the request is in flight: its body is not complete
        time.sleep(0.2)
        h.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # new connections are refused once shutdown began
            try:
                requests.get(f"http://{h.host}/healthz", timeout=1)
            except requests.ConnectionError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("still accepting new connections 5 s after SIGTERM")
        assert h.alive(), "exited before finishing the request in flight"
        s.sendall(body[10:])
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            raw += chunk
        s.close()
        status, _, rest = raw.partition(b"\r\n")
        assert status == b"HTTP/1.1 200 OK", raw
        payload = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert payload["Response"]["Total"] == 0, payload
        rc = h.proc.wait(timeout=SHUTDOWN_TIMEOUT)
        assert rc == 0, h.stderr()
        assert "panicked" not in h.stderr()
    finally:
        if h.alive():
            h.proc.kill()
            h.proc.wait()
