"""What the relay tests need around Hearth: nginx with Debian's RTMP module as the CDN (started
on loopback from a temp prefix, recording every publish to FLV, `/stat` telling who
publishes), ffprobe/ffmpeg to read the live streams, and an H.264 SEI reader for the FLV files
nginx recorded."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Nginx:
    """nginx-rtmp on 127.0.0.1: application `live` takes publishes and records each to
    `rec/<key>.flv`; application `refuse` denies every publish."""

    root: Path
    rtmp_port: int = 0
    http_port: int = 0
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        if not RTMP_MODULE.exists() or not shutil.which("nginx"):
            raise RuntimeError("nginx with the RTMP module is missing: apt-get install nginx-light libnginx-mod-rtmp")
        self.rtmp_port, self.http_port = _free_port(), _free_port()
        rec = self.root / "rec"
        rec.mkdir(parents=True, exist_ok=True)
        rec.chmod(0o777)
        for d in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.root / d).mkdir(exist_ok=True)
        conf = f"""
load_module {RTMP_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{self.rtmp_port};
    chunk_size 4096;
    application live {{
      live on;
      record all;
      record_path {rec};
      record_unique off;
      allow publish 127.0.0.1;
      deny publish all;
      allow play all;
    }}
    application refuse {{
      live on;
      deny publish all;
    }}
  }}
}}
http {{
  access_log off;
  client_body_temp_path {self.root}/client;
  proxy_temp_path {self.root}/proxy;
  fastcgi_temp_path {self.root}/fastcgi;
  uwsgi_temp_path {self.root}/uwsgi;
  scgi_temp_path {self.root}/scgi;
  server {{
    listen 127.0.0.1:{self.http_port};
    location /stat {{ rtmp_stat all; }}
  }}
}}
"""
        (self.root / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(["nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.rtmp_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {(self.root / 'error.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def url(self, key: str, app: str = "live") -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/{app}/{key}"

    def publishing(self) -> dict[str, float]:
        """Stream keys being published now → seconds since their publish began."""
        xml = requests.get(f"http://127.0.0.1:{self.http_port}/stat", timeout=5).text
        out = {}
        for s in ET.fromstring(xml).iter("stream"):
            if s.find("publishing") is not None:
                out[s.findtext("name")] = int(s.findtext("time") or 0) / 1000.0
        return out

    def recorded(self, key: str) -> Path:
        return self.root / "rec" / f"{key}.flv"


def probe_live(url: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-rw_timeout", "8000000", "-show_streams", "-show_format", "-of", "json", url],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def live_frame(url: str, width: int, height: int, skip: float = 0.0) -> np.ndarray:
    """One decoded picture of a live RTMP stream (after `skip` seconds of it)."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-rw_timeout", "8000000", "-i", url, "-ss", str(skip), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-"],
        capture_output=True, timeout=30)
    assert out.returncode == 0 and len(out.stdout) == width * height * 3, out.stderr.decode()[-2000:]
    return np.frombuffer(out.stdout, np.uint8).reshape(height, width, 3)


def flv_h264(path: Path) -> list[tuple[int, bool, bytes]]:
    """The H.264 access units of an FLV file: (ms, keyframe, AVCC payload)."""
    data = path.read_bytes()
    assert data[:3] == b"FLV", path
    pos = struct.unpack(">I", data[5:9])[0] + 4
    out = []
    while pos + 11 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11:pos + 11 + size]
        if kind == 9 and len(body) > 5 and body[0] & 0x0F == 7 and body[1] == 1:
            out.append((ts, body[0] >> 4 == 1, body[5:]))
        pos += 11 + size + 4
    return out


def nal_types(au: bytes) -> list[int]:
    """The NAL unit types of an AVCC access unit (4-byte lengths), in order."""
    types = []
    i = 0
    while i + 4 < len(au):
        n = int.from_bytes(au[i:i + 4], "big")
        types.append(au[i + 4] & 0x1F)
        i += 4 + n
    return types


def sei_messages(au: bytes) -> list[tuple[int, bytes]]:
    """The SEI messages (payload type, payload) in an AVCC access unit (4-byte lengths)."""
    found = []
    i = 0
    while i + 4 <= len(au):
        n = int.from_bytes(au[i:i + 4], "big")
        nal = au[i + 4:i + 4 + n]
        i += 4 + n
        if not nal or nal[0] & 0x1F != 6:
            continue
        rbsp = bytearray()
        zeros = 0
        for b in nal[1:]:
            if zeros >= 2 and b == 3:
                zeros = 0
                continue
            zeros = zeros + 1 if b == 0 else 0
            rbsp.append(b)
        j = 0
        while j < len(rbsp) and rbsp[j] != 0x80:
            pt = 0
            while rbsp[j] == 0xFF:
                pt += 255
                j += 1
            pt += rbsp[j]
            j += 1
            size = 0
            while rbsp[j] == 0xFF:
                size += 255
                j += 1
            size += rbsp[j]
            j += 1
            found.append((pt, bytes(rbsp[j:j + size])))
            j += size
    return found
