#!/usr/bin/env bash
# Self-test of the test tooling against third-party peers only (no Rust needed):
#   1. py_client.py  -> node_server.js   and   node_client.js -> py_server.py
#   2. tests/autobahn/server-suite.sh -> node_server.js (cases ws passes strictly)
#   3. tests/autobahn/client-suite.sh with py_autobahn_client.py (cases websockets passes)
#   4. negative control: server-suite on 6.4.* must FAIL (ws is NON-STRICT there)
#
# Usage: tests/peers/selftest.sh   (runs both setup scripts first; about 40 s)
# Ends with `selftest: N passed, M failed` (steps); exit status 0 if all passed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AB="$(cd "$HERE/../autobahn" && pwd)"
PY="$HERE/.venv/bin/python"
REPORTS="$(cd "$HERE/.." && pwd)/reports/selftest"
BASE="${SELFTEST_PORT:-9321}"

"$AB/setup.sh"
"$HERE/setup.sh"
mkdir -p "$REPORTS"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

start() {  # port log command...
  local port=$1 log=$2; shift 2
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
  "$AB/../.venv-autobahn/bin/python" "$AB/harness.py" wait-port "$port" 20 $! \
    || { echo "!! could not start: $*"; cat "$log"; exit 2; }
}
start "$BASE" "$REPORTS/py_server.log" "$PY" "$HERE/py_server.py" "$BASE"
start "$((BASE + 1))" "$REPORTS/node_server.log" node "$HERE/node_server.js" "$((BASE + 1))"

passed=0
failed=0
step() {  # expected-exit-status name command...
  local want=$1 name=$2 rc=0; shift 2
  echo "######## $name"
  "$@" || rc=$?
  if { [ "$want" = 0 ] && [ $rc -eq 0 ]; } || { [ "$want" = fail ] && [ $rc -eq 1 ]; }; then
    echo "-- selftest step ok: $name"; passed=$((passed + 1))
  else
    echo "!! selftest step FAILED: $name (exit status $rc, wanted $want)"; failed=$((failed + 1))
  fi
}

step 0 "py_client -> node_server" \
  timeout 120 "$PY" "$HERE/py_client.py" "ws://127.0.0.1:$((BASE + 1))" --server-close
step 0 "node_client -> py_server" \
  timeout 120 node "$HERE/node_client.js" "ws://127.0.0.1:$BASE" --server-close
SAMPLE="1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*,12.1.1,12.2.2,13.3.1,13.7.1"
step 0 "server-suite -> node_server" env AUTOBAHN_AGENT=ws AUTOBAHN_REPORT_DIR="$REPORTS/server" \
  AUTOBAHN_EXCLUDE="6.4.*" AUTOBAHN_TIMEOUT=300 "$AB/server-suite.sh" "ws://127.0.0.1:$((BASE + 1))" "$SAMPLE"
# websockets is NON-STRICT or FAILED in 3.x, 4.x, 5.15, 6.4.x, 7.1.5 (documented upstream)
step 0 "client-suite <- py_autobahn_client" env AUTOBAHN_REPORT_DIR="$REPORTS/client" \
  AUTOBAHN_CASES="$SAMPLE" AUTOBAHN_EXCLUDE="3.* 4.* 5.15 6.4.* 7.1.5" AUTOBAHN_TIMEOUT=300 \
  "$AB/client-suite.sh" "$((BASE + 2))" websockets -- "$PY" "$HERE/py_autobahn_client.py"
step fail "negative control: server-suite 6.4.* -> node_server" env AUTOBAHN_AGENT=ws \
  AUTOBAHN_REPORT_DIR="$REPORTS/negative" "$AB/server-suite.sh" "ws://127.0.0.1:$((BASE + 1))" "6.4.*"

echo
echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
