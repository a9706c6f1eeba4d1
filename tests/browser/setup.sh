#!/usr/bin/env bash
# Installs what tests/browser/run.sh needs: Debian's chromium (apt-get, as root, once) and
# playwright-core (pinned in package.json / package-lock.json) into tests/browser/node_modules.
# Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
want="$(node -p "require('$HERE/package.json').dependencies['playwright-core']")"
have="$(node -p "require('$HERE/node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "browser: $("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null | head -n 1), playwright-core $want"
