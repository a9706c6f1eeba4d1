#!/usr/bin/env bash
# Install the third-party peers used by the interop tests: Python `websockets`, `h2` with
# `wsproto` for WebSockets over HTTP/2, and Hypercorn (all pinned in requirements.txt) into
# tests/peers/.venv and Node `ws` (pinned in
# package.json / package-lock.json) into tests/peers/node_modules.
# Idempotent: does nothing when the pinned versions are already installed.
# Needs python3 (>= 3.11; PYTHON selects another) and node/npm (>= 18).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

# Every pinned `name==version` of requirements.txt, as installed.
want_py="$(grep -E '^[A-Za-z0-9_.-]+==' "$HERE/requirements.txt" | tr 'A-Z_' 'a-z-' | sort)"
have_py="$("$HERE/.venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | tr 'A-Z_' 'a-z-' | sort || true)"
if [ -n "$(comm -23 <(echo "$want_py") <(echo "$have_py"))" ]; then
  [ -x "$HERE/.venv/bin/python" ] || "$PYTHON" -m venv "$HERE/.venv"
  "$HERE/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$HERE/requirements.txt"
fi

want_js="$(node -p "require('$HERE/package.json').dependencies.ws")"
have_js="$(node -p "require('$HERE/node_modules/ws/package.json').version" 2>/dev/null || true)"
if [ "$have_js" != "$want_js" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "peers: websockets $("$HERE/.venv/bin/python" -c 'import websockets; print(websockets.__version__)')," \
     "h2 $("$HERE/.venv/bin/python" -c 'import h2; print(h2.__version__)')," \
     "wsproto $("$HERE/.venv/bin/python" -c 'from importlib.metadata import version; print(version("wsproto"))')," \
     "hypercorn $("$HERE/.venv/bin/python" -c 'from importlib.metadata import version; print(version("hypercorn"))')," \
     "ws $(node -p "require('$HERE/node_modules/ws/package.json').version")"
