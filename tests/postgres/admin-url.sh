#!/usr/bin/env bash
# Prints the URL of a PostgreSQL role that may create databases: $1 if set
# (the caller's SHOP_TEST_DATABASE_URL or SHOP_BENCH_POSTGRES_URL), else, as
# root, a local Debian PostgreSQL set up by setup.sh. Says what to do and
# exits 2 otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${1:-}" ]; then
  echo "$1"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Set ${2:-SHOP_TEST_DATABASE_URL}=postgres://user:password@host/postgres (a role that may create databases)," >&2
  echo "or run as root to let tests/postgres/setup.sh install and start a local PostgreSQL." >&2
  exit 2
fi
"$here/setup.sh" >&2
echo postgres://shop_test:shop_test@127.0.0.1:5432/postgres
