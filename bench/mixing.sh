#!/usr/bin/env bash
# CPU of a mix relay's worker (hearth-media) on this machine, and the time from
# UpdatePublishCdnStream to the new layout in the pushed stream: a grid mix of 2, 4 and 9
# publishers (640x360 VP8 at 30 fps in) to 1280x720 and 1920x1080 H.264 at 15 fps + AAC, pushed
# to nginx-rtmp on loopback. Publishers are crates/loadgen sending a real VP8 clip (ffmpeg,
# looped; video only). After the measured window the layout is swapped and the first frame of
# the new layout is looked for in the FLV nginx recorded. Not a test: prints a markdown table.
#
#   bench/mixing.sh                      # USERS="2 4 9", SIZES="1280x720 1920x1080", DURATION=20, WARMUP=5
#
# Needs what scripts/test.sh installs (GStreamer, ffmpeg, the Python venv with the SDK).
# SKIP_BUILD=1 reuses target/release. PERF=1 profiles each worker with perf (linux-perf) and
# leaves the top symbols in $PERF_OUT/perf-mix-<users>-<size>.txt (default /tmp). PIN=1 pins hearth
# (and its workers) and nginx to CPU 0 and the load generator to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS="${USERS:-2 4 9}"
SIZES="${SIZES:-1280x720 1920x1080}"
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
APP_KEY="bench-mixing-key-0123456789abcdef0123456789ab"
SID="AKIDbenchmixing0000000000000000000000"
SKEY="benchmixingsecret"
CPU0=(); CPU1=()
if [ "$PIN" = 1 ]; then CPU0=(taskset -c 0); CPU1=(taskset -c 1); fi
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }


# nginx-rtmp as the CDN (what scripts/test.sh installs), recording every publish.
RTMP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
STAT_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx/rec" && chmod 777 "$WORK/nginx/rec"
cat > "$WORK/nginx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1;
pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$RTMP_PORT; application live { live on; record all;
  record_path $WORK/nginx/rec; record_unique off; } } }
http { access_log off; client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$STAT_PORT; location /stat { rtmp_stat all; } } }
CONF
"${CPU0[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2> "$WORK/nginx.log" &

run_case() { # users width height fps
  local users=$1 w=$2 h=$3 fps=$4 port key="mix-$1-$2"
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
  HEARTH_LOG=warn "${CPU0[@]}" target/release/hearth serve --config "$WORK/hearth.toml" > /dev/null 2> "$WORK/hearth.log" &
  local hpid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  "${CPU1[@]}" target/release/hearth-loadgen --url "http://127.0.0.1:$port" --sdkappid $APP --key "$APP_KEY" \
    --room 4321 --publishers "$users" --no-audio --vp8-clip "$WORK/clip.ivf" \
    --duration $((DURATION + WARMUP + 40)) 2> "$WORK/loadgen.log" > /dev/null &
  local lpid=$!
  sleep 3
  local task
  task=$($PY bench/relay_ctl.py start "$port" "$SID" "$SKEY" $APP "$APP_KEY" 4321 "$w" "$h" "$fps" \
    "rtmp://127.0.0.1:$RTMP_PORT/live/$key")
  sleep "$WARMUP"
  local wpids; wpids=$(pgrep -x hearth-media)
  local t0=0; for p in $wpids; do t0=$((t0 + $(ticks "$p"))); done
  local start; start=$(date +%s.%N)
  if [ "${PERF:-0}" = 1 ]; then
    perf record -q -F 499 -g -o "$WORK/perf.data" -p "$(echo $wpids | tr ' ' ,)" -- sleep "$DURATION" 2>/dev/null
    perf report -q -i "$WORK/perf.data" --no-children --sort dso -g none 2>/dev/null \
      | grep -v '^$' | head -25 > "${PERF_OUT:-/tmp}/perf-mix-$users-${w}x$h.txt"
  else
    sleep "$DURATION"
  fi
  local t1=0; for p in $wpids; do t1=$((t1 + $(ticks "$p"))); done
  local end; end=$(date +%s.%N)
  local t_up
  t_up=$($PY bench/relay_ctl.py swap "$port" "$SID" "$SKEY" $APP "$task" "http://127.0.0.1:$STAT_PORT/stat" "$key")
  sleep 4
  $PY bench/relay_ctl.py stop "$port" "$SID" "$SKEY" $APP "$task"
  for _ in $(seq 300); do pgrep -x hearth-media >/dev/null || break; sleep 0.1; done
  local cores; cores=$(python3 -c "print(f'{($t1 - $t0) / 100 / ($end - $start):.3f}')")
  local lat; lat=$($PY bench/relay_ctl.py latency "$WORK/nginx/rec/$key.flv" "$t_up" 320 $((320 * h / w)) "$fps")
  kill "$lpid" 2>/dev/null || true; wait "$lpid" 2>/dev/null || true
  kill -TERM "$hpid"; wait "$hpid" 2>/dev/null || true
  echo "| $users | ${w}x${h}@${fps} | $cores | $(python3 -c "print(int(1 / max($cores, 1e-9)))") | $lat |"
}

echo "| publishers | output | worker CPU (cores) | such mixes per core | Update → new layout in the stream (s) |"
echo "|---|---|---|---|---|"
for size in $SIZES; do
  for n in $USERS; do run_case "$n" "${size%x*}" "${size#*x}" 15; done
done
