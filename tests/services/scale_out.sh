#!/usr/bin/env bash
# Scale-out across machines, simulated: Redis and two chat servers (wsflow-tokio's chat
# example with --redis) each on a host of its own, made here as network namespaces joined by
# a bridge (veth pairs), so that what crosses between the chat servers is what would cross
# a network. A Python client in the root namespace puts a member on each server and checks
# that lines cross both ways, then Redis is killed and restarted, and lines cross again.
#
# Usage: tests/services/scale_out.sh   (as root; after tests/services/setup.sh and
# tests/peers/setup.sh). Ends with `scale-out: N passed, M failed`.
# Environment: WSFLOW_TARGET_DIR, BUILD_TIMEOUT (see tests/build-examples.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TESTS="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$TESTS/.." && pwd)"
PY="$TESTS/peers/.venv/bin/python"
LOGS="$REPO/tests/reports/scale-out"
mkdir -p "$LOGS"
NET=10.77.0
BRIDGE=wsfbr0
HOSTS=(redis chat-a chat-b)

cleanup() {
  for pid in ${PIDS:-}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for host in "${HOSTS[@]}"; do ip netns del "wsf-$host" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

bindir="$("$TESTS/build-examples.sh" tokio chat | tail -n 1)"

ip link add "$BRIDGE" type bridge
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
n=10
for host in "${HOSTS[@]}"; do
  ip netns add "wsf-$host"
  ip link add "veth-$host" type veth peer name eth0 netns "wsf-$host"
  ip link set "veth-$host" master "$BRIDGE" up
  ip -n "wsf-$host" addr add "$NET.$n/24" dev eth0
  ip -n "wsf-$host" link set eth0 up
  ip -n "wsf-$host" link set lo up
  n=$((n + 1))
done

start_redis() {
  ip netns exec wsf-redis redis-server --bind "$NET.10" --port 6379 --save '' --appendonly no \
    --protected-mode no >>"$LOGS/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/$NET.10/6379") 2>/dev/null && return 0; sleep 0.1; done
  echo "redis did not start"; return 1
}
start_redis
ip netns exec wsf-chat-a "$bindir/chat" "$NET.11:9002" --redis "redis://$NET.10:6379/" >"$LOGS/chat-a.log" 2>&1 &
CHAT_A=$!
ip netns exec wsf-chat-b "$bindir/chat" "$NET.12:9002" --redis "redis://$NET.10:6379/" >"$LOGS/chat-b.log" 2>&1 &
CHAT_B=$!
PIDS="$CHAT_A $CHAT_B"
for addr in "$NET.11" "$NET.12"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/$addr/9002") 2>/dev/null && break; sleep 0.1; done
done

flag="$(mktemp -u)"
out="$LOGS/client.out"
rc=0
"$PY" "$TESTS/peers/py_chat_scaleout.py" "ws://$NET.11:9002/ws" "ws://$NET.12:9002/ws" "$flag" >"$out" 2>&1 &
client=$!
for _ in $(seq 300); do [ -e "$flag" ] && break; kill -0 "$client" 2>/dev/null || break; sleep 0.1; done
if [ -e "$flag" ]; then
  echo "######## killing Redis, restarting it in 1 s"
  kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
  sleep 1
  start_redis
  rm -f "$flag"
fi
wait "$client" || rc=$?
cat "$out"
kill -0 "$CHAT_A" 2>/dev/null && kill -0 "$CHAT_B" 2>/dev/null || { echo "FAIL a chat server died"; rc=1; }
PIDS="$CHAT_A $CHAT_B $REDIS_PID"
counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1 || echo "0 passed, 1 failed")"
echo "scale-out: $counts"
[ $rc -eq 0 ]
