#!/usr/bin/env bash
# The workspace tests against a real PostgreSQL: every store and API test
# gets a database of its own on the server in SHOP_TEST_DATABASE_URL. Without
# it, a local Debian PostgreSQL is set up (root only; see setup.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

url=$("$here/admin-url.sh" "${SHOP_TEST_DATABASE_URL:-}" SHOP_TEST_DATABASE_URL)

cleanup() {
  # Drop the per-test databases this run created.
  psql "$url" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'test\_%'" 2>/dev/null \
    | while read -r name; do psql "$url" -qc "DROP DATABASE IF EXISTS \"$name\"" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

echo "==> cargo test --workspace on PostgreSQL (${url%%@*}@...)"
SHOP_TEST_DATABASE_URL="$url" cargo test --workspace

echo "==> a service waiting 65 s for its migrations lock on PostgreSQL stays alive (tests/starting.rs)"
SHOP_TEST_DATABASE_URL="$url" cargo test --test starting -- --ignored

echo "==> PostgreSQL with TLS under a private CA: PGSSLROOTCERT (tests/postgres/tls.sh)"
"$(dirname "$0")/tls.sh"

echo "==> deploy/README.md's databases, made as written by an admin that is no superuser (RDS, Cloud SQL): tests/postgres/cloud-admin.sh"
if [ -z "${SHOP_TEST_DATABASE_URL:-}" ]; then
  "$here/cloud-admin.sh"
else
  echo "    (a local PostgreSQL only: SHOP_TEST_DATABASE_URL is set, so this step is left to CI)"
fi
