#!/usr/bin/env bash
# `just bench` / `just bench-smoke`: gets what the benchmarks need (h2load from
# Debian's nghttp2-client, the Go and Node peers, a local PostgreSQL when run
# as root), builds the shop and the harness (dist profile), and runs
# shop-bench with the given arguments (`--help` lists them). A full run (both
# suites) also rewrites docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# Only a full run (both suites, not a smoke) rewrites docs/benchmarks.md.
# Measured builds are Cargo's `dist` profile (fat LTO, what ships);
# `profile` builds with line tables (the `profiling` profile) for perf; a
# smoke run, which checks the harness and measures nothing, reuses the
# release build.
full=true
profile=dist
for arg in "$@"; do
  case "$arg" in
    profile) full=false; profile=profiling ;;
    --smoke) full=false; profile=release ;;
    protocol|app|peer|tls|orders) full=false ;;
    -h|--help) cargo run --quiet --release -p shop-bench -- --help; exit 0 ;;
  esac
done

if ! command -v h2load >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench: h2load is missing: apt-get install nghttp2-client (or run as root)" >&2
    exit 2
  fi
  echo "==> apt-get install nghttp2-client (h2load)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null
fi

echo "==> the Go and Node peers (bench/peers/build.sh)"
bench/peers/build.sh

if [ -z "${SHOP_BENCH_POSTGRES_URL:-}" ] && [ "$(id -u)" -eq 0 ]; then
  echo "==> a local PostgreSQL for the app suite (tests/postgres/setup.sh)"
  tests/postgres/setup.sh >/dev/null
  export SHOP_BENCH_POSTGRES_URL=postgres://shop_test:shop_test@127.0.0.1:5432/postgres
fi

echo "==> cargo build --profile $profile -p shop -p shop-bench"
cargo build --profile "$profile" -p shop -p shop-bench
bench="${CARGO_TARGET_DIR:-target}/$profile/shop-bench"

if $full; then
  exec "$bench" --markdown docs/benchmarks.md "$@"
fi
exec "$bench" "$@"
