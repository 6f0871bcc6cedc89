#!/usr/bin/env bash
# The workspace tests against a real PostgreSQL: every store and API test
# gets a database of its own on the server in SHOP_TEST_DATABASE_URL. Without
# it, a local Debian PostgreSQL is set up (root only; see setup.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

url=${SHOP_TEST_DATABASE_URL:-}
if [ -z "$url" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Set SHOP_TEST_DATABASE_URL=postgres://user:password@host/postgres (a role that may create databases)," >&2
    echo "or run as root to let tests/postgres/setup.sh install and start a local PostgreSQL." >&2
    exit 2
  fi
  "$here/setup.sh"
  url=postgres://shop_test:shop_test@127.0.0.1:5432/postgres
fi

cleanup() {
  # Drop the per-test databases this run created.
  psql "$url" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'test\_%'" 2>/dev/null \
    | while read -r name; do psql "$url" -qc "DROP DATABASE IF EXISTS \"$name\"" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

echo "==> cargo test --workspace on PostgreSQL (${url%%@*}@...)"
SHOP_TEST_DATABASE_URL="$url" cargo test --workspace
