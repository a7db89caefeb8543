#!/usr/bin/env bash
# Runs the server with everything it needs on a fresh Debian/Ubuntu machine: installs GStreamer
# and the speech engine for media tasks (scripts/setup.sh), builds `hearth` and its recording worker `hearth-media`
# (release), and starts `hearth serve` with the arguments given (e.g. --config hearth.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p hearth -p hearth-media
export HEARTH_AI_STT_PYTHON="${HEARTH_AI_STT_PYTHON:-$PWD/.stt-venv/bin/python}"
exec target/release/hearth serve "$@"
