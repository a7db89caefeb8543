#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian/Ubuntu machine (apt packages including Chromium,
# a Python venv, npm packages, cargo-fuzz) and runs every test: format, lint, Rust unit, scenario
# and router tests, UserSig interop with the official libraries, end-to-end tests with the
# official SDK, tccli and aiortc, browser tests in Chromium, and a bounded fuzz run.
# Usage: scripts/test.sh [FUZZ_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${1:-${FUZZ_SECONDS:-30}}"

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup) first" >&2; exit 1; }
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v gcc >/dev/null || missing+=(build-essential)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
# tc shapes a browser subscriber's downlink on loopback (tests/browser/overload.test.js).
command -v tc >/dev/null || missing+=(iproute2)
# The CDN of the relay tests: nginx with Debian's RTMP module.
command -v nginx >/dev/null || missing+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=(libnginx-mod-rtmp)
# Speech for the transcription tests.
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
# Real networks (tests/e2e/test_netns.py, tests/browser/netns.test.js): coturn as the TURN
# server, iptables to drop UDP inside a test's network namespace; and to drop a share of one
# port's datagrams on loopback (tests/browser/loss.test.js).
command -v turnserver >/dev/null || missing+=(coturn)
command -v iptables >/dev/null || missing+=(iptables)
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

step "GStreamer for hearth-media, the recording worker (scripts/setup.sh)"
scripts/setup.sh

step "s3s-fs (an S3-compatible server for the recording tests)"
command -v s3s-fs >/dev/null || [ -x "$HOME/.cargo/bin/s3s-fs" ] \
  || cargo install s3s-fs@0.14.1 --features binary --locked --quiet

step "python venv (.venv) and npm packages"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
npm ci --prefix tests/e2e --no-audit --no-fund --silent

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build"
cargo build --workspace --quiet

step "rust tests"
cargo test --workspace --quiet

step "UserSig interop: signatures made by the official Python and Node libraries verify in Hearth"
vectors="$(mktemp)"
.venv/bin/python tests/e2e/gen_usersig_vectors.py --node --out "$vectors"
HEARTH_USERSIG_VECTORS="$vectors" cargo test -p hearth-auth --test interop --quiet -- --ignored
rm -f "$vectors"

step "end-to-end tests (official SDK over HTTP, tccli over HTTPS, UserSig interop)"
HEARTH_BIN="$PWD/target/debug/hearth" .venv/bin/pytest -q tests/e2e

step "browser tests (Debian Chromium via playwright-core: SDK and demo page)"
HEARTH_BIN="$PWD/target/debug/hearth" tests/browser/run.sh

step "fuzz (${FUZZ_SECONDS}s per target)"
# Coverage-guided without ASan in CI (8x the inputs per second, a shorter build; the code is safe
# Rust); `fuzz/run.sh 300` fuzzes with ASan for longer.
SANITIZER=none fuzz/run.sh "$FUZZ_SECONDS"

step "all tests passed"
