#!/usr/bin/env bash
# `just replicas`: the shop as replicas on one PostgreSQL and one NATS
# JetStream, a rolling restart and a kill of each replicated service while
# customers order, then what must hold (shop-replicas --help). As root it
# installs and starts Debian's PostgreSQL and nats-server; otherwise point
# SHOP_BENCH_POSTGRES_URL at a role that may create databases and put
# nats-server on the PATH (or in NATS_SERVER).
set -euo pipefail
cd "$(dirname "$0")/../.."

url=$(tests/postgres/admin-url.sh "${SHOP_BENCH_POSTGRES_URL:-}" SHOP_BENCH_POSTGRES_URL)
if ! command -v "${NATS_SERVER:-nats-server}" >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "nats-server is not installed: apt-get install nats-server (or set NATS_SERVER)" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi

cargo build --release -p shop -p shop-bench
SHOP_BENCH_POSTGRES_URL="$url" "${CARGO_TARGET_DIR:-target}/release/shop-replicas" "$@"
