"""A release `hearth serve` for the Python benchmarks: a temporary config with one app and one
credential, started and waited for; `h` is shaped like the e2e suite's Hearth handle, so the
suite's clients (tests/e2e) work against it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from conftest import Cred  # noqa: E402
from media import Client, endpoint_url  # noqa: E402

APP = 1400000001


def build():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "hearth", "-p", "hearth-media"], cwd=REPO,
                   check=True)


@contextmanager
def server(env: dict[str, str] | None = None):
    """Yields (h, work directory); the server is stopped after."""
    work = Path(tempfile.mkdtemp())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = "bench-server-key-0123456789abcdef0123456789ab"
    cred = Cred("AKIDbenchserver0000000000000000000000", "benchserversecret000", (APP,))
    (work / "hearth.toml").write_text(f"""
[server]
http = "127.0.0.1:{port}"
data_dir = "{work / 'data'}"
rate_limits = false
web_dir = "{REPO / 'web'}"
[media]
ports = "55000-55001"
workers = 1
cpu_budget = 8
[[apps]]
sdk_app_id = {APP}
secret_key = "{key}"
[[credentials]]
secret_id = "{cred.secret_id}"
secret_key = "{cred.secret_key}"
apps = [{APP}]
""")
    env = {**os.environ, "HEARTH_LOG": "warn", "HEARTH_AI_STT_PYTHON": sys.executable, **(env or {})}
    log = open(work / "hearth.log", "wb")
    proc = subprocess.Popen([str(REPO / "target/release/hearth"), "serve", "--config", str(work / "hearth.toml")],
                            env=env, stdout=log, stderr=log)
    h = SimpleNamespace(host=f"127.0.0.1:{port}", http_port=port, app_keys={APP: key}, cred1=cred)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield h, work
    finally:
        proc.terminate()
        proc.wait(15)


class Speaker(Client):
    """A WHIP publisher of one audio track."""

    kind = "whip"

    def __init__(self, h, user, room, audio):
        super().__init__(h, APP, user, room=room)
        self.pc.addTransceiver(audio, direction="sendonly")

    def url(self) -> str:
        return endpoint_url(self.h, "whip", self.app, room=self.room)


class Timed(list):
    """A message list that stamps each message with its arrival time (`_at`, wall clock)."""

    def append(self, m):
        if isinstance(m, dict):
            m["_at"] = time.time()
        super().append(m)
