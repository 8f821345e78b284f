#!/usr/bin/env bash
# Install what the browser tests (tests/console) need, so nothing is downloaded while they run:
# Debian's chromium at /usr/bin/chromium (Playwright drives it; `playwright install` is never used) and
# axe-core, the accessibility checker, from the npm registry into .axe/ (gitignored).
# Safe to rerun: what is already there is left as it is, and a rerun takes well under a second.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
axe=$here/.axe

if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "browser-install: chromium is missing and installing it needs root (or sudo)" >&2; exit 1; }
    sudo="sudo"
  fi
  # apt's output goes to a log, shown only when it fails.
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "browser-install: apt-get could not install chromium" >&2
    exit 1
  fi
  echo "browser-install: installed chromium ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
fi

if [ ! -f "$axe/node_modules/axe-core/axe.min.js" ]; then
  command -v npm >/dev/null 2>&1 || { echo "browser-install: npm is required to install axe-core" >&2; exit 1; }
  npm install --prefix "$axe" --no-audit --no-fund --no-save --loglevel=error axe-core@4 >/dev/null
  echo "browser-install: installed axe-core $(node -p "require('$axe/node_modules/axe-core/package.json').version") in $axe"
fi
