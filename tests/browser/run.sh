#!/usr/bin/env bash
# Headless Chromium against wsflow's chat and echo servers: for each adapter A in $ADAPTERS,
# builds (release) A's `chat` and `echo-server` examples, starts them on loopback, and runs
# chromium.js (two tabs chat through the page; a page script echoes text, binary and a
# large compressible text; `ws.extensions` shows permessage-deflate; clean close). For axum,
# also chromium_h2.js against `echo-server --tls` with a fresh test certificate (openssl)
# that Chromium trusts by its key: the page over HTTP/2 and its WebSocket on the same
# HTTP/2 connection (RFC 8441, seen in Chromium's net log).
#
# Usage: tests/browser/run.sh   (after tests/browser/setup.sh)
# Environment: ADAPTERS (default "axum tokio"), BROWSER_PORT (default 9321; uses it and the
# next two), WSFLOW_TARGET_DIR, BUILD_TIMEOUT (see tests/build-examples.sh).
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
  if [ "$a" = axum ]; then
    echo "######## $a: echo-server --tls, Chromium over HTTP/2"
    out="$LOGS/$a-h2.out"
    rc=0
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
      -addext subjectAltName=IP:127.0.0.1 -keyout "$LOGS/h2-key.pem" -out "$LOGS/h2-cert.pem" 2>/dev/null
    spki="$(openssl x509 -pubkey -noout -in "$LOGS/h2-cert.pem" | openssl pkey -pubin -outform der \
      | openssl dgst -sha256 -binary | base64)"
    "$bindir/echo-server" "127.0.0.1:$((PORT + 2))" --tls "$LOGS/h2-cert.pem" "$LOGS/h2-key.pem" \
      >"$LOGS/echo-server-$a-tls.log" 2>&1 &
    SERVER_PID=$!
    if wait_port "$((PORT + 2))" 30 "$SERVER_PID"; then
      rm -f "$LOGS/h2-netlog.json"
      timeout 120 node "$HERE/chromium_h2.js" "https://127.0.0.1:$((PORT + 2))/" "$spki" "$LOGS/h2-netlog.json" 2>&1 \
        | tee "$out" || rc=$?
    else
      echo "!! $a: echo-server --tls did not start" | tee "$out"; rc=1
    fi
    stop_all
    tally "$a" chromium-h2
  fi
done

echo
echo "== browser overall (logs in $LOGS)"
printf '%s\n' "${LINES[@]}"
echo "browser: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
