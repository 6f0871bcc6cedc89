#!/usr/bin/env bash
# Makes a local PostgreSQL ready for the tests (needs root, as on CI):
# installs Debian's package if missing, starts the cluster, and creates the
# role `shop_test` that may create databases. Idempotent.
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "==> apt-get install postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
# Waits until the cluster takes connections.
wait_ready() {
  for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 && break
    sleep 0.2
  done
}
# Restarts the cluster (for a setting read at start) and waits for it.
restart() {
  pg_ctlcluster "$version" main restart
  wait_ready
}
pg_ctlcluster "$version" main start 2>/dev/null || true
wait_ready
pg_isready -h 127.0.0.1
# Each test starts whole services, each with its own pool and database, and
# the tests run in parallel: far more clients than the default 100.
if [ "$(su postgres -c "psql -tAc 'SHOW max_connections'")" -lt 500 ]; then
  su postgres -c "psql -qc 'ALTER SYSTEM SET max_connections = 500'"
  restart
fi
# pg_stat_statements: what `just bench orders --profile production` counts
# statements per order with (as PostgreSQL sees them, BEGIN and COMMIT
# included).
if [ "$(su postgres -c "psql -tAc 'SHOW shared_preload_libraries'")" != "pg_stat_statements" ]; then
  su postgres -c "psql -qc \"ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'\""
  restart
fi
su postgres -c "psql -qc 'SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_stat_statements'"
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname = 'shop_test'\"" | grep -q 1 \
  || su postgres -c "psql -q -c \"CREATE ROLE shop_test LOGIN CREATEDB PASSWORD 'shop_test'\""
