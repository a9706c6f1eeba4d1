# shellcheck shell=bash disable=SC2034
# Sourced by server-suite.sh and client-suite.sh (not executable on its own).
# Sets HERE, TESTS, VENV, PY, HARNESS, REPORT_DIR, EXCLUDE, TIMEOUT and
# provides prepare_report_dir.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TESTS="$(cd "$HERE/.." && pwd)"
VENV="$TESTS/.venv-autobahn"
PY="$VENV/bin/python"
HARNESS="$HERE/harness.py"
EXCLUDE="${AUTOBAHN_EXCLUDE:-}"
TIMEOUT="${AUTOBAHN_TIMEOUT:-1800}"

usage() {  # print the header comment of the calling script
  sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

if [ ! -x "$VENV/bin/wstest" ]; then
  echo "autobahn: $VENV/bin/wstest is missing; run $HERE/setup.sh first" >&2
  exit 2
fi

prepare_report_dir() {  # $1 = default dir; sets REPORT_DIR (absolute), removes old results
  REPORT_DIR="${AUTOBAHN_REPORT_DIR:-$1}"
  mkdir -p "$REPORT_DIR"
  REPORT_DIR="$(cd "$REPORT_DIR" && pwd)"
  rm -f "$REPORT_DIR"/index.html "$REPORT_DIR"/index.json "$REPORT_DIR"/*_case_*.html \
        "$REPORT_DIR"/*_case_*.json "$REPORT_DIR"/wstest.log
}
