#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every crate, the adapters
# over loopback TCP, interoperability with Python websockets and Node ws, headless Chromium
# against the chat and echo servers, the Autobahn testsuite in both roles on every adapter,
# a 30 s soak of each adapter with a 10,000-connection storm (bench/soak.sh), and a short
# run of every fuzz target. Installs what it needs (Python venvs, node_modules,
# Debian's chromium, cargo-fuzz) from the registries.
#
#   ./test.sh            everything
#   ./test.sh rust       only `cargo test`
set -euo pipefail
cd "$(dirname "$0")"
what="${1:-all}"

section() { printf '\n==== %s ====\n' "$*"; }

section "services the Rust tests start (redis-server, tinyproxy, microsocks)"
tests/services/setup.sh
tests/proxies/setup.sh

section "cargo test (workspace, all features)"
cargo test --workspace --all-features

[ "$what" = "rust" ] && exit 0

section "interoperability: Python websockets and Node ws, both directions, every adapter, axum and hyper"
tests/peers/setup.sh
tests/peers/interop.sh

section "wsflow CLI: connect against Python websockets and Node ws; interactive mode in tmux"
cli/tests/interop.sh

section "scale-out: two chat servers and Redis on three hosts (network namespaces), Redis restarted"
tests/services/scale_out.sh

section "headless Chromium against the axum and tokio chat and echo servers"
tests/browser/setup.sh
tests/browser/run.sh

section "Autobahn testsuite, both roles, every adapter"
tests/autobahn/all.sh

section "soak smoke: 30 s of mixed traffic on each adapter (strict), 10,000-connection storm on tokio and smol"
SOAK_STRICT=1 SOAK_MAX_OPS=8 bench/soak.sh 30 10000

section "fuzzing smoke run"
fuzz/run.sh 15
