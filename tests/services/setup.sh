#!/usr/bin/env bash
# Installs the services the Rust tests start themselves on loopback ports: Debian's
# redis-server (tests/tests/redis_bridge.rs, the chat example's --redis mode). Idempotent;
# needs root for apt-get (as on the project's machines and CI).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package starts a system-wide server on 6379; the tests start their own.
  (service redis-server stop || pkill -x redis-server || true) >/dev/null 2>&1
fi
echo "services: $(redis-server --version | head -n 1)"
