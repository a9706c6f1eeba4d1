#!/usr/bin/env bash
# Run the Autobahn|Testsuite against a WebSocket CLIENT (wstest -m fuzzingserver).
#
# Usage: tests/autobahn/client-suite.sh PORT AGENT -- COMMAND [ARGS...]
#   Starts the fuzzing server on 127.0.0.1:PORT, runs
#       COMMAND [ARGS...] ws://127.0.0.1:PORT AGENT
#   (also with AUTOBAHN_URL, AUTOBAHN_PORT and AUTOBAHN_AGENT in its environment),
#   then requests /updateReports, stops the server and prints the summary.
#   The client must follow the standard Autobahn client protocol:
#     ws://127.0.0.1:PORT/getCaseCount                 -> one text message: N
#     ws://127.0.0.1:PORT/runCase?case=I&agent=AGENT   for I in 1..N, echoing every
#                                                     message until the server closes
#     ws://127.0.0.1:PORT/updateReports?agent=AGENT
#
# Environment:
#   AUTOBAHN_CASES       case patterns, comma/space separated (default "*")
#   AUTOBAHN_EXCLUDE     patterns to skip, e.g. "12.* 13.*"
#   AUTOBAHN_REPORT_DIR  report folder (default: tests/reports/autobahn/client)
#   AUTOBAHN_TIMEOUT     time limit for COMMAND in seconds (default: 1800)
#   AUTOBAHN_ALLOW_UNIMPLEMENTED=1  do not fail UNIMPLEMENTED cases (no deflate)
#   AUTOBAHN_STRICT_CLOSE=1  also fail WRONG CODE / FAILED BY CLIENT closing handshakes
#
# Prints a per-group summary ending in `autobahn: N passed, M failed`. Exit status:
# 0 = every case OK or INFORMATIONAL, no FAILED/UNCLEAN closing handshake and
# COMMAND exited 0; 1 = otherwise; 2 = harness error (server did not start, no report).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -ge 4 ] && [ "$3" = "--" ] || usage
PORT="$1"
AGENT="$2"
shift 3
case "$PORT" in ''|*[!0-9]*) echo "client-suite.sh: PORT must be a number" >&2; exit 2 ;; esac
case "$AGENT" in ''|*[!A-Za-z0-9._-]*) echo "client-suite.sh: AGENT must match [A-Za-z0-9._-]+" >&2; exit 2 ;; esac
URL="ws://127.0.0.1:$PORT"
CASES="${AUTOBAHN_CASES:-*}"

prepare_report_dir "$TESTS/reports/autobahn/client"
SPEC="$REPORT_DIR/fuzzingserver.json"
LOG="$REPORT_DIR/wstest.log"
"$PY" "$HARNESS" spec fuzzingserver "$SPEC" "$URL" "$REPORT_DIR" "$CASES" "$EXCLUDE"

if "$PY" "$HARNESS" wait-port "$PORT" 0.5; then
  echo "client-suite.sh: 127.0.0.1:$PORT is already in use" >&2
  exit 2
fi
echo "== wstest fuzzingserver on $URL (cases: $CASES${EXCLUDE:+, excluding: $EXCLUDE}; log: $LOG)"
(cd "$REPORT_DIR" && PYTHONUTF8=1 exec "$VENV/bin/wstest" --mode fuzzingserver --spec "$SPEC" \
   --webport 0 >"$LOG" 2>&1) &
SERVER_PID=$!
stop_server() {
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT
if ! "$PY" "$HARNESS" wait-port "$PORT" 60 "$SERVER_PID"; then
  echo "!! fuzzing server did not start:"; tail -n 20 "$LOG"; exit 2
fi

echo "== client: $* $URL $AGENT"
start=$SECONDS
crc=0
AUTOBAHN_URL="$URL" AUTOBAHN_PORT="$PORT" AUTOBAHN_AGENT="$AGENT" \
  timeout --kill-after=10 "$TIMEOUT" "$@" "$URL" "$AGENT" || crc=$?
echo "== client finished in $((SECONDS - start)) s (exit status $crc)"
[ $crc -ne 124 ] || echo "!! AUTOBAHN_TIMEOUT=$TIMEOUT s reached: the client was stopped"

# idempotent: writes the reports even if the client did not ask for them
timeout 330 "$PY" "$HARNESS" update-reports "$PORT" "$AGENT" || echo "!! /updateReports failed"
stop_server
trap - EXIT

src=0
"$PY" "$HARNESS" summary "$REPORT_DIR" "$SPEC" "$AGENT" "$LOG" || src=$?
if [ $src -eq 0 ] && [ $crc -ne 0 ]; then
  echo "!! all cases passed, but the client command exited with status $crc"
  src=1
fi
exit $src
