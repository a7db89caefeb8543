"""Synthetic speech for the speech tests and benchmarks: Debian's espeak-ng or flite saying a
text into a WAV file."""

from __future__ import annotations

import subprocess
from pathlib import Path


def synthesize(path: Path, text: str, voice: str = "espeak") -> Path:
    """`text` spoken by espeak-ng (en-us, 140 words a minute) or flite (slt) into `path`."""
    if voice == "flite":
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(path)], check=True)
    else:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), text], check=True)
    return path
