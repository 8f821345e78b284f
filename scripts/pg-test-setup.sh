#!/usr/bin/env bash
# Make a local PostgreSQL available for the test suite and print its admin URL.
# Starts the machine's installed-but-stopped cluster if needed and creates a role that may
# create throwaway databases. Safe to run repeatedly. Prints nothing and exits 1 if no
# PostgreSQL server is installed.
set -euo pipefail
if [ -n "${KETNOI_TEST_POSTGRES_URL:-}" ]; then echo "$KETNOI_TEST_POSTGRES_URL"; exit 0; fi
command -v pg_lsclusters >/dev/null 2>&1 || exit 1
cluster=$(pg_lsclusters --no-header 2>/dev/null | head -n 1) || true
[ -n "$cluster" ] || exit 1
read -r ver name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
  pg_ctlcluster "$ver" "$name" start >&2
fi
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
for _ in $(seq 1 30); do
  as_postgres "psql -p $port -tAc 'select 1'" >/dev/null 2>&1 && break
  sleep 0.5
done
as_postgres "psql -p $port -v ON_ERROR_STOP=1 -q" >&2 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ketnoi_test') THEN
    CREATE ROLE ketnoi_test LOGIN CREATEDB PASSWORD 'ketnoi_test';
  END IF;
END \$\$;
SQL
echo "postgresql://ketnoi_test:ketnoi_test@127.0.0.1:$port/postgres"
