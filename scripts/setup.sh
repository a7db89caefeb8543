#!/usr/bin/env bash
# Installs what `hearth serve` needs to run media tasks on a fresh Debian/Ubuntu machine:
# GStreamer and its plugins through apt, and the offline speech engine of transcription
# (PocketSphinx 5.1.1 from PyPI, whose wheel carries its en-us model) in `.stt-venv`. Hearth
# itself builds and runs without them; media actions then answer FailedOperation saying what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for p in $(scripts/media-packages.sh); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The speech engine: a venv of its own, so the server's Python stays untouched.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
fi
[ -x .stt-venv/bin/python ] || python3 -m venv .stt-venv
.stt-venv/bin/python -c 'import pocketsphinx' 2>/dev/null \
  || .stt-venv/bin/pip install -q --disable-pip-version-check pocketsphinx==5.1.1
