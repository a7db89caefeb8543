"""What the recording tests need around Hearth: a real S3-compatible server (s3s-fs from
crates.io, on loopback, objects are plain files under its root), the recording API through the
official SDK, and ffprobe/ffmpeg as the oracle for what was recorded (streams, durations, the
colour in a layout cell, the frequency of a tone, the time of a flash and a beep)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.trtc.v20190722 import models

S3_ACCESS_KEY = "hearthtestak"
S3_SECRET_KEY = "hearthtestsecret0123456789"
BUCKET = "recordings"


def s3s_fs_bin() -> str:
    found = shutil.which("s3s-fs") or str(Path.home() / ".cargo" / "bin" / "s3s-fs")
    if not Path(found).exists():
        raise RuntimeError("s3s-fs is not installed: `cargo install s3s-fs@0.14.1 --features binary --locked`")
    return found


@dataclass
class S3Server:
    """s3s-fs on 127.0.0.1: start, stop and start again on the same port (an outage)."""

    root: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.root / BUCKET).mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [s3s_fs_bin(), "--host", "127.0.0.1", "--port", str(self.port),
             "--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY, str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("s3s-fs did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def objects(self, prefix: str = "") -> dict[str, Path]:
        """Keys under `prefix` in the bucket (complete files only: s3s-fs writes to a temp name
        first)."""
        base = self.root / BUCKET
        out = {}
        for p in base.rglob("*"):
            if p.is_file():
                key = str(p.relative_to(base))
                if key.startswith(prefix) and not key.startswith(".") and "/." not in key:
                    out[key] = p
        return out


def cloud_storage(s3: S3Server, prefix: list[str], *, secret: str = S3_SECRET_KEY,
                  bucket: str = BUCKET) -> dict:
    return {"CloudStorage": {"Vendor": 1, "Region": "us-east-1", "Bucket": bucket,
                             "AccessKey": S3_ACCESS_KEY, "SecretKey": secret,
                             "FileNamePrefix": prefix, "EndpointUrl": s3.endpoint}}


def call(client, action: str, params: dict) -> dict:
    """An action through the official SDK; returns the response as a dict."""
    req = getattr(models, f"{action}Request")()
    req.from_json_string(json.dumps(params))
    return json.loads(getattr(client, action)(req).to_json_string())


def error_of(client, action: str, params: dict) -> str:
    try:
        call(client, action, params)
    except TencentCloudSDKException as e:
        return e.get_code()
    raise AssertionError(f"{action} succeeded with {params}")


# ------------------------------------------------------------------------------------------
# The oracle


def probe(path: Path | str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_type,codec_name,profile,width,height,r_frame_rate,avg_frame_rate,sample_rate,channels",
         "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, f"ffprobe {path}: {out.stderr}"
    return json.loads(out.stdout)


def streams(info: dict, kind: str) -> list[dict]:
    return [s for s in info.get("streams", []) if s.get("codec_type") == kind]


def frame_at(path: Path | str, t: float, width: int, height: int) -> np.ndarray:
    """The decoded picture at `t` seconds as an RGB array."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{t:.3f}", "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, timeout=60,
    )
    assert out.returncode == 0 and len(out.stdout) >= width * height * 3, f"ffmpeg frame at {t}: {out.stderr}"
    return np.frombuffer(out.stdout[: width * height * 3], dtype=np.uint8).reshape(height, width, 3)


def cell_rgb(img: np.ndarray, x: int, y: int, w: int, h: int) -> tuple[float, float, float]:
    """Mean colour of the middle half of a cell (its edges may blend with the neighbours)."""
    c = img[y + h // 4: y + 3 * h // 4, x + w // 4: x + 3 * w // 4]
    return tuple(float(v) for v in c.reshape(-1, 3).mean(axis=0))


def near(rgb, want, tol: float = 45.0) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(rgb, want))


def audio_pcm(path: Path | str, rate: int = 16000) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate),
         "-f", "s16le", "-"],
        capture_output=True, timeout=60,
    )
    assert out.returncode == 0, f"ffmpeg audio: {out.stderr}"
    return np.frombuffer(out.stdout, dtype=np.int16).astype(np.float64)


def tone_power(pcm: np.ndarray, hz: float, rate: int = 16000) -> float:
    """Share of the signal's power within ±15 Hz of `hz`."""
    if len(pcm) < rate // 2:
        return 0.0
    spec = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm)))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    band = (freqs > hz - 15) & (freqs < hz + 15)
    return float(spec[band].sum() / max(spec.sum(), 1e-9))
