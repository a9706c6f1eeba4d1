#!/usr/bin/env bash
# Run the Autobahn|Testsuite against a WebSocket SERVER (wstest -m fuzzingclient).
#
# Usage: tests/autobahn/server-suite.sh URL [CASES]
#   URL    ws://127.0.0.1:PORT[/path] of a server that is already listening and
#          echoes every text/binary message unchanged (loopback URLs only)
#   CASES  case patterns, comma/space separated (default "*"), e.g. "1.*,2.*,7.1.5"
#
# Environment:
#   AUTOBAHN_EXCLUDE     patterns to skip, e.g. "12.* 13.*" (permessage-deflate, ~8 min)
#   AUTOBAHN_AGENT       agent name in the report (default: wsflow)
#   AUTOBAHN_REPORT_DIR  report folder (default: tests/reports/autobahn/server)
#   AUTOBAHN_TIMEOUT     time limit for wstest in seconds (default: 1800); on expiry
#                        the cases done so far are reported, the rest are MISSING
#   AUTOBAHN_ALLOW_UNIMPLEMENTED=1  do not fail UNIMPLEMENTED cases (no deflate)
#   AUTOBAHN_STRICT_CLOSE=1  also fail WRONG CODE / FAILED BY CLIENT closing handshakes
#
# Prints a per-group summary ending in `autobahn: N passed, M failed`. Exit status:
# 0 = every case OK or INFORMATIONAL and no FAILED/UNCLEAN closing handshake,
# 1 = otherwise, 2 = harness error (no report, bad arguments).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -ge 1 ] && [ $# -le 2 ] || usage
URL="$1"
CASES="${2:-*}"
AGENT="${AUTOBAHN_AGENT:-wsflow}"
if ! [[ "$URL" =~ ^ws://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\])(:[0-9]+)?(/.*)?$ ]]; then
  echo "server-suite.sh: refusing non-loopback URL $URL" >&2
  exit 2
fi

prepare_report_dir "$TESTS/reports/autobahn/server"
SPEC="$REPORT_DIR/fuzzingclient.json"
LOG="$REPORT_DIR/wstest.log"
"$PY" "$HARNESS" spec fuzzingclient "$SPEC" "$URL" "$REPORT_DIR" "$CASES" "$EXCLUDE" "$AGENT"

echo "== wstest fuzzingclient -> $URL (agent $AGENT, cases: $CASES${EXCLUDE:+, excluding: $EXCLUDE})"
start=$SECONDS
rc=0
(cd "$REPORT_DIR" && PYTHONUTF8=1 timeout --signal=INT --kill-after=30 "$TIMEOUT" \
   "$VENV/bin/wstest" --mode fuzzingclient --spec "$SPEC" >"$LOG" 2>&1) || rc=$?
echo "== wstest finished in $((SECONDS - start)) s (exit status $rc; log: $LOG)"
if [ $rc -eq 124 ]; then
  echo "!! AUTOBAHN_TIMEOUT=$TIMEOUT s reached: only the cases completed so far are reported"
elif [ $rc -ne 0 ]; then
  tail -n 8 "$LOG"
fi
grep -m 3 "^Connection to .* failed" "$LOG" || true

"$PY" "$HARNESS" summary "$REPORT_DIR" "$SPEC" "$AGENT" "$LOG"
