"""End-to-end fixtures: a real `hearth serve` process on free ports, talked to over HTTP(S).

Nothing is built here: the binary is `target/debug/hearth` (or `$HEARTH_BIN`). Each server gets
a temp dir with its config, data dir, a self-signed cert (made with the `openssl` CLI) and its
stderr log. On teardown it is sent SIGTERM and must exit 0 within 15 s without a panic.

Every server also gets a `[media]` section: loopback, `MEDIA_WORKERS` workers on a range of free
UDP ports picked at random in 40000-60000 (checked by binding them, never handed out twice in a
run), so several servers can run at once.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import trtc_client

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parent.parent
HEARTH_BIN = Path(os.environ.get("HEARTH_BIN", REPO / "target" / "debug" / "hearth"))

APP1 = 1400000001
APP2 = 1400000002
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 15.0
# Media workers per server (worker i binds UDP first+i); two, so rooms spread over both.
MEDIA_WORKERS = 2


@dataclasses.dataclass(frozen=True)
class Cred:
    secret_id: str
    secret_key: str
    apps: tuple[int, ...]


@dataclasses.dataclass
class Hearth:
    """A running server and what a client needs to reach it."""

    name: str
    dir: Path
    config: Path
    cert: Path
    http_port: int
    https_port: int
    app_keys: dict[int, str]
    cred1: Cred  # may act on APP1 only
    cred2: Cred  # may act on APP2 only
    proc: subprocess.Popen
    stderr_path: Path
    media_ports: tuple[int, int] = (0, 0)  # first, last UDP port of the media workers
    cred_all: Cred | None = None  # may act on both apps

    @property
    def host(self) -> str:
        """What clients put in Host and sign (TC3 and v1 both sign the Host)."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}/"

    @property
    def https_host(self) -> str:
        return f"127.0.0.1:{self.https_port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_claimed_udp: set[int] = set()


def free_udp_range(count: int) -> tuple[int, int]:
    """`count` consecutive UDP ports on 127.0.0.1, free right now (each bound and released) and
    not given to another server of this run. Returns (first, last)."""
    rng = random.SystemRandom()
    for _ in range(500):
        first = rng.randint(40000, 60000 - count)
        ports = range(first, first + count)
        if _claimed_udp.intersection(ports):
            continue
        socks = []
        try:
            for port in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        _claimed_udp.update(ports)
        return first, first + count - 1
    raise RuntimeError(f"no {count} consecutive free UDP ports in 40000-60000")


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def callbacks_toml(app_callbacks: dict[str, str]) -> list[str]:
    """An app's `[apps.callbacks]` table: `key` and a URL per group (`room`, `media`, …)."""
    return ["[apps.callbacks]"] + [f'{k} = "{v}"' for k, v in app_callbacks.items()] + [""]


def write_config(
    directory: Path, *, rate_limits: bool, media_ports: tuple[int, int],
    callbacks: dict[int, dict[str, str]] | None = None, settings: dict[str, dict] | None = None,
    http_ip: str = "127.0.0.1",
) -> tuple[Path, dict, Cred, Cred, Cred, Path, int, int]:
    cert, key = make_cert(directory)
    http_port, https_port = free_port(), free_port()
    while https_port == http_port:
        https_port = free_port()
    app_keys = {APP1: secrets.token_hex(32), APP2: secrets.token_hex(32)}
    cred1 = Cred("AKIDe2eAppOne" + secrets.token_hex(12), secrets.token_hex(16), (APP1,))
    cred2 = Cred("AKIDe2eAppTwo" + secrets.token_hex(12), secrets.token_hex(16), (APP2,))
    cred_all = Cred("AKIDe2eAppAll" + secrets.token_hex(12), secrets.token_hex(16), (APP1, APP2))
    lines = [
        "[server]",
        f'http = "{http_ip}:{http_port}"',
        f'https = "127.0.0.1:{https_port}"',
        f'tls_cert = "{cert}"',
        f'tls_key = "{key}"',
        f'data_dir = "{directory / "data"}"',
        f"rate_limits = {'true' if rate_limits else 'false'}",
        "",
        "[media]",
        'ip = "127.0.0.1"',
        f'ports = "{media_ports[0]}-{media_ports[1]}"',
        f"workers = {MEDIA_WORKERS}",
        "",
    ]
    for section, values in (settings or {}).items():
        lines += [f"[{section}]"] + [f"{k} = {v}" for k, v in values.items()] + [""]
    for app, k in app_keys.items():
        lines += ["[[apps]]", f"sdk_app_id = {app}", f'secret_key = "{k}"', 'admins = ["administrator"]', ""]
        if callbacks and app in callbacks:
            lines += callbacks_toml(callbacks[app])
    for c in (cred1, cred2, cred_all):
        lines += [
            "[[credentials]]",
            f'secret_id = "{c.secret_id}"',
            f'secret_key = "{c.secret_key}"',
            f"apps = [{', '.join(map(str, c.apps))}]",
            "",
        ]
    config = directory / "hearth.toml"
    config.write_text("\n".join(lines))
    return config, app_keys, cred1, cred2, cred_all, cert, http_port, https_port


def hearth_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without HEARTH_* overrides, so only our config file (and `extra`) count."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env["HEARTH_LOG"] = "info"
    # The speech engine runs with the venv's Python (pocketsphinx is in requirements.txt).
    env["HEARTH_AI_STT_PYTHON"] = sys.executable
    env.update(extra or {})
    return env


def start_hearth(directory: Path, name: str, *, rate_limits: bool,
                 env: dict[str, str] | None = None, callbacks: dict[int, dict[str, str]] | None = None,
                 settings: dict[str, dict] | None = None, http_ip: str = "127.0.0.1") -> Hearth:
    """`callbacks`: per app, its `[apps.callbacks]`; `settings`: more sections (`{"callbacks":
    {"max_backoff_secs": 2}}`); `http_ip`: where the HTTP API listens (tests reach it on
    loopback either way)."""
    if not HEARTH_BIN.is_file():
        pytest.exit(f"{HEARTH_BIN} does not exist: run `cargo build -p hearth` first (or set HEARTH_BIN)", 2)
    # The media ports were free when picked; another process may take one before the server
    # binds it, so a start that fails on a port in use is retried on a fresh range.
    for attempt in range(3):
        media_ports = free_udp_range(MEDIA_WORKERS)
        config, app_keys, cred1, cred2, cred_all, cert, http_port, https_port = write_config(
            directory, rate_limits=rate_limits, media_ports=media_ports, callbacks=callbacks,
            settings=settings, http_ip=http_ip,
        )
        stderr_path = directory / "stderr.log"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [str(HEARTH_BIN), "serve", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=hearth_env(env),
            )
        h = Hearth(
            name, directory, config, cert, http_port, https_port, app_keys, cred1, cred2, proc,
            stderr_path, media_ports, cred_all,
        )
        if wait_healthy(h, last_attempt=attempt == 2):
            return h
    raise AssertionError("unreachable")


def wait_healthy(h: Hearth, *, last_attempt: bool) -> bool:
    """True once /healthz answers ok; False when the server exited because a port was taken
    (and another attempt is allowed); fails the test otherwise."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if not h.alive():
            log = h.stderr()
            if not last_attempt and ("in use" in log or "os error 98" in log):
                return False
            pytest.fail(f"hearth ({h.name}) exited with {h.proc.returncode} at start:\n{log}")
        try:
            r = requests.get(f"http://{h.host}/healthz", timeout=1)
            if r.status_code == 200 and r.json().get("status") == "ok":
                return True
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            h.proc.kill()
            pytest.fail(f"hearth ({h.name}) not healthy within {STARTUP_TIMEOUT}s:\n{h.stderr()}")
        time.sleep(0.05)


def stop_hearth(h: Hearth) -> None:
    assert h.alive(), f"hearth ({h.name}) died during the tests:\n{h.stderr()}"
    h.proc.send_signal(signal.SIGTERM)
    try:
        rc = h.proc.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        h.proc.kill()
        h.proc.wait()
        pytest.fail(f"hearth ({h.name}) did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM:\n{h.stderr()}")
    log = h.stderr()
    assert rc == 0, f"hearth ({h.name}) exited {rc} after SIGTERM:\n{log}"
    assert "panicked" not in log, f"hearth ({h.name}) panicked:\n{log}"


@pytest.fixture(scope="session")
def hearth(tmp_path_factory) -> Hearth:
    """The main server: rate limits off, so the many calls of the suite are never throttled."""
    h = start_hearth(tmp_path_factory.mktemp("hearth"), "main", rate_limits=False)
    yield h
    stop_hearth(h)


@pytest.fixture(scope="session")
def hearth_limited(tmp_path_factory) -> Hearth:
    """A second server with the default, rate-limited configuration."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-limited"), "limited", rate_limits=True)
    yield h
    stop_hearth(h)


@pytest.fixture(scope="session")
def hearth_media(tmp_path_factory) -> Hearth:
    """A server for the media tests (test_media.py) alone: their calls land in its store, not
    in the one the API tests expect empty, and its /healthz media counts are theirs only."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-media"), "media", rate_limits=False)
    yield h
    stop_hearth(h)


@pytest.fixture(scope="session")
def hearth_calls(tmp_path_factory) -> Hearth:
    """A server for the calling tests: a 2 s reconnect grace (set through the environment) so
    a dropped party interrupts a call quickly."""
    h = start_hearth(tmp_path_factory.mktemp("hearth-calls"), "calls", rate_limits=False,
                     env={"HEARTH_CALLS_RECONNECT_GRACE_SECS": "2"})
    yield h
    stop_hearth(h)


def sdk_client(
    h: Hearth,
    cred: Cred | None = None,
    *,
    secret_id: str | None = None,
    secret_key: str | None = None,
    sign_method: str | None = None,
    req_method: str = "POST",
) -> trtc_client.TrtcClient:
    """An official-SDK TRTC client pointed at `h` over plain HTTP.

    sign_method: None (TC3-HMAC-SHA256), "HmacSHA1" or "HmacSHA256" (v1).
    """
    cred = cred or h.cred1
    http = HttpProfile(protocol="http", endpoint=h.host, reqMethod=req_method, reqTimeout=30)
    profile = ClientProfile(signMethod=sign_method, httpProfile=http)
    return trtc_client.TrtcClient(
        credential.Credential(secret_id or cred.secret_id, secret_key or cred.secret_key),
        "ap-guangzhou",
        profile,
    )


@pytest.fixture(scope="session")
def node_bin() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (needed for the npm tls-sig-api-v2 interop)")
    if not (E2E_DIR / "node_modules" / "tls-sig-api-v2").is_dir():
        pytest.fail("tests/e2e/node_modules is missing: run `npm ci --prefix tests/e2e`")
    return node


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """PNG images served over HTTP on loopback (allowed by the servers' outbound rules): green and
    yellow 64×64, a half-transparent white one, and a file that is not an image."""
    import http.server
    import threading

    d = tmp_path_factory.mktemp("images")
    for name, colour in (("green", "0x1EC81E"), ("yellow", "0xE6E61E")):
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=c={colour}:s=64x64",
                        "-frames:v", "1", str(d / f"{name}.png")], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=white@0.5:s=64x64,format=rgba",
                    "-frames:v", "1", str(d / "halfwhite.png")], check=True)
    (d / "not-an-image.png").write_text("hello")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(d), **kw)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


