#!/usr/bin/env bash
# Installs the real proxies the proxy tests (tests/tests/client_through_proxies.rs) start on
# loopback: Debian's `tinyproxy` (HTTP CONNECT, with and without BasicAuth) and
# `microsocks` (SOCKS5, with and without a user name and password).
# Idempotent: does nothing when both are installed. Needs apt-get (as root, or sudo).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ] || [ -x "/usr/sbin/$1" ]; }
if have tinyproxy && have microsocks; then
  echo "proxies: tinyproxy and microsocks already installed"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends tinyproxy microsocks
# The package starts a system-wide tinyproxy on port 8888; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now tinyproxy >/dev/null 2>&1 || true; fi
command -v service >/dev/null 2>&1 && $sudo service tinyproxy stop >/dev/null 2>&1 || true
echo "proxies: $(tinyproxy -v 2>&1 | head -1), microsocks installed"
