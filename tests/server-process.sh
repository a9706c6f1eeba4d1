# shellcheck shell=bash
# Sourced by tests/autobahn/all.sh and tests/peers/interop.sh: one background server
# process at a time, stopped on exit.

SERVER_PID=""

stop_server() {  # stops the server started last, politely then firmly
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  [ -z "$SERVER_PID" ] || wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

wait_port() {  # port seconds pid: waits until 127.0.0.1:port accepts, while pid lives
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt "$deadline" ]; do
    kill -0 "$3" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

tally() {  # label-printf-args... : reads $out, $rc; adds to $passed/$failed and $LINES
  # The file's last `N passed, M failed` line (none: a failure); a non-zero exit status
  # with no failed check counts as one failure.
  local counts p f s
  counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1 || true)"
  p=0; f=0
  if [ -n "$counts" ]; then p="${counts%% *}"; f="${counts#*, }"; f="${f%% *}"; else counts="no result"; fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; counts="$counts (exit status $rc)"; fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] && s=PASS || s=FAIL
  LINES+=("$(printf '  %-12s %-7s %-5s %s' "$1" "${2:--}" "$s" "$counts")")
}
