#!/usr/bin/env bash
# Interop: third-party clients (Python websockets, Node ws) against each echo server
# example (every adapter's, wsflow-axum's and the plain hyper one), then our clients
# (tests/tests/interop.rs) against their servers.
#
# Usage: tests/peers/interop.sh         (after tests/peers/setup.sh)
#
# For each server A/E in $SERVERS: cargo build --release -p wsflow-A --example E
# (with tests/build-examples.sh),
# starts `E 127.0.0.1:PORT`, runs py_client.py and node_client.js
# against it, stops it. Ends with `interop: N passed, M failed` (checks; a client
# that could not run counts as one failed check); exit status 0 if all passed.
#
# Environment: SERVERS (default "blocking/echo-server smol/echo-server tokio/echo-server
# tokio/hyper-echo-server axum/echo-server"), WSFLOW_TARGET_DIR
# (default $CARGO_TARGET_DIR or <repo>/target), INTEROP_PORT (default 9311),
# BUILD_TIMEOUT (seconds per build, default 1800).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TESTS="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$TESTS/.." && pwd)"
SERVERS="${SERVERS:-blocking/echo-server smol/echo-server tokio/echo-server tokio/hyper-echo-server axum/echo-server}"
PORT="${INTEROP_PORT:-9311}"
PY="$HERE/.venv/bin/python"
LOGS="$REPO/tests/reports/interop"
[ -x "$PY" ] && [ -d "$HERE/node_modules/ws" ] || { echo "interop.sh: run $HERE/setup.sh first" >&2; exit 2; }
mkdir -p "$LOGS"

# shellcheck source=../server-process.sh
. "$TESTS/server-process.sh"

passed=0
failed=0
LINES=()
for server in $SERVERS; do
  adapter="${server%%/*}"
  example="${server#*/}"
  a="$adapter"
  [ "$example" = echo-server ] || a="$adapter-${example%-echo-server}"
  echo "######## $a: cargo build --release -p wsflow-$adapter --example $example"
  if ! bindir="$("$TESTS/build-examples.sh" "$adapter" "$example" | tail -n 1)"; then
    LINES+=("$(printf '  %-12s %-7s build failed' "$a" -)")
    failed=$((failed + 2))
    continue
  fi
  "$bindir/$example" "127.0.0.1:$PORT" >"$LOGS/echo-server-$a.log" 2>&1 &
  SERVER_PID=$!
  if ! wait_port "$PORT" 30 "$SERVER_PID"; then
    echo "!! $a echo-server did not accept on 127.0.0.1:$PORT:"; tail -n 20 "$LOGS/echo-server-$a.log"
    LINES+=("$(printf '  %-12s %-7s echo-server did not start' "$a" -)")
    failed=$((failed + 2))
    stop_server
    continue
  fi
  for client in python node; do
    echo "######## $a: $client client"
    out="$LOGS/$a-$client.out"
    rc=0
    if [ $client = python ]; then
      timeout 120 "$PY" "$HERE/py_client.py" "ws://127.0.0.1:$PORT/" 2>&1 | tee "$out" || rc=$?
    else
      timeout 120 node "$HERE/node_client.js" "ws://127.0.0.1:$PORT/" 2>&1 | tee "$out" || rc=$?
    fi
    tally "$a" "$client"
  done
  kill -0 "$SERVER_PID" 2>/dev/null || { LINES+=("$(printf '  %-12s %-7s echo-server died' "$a" -)"); failed=$((failed + 1)); }
  # Last, as it ends the server: `stop-listening` refuses new connections at once, and the
  # process exits by itself once its connections are done.
  echo "######## $a: stop-listening"
  out="$LOGS/$a-stop-listening.out"
  rc=0
  timeout 60 "$PY" "$HERE/py_stop_listening.py" "ws://127.0.0.1:$PORT/" 2>&1 | tee "$out" || rc=$?
  exited=0
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || { exited=1; break; }; sleep 0.1; done
  counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1 || echo "0 passed, 1 failed")"
  p="${counts%% *}"; f="${counts#*, }"; f="${f%% *}"
  if [ "$exited" -eq 1 ]; then p=$((p + 1)); else f=$((f + 1)); counts="$counts; the server did not exit"; fi
  [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] && s=PASS || s=FAIL
  LINES+=("$(printf '  %-12s %-7s %-5s %s' "$a" stop "$s" "$counts")")
  stop_server
done

# Broadcast: deflate and plain members of Python and Node in one room of the tokio
# broadcast-server example (--deflate) decode the same prepared messages.
echo "######## broadcast-server --deflate: Python and Node members"
if bindir="$("$TESTS/build-examples.sh" tokio broadcast-server | tail -n 1)"; then
  "$bindir/broadcast-server" "127.0.0.1:$PORT" --deflate >"$LOGS/broadcast-server.log" 2>&1 &
  SERVER_PID=$!
  if wait_port "$PORT" 30 "$SERVER_PID"; then
    for client in python node; do
      out="$LOGS/broadcast-$client.out"
      rc=0
      if [ $client = python ]; then
        timeout 120 "$PY" "$HERE/py_broadcast.py" "ws://127.0.0.1:$PORT/" 2>&1 | tee "$out" || rc=$?
      else
        timeout 120 node "$HERE/node_broadcast.js" "ws://127.0.0.1:$PORT/" 2>&1 | tee "$out" || rc=$?
      fi
      tally broadcast "$client"
    done
  else
    LINES+=("$(printf '  %-12s %-7s broadcast-server did not start' broadcast -)"); failed=$((failed + 1))
  fi
  stop_server
else
  LINES+=("$(printf '  %-12s %-7s build failed' broadcast -)"); failed=$((failed + 1))
fi

# The other direction: our clients (every adapter) against the peers' servers.
echo "######## our clients against Python websockets and Node ws servers"
out="$LOGS/our-clients.out"
rc=0
timeout 900 cargo test --manifest-path "$REPO/Cargo.toml" -p wsflow-tests --test interop -- --ignored 2>&1 | tee "$out" || rc=$?
counts="$(grep -E '^test result: ' "$out" | tail -n 1 || true)"
p="$(echo "$counts" | sed -nE 's/.* ([0-9]+) passed.*/\1/p')"
f="$(echo "$counts" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')"
p="${p:-0}"; f="${f:-0}"
if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
passed=$((passed + p)); failed=$((failed + f))
[ $rc -eq 0 ] && s=PASS || s=FAIL
LINES+=("$(printf '  %-12s %-7s %-5s %s' "peers" "servers" "$s" "${counts:-no result}")")

echo
echo "== interop overall (logs in $LOGS)"
printf '%s\n' "${LINES[@]}"
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
