#!/usr/bin/env bash
# Telemetry store benchmark: builds bench/telemetry-load in release and runs it on a temporary
# SQLite file (see bench/README.md, "Telemetry store"). Prints the machine, the command and the
# markdown tables; extra arguments go to telemetry-load (e.g. --days 14 --users 1000
# --seconds-between-samples 300 --downstream-peers 0).
#
#   bench/telemetry.sh                         # --days 0.1 --users 200 (full density), 200 queries
#   SKIP_BUILD=1 bench/telemetry.sh --days 1 --users 1000 --seconds-between-samples 60
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -p telemetry-load
fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--days 0.1 --users 200 --queries 200)
echo "Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Command: target/release/telemetry-load ${args[*]}"
echo
target/release/telemetry-load "${args[@]}"
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
