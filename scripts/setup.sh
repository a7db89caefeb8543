#!/usr/bin/env bash
# Installs what `hearth serve` needs to run media tasks (recording) on a fresh Debian/Ubuntu
# machine: GStreamer and its plugins, through apt. Hearth itself builds and runs without them;
# media actions then answer FailedOperation saying what is missing.
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
