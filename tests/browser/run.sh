#!/usr/bin/env bash
# Browser tests: the SDK (web/sdk) and the demo page (web/index.html) in Debian's Chromium, driven
# by playwright-core, against a real `hearth serve`. Installs Chromium (apt) if missing, the npm
# packages (npm ci), builds the server unless HEARTH_BIN is given, and runs `node --test`.
#
#   tests/browser/run.sh [test files...]      e.g. tests/browser/run.sh demo.test.js
#
# On failure each test prints its pages' console logs and signaling frames and the server's
# stderr tail; screenshots and logs stay in tests/browser/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
HERE="$PWD"
REPO="$(cd ../.. && pwd)"

step() { printf '\n==> %s\n' "$*"; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  step "installing Debian's chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  step "installing nodejs and npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
"$CHROMIUM" --version || true

step "npm packages (tests/browser)"
npm ci --no-audit --no-fund --silent

if [ -z "${HEARTH_BIN:-}" ]; then
  step "building hearth and its media task worker"
  (cd "$REPO" && cargo build -p hearth -p hearth-media --quiet)
  export HEARTH_BIN="$REPO/target/debug/hearth"
fi

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(*.test.js)

rm -rf "$HERE/artifacts"
step "browser tests: ${files[*]}"
status=0
node --test --test-concurrency=1 --test-reporter=spec "${files[@]}" || status=$?
if [ "$status" -ne 0 ]; then
  echo
  echo "browser tests FAILED (exit $status)."
  if [ -d "$HERE/artifacts" ]; then
    echo "Diagnostics (page consoles, signaling frames, server stderr tails) and screenshots:"
    ls -1 "$HERE/artifacts" | sed "s|^|  $HERE/artifacts/|"
  fi
fi
exit "$status"
