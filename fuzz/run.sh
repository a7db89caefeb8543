#!/usr/bin/env bash
# Fuzz Hearth's request parsing and signature verification with cargo-fuzz (libFuzzer).
#
#   fuzz/run.sh [SECONDS]      # each target for SECONDS (default 30)
#
# Environment: TARGETS="gateway_request usersig" (default: both), SANITIZER=address|none
# (default address), SKIP_REGRESSIONS=1.
#
# The machine's toolchain is stable Rust; cargo-fuzz passes nightly-only flags
# (-Zsanitizer=address, -Cllvm-args=-sanitizer-coverage-*), which stable rustc accepts with
# RUSTC_BOOTSTRAP=1 (the toolchain ships the ASan runtime). With SANITIZER=none the coverage
# instrumentation stays and only ASan goes (faster; Rust code is memory-safe except `unsafe`).
#
# Each target starts from the committed seeds in fuzz/seeds/<target>/ and keeps what it finds in
# fuzz/corpus/<target>/ (gitignored); crashes land in fuzz/artifacts/<target>/ (gitignored).
# Inputs in fuzz/regressions/<target>/ are known crashers, replayed one by one first and reported.
# Exit status: 0 when nothing crashed, 1 otherwise.
set -uo pipefail

SECONDS_EACH="${1:-30}"
TARGETS="${TARGETS:-gateway_request usersig}"
SANITIZER="${SANITIZER:-address}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (a few minutes)"
    cargo install cargo-fuzz --locked || exit 1
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
status=0
summary=()
for t in $TARGETS; do
    echo "== building $t (sanitizer $SANITIZER)"
    if ! cargo fuzz build --sanitizer "$SANITIZER" "$t"; then
        summary+=("$t: BUILD FAILED")
        status=1
        continue
    fi
    bin="target/$host/release/$t"

    if [ -z "${SKIP_REGRESSIONS:-}" ] && [ -d "regressions/$t" ]; then
        for input in "regressions/$t"/*; do
            [ -f "$input" ] || continue
            "$bin" "$input" >"/tmp/hearth-fuzz-regression.$$" 2>&1
            rc=$?
            if [ "$rc" -eq 0 ]; then
                summary+=("$t: regression $(basename "$input"): passes")
            else
                why="$(grep -m1 -A1 'panicked at' "/tmp/hearth-fuzz-regression.$$" | tail -1)"
                [ -n "$why" ] || why="$(grep -m1 -oE 'AddressSanitizer: [a-z-]+|has overflowed its stack|deadly signal' "/tmp/hearth-fuzz-regression.$$")"
                [ -n "$why" ] || why="exit status $rc (a signal: stack overflow or abort)"
                summary+=("$t: regression $(basename "$input"): CRASHES: $why")
                status=1
            fi
            rm -f "/tmp/hearth-fuzz-regression.$$"
        done
    fi

    echo "== fuzzing $t for ${SECONDS_EACH}s"
    mkdir -p "corpus/$t"
    dict=()
    [ -f "$t.dict" ] && dict=("-dict=$t.dict")
    log="$(mktemp)"
    cargo fuzz run --sanitizer "$SANITIZER" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        "${dict[@]}" 2>&1 | tee "$log" | grep -E '^#[0-9]+ +(INITED|DONE)|^Done|panicked|ERROR|SUMMARY|Test unit written'
    rc=${PIPESTATUS[0]}
    runs="$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')"
    cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -1)"
    if [ "$rc" -eq 0 ]; then
        summary+=("$t: ${SECONDS_EACH}s, ${runs:-?} runs, ${cov:-cov: ?}, corpus $(ls "corpus/$t" | wc -l) files, no crash")
    else
        summary+=("$t: CRASH after ${runs:-?} runs; see fuzz/artifacts/$t/ and the log $log")
        status=1
        continue
    fi
    rm -f "$log"
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$status"
