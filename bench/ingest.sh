#!/usr/bin/env bash
# CPU of a stream ingest's worker (hearth-media) on this machine: a 1280x720 30 fps clip made by
# ffmpeg (H.264 + AAC, MP4), served over HTTP on loopback and ingested into a room with
# StartStreamIngest (RepeatNum -1): once as High profile (decoded, then VP8 in a full and a
# small simulcast layer) and once as Baseline (the full layer passed through, only the small
# layer encoded with x264). Nobody watches: the robot publishes to the SFU either way. Not a
# test: prints a markdown table.
#
#   bench/ingest.sh                      # DURATION=20, WARMUP=5
#
# Needs what scripts/test.sh installs (GStreamer, ffmpeg, the Python venv with the SDK).
# SKIP_BUILD=1 reuses target/release. PIN=1 (default) pins hearth and its workers to CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-20}"
CLIP_SECS="${CLIP_SECS:-20}"
WARMUP="${WARMUP:-5}"
PIN="${PIN:-1}"
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run scripts/test.sh once first (it makes .venv)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p hearth -p hearth-media
fi
WORK="$(mktemp -d)"
trap 'rc=$?; [ $rc = 0 ] || tail -n 5 "$WORK"/*.log >&2; kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
for profile in high baseline; do
  ffmpeg -v error -f lavfi -i testsrc2=s=1280x720:r=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t "$CLIP_SECS" -c:v libx264 -profile:v "$profile" -preset veryfast -b:v 2500k -g 60 -pix_fmt yuv420p \
    -c:a aac -b:a 128k -movflags +faststart "$WORK/$profile.mp4"
done
APP=1400000001
APP_KEY="bench-ingest-key-0123456789abcdef0123456789abc"
SID="AKIDbenchingest00000000000000000000000"
SKEY="benchingestsecret"
CPU0=()
if [ "$PIN" = 1 ]; then CPU0=(taskset -c 0); fi
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
FILES_PORT=$(free_port)
(cd "$WORK" && exec python3 -m http.server "$FILES_PORT" --bind 127.0.0.1) > "$WORK/files.log" 2>&1 &

run_case() { # profile what
  local profile=$1 what=$2 port
  port=$(free_port)
  rm -rf "$WORK/data"; cat > "$WORK/hearth.toml" <<CONF
[server]
http = "127.0.0.1:$port"
data_dir = "$WORK/data"
rate_limits = false
[media]
ports = "54000-54001"
workers = 1
cpu_budget = 8
[outbound]
allow = ["127.0.0.0/8"]
[[apps]]
sdk_app_id = $APP
secret_key = "$APP_KEY"
[[credentials]]
secret_id = "$SID"
secret_key = "$SKEY"
apps = [$APP]
CONF
  HEARTH_LOG="${HEARTH_LOG:-warn}" "${CPU0[@]}" target/release/hearth serve --config "$WORK/hearth.toml" > /dev/null 2> "$WORK/hearth.log" &
  local hpid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local task
  task=$($PY bench/ingest_ctl.py start "$port" "$SID" "$SKEY" $APP "$APP_KEY" 4321 \
    "http://127.0.0.1:$FILES_PORT/$profile.mp4")
  sleep "$WARMUP"
  local wpid; wpid=$(pgrep -x hearth-media)
  local t0; t0=$(ticks "$wpid")
  local rss0; rss0=$(awk '/VmRSS/ {print $2}' "/proc/$wpid/status")
  local start; start=$(date +%s.%N)
  sleep "$DURATION"
  local t1; t1=$(ticks "$wpid")
  local end; end=$(date +%s.%N)
  local rss1; rss1=$(awk '/VmRSS/ {print $2}' "/proc/$wpid/status")
  $PY bench/ingest_ctl.py stop "$port" "$SID" "$SKEY" $APP "$task"
  for _ in $(seq 300); do pgrep -x hearth-media >/dev/null || break; sleep 0.1; done
  kill -TERM "$hpid"; wait "$hpid" 2>/dev/null || true
  local cores; cores=$(python3 -c "print(f'{($t1 - $t0) / 100 / ($end - $start):.3f}')")
  echo "| 1280×720 @ 30 H.264 $profile | $what | $cores | $(python3 -c "print(int(1 / max($cores, 1e-9)))") | $((rss0 / 1024)) → $((rss1 / 1024)) |"
}

echo "| source | published | worker CPU (cores) | such ingests per core | worker RSS (MiB), start → end of window |"
echo "|---|---|---|---|---|"
run_case high "VP8 1280×720 + 320×180 (decode, encode both)"
[ "${ONLY:-}" = high ] || run_case baseline "H.264 passed through + 320×180 x264"
