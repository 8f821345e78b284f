#!/usr/bin/env bash
# Install the SMART Bulk Data Tester (bdt) into .bdt/ for tests/bdt/test_bdt.py.
# The tester's sources come from the shared suites folder (see its ORIGIN.md); its Node packages
# come from the npm registry now, so nothing is downloaded while the tests run. Safe to rerun:
# an install whose package-lock.json is unchanged is left as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=${KETNOI_BDT_SOURCE:-$here/tests/bdt/tester}
dest=$here/.bdt
if [ ! -f "$src/build/lib/bin.js" ]; then
  echo "bdt-install: no Bulk Data Tester at $src (set KETNOI_BDT_SOURCE)" >&2
  exit 1
fi
command -v node >/dev/null 2>&1 || { echo "bdt-install: node (>= 14) is required" >&2; exit 1; }
if [ -f "$dest/.installed" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
# The copy is writable (the shared folder is read-only) and holds no docs or sources it does not run.
cp -r "$src/build" "$src/package.json" "$src/package-lock.json" "$src/.npmrc" "$dest/"
chmod -R u+w "$dest"
(cd "$dest" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
touch "$dest/.installed"
echo "bdt installed in $dest"
