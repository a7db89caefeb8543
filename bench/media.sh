#!/usr/bin/env bash
# Media-plane (SFU) capacity of a release Hearth: one WHIP publisher (VP8 ~500 kbit/s at 30 fps
# + Opus-sized audio at 32 kbit/s) and an increasing number of WHEP subscribers, all from
# crates/loadgen, ~20 s per step; finds the largest subscriber count with < 1 % loss. Not a
# test: prints a markdown table and leaves the raw JSON per step in $OUT_DIR.
#
#   bench/media.sh                       # steps 50 100 200 400 800 1200 1600 2400, then bisect
#
# Environment: STEPS (subscriber counts, ascending), DURATION (s measured per step, default 20),
# WARMUP (s after everyone connected, default 3), VIDEO_KBPS (500), MAX_LOSS (percent, 1),
# MAX_P99_MS (video p99 latency in ms, 100): a step passes with loss below MAX_LOSS, every
# subscriber connected and receiving, and video p99 below MAX_P99_MS;
# BISECT (extra steps between the last pass and the first failure, default 2), PIN=1 (default)
# pins the server to CPU 0 and the load generator to CPU 1 with taskset, PIN=0 lets both float;
# AUDIO=0 makes the publisher send video only (to count forwarded video streams alone);
# LOADGEN_THREADS (1), LOADGEN_ARGS (extra flags, e.g. "--no-twcc", or "--gro": receivers take GSO
# runs whole, see bench/README.md), PORT (HTTP, default a
# free one), MEDIA_PORTS (53000-53010), SKIP_BUILD=1 reuses target/release, OUT_DIR (default a
# temp dir), HEARTH_LOG (server log filter, default "info"). SERVER=janus runs the same steps
# against Debian's Janus (VideoRoom over its HTTP transport, config by bench/janus-config.sh,
# JANUS_LOOPS event loops, default 1) with the load generator's --janus signaling.
# CAPACITY sets media.capacity_per_worker (0, no limit): with more subscribers than that, the
# rest are refused (the overload runs). SPREAD=1 spreads the room over both workers: each step
# sets the capacity to half its subscribers + 1, so the home worker takes the publisher and half
# the viewers and the other worker mirrors the room for the rest; the server is pinned to CPUs
# 0 and 1 (one worker each) and the load generator floats over the same two CPUs (a 2-core
# machine has none left for it: see the per-thread CPU in the raw results). HOME_PERCENT (50)
# sets the home's share of the viewers: the home also receives the publisher and hands every
# packet over, so it is the busier of the two at an even split.
# WORKER_QUOTA=P gives each media worker thread a budget of P % of one CPU (a cgroup v1 `cpu`
# group per worker thread: CFS quota over a 10 ms period, high shares so the load generator
# never delays it within its budget) and pins worker i to CPU i; the rest of the server and the
# load generator float over both CPUs. With P well under 50 the load generator has CPU to spare
# on a 2-CPU machine, so the one-worker and the two-worker (SPREAD=1) figures compare at the
# same per-worker budget: how a room scales over workers, measured where a third CPU is missing.
# Needs root and /sys/fs/cgroup/cpu.
#
# Each step starts a fresh server (empty data dir, rate_limits = false, one fixed application,
# [media] workers = WORKERS: 1 when the server is pinned to one CPU, else 2; one room lives on
# one worker unless it is spread, so the forwarding runs on one thread).
# "forwarded pkt/s" is what the subscribers' RTP sequence numbers say the server sent (received
# + lost), audio and video; in brackets, the server's own count of datagrams sent (all of them:
# media, RTCP, STUN, DTLS) from its /metrics when it has them; "µs/pkt" is server CPU time per forwarded packet (user + system, so
# on loopback it includes the kernel delivering into the subscribers' sockets). Loss is
# measured at the subscribers; "lg drops" are datagrams the kernel dropped at the load
# generator's own sockets (the load generator, not the server, fell behind). "run-queue wait"
# is the largest share of the step any one server (load generator) thread spent runnable but
# waiting for a CPU (/proc/<pid>/task/*/schedstat): high values mean other work on the host
# took the CPU, and latency tails then say more about the host than about the server; "CPU
# pressure" is the host's PSI "some" share over the step.
set -euo pipefail

STEPS="${STEPS:-50 100 200 400 800 1200 1600 2400}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-3}"
VIDEO_KBPS="${VIDEO_KBPS:-500}"
MAX_LOSS="${MAX_LOSS:-1}"
MAX_P99_MS="${MAX_P99_MS:-100}"
SERVER="${SERVER:-hearth}"
JANUS_LOOPS="${JANUS_LOOPS:-1}"
BISECT="${BISECT:-2}"
PIN="${PIN:-1}"
LOADGEN_THREADS="${LOADGEN_THREADS:-1}"
LOADGEN_ARGS="${LOADGEN_ARGS:-}"
[ "${AUDIO:-1}" = 0 ] && LOADGEN_ARGS="$LOADGEN_ARGS --no-audio"
PORT="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
MEDIA_PORTS="${MEDIA_PORTS:-53000-53010}"
export HEARTH_LOG="${HEARTH_LOG:-info}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/hearth-media-bench.XXXXXX)}"
mkdir -p "$OUT_DIR"

APP=1400000001
KEY="media-bench-usersig-key-0123456789abcdef"

cd "$ROOT"
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -p hearth -p hearth-loadgen
fi
# What was measured: the tree the binaries came from (uncommitted changes are listed).
{
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    git status --short -- crates Cargo.toml Cargo.lock 2>/dev/null | sed 's/^/uncommitted: /'
    ls -l --time-style=+%FT%T target/release/hearth target/release/hearth-loadgen
} >"$OUT_DIR/build.txt"

server_cpu=() client_cpu=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    server_cpu=(taskset -c 0)
    client_cpu=(taskset -c 1)
fi

if [ "${SPREAD:-0}" = 1 ] && [ ${#server_cpu[@]} -gt 0 ]; then
    server_cpu=(taskset -c 0,1)
    client_cpu=()
fi

WORKER_QUOTA="${WORKER_QUOTA:-}"
CGROUP_CPU=/sys/fs/cgroup/cpu
if [ -n "$WORKER_QUOTA" ]; then
    [ -w "$CGROUP_CPU" ] || { echo "WORKER_QUOTA needs a writable $CGROUP_CPU (cgroup v1, root)" >&2; exit 1; }
    server_cpu=(taskset -c 0,1)
    client_cpu=()
fi

# One media worker per core the server has: pinned to one CPU, one worker (a second one would
# share its core, and a capacity per worker would then admit twice what the core carries).
if [ "${server_cpu[*]}" = "taskset -c 0" ]; then
    WORKERS="${WORKERS:-1}"
else
    WORKERS="${WORKERS:-2}"
fi

# Puts each media worker thread of the running server into its own CPU-limited group.
limit_workers() {
    local tid name i
    for tid in /proc/"$server"/task/*; do
        name="$(cat "$tid/comm" 2>/dev/null || true)"
        case "$name" in hearth-media-*) ;; *) continue ;; esac
        i="${name#hearth-media-}"
        local group="$CGROUP_CPU/hearth-bench-w$i"
        mkdir -p "$group"
        echo 10000 >"$group/cpu.cfs_period_us"
        echo $(( WORKER_QUOTA * 100 )) >"$group/cpu.cfs_quota_us"
        echo 10240 >"$group/cpu.shares"
        echo "${tid##*/}" >"$group/tasks"
        taskset -pc "$(( i % $(nproc) ))" "${tid##*/}" >/dev/null
    done
}

# The groups' throttling over a step ("nr_throttled throttled_time(ns)" per worker).
throttle_stats() {
    local g
    for g in "$CGROUP_CPU"/hearth-bench-w*; do
        [ -d "$g" ] || continue
        printf '%s %s %s\n' "${g##*-w}" "$(sed -n 's/^nr_throttled //p' "$g/cpu.stat")" \
            "$(sed -n 's/^throttled_time //p' "$g/cpu.stat")"
    done
}

remove_groups() {
    local g
    for g in "$CGROUP_CPU"/hearth-bench-w*; do
        [ -d "$g" ] && rmdir "$g" 2>/dev/null || true
    done
}

# The server's configuration for a step of $1 subscribers.
write_config() {
    local capacity="${CAPACITY:-0}"
    # The home takes the publisher and HOME_PERCENT of the viewers (default half).
    [ "${SPREAD:-0}" = 1 ] && capacity=$(( $1 * ${HOME_PERCENT:-50} / 100 + 1 ))
    cat >"$OUT_DIR/hearth.toml" <<TOML
[server]
http = "127.0.0.1:$PORT"
data_dir = "$OUT_DIR/data"
rate_limits = false
log_format = "text"

[media]
ip = "127.0.0.1"
ports = "$MEDIA_PORTS"
workers = $WORKERS
capacity_per_worker = $capacity

[[apps]]
sdk_app_id = $APP
secret_key = "$KEY"

[[credentials]]
secret_id = "AKIDmediabenchmediabenchmediabench01"
secret_key = "media-bench-secret-key-0123456789"
apps = [$APP]
TOML
}

SIGNALING=""
if [ "$SERVER" = janus ]; then
    bench/janus-config.sh "$OUT_DIR/janus" "$PORT" 4242 "$JANUS_LOOPS"
    # Janus has no loopback candidates: clients use the host's own address.
    HOST_IP="$(ip -4 -o route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')"
    SIGNALING="--janus --bind $HOST_IP"
fi

server=""
stop_server() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=""
    fi
}
trap 'stop_server; if [ -n "$WORKER_QUOTA" ]; then remove_groups; fi' EXIT

start_server() {
    rm -rf "$OUT_DIR/data"
    write_config "$1"
    if [ "$SERVER" = janus ]; then
        "${server_cpu[@]}" janus -C "$OUT_DIR/janus/janus.jcfg" -F "$OUT_DIR/janus" \
            >"$OUT_DIR/server-$1.log" 2>&1 &
    else
        "${server_cpu[@]}" target/release/hearth serve --config "$OUT_DIR/hearth.toml" \
            >"$OUT_DIR/server-$1.log" 2>&1 &
    fi
    server=$!
    # Ours must be the one listening (another server may hold the port).
    for i in $(seq 100); do
        ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -q "pid=$server," && break
        kill -0 "$server" 2>/dev/null || { cat "$OUT_DIR/server-$1.log"; echo "server exited" >&2; exit 1; }
        [ "$i" = 100 ] && { cat "$OUT_DIR/server-$1.log"; echo "server not listening on $PORT" >&2; exit 1; }
        sleep 0.1
    done
    if [ -n "$WORKER_QUOTA" ]; then limit_workers; fi
}

# Microseconds some task waited for a CPU (PSI), to flag steps disturbed by other work.
pressure_us() { sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || echo 0; }

# Runs one step, appending its row to results.jsonl.
run_step() {
    local n="$1"
    start_server "$n"
    local p0 t0
    p0="$(pressure_us)"
    t0="$(date +%s.%N)"
    # shellcheck disable=SC2086
    "${client_cpu[@]}" target/release/hearth-loadgen --url "http://127.0.0.1:$PORT" $SIGNALING \
        --sdkappid "$APP" --key "$KEY" --room 4242 --publishers 1 --subscribers "$n" \
        --video-kbps "$VIDEO_KBPS" --duration "$DURATION" --warmup "$WARMUP" \
        --threads "$LOADGEN_THREADS" --server-pid "$server" --user-prefix "s$n" \
        --json $LOADGEN_ARGS >"$OUT_DIR/step-$n.json" 2>"$OUT_DIR/step-$n.log" || true
    local p1 t1
    p1="$(pressure_us)"
    t1="$(date +%s.%N)"
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    local throttled=""
    if [ -n "$WORKER_QUOTA" ]; then throttled="$(throttle_stats | tr '\n' ';')"; fi
    stop_server
    if [ -n "$WORKER_QUOTA" ]; then remove_groups; fi
    local warnings
    warnings="$(grep -cE ' (WARN|ERROR) ' "$OUT_DIR/server-$n.log" || true)"
    python3 - "$OUT_DIR/step-$n.json" "$n" "$MAX_LOSS" "$p0" "$p1" "$t0" "$t1" "$load" "$warnings" "$MAX_P99_MS" "$throttled" \
        >>"$OUT_DIR/results.jsonl" <<'PY'
import json, sys
path, n, max_loss, p0, p1, t0, t1, load, warnings, max_p99, throttled = sys.argv[1:]
n, max_loss, max_p99 = int(n), float(max_loss), float(max_p99)
try:
    s = json.load(open(path))
    w = s["window"]
except Exception as e:  # the load generator failed outright
    print(json.dumps({"subscribers": n, "pass": False, "error": str(e)}))
    sys.exit()
secs = w["seconds"]
fwd = w["rx_rtp_packets_expected"] / secs
cpu = w["server_cpu_pct"] or 0.0
loss = max(w["packet_loss_pct"], w["frame_loss_pct"])
ok = (w["subscribers_connected"] == n and w["subscribers_receiving"] == n and loss < max_loss
      and w["latency_video_ms"]["p99"] < max_p99)
print(json.dumps({
    "subscribers": n,
    "connected": w["subscribers_connected"],
    "receiving": w["subscribers_receiving"],
    "server_cpu_pct": cpu,
    "forwarded_pps": fwd,
    "server_datagrams_out_pps": (s.get("server_metrics") or {}).get("datagrams_out_per_s"),
    "server_datagrams_in_pps": (s.get("server_metrics") or {}).get("datagrams_in_per_s"),
    "server_send_drops": (s.get("server_metrics") or {}).get("send_drops"),
    "server_us_per_pkt": cpu / 100 * 1e6 / fwd if fwd else None,
    "subscribers_per_core": n / (cpu / 100) if cpu else None,
    "packet_loss_pct": w["packet_loss_pct"],
    "frame_loss_pct": w["frame_loss_pct"],
    "video_p50_ms": w["latency_video_ms"]["p50"],
    "video_p99_ms": w["latency_video_ms"]["p99"],
    "video_max_ms": w["latency_video_ms"]["max"],
    "audio_p50_ms": w["latency_audio_ms"]["p50"],
    "audio_p99_ms": w["latency_audio_ms"]["p99"],
    "kbps_mean": w["kbps_per_subscriber_mean"],
    "kbps_min": w["kbps_per_subscriber_min"],
    "loadgen_cpu_pct": w["loadgen_cpu_pct"],
    "loadgen_busy_pct": max(w["loadgen_driver_busy_pct"] or [0]),
    "server_udp_drops": w["server_udp_drops"],
    "loadgen_udp_drops": w["loadgen_udp_drops"],
    "nacks": w["nacks_sent"],
    "plis_to_publisher": w["plis_received_by_publishers"],
    "nacks_to_publisher": w.get("nacks_received_by_publishers"),
    "signaling_failures": s["signaling_failures"],
    "server_threads": s["server_threads_cpu_pct"],
    "cpu_pressure_pct": (int(p1) - int(p0)) / ((float(t1) - float(t0)) * 1e6) * 100,
    "server_runqueue_wait_pct": w["server_runqueue_wait_pct"],
    "loadgen_runqueue_wait_pct": w["loadgen_runqueue_wait_pct"],
    "server_rss_mib": w["server_rss_mib"],
    "load1": float(load),
    "server_warnings": int(warnings),
    # Per media worker under WORKER_QUOTA: [worker, periods throttled, ms throttled] over the step.
    "worker_throttling": [[int(a), int(b), int(c) / 1e6] for a, b, c in
                          (t.split() for t in throttled.split(";") if t.strip())],
    "pass": ok,
}))
PY
}

verdict() {
    tail -n1 "$OUT_DIR/results.jsonl" | python3 -c 'import json,sys; print("pass" if json.load(sys.stdin)["pass"] else "fail")'
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
best=0 worst=""
for n in $STEPS; do
    echo "== $n subscribers" >&2
    run_step "$n"
    tail -n3 "$OUT_DIR/step-$n.log" >&2
    if [ "$(verdict)" = pass ]; then
        best="$n"
    else
        worst="$n"
        break
    fi
done
# Narrow down between the last pass and the first failure.
if [ -n "$worst" ]; then
    for _ in $(seq "$BISECT"); do
        mid=$(( (best + worst) / 2 / 10 * 10 ))
        [ "$mid" -le "$best" ] && break
        echo "== $mid subscribers (bisect)" >&2
        run_step "$mid"
        if [ "$(verdict)" = pass ]; then best="$mid"; else worst="$mid"; fi
        tail -n3 "$OUT_DIR/step-$mid.log" >&2
    done
fi

echo
echo "Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'); pinned: $([ ${#server_cpu[@]} -gt 0 ] && echo "server ${server_cpu[*]}, load generator ${client_cpu[*]:-floating}" || echo no); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "Load average (1/5/15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg). Raw results: $OUT_DIR/results.jsonl"
echo "Built from: $(head -n1 "$OUT_DIR/build.txt")$(grep -c '^uncommitted' "$OUT_DIR/build.txt" | sed 's/^0$//; s/^\([0-9]\+\)$/ + \1 uncommitted paths (see build.txt)/')"
echo "Server: $SERVER$([ "$SERVER" = janus ] && echo " ($(janus --version 2>/dev/null | head -n1), $JANUS_LOOPS event loop(s))")"
echo "Largest subscriber count with < $MAX_LOSS % loss and video p99 < $MAX_P99_MS ms: $best$([ -n "$worst" ] && echo " (first failure: $worst)")"
if [ "${SPREAD:-0}" = 1 ] || [ -n "$WORKER_QUOTA" ]; then
    echo
    [ -n "$WORKER_QUOTA" ] && echo "Each media worker limited to $WORKER_QUOTA % of one CPU (cgroup CFS quota, 10 ms period)."
    echo "Media workers' CPU per step (SPREAD=1: the home worker and its mirror):"
    python3 - "$OUT_DIR/results.jsonl" <<'PY'
import json, sys
for r in sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda r: r["subscribers"]):
    media = [t for t in r.get("server_threads") or [] if t["thread"].startswith("hearth-media")]
    throttled = "".join("; worker %d throttled in %d periods, %.0f ms" % tuple(t) for t in r.get("worker_throttling") or [])
    print("- %d subscribers: %s%s" % (r["subscribers"], ", ".join("%s %.0f %%" % (t["thread"], t["cpu_pct"]) for t in media), throttled))
PY
fi
echo
echo "| subscribers | connected | server CPU % | forwarded pkt/s (server datagrams out/s) | server µs/pkt | subs per core (extrapolated) | loss pkt % | loss frames % | video p50 / p99 / max ms | audio p50 / p99 ms | kbps/sub mean (min) | loadgen CPU % | udp drops srv / lg | run-queue wait srv / lg % | CPU pressure % | pass |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--|"
python3 - "$OUT_DIR/results.jsonl" <<'PY'
import json, sys
rows = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda r: r["subscribers"])
for r in rows:
    if "error" in r:
        print("| %d | - | - | - | - | - | - | - | - | - | - | - | - | - | - | error: %s |" % (r["subscribers"], r["error"]))
        continue
    f = lambda v, p=1: "-" if v is None else "%.*f" % (p, v)
    print("| %d | %d | %s | %.0f (%s) | %s | %s | %.2f | %.2f | %.1f / %.1f / %.0f | %.1f / %.1f | %.0f (%.0f) | %s | %d / %d | %s / %.0f | %.0f | %s |" % (
        r["subscribers"], r["connected"], f(r["server_cpu_pct"], 0), r["forwarded_pps"],
        f(r.get("server_datagrams_out_pps"), 0),
        f(r["server_us_per_pkt"], 2), f(r["subscribers_per_core"], 0),
        r["packet_loss_pct"], r["frame_loss_pct"],
        r["video_p50_ms"], r["video_p99_ms"], r["video_max_ms"], r["audio_p50_ms"], r["audio_p99_ms"],
        r["kbps_mean"], r["kbps_min"], f(r["loadgen_cpu_pct"], 0),
        r["server_udp_drops"], r["loadgen_udp_drops"],
        f(r["server_runqueue_wait_pct"], 0), r["loadgen_runqueue_wait_pct"], r["cpu_pressure_pct"],
        "yes" if r["pass"] else "no"))
PY
