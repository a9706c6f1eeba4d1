#!/usr/bin/env bash
# Run the Autobahn|Testsuite against every wsflow adapter, in both roles.
#
# Usage: tests/autobahn/all.sh
#
# For each adapter A in $ADAPTERS:
#   1. cargo build --release -p wsflow-A --example echo-server --example autobahn-client
#   2. server role: starts `echo-server 127.0.0.1:PORT`, waits until it accepts,
#      runs server-suite.sh against it (agent wsflow-A), stops it;
#   3. client role: client-suite.sh PORT+1 wsflow-A -- autobahn-client
#      (the example gets the base URL and the agent name as its two arguments);
#      only for adapters with a client (wsflow-axum is a server integration: server role only).
# `event-loop` is the core crate alone in a custom event loop: cargo build --release -p
# wsflow --example event-loop; the server is `event-loop 127.0.0.1:PORT`, the client
# `event-loop autobahn-client` (agent wsflow-event-loop).
# Then prints one line per adapter and role and `autobahn: N passed, M failed`
# (a role that could not run counts all its selected cases as failed).
# Exit status 0 only if every suite passed.
#
# Environment:
#   ADAPTERS            adapters to test (default: "blocking smol tokio axum event-loop")
#   WSFLOW_TARGET_DIR   cargo target directory (see tests/build-examples.sh)
#   AUTOBAHN_CASES      case patterns (default "*")
#   AUTOBAHN_EXCLUDE    patterns to skip (default: the slow permessage-deflate cases,
#                       see DEFAULT_EXCLUDE below; set it to "" for all 517 cases,
#                       about 8 min per suite more)
#   AUTOBAHN_PORT       first of the two loopback ports used (default: 9301)
#   AUTOBAHN_REPORT_DIR reports go to its sub-directories A-server, A-client
#                       (default: tests/reports/autobahn)
#   AUTOBAHN_ALLOW_UNIMPLEMENTED, AUTOBAHN_STRICT_CLOSE, AUTOBAHN_TIMEOUT: passed on
#   BUILD_TIMEOUT       seconds allowed for each cargo build (default: 1800)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TESTS="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$TESTS/.." && pwd)"
PY="$TESTS/.venv-autobahn/bin/python"

# 12.x/13.x repeat 1000 compressed round trips per case (wstest's Python zlib is
# the bottleneck: ~8 min per suite for all 216). Keep every payload type (12.1-5)
# and negotiation variant (13.1-7), with 16-byte (x.y.1), 4 KiB (x.y.5) and
# 8 KiB-in-256-byte-frames (x.y.11) messages: 36 cases, ~23 s.
DEFAULT_EXCLUDE="$(for n in 2 3 4 6 7 8 9 10 12 13 14 15 16 17 18; do printf '12.*.%s 13.*.%s ' "$n" "$n"; done)"

ADAPTERS="${ADAPTERS:-blocking smol tokio axum event-loop}"
CASES="${AUTOBAHN_CASES:-*}"
export AUTOBAHN_EXCLUDE="${AUTOBAHN_EXCLUDE-$DEFAULT_EXCLUDE}"
PORT="${AUTOBAHN_PORT:-9301}"
REPORTS="${AUTOBAHN_REPORT_DIR:-$TESTS/reports/autobahn}"
export BUILD_TIMEOUT="${BUILD_TIMEOUT:-1800}"
unset AUTOBAHN_REPORT_DIR AUTOBAHN_CASES

"$HERE/setup.sh"
mkdir -p "$REPORTS"
REPORTS="$(cd "$REPORTS" && pwd)"
SELECTED="$("$PY" "$HERE/harness.py" count "$CASES" "$AUTOBAHN_EXCLUDE")"
echo "== autobahn: adapters: $ADAPTERS; $SELECTED case(s) per suite (cases: $CASES, excluding: ${AUTOBAHN_EXCLUDE:-none})"

# shellcheck source=../server-process.sh
. "$TESTS/server-process.sh"

RESULTS=()
total_pass=0
total_fail=0
record() {  # adapter role status output-file-or-empty seconds
  local counts passed failed
  counts=""
  if [ -n "$4" ]; then
    counts="$(grep -E '^autobahn: [0-9]+ passed, [0-9]+ failed' "$4" | tail -n 1 || true)"
  fi
  if [ -n "$counts" ]; then
    passed="$(echo "$counts" | sed -E 's/^autobahn: ([0-9]+) passed.*/\1/')"
    failed="$(echo "$counts" | sed -E 's/^autobahn: [0-9]+ passed, ([0-9]+) failed.*/\1/')"
  else
    passed=0; failed=$SELECTED; counts="no result"
  fi
  total_pass=$((total_pass + passed))
  total_fail=$((total_fail + failed))
  RESULTS+=("$(printf '  %-10s %-7s %-5s %-45s %5ss' "$1" "$2" "$3" "${counts#autobahn: }" "$5")")
}

suite_status() {  # exit status -> PASS/FAIL
  [ "$1" -eq 0 ] && echo PASS || echo FAIL
}

status=0
for a in $ADAPTERS; do
  # What to build and run: the adapter's echo-server and autobahn-client examples, or the
  # core's event-loop example (the server, and its autobahn-client subcommand).
  if [ "$a" = event-loop ]; then
    crate=core package=wsflow server=event-loop examples=(event-loop) client=(event-loop autobahn-client)
  else
    crate=$a package=wsflow-$a server=echo-server examples=(echo-server) client=()
    if [ -f "$REPO/adapters/$a/examples/autobahn-client.rs" ]; then
      examples+=(autobahn-client) client=(autobahn-client)
    fi
  fi
  echo
  echo "######## $a: cargo build --release -p $package"
  t0=$SECONDS
  if ! bindir="$("$TESTS/build-examples.sh" "$crate" "${examples[@]}" | tail -n 1)"; then
    echo "!! build of $package failed"
    record "$a" server FAIL "" $((SECONDS - t0))
    [ ${#client[@]} -eq 0 ] || record "$a" client FAIL "" 0
    status=1
    continue
  fi

  echo "######## $a: server role ($bindir/$server 127.0.0.1:$PORT)"
  t0=$SECONDS
  out="$REPORTS/$a-server.out"
  mkdir -p "$REPORTS/$a-server"
  "$bindir/$server" "127.0.0.1:$PORT" >"$REPORTS/$a-server/echo-server.log" 2>&1 &
  SERVER_PID=$!
  if "$PY" "$HERE/harness.py" wait-port "$PORT" 30 "$SERVER_PID"; then
    rc=0
    AUTOBAHN_AGENT="wsflow-$a" AUTOBAHN_REPORT_DIR="$REPORTS/$a-server" \
      "$HERE/server-suite.sh" "ws://127.0.0.1:$PORT" "$CASES" 2>&1 | tee "$out" || rc=$?
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "!! $server exited during the suite"; rc=1; }
    record "$a" server "$(suite_status $rc)" "$out" $((SECONDS - t0))
  else
    echo "!! $server did not accept on 127.0.0.1:$PORT within 30 s:"
    tail -n 20 "$REPORTS/$a-server/echo-server.log"
    rc=1
    record "$a" server FAIL "" $((SECONDS - t0))
  fi
  stop_server
  [ $rc -eq 0 ] || status=1
  [ ${#client[@]} -gt 0 ] || continue

  echo "######## $a: client role ($bindir/${client[*]})"
  t0=$SECONDS
  out="$REPORTS/$a-client.out"
  rc=0
  AUTOBAHN_CASES="$CASES" AUTOBAHN_REPORT_DIR="$REPORTS/$a-client" \
    "$HERE/client-suite.sh" "$((PORT + 1))" "wsflow-$a" -- "$bindir/${client[0]}" "${client[@]:1}" 2>&1 | tee "$out" || rc=$?
  record "$a" client "$(suite_status $rc)" "$out" $((SECONDS - t0))
  [ $rc -eq 0 ] || status=1
done

echo
echo "== autobahn overall ($SELECTED case(s) per suite; reports in $REPORTS)"
printf '%s\n' "${RESULTS[@]}"
echo "autobahn: $total_pass passed, $total_fail failed"
exit $status
