#!/usr/bin/env bash
# Instructions per API request, counted by valgrind's callgrind: unlike requests/s, this does not
# move with whatever else the (shared, 2-core) machine is doing. Same server setup and request as
# bench/api.sh; the server runs under callgrind, gets a short warmup, its counters are zeroed,
# then api-load runs for DURATION seconds at concurrency 1 and the counters are dumped.
#
#   bench/api-callgrind.sh           # needs target/release/{hearth,api-load}: run bench/api.sh
#                                    # first or `cargo build --release -p hearth -p api-load`
# Environment: DURATION (default 10), OUT_DIR (default a temp dir), TOP (functions shown, 25).
#
# Caveat: under valgrind, sha2 takes its portable SHA-256 path (valgrind's CPU does not offer the
# SHA extensions), so HMAC/SHA-256 weigh more here than on a CPU with SHA-NI.
set -euo pipefail

DURATION="${DURATION:-10}"
TOP="${TOP:-25}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/hearth-callgrind.XXXXXX)}"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SECRET_ID="AKIDbenchbenchbenchbenchbenchbench01"
SECRET_KEY="bench-secret-key-0123456789abcdef"
APP=1400000001
cd "$ROOT"
for b in hearth api-load; do
    [ -x "target/release/$b" ] || { echo "target/release/$b missing; build it first" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

mkdir -p "$OUT_DIR/data"
cat >"$OUT_DIR/hearth.toml" <<TOML
[server]
http = "127.0.0.1:$PORT"
data_dir = "$OUT_DIR/data"
rate_limits = false

[media]
ports = "52400-52410"
workers = 1

[[apps]]
sdk_app_id = $APP
secret_key = "bench-usersig-key-0123456789abcdef"

[[credentials]]
secret_id = "$SECRET_ID"
secret_key = "$SECRET_KEY"
apps = [$APP]
TOML

HEARTH_LOG="${HEARTH_LOG:-info}" valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/callgrind.out" \
    target/release/hearth serve --config "$OUT_DIR/hearth.toml" >"$OUT_DIR/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for i in $(seq 240); do
    ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && break
    kill -0 "$server" 2>/dev/null || { cat "$OUT_DIR/server.log"; exit 1; }
    [ "$i" = 240 ] && { echo "server did not start" >&2; exit 1; }
    sleep 0.5
done

load() {
    target/release/api-load --addr "127.0.0.1:$PORT" --secret-id "$SECRET_ID" \
        --secret-key "$SECRET_KEY" --sdkappid "$APP" --concurrency 1 --warmup 0 --json "$@"
}
load --duration 3 >/dev/null
callgrind_control -z "$server" >/dev/null
requests="$(load --duration "$DURATION" | grep '^{' | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')"
callgrind_control -d "$server" >/dev/null
kill "$server"
wait "$server" || true
trap - EXIT

dump="$(ls -t "$OUT_DIR"/callgrind.out.* | grep -v '\.out$' | head -1)"
total="$(sed -n 's/^summary: //p' "$dump")"
echo "requests: $requests; instructions: $total; per request: $((total / requests))"
echo
echo "Inclusive share of the top functions (of all server instructions while under load):"
callgrind_annotate --auto=no --inclusive=yes --threshold=99.5 "$dump" 2>/dev/null \
    | grep -E '^ *[0-9,]+ \(' | sed -E 's# \[[^]]*\]$##; s#^( *[0-9,]+ \( *[0-9.]+%\)) +[^ :]*:#\1  #' \
    | grep -E '  (hearth_[a-z_]+::|sha2::sha256::compress256|sqlite3_step|tracing_core::event::Event::dispatch)' \
    | awk '{k = $0; sub(/^.*%\)  /, "", k); if (!seen[k]++) print}' | head -"$TOP" | cut -c1-160
