#!/usr/bin/env bash
# tests/replicas/run.sh BIN [ARGS]: runs BIN, shop-replicas (`just
# replicas`: a rolling restart and a kill of each replicated service while
# customers order) or shop-soak (`just soak`: hours at 80% of the peak),
# on the shop as replicas on one PostgreSQL and one NATS JetStream (BIN
# --help says what must hold). As root it installs and starts Debian's
# PostgreSQL and nats-server; otherwise point SHOP_BENCH_POSTGRES_URL at a
# role that may create databases and put nats-server on the PATH (or in
# NATS_SERVER).
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

bin=${1:?which: shop-replicas or shop-soak}
shift
case "$bin" in
  shop-replicas | shop-soak) ;;
  *) echo "tests/replicas/run.sh: $bin is neither shop-replicas nor shop-soak" >&2; exit 2 ;;
esac
cargo build --release -p shop -p shop-bench
SHOP_BENCH_POSTGRES_URL="$url" "${CARGO_TARGET_DIR:-target}/release/$bin" "$@"
