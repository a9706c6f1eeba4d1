#!/usr/bin/env bash
# Builds (release) the named examples of one adapter (package wsflow-ADAPTER; `core`
# means the core crate, package wsflow) and copies them to $TARGET/examples-<adapter>/,
# printing that directory on the last line.
# The three adapters have examples of the same names, which share
# target/release/examples/NAME; copying them aside right after the build keeps them apart
# while the dependencies are built only once in the shared target dir.
#
# Usage: tests/build-examples.sh ADAPTER EXAMPLE...
# Environment: WSFLOW_TARGET_DIR (default $CARGO_TARGET_DIR, else <repo>/target),
#              BUILD_TIMEOUT seconds (default 1800).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${WSFLOW_TARGET_DIR:-${CARGO_TARGET_DIR:-$REPO/target}}"
adapter="$1"
shift
package="wsflow-$adapter"
[ "$adapter" = core ] && package=wsflow
args=()
for example in "$@"; do args+=(--example "$example"); done
CARGO_TARGET_DIR="$TARGET" timeout "${BUILD_TIMEOUT:-1800}" \
  cargo build --release --manifest-path "$REPO/Cargo.toml" -p "$package" "${args[@]}" >&2
dir="$TARGET/examples-$adapter"
mkdir -p "$dir"
for example in "$@"; do cp "$TARGET/release/examples/$example" "$dir/"; done
echo "$dir"
