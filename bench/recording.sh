#!/usr/bin/env bash
# CPU of recording workers (hearth-media) on this machine: a mixed recording of 2, 4 and 9
# publishers (640x360 VP8 at 30 fps in, 1280x720 H.264 at 15 fps out) and a single-stream
# recording of one publisher. Publishers are crates/loadgen sending a real VP8 clip (made with
# ffmpeg, looped; video only: loadgen's audio frames are not real Opus). The recording goes to
# the VOD store, so no S3 server is involved; uploads run in hearth, not in the measured worker.
# Not a test: prints a markdown table.
#
#   bench/recording.sh                   # USERS="2 4 9", DURATION=20 (s measured), WARMUP=5
#
# Needs what scripts/test.sh installs (GStreamer, ffmpeg, the Python venv with the SDK).
# SKIP_BUILD=1 reuses target/release. PERF=1 profiles each worker with perf (linux-perf) and
# leaves the top symbols in $PERF_OUT/perf-<mode>-<users>.txt (default /tmp). PIN=1 pins hearth (and its workers) to CPU 0 and the load
# generator to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS="${USERS:-2 4 9}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-5}"
PIN="${PIN:-1}"
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run scripts/test.sh once first (it makes .venv)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p hearth -p hearth-media -p hearth-loadgen
fi
WORK="$(mktemp -d)"
trap 'rc=$?; [ $rc = 0 ] || tail -n 5 "$WORK"/*.log >&2; kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ffmpeg -v error -f lavfi -i testsrc2=s=640x360:r=30 -t 10 -c:v libvpx -b:v 500k -g 30 \
  -deadline realtime -cpu-used 8 "$WORK/clip.ivf"
APP=1400000001
APP_KEY="bench-recording-key-0123456789abcdef0123456789"
SID="AKIDbenchrecording000000000000000000"
SKEY="benchrecordingsecret"
CPU0=(); CPU1=()
if [ "$PIN" = 1 ]; then CPU0=(taskset -c 0); CPU1=(taskset -c 1); fi
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_case() { # mode users width height fps
  local mode=$1 users=$2 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rm -rf "$WORK/data"; cat > "$WORK/hearth.toml" <<CONF
[server]
http = "127.0.0.1:$port"
data_dir = "$WORK/data"
rate_limits = false
[media]
ports = "54000-54001"
workers = 1
cpu_budget = 8
[[apps]]
sdk_app_id = $APP
secret_key = "$APP_KEY"
[[credentials]]
secret_id = "$SID"
secret_key = "$SKEY"
apps = [$APP]
CONF
  HEARTH_LOG=warn "${CPU0[@]}" target/release/hearth serve --config "$WORK/hearth.toml" > /dev/null 2> "$WORK/hearth.log" &
  local hpid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  "${CPU1[@]}" target/release/hearth-loadgen --url "http://127.0.0.1:$port" --sdkappid $APP --key "$APP_KEY" \
    --room 4321 --publishers "$users" --no-audio --vp8-clip "$WORK/clip.ivf" \
    --duration $((DURATION + WARMUP + 30)) 2> "$WORK/loadgen.log" > /dev/null &
  local lpid=$!
  sleep 3
  local task
  task=$($PY bench/recording_ctl.py create "$port" "$SID" "$SKEY" $APP "$APP_KEY" 4321 "$mode" "$3" "$4" "$5")
  sleep "$WARMUP"
  local wpids; wpids=$(pgrep -x hearth-media)
  local t0=0; for p in $wpids; do t0=$((t0 + $(ticks "$p"))); done
  local start; start=$(date +%s.%N)
  if [ "${PERF:-0}" = 1 ]; then
    perf record -q -F 499 -g -o "$WORK/perf-$mode-$users.data" -p "$(echo $wpids | tr ' ' ,)" -- sleep "$DURATION" 2>/dev/null
    perf report -q -i "$WORK/perf-$mode-$users.data" --no-children --sort dso -g none 2>/dev/null \
      | grep -v '^$' | head -25 > "${PERF_OUT:-/tmp}/perf-$mode-$users.txt"
  else
    sleep "$DURATION"
  fi
  local t1=0; for p in $wpids; do t1=$((t1 + $(ticks "$p"))); done
  local end; end=$(date +%s.%N)
  $PY bench/recording_ctl.py delete "$port" "$SID" "$SKEY" $APP "$task"
  for _ in $(seq 300); do pgrep -x hearth-media >/dev/null || break; sleep 0.1; done
  local cores; cores=$(python3 -c "print(f'{($t1 - $t0) / 100 / ($end - $start):.3f}')")
  local mp4 dur
  mp4=$(find "$WORK/data/vod" -name '*.mp4' | head -1)
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$mp4" 2>/dev/null || echo "?")
  kill "$lpid" 2>/dev/null || true; wait "$lpid" 2>/dev/null || true
  kill -TERM "$hpid"; wait "$hpid" 2>/dev/null || true
  echo "| $mode | $users | ${3}x${4}@${5} | $cores | $(python3 -c "print(int(1 / max($cores, 1e-9)))") | $dur |"
}

echo "| recording | publishers | output | worker CPU (cores) | such tasks per core | file duration (s) |"
echo "|---|---|---|---|---|---|"
for n in $USERS; do run_case mixed "$n" 1280 720 15; done
run_case single 1 1280 720 15
