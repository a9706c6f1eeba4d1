#!/usr/bin/env bash
# Headless Chromium against wsflow's chat and echo servers: for each adapter A in $ADAPTERS,
# builds (release) A's `chat` and `echo-server` examples, starts them on loopback, and runs
# chromium.js (two tabs chat through the page; a page script echoes text, binary and a
# large compressible text; `ws.extensions` shows permessage-deflate; clean close).
#
# Usage: tests/browser/run.sh   (after tests/browser/setup.sh)
# Environment: ADAPTERS (default "axum tokio"), BROWSER_PORT (default 9321; uses it and the
# next), WSFLOW_TARGET_DIR, BUILD_TIMEOUT (see tests/build-examples.sh).
# Ends with `browser: N passed, M failed`; exit status 0 only if all passed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TESTS="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$TESTS/.." && pwd)"
ADAPTERS="${ADAPTERS:-axum tokio}"
PORT="${BROWSER_PORT:-9321}"
LOGS="$REPO/tests/reports/browser"
mkdir -p "$LOGS"
[ -d "$HERE/node_modules/playwright-core" ] || { echo "run.sh: run $HERE/setup.sh first" >&2; exit 2; }

# shellcheck source=../server-process.sh
. "$TESTS/server-process.sh"
CHAT_PID=""
stop_all() {
  stop_server
  if [ -n "$CHAT_PID" ]; then kill "$CHAT_PID" 2>/dev/null || true; wait "$CHAT_PID" 2>/dev/null || true; CHAT_PID=""; fi
}
trap stop_all EXIT

passed=0
failed=0
LINES=()
for a in $ADAPTERS; do
  echo "######## $a: cargo build --release -p wsflow-$a --example chat --example echo-server"
  if ! bindir="$("$TESTS/build-examples.sh" "$a" chat echo-server | tail -n 1)"; then
    LINES+=("$(printf '  %-12s build failed' "$a")"); failed=$((failed + 1)); continue
  fi
  "$bindir/chat" "127.0.0.1:$PORT" >"$LOGS/chat-$a.log" 2>&1 &
  CHAT_PID=$!
  "$bindir/echo-server" "127.0.0.1:$((PORT + 1))" >"$LOGS/echo-server-$a.log" 2>&1 &
  SERVER_PID=$!
  out="$LOGS/$a.out"
  rc=0
  if wait_port "$PORT" 30 "$CHAT_PID" && wait_port "$((PORT + 1))" 30 "$SERVER_PID"; then
    timeout 180 node "$HERE/chromium.js" "http://127.0.0.1:$PORT/" "ws://127.0.0.1:$((PORT + 1))/" 2>&1 | tee "$out" || rc=$?
  else
    echo "!! $a: a server did not start" | tee "$out"; rc=1
  fi
  stop_all
  tally "$a" chromium
done

echo
echo "== browser overall (logs in $LOGS)"
printf '%s\n' "${LINES[@]}"
echo "browser: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
