#!/usr/bin/env bash
# `just overload`: builds the shop and the load generator and runs
# shop-overload with the given arguments (`--help` lists them).
#
# What is measured is what ships: Cargo's `dist` profile (fat LTO), as
# `just bench` measures. The release build (opt-level 1) is slower in
# everything but SQLite, and answered refusals two to six times slower at
# p99 (docs/overload.md). `--smoke` (what CI runs: each scenario's peak,
# then 1x and 2x of it for a second each) checks that the recipe works,
# measures nothing, and reuses the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dist
args=()
for arg in "$@"; do
  case "$arg" in
    --smoke) profile=release; args+=(--seconds 1 --levels 1,2) ;;
    -h|--help)
      cargo run --quiet --release -p shop-bench --bin shop-overload -- --help
      echo
      echo "  just overload measures the dist build (fat LTO, what ships; the first build takes minutes)."
      echo "  --smoke: each scenario's peak, then 1x and 2x for a second each, on the release build (what CI runs)"
      exit 0 ;;
    *) args+=("$arg") ;;
  esac
done

echo "==> cargo build --profile $profile -p shop -p shop-bench"
cargo build --profile "$profile" -p shop -p shop-bench
exec "${CARGO_TARGET_DIR:-target}/$profile/shop-overload" "${args[@]}"
