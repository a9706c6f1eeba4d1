#!/usr/bin/env bash
# Install Autobahn|Testsuite (wstest) ported to Python 3 into tests/.venv-autobahn.
#
# Usage: tests/autobahn/setup.sh [--force]
#
# Only PyPI is contacted (through pip): the pinned dependencies in
# requirements.txt, plus the sdists autobahntestsuite==25.10.1 (Python 2 only)
# and autobahn==0.10.9 (the library version it was written against), which are
# unpacked into tests/.venv-autobahn/src, ported by py3port.py and installed.
# Idempotent: a stamp records the inputs; re-running is a no-op unless they
# changed or --force is given. PYTHON selects the interpreter (>= 3.11).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$(cd "$HERE/.." && pwd)/.venv-autobahn"
SRC="$VENV/src"
PYTHON="${PYTHON:-python3}"
ATS_VERSION="25.10.1"
AUTOBAHN_VERSION="0.10.9"
STAMP="$VENV/.wsflow-stamp"
PIP=(--quiet --disable-pip-version-check --no-input)

want="$({ cat "$HERE/py3port.py" "$HERE/requirements.txt"; echo "$ATS_VERSION $AUTOBAHN_VERSION"; } | sha256sum | cut -d' ' -f1)"
if [ "${1:-}" != "--force" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] \
   && "$VENV/bin/wstest" --autobahnversion >/dev/null 2>&1; then
  echo "autobahn: wstest already set up in $VENV"
  exit 0
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup.sh: Python >= 3.11 required ($PYTHON is older)" >&2; exit 1; }

rm -f "$STAMP"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
echo "== pip install -r requirements.txt"
"$VENV/bin/python" -m pip install "${PIP[@]}" -r "$HERE/requirements.txt"

echo "== download autobahntestsuite==$ATS_VERSION autobahn==$AUTOBAHN_VERSION (sdists)"
rm -rf "$SRC"
mkdir -p "$SRC/dl"
"$VENV/bin/python" -m pip download "${PIP[@]}" --no-deps --no-binary :all: -d "$SRC/dl" \
  "autobahntestsuite==$ATS_VERSION" "autobahn==$AUTOBAHN_VERSION"
tar -xzf "$SRC/dl/autobahntestsuite-$ATS_VERSION.tar.gz" -C "$SRC"
tar -xzf "$SRC/dl/autobahn-$AUTOBAHN_VERSION.tar.gz" -C "$SRC"

echo "== port to Python 3"
"$VENV/bin/python" "$HERE/py3port.py" "$SRC/autobahntestsuite-$ATS_VERSION" "$SRC/autobahn-$AUTOBAHN_VERSION"

echo "== install the ported packages"
"$VENV/bin/python" -m pip install "${PIP[@]}" --no-deps --no-build-isolation --no-cache-dir --force-reinstall \
  "$SRC/autobahn-$AUTOBAHN_VERSION" "$SRC/autobahntestsuite-$ATS_VERSION"

"$VENV/bin/wstest" --autobahnversion
echo "$want" > "$STAMP"
echo "autobahn: wstest ready in $VENV"
