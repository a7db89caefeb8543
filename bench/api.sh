#!/usr/bin/env bash
# Operator-API throughput and latency of a release Hearth: signed TC3 DescribeRoomInfo POSTs
# over HTTP/1.1 keep-alive from bench/api-load, at several concurrencies. Not a test: prints a
# markdown table (and leaves the raw JSON lines in $OUT_DIR).
#
#   bench/api.sh                     # 20 s per concurrency, concurrencies 1 8 32
#
# Environment: DURATION (s, default 20), WARMUP (s, default 2), CONCURRENCY ("1 8 32"),
# PORT (default: a free one), PIN=1 (default) pins the server to CPU 0 and the load generator to CPU 1
# with taskset, PIN=0 lets both float over all cores; CLIENT_THREADS (default 1);
# HEARTH_LOG (server log filter, default "info" as in production; every request logs a line);
# SKIP_BUILD=1 reuses target/release; OUT_DIR (default a temp dir).
#
# The server starts from an empty data dir with rate_limits = false and one fixed application
# and credential; rooms cannot be created through the API, so DescribeRoomInfo answers
# Total 0 from an empty store: this measures the gateway (HTTP, TC3 verification, parameter
# decoding, envelope) plus one indexed SQLite query per request.
set -euo pipefail

DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-2}"
CONCURRENCY="${CONCURRENCY:-1 8 32}"
PORT="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
PIN="${PIN:-1}"
CLIENT_THREADS="${CLIENT_THREADS:-1}"
export HEARTH_LOG="${HEARTH_LOG:-info}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/hearth-bench.XXXXXX)}"
mkdir -p "$OUT_DIR"

SECRET_ID="AKIDbenchbenchbenchbenchbenchbench01"
SECRET_KEY="bench-secret-key-0123456789abcdef"
APP=1400000001

cd "$ROOT"
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -p hearth -p api-load
fi

server_cpu=() client_cpu=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    server_cpu=(taskset -c 0)
    client_cpu=(taskset -c 1)
fi

data="$OUT_DIR/data"
mkdir -p "$data"
cat >"$OUT_DIR/hearth.toml" <<TOML
[server]
http = "127.0.0.1:$PORT"
data_dir = "$data"
rate_limits = false
log_format = "text"

[media]
ip = "127.0.0.1"
ports = "52000-52010"
workers = 1

[[apps]]
sdk_app_id = $APP
secret_key = "bench-usersig-key-0123456789abcdef"

[[credentials]]
secret_id = "$SECRET_ID"
secret_key = "$SECRET_KEY"
apps = [$APP]
TOML

"${server_cpu[@]}" target/release/hearth serve --config "$OUT_DIR/hearth.toml" \
    >"$OUT_DIR/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
# Ours must be the one listening (another server may hold the port).
for i in $(seq 100); do
    ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -q "pid=$server," && break
    kill -0 "$server" 2>/dev/null || { cat "$OUT_DIR/server.log"; echo "server exited" >&2; exit 1; }
    [ "$i" = 100 ] && { cat "$OUT_DIR/server.log"; echo "server not listening on $PORT" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null

# CPU time (user + system, in clock ticks) the server has used so far: requests/s depends on
# what else runs on the machine, CPU time per request much less.
server_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz="$(getconf CLK_TCK)"

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
status=0
for c in $CONCURRENCY; do
    t0="$(server_ticks)"
    "${client_cpu[@]}" target/release/api-load --addr "127.0.0.1:$PORT" \
        --secret-id "$SECRET_ID" --secret-key "$SECRET_KEY" --sdkappid "$APP" \
        --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" \
        --threads "$CLIENT_THREADS" --json | tee "$OUT_DIR/c$c.txt" >&2 || status=1
    t1="$(server_ticks)"
    # Warmup and measured requests both count: scale by the measured share of the run.
    grep '^{' "$OUT_DIR/c$c.txt" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
ticks, hz, warmup = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
total = r["requests"] * (r["seconds"] + warmup) / r["seconds"]
r["server_cpu_us_per_req"] = ticks / hz * 1e6 / total if total else 0
print(json.dumps(r))' "$((t1 - t0))" "$hz" "$WARMUP" >>"$OUT_DIR/results.jsonl" || true
done
rss_kb="$(ps -o rss= -p "$server" | tr -d ' ')"
kill "$server"
wait "$server" || true
trap - EXIT

echo
echo "Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'); pinned: $([ ${#server_cpu[@]} -gt 0 ] && echo 'server CPU 0, load CPU 1' || echo no); server log: $HEARTH_LOG; $(date -u +%Y-%m-%d)"
echo "Load average (1/5/15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Server RSS after the runs: $((rss_kb / 1024)) MiB. Raw results: $OUT_DIR/results.jsonl"
echo
echo "| connections | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/req |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
python3 - "$OUT_DIR/results.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    ms = lambda k: "%.2f" % (r[k] / 1000)
    print("| %d | %.0f | %s | %s | %s | %s | %d | %.0f |" % (
        r["concurrency"], r["rps"], ms("p50_us"), ms("p90_us"), ms("p99_us"), ms("max_us"), r["errors"],
        r["server_cpu_us_per_req"]))
PY
errors_logged="$(grep -ciE 'panic|error' "$OUT_DIR/server.log" || true)"
[ "$errors_logged" = 0 ] || echo "Note: $errors_logged server log lines mention panic/error; see $OUT_DIR/server.log"
exit "$status"
