#!/usr/bin/env bash
# The interactive mode of `wsflow connect` the way a person uses it: in a terminal (tmux),
# typing lines and slash commands (send-keys), reading the screen (capture-pane).
# Checks: lines echoed, /ping prints a round-trip time, /binary, //text, an unknown
# command, /close CODE REASON, /quit, Ctrl-C closing with 1001; each exit status.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux >/dev/null; }
cargo build -q -p wsflow-cli
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/wsflow"
WORK="$(mktemp -d)"
SOCKET="wsflow-cli-test-$$"
SERVER_PID=""
EVIL_PID=""
cleanup() {
  tmux -L "$SOCKET" kill-server 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "$EVIL_PID" ] && kill "$EVIL_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" serve 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.05; done
URL="$(sed -n 's/^listening on //p' "$WORK/serve.out")"
[ -n "$URL" ] || { echo "FAIL: wsflow serve did not start"; cat "$WORK/serve.err"; exit 1; }

failures=0
screen() { tmux -L "$SOCKET" capture-pane -p -t "$1" -S -200; }
# wait_for PANE REGEX: until the screen matches (10 s at most).
wait_for() {
  for _ in $(seq 200); do screen "$1" | grep -Eq -- "$2" && return 0; sleep 0.05; done
  echo "FAIL: pane $1 never showed /$2/; screen:"; screen "$1" | sed 's/^/    | /'
  failures=$((failures + 1))
  return 1
}
# count PANE REGEX: how many screen lines match.
count() { screen "$1" | grep -Ec -- "$2" || true; }
type_line() { tmux -L "$SOCKET" send-keys -t "$1" -l -- "$2"; tmux -L "$SOCKET" send-keys -t "$1" Enter; }
start() { # start PANE ARGS..: wsflow connect in a fresh terminal, exit status printed after
  local pane="$1"; shift
  tmux -L "$SOCKET" new-session -d -s "$pane" -x 160 -y 60 \
    "$BIN connect $* $URL; echo EXIT=\$?; sleep 60"
  wait_for "$pane" "connected to ws://"
}
ok() { echo "ok: $*"; }

start lines -v
type_line lines "hello there"
wait_for lines "\\] < text 11 bytes" && [ "$(count lines '^hello there$')" -ge 2 ] && ok "a typed line comes back"
type_line lines "/ping abc"
wait_for lines "^pong: [0-9.]+ ms$" && ok "/ping prints the round-trip time"
type_line lines "/binary 48 69 ff"
wait_for lines "^<binary 3 bytes> 48 69 ff$" && ok "/binary sends bytes, the echo is summarised"
type_line lines "//not a command"
wait_for lines "^/not a command$" && ok "//text sends /text"
type_line lines "/bogus"
wait_for lines "unknown command /bogus" && ok "an unknown command is refused, not sent"
type_line lines "/close 4000 done here"
wait_for lines '> close 4000 "done here"' && wait_for lines '^closed: 4000' && wait_for lines "^EXIT=0$" && ok "/close 4000 REASON closes, exit 0"

start quit
type_line quit "/quit"
wait_for quit "^EXIT=0$" && ok "/quit exits 0"

start interrupt -v
type_line interrupt "before ctrl-c"
wait_for interrupt "^before ctrl-c$"
tmux -L "$SOCKET" send-keys -t interrupt C-c
wait_for interrupt "> close 1001" && wait_for interrupt "< close 1001" && wait_for interrupt "^EXIT=0$" \
  && ok "Ctrl-C closes with 1001, exit 0"

start eof
tmux -L "$SOCKET" send-keys -t eof C-d
wait_for eof "^EXIT=0$" && ok "Ctrl-D (EOF) closes with 1000, exit 0"

# A server that sends a terminal escape sequence: shown escaped, not obeyed.
"$BIN" serve 127.0.0.1:0 --exec "printf 'evil\\033[2Jtext\\n'; sleep 5" >"$WORK/evil.out" 2>/dev/null &
EVIL_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/evil.out" 2>/dev/null && break; sleep 0.05; done
EVIL_URL="$(sed -n 's/^listening on //p' "$WORK/evil.out")"
tmux -L "$SOCKET" new-session -d -s evil -x 160 -y 60 "$BIN connect $EVIL_URL; echo EXIT=\$?; sleep 60"
wait_for evil 'connected to ws://' && wait_for evil '^evil\\u\{1b\}\[2Jtext$' \
  && ok "escape sequences from the peer are shown escaped in a terminal"
kill "$EVIL_PID" 2>/dev/null || true

if [ "$failures" -ne 0 ]; then echo "interactive: $failures failure(s)"; exit 1; fi
echo "interactive: all passed"
