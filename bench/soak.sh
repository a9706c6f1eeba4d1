#!/usr/bin/env bash
# Soak: mixed traffic (0 B to 1 MiB, fragments, pings, deflate on and off, slow readers,
# clean and abrupt closes) against the echo servers of wsflow's three adapters, and of
# Node `ws` and Python `websockets` when tests/peers/setup.sh has installed them; reports
# server RSS and descriptors over time, errors and p50/p99 (see bench/src/bin/soak.rs).
# Then a connect storm: 10,000 connections on each async server (connect+upgrade rate,
# RSS per connection, all echoing, descriptors back after they vanish).
#
# Usage: bench/soak.sh [SECONDS] [STORM]   (soak seconds per server, default 600;
#                                          storm connections, default 10000, 0: none)
# Environment: SOAK_STRICT=1   only the wsflow servers, and exit 1 when one has errors,
#                              grows after the warm-up or keeps descriptors (CI's smoke);
#              SOAK_CONNECTIONS (default 32); SOAK_MAX_OPS, operations per session (default 40;
#              CI's smoke uses 8: more sessions, so a leak per connection shows in 30 s);
#              WSFLOW_TARGET_DIR as tests/build-examples.sh.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${1:-600}"
STORM="${2:-10000}"
export CARGO_TARGET_DIR="${WSFLOW_TARGET_DIR:-${CARGO_TARGET_DIR:-$REPO/target}}"
# The storm holds 10,000 sockets on each side of loopback (each side a process of its own).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
limit="$(ulimit -n)"
if [ "$limit" != unlimited ] && [ "$STORM" -gt $((limit - 100)) ]; then
  echo "soak: open files limited to $limit here: the storm opens $((limit - 100)) connections, not $STORM" >&2
  STORM=$((limit - 100))
fi

declare -A command slack
names=()
for adapter in tokio smol blocking; do
  dir="$("$REPO/tests/build-examples.sh" "$adapter" echo-server | tail -n 1)"
  names+=("wsflow-$adapter")
  command["wsflow-$adapter"]="$dir/echo-server 127.0.0.1:{port}"
done
# Thread per connection: each thread's malloc arena keeps its own peak, which the first
# minute of mixed traffic does not reach (it levels off at about 50 MiB with 32 clients).
slack[wsflow-blocking]=12
strict=()
if [ "${SOAK_STRICT:-0}" = 1 ]; then
  strict=(--strict)
else
  peers="$REPO/tests/peers"
  if [ -d "$peers/node_modules/ws" ]; then
    names+=(node-ws)
    command[node-ws]="node $peers/node_server.js {port}"
  fi
  if [ -x "$peers/.venv/bin/python" ]; then
    names+=(python-websockets)
    command[python-websockets]="$peers/.venv/bin/python $peers/py_server.py {port}"
  fi
fi
cargo build --release --manifest-path "$REPO/bench/Cargo.toml" --bin soak >&2
SOAK="$CARGO_TARGET_DIR/release/soak"

status=0
for name in "${names[@]}"; do
  "$SOAK" --secs "$SECONDS_EACH" --connections "${SOAK_CONNECTIONS:-32}" --max-ops "${SOAK_MAX_OPS:-40}" \
    --rss-slack-mib "${slack[$name]:-4}" --server "$name=${command[$name]}" "${strict[@]}" || status=1
done
if [ "$STORM" != 0 ]; then
  storm_servers=()
  for name in "${names[@]}"; do
    [ "$name" = wsflow-blocking ] && continue # a thread per connection: not for 10,000
    storm_servers+=(--server "$name=${command[$name]}")
  done
  "$SOAK" --storm "$STORM" "${storm_servers[@]}" "${strict[@]}" || status=1
fi
exit "$status"
