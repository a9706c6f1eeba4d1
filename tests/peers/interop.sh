#!/usr/bin/env bash
# Interop: third-party clients (Python websockets, Node ws) against each echo server
# example (every adapter's, wsflow-axum's, the plain hyper one and the core's event loop),
# then our clients (the core's event-loop client, and every adapter's in
# tests/tests/interop.rs) against their servers, and wsflow's HTTP/2 client against
# Hypercorn (h2c and TLS with ALPN h2, RFC 8441; also in tests/tests/interop.rs).
#
# Usage: tests/peers/interop.sh         (after tests/peers/setup.sh)
#
# For each server A/E in $SERVERS: cargo build --release -p wsflow-A --example E
# (with tests/build-examples.sh; A = core is the core crate, package wsflow),
# starts `E 127.0.0.1:PORT`, runs py_client.py and node_client.js
# against it (and, for axum/echo-server and tokio/hyper-echo-server, which also speak
# HTTP/2, py_h2_client.py: Python `h2` and `wsproto` over h2c, RFC 8441), stops it. Ends with `interop: N passed, M failed` (checks; a client
# that could not run counts as one failed check); exit status 0 if all passed.
#
# Environment: SERVERS (default "blocking/echo-server smol/echo-server tokio/echo-server
# tokio/hyper-echo-server axum/echo-server core/event-loop"), BROADCAST (default 1; 0
# skips the broadcast-server check), OUR_CLIENTS (default "event-loop adapters": the
# core's `event-loop client` against py_server.py and node_server.js, and the adapters'
# clients in tests/tests/interop.rs; "" skips both), WSFLOW_TARGET_DIR
# (default $CARGO_TARGET_DIR or <repo>/target), INTEROP_PORT (default 9311),
# BUILD_TIMEOUT (seconds per build, default 1800).
# One server only, e.g.: SERVERS=core/event-loop BROADCAST=0 OUR_CLIENTS=event-loop tests/peers/interop.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TESTS="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$TESTS/.." && pwd)"
SERVERS="${SERVERS:-blocking/echo-server smol/echo-server tokio/echo-server tokio/hyper-echo-server axum/echo-server core/event-loop}"
BROADCAST="${BROADCAST:-1}"
OUR_CLIENTS="${OUR_CLIENTS-event-loop adapters}"
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
  package="wsflow-$adapter"
  [ "$adapter" = core ] && package=wsflow
  echo "######## $a: cargo build --release -p $package --example $example"
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
  clients="python node"
  [ "$a" = axum ] || [ "$a" = tokio-hyper ] && clients="python node h2"
  for client in $clients; do
    echo "######## $a: $client client"
    out="$LOGS/$a-$client.out"
    rc=0
    if [ $client = python ]; then
      timeout 120 "$PY" "$HERE/py_client.py" "ws://127.0.0.1:$PORT/" 2>&1 | tee "$out" || rc=$?
    elif [ $client = h2 ]; then
      # hyper-echo-server answers 404 off `/`: every WebSocket there is opened on `/`.
      h2_args=()
      [ "$a" = tokio-hyper ] && h2_args=(--root-only)
      timeout 120 "$PY" "$HERE/py_h2_client.py" "127.0.0.1:$PORT" "${h2_args[@]}" 2>&1 | tee "$out" || rc=$?
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
if [ "$BROADCAST" != 0 ]; then
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
fi

# The other direction: our clients against the Python websockets and Node ws servers.
# The core's event-loop client: its checks against each peer's echo server.
if [[ " $OUR_CLIENTS " == *" event-loop "* ]]; then
  echo "######## event-loop client against Python websockets and Node ws servers"
  if bindir="$("$TESTS/build-examples.sh" core event-loop | tail -n 1)"; then
    for peer in py node; do
      if [ $peer = py ]; then
        "$PY" "$HERE/py_server.py" "$PORT" >"$LOGS/py-server.log" 2>&1 &
      else
        node "$HERE/node_server.js" "$PORT" >"$LOGS/node-server.log" 2>&1 &
      fi
      SERVER_PID=$!
      if wait_port "$PORT" 30 "$SERVER_PID"; then
        out="$LOGS/event-loop-client-$peer.out"
        rc=0
        timeout 120 "$bindir/event-loop" client "ws://127.0.0.1:$PORT/" 2>&1 | tee "$out" || rc=$?
        tally event-loop "$peer-srv"
      else
        LINES+=("$(printf '  %-12s %-7s %s server did not start' event-loop "$peer-srv" "$peer")"); failed=$((failed + 1))
      fi
      stop_server
    done
  else
    LINES+=("$(printf '  %-12s %-7s build failed' event-loop client)"); failed=$((failed + 1))
  fi
fi

# Every adapter's client (tests/tests/interop.rs, which starts the peers' servers itself).
if [[ " $OUR_CLIENTS " == *" adapters "* ]]; then
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
fi

echo
echo "== interop overall (logs in $LOGS)"
printf '%s\n' "${LINES[@]}"
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
