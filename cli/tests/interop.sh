#!/usr/bin/env bash
# wsflow connect against Python `websockets` and Node `ws` servers (the #[ignore]d tests
# of cli/tests/interop_python_node.rs), after installing the peers; then the interactive
# mode in tmux (cli/tests/interactive.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/peers/setup.sh
cargo test -p wsflow-cli --test interop_python_node -- --ignored
cli/tests/interactive.sh
