#!/usr/bin/env bash
# Install the third-party peers used by the interop tests: Python `websockets`
# (pinned in requirements.txt) into tests/peers/.venv and Node `ws` (pinned in
# package.json / package-lock.json) into tests/peers/node_modules.
# Idempotent: does nothing when the pinned versions are already installed.
# Needs python3 (>= 3.11; PYTHON selects another) and node/npm (>= 18).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

want_py="$(sed -n 's/^websockets==//p' "$HERE/requirements.txt")"
have_py="$("$HERE/.venv/bin/python" -c 'import websockets; print(websockets.__version__)' 2>/dev/null || true)"
if [ "$have_py" != "$want_py" ]; then
  [ -x "$HERE/.venv/bin/python" ] || "$PYTHON" -m venv "$HERE/.venv"
  "$HERE/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$HERE/requirements.txt"
fi

want_js="$(node -p "require('$HERE/package.json').dependencies.ws")"
have_js="$(node -p "require('$HERE/node_modules/ws/package.json').version" 2>/dev/null || true)"
if [ "$have_js" != "$want_js" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "peers: websockets $("$HERE/.venv/bin/python" -c 'import websockets; print(websockets.__version__)')," \
     "ws $(node -p "require('$HERE/node_modules/ws/package.json').version")"
