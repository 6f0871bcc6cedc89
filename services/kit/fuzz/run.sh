#!/usr/bin/env bash
# Fuzz the kit's parsers: each target for SECONDS (default 60), then a line
# per target with its executions and whether it found a crash.
# Usage: run.sh [SECONDS] [TARGET...]   (targets: see fuzz_targets/)
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(envelope connect_get timeouts grpc_json classifier rest_paths client_address)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz and a nightly toolchain are needed:" >&2
  echo "  rustup toolchain install nightly && cargo install cargo-fuzz" >&2
  exit 2
fi

echo "building the fuzz targets (nightly, sanitizer on)"
cargo +nightly fuzz build -O

summary=()
failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  echo "fuzzing $target for ${seconds}s"
  if cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    verdict="no crash"
  else
    verdict="CRASH (see artifacts/$target, last lines below)"
    failed=1
    tail -30 "$log" >&2
  fi
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
  summary+=("$(printf '%-12s %12s execs   %s' "$target" "${execs:-?}" "$verdict")")
  rm -f "$log"
done
echo
printf '%s\n' "${summary[@]}"
exit "$failed"
