"""The official TencentCloud CLI (`tccli`, international edition) against Hearth over HTTPS.

tccli passes `verify=certifi.where()` to requests, so REQUESTS_CA_BUNDLE and SSL_CERT_FILE are
ignored (checked below): the way a user makes it trust a self-signed server is to add the cert to
certifi's CA bundle. The `trusted` fixture does that for the duration of the module, between
marker lines, and removes it again afterwards (a block left by a killed run is replaced).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import certifi
import pytest

from conftest import APP1, APP2, Hearth

TCCLI = Path(sys.executable).parent / "tccli"
BEGIN = "# --- hearth e2e self-signed cert: BEGIN (temporary, removed after the tests) ---\n"
END = "# --- hearth e2e self-signed cert: END ---\n"


def _strip_block(text: str) -> str:
    while BEGIN in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + tail
    return text


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    if not TCCLI.is_file():
        pytest.fail(f"{TCCLI} is missing: pip install -r tests/e2e/requirements.txt")
    return tmp_path_factory.mktemp("tccli-home")


def run_tccli(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TENCENTCLOUD_")}
    base.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost")
    base.update(env or {})
    return subprocess.run([str(TCCLI), *args], env=base, capture_output=True, text=True, timeout=60)


def room_args(app: int = APP1) -> list[str]:
    t = int(time.time())
    return ["--SdkAppId", str(app), "--StartTime", str(t - 3600), "--EndTime", str(t)]


@pytest.fixture(scope="module")
def configured(hearth: Hearth, home: Path) -> Path:
    r = run_tccli(
        home,
        "configure", "set",
        "secretId", hearth.cred1.secret_id,
        "secretKey", hearth.cred1.secret_key,
        "region", "ap-guangzhou",
    )
    assert r.returncode == 0, r.stderr
    cred = json.loads((home / ".tccli" / "default.credential").read_text())
    assert cred["secretId"] == hearth.cred1.secret_id
    return home


def test_untrusted_self_signed_cert_is_refused(hearth, configured):
    """Before the cert is trusted, tccli refuses the server; the env variables do not help."""
    r = run_tccli(
        configured,
        "trtc", "DescribeRoomInfo", *room_args(),
        "--endpoint", f"https://{hearth.https_host}",
        env={"REQUESTS_CA_BUNDLE": str(hearth.cert), "SSL_CERT_FILE": str(hearth.cert)},
    )
    assert r.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr


@pytest.fixture(scope="module")
def trusted(hearth: Hearth, configured: Path):
    bundle = Path(certifi.where())
    original = _strip_block(bundle.read_text())
    bundle.write_text(original + ("" if original.endswith("\n") else "\n") + BEGIN + hearth.cert.read_text() + END)
    try:
        yield configured
    finally:
        bundle.write_text(_strip_block(bundle.read_text()))
    assert BEGIN not in bundle.read_text()


@pytest.mark.parametrize("scheme", ["https://", ""], ids=["https-url", "host-port"])
def test_describe_room_info(hearth, trusted, scheme):
    r = run_tccli(trusted, "trtc", "DescribeRoomInfo", *room_args(), "--endpoint", f"{scheme}{hearth.https_host}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["RoomList"] == []
    assert out["Total"] == 0
    assert out["RequestId"]


def test_localhost_name_matches_the_cert(hearth, trusted):
    r = run_tccli(
        trusted, "trtc", "DescribeRoomInfo", *room_args(), "--endpoint", f"https://localhost:{hearth.https_port}"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["RoomList"] == []


def test_credentials_from_the_environment(hearth, trusted):
    """TENCENTCLOUD_SECRET_ID/KEY override the stored profile: the second key, on its own app."""
    env = {"TENCENTCLOUD_SECRET_ID": hearth.cred2.secret_id, "TENCENTCLOUD_SECRET_KEY": hearth.cred2.secret_key}
    r = run_tccli(
        trusted, "trtc", "DescribeRoomInfo", *room_args(APP2), "--endpoint", f"https://{hearth.https_host}", env=env
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Total"] == 0
    r = run_tccli(
        trusted, "trtc", "DescribeRoomInfo", *room_args(APP1), "--endpoint", f"https://{hearth.https_host}", env=env
    )
    assert r.returncode != 0
    assert "UnauthorizedOperation.SdkAppId" in r.stderr, r.stderr


def test_wrong_secret_key(hearth, trusted):
    """tccli prints the SDK exception on stderr and exits 255."""
    r = run_tccli(
        trusted,
        "trtc", "DescribeRoomInfo", *room_args(),
        "--endpoint", f"https://{hearth.https_host}",
        "--secretId", hearth.cred1.secret_id,
        "--secretKey", "definitely-not-the-key",
    )
    assert r.returncode == 255, (r.returncode, r.stdout, r.stderr)
    assert "code:AuthFailure.SignatureFailure" in r.stderr, r.stderr
    assert "requestId:" in r.stderr and "requestId:None" not in r.stderr, r.stderr
    assert r.stdout.strip() == ""


def test_dismiss_room_business_error(hearth, trusted):
    r = run_tccli(
        trusted, "trtc", "DismissRoomByStrRoomId", "--SdkAppId", str(APP1), "--RoomId", "nobody-here",
        "--endpoint", f"https://{hearth.https_host}",
    )
    assert r.returncode == 255
    assert "code:FailedOperation.RoomNotExist" in r.stderr, r.stderr

