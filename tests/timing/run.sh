#!/usr/bin/env bash
# `just timing [RUNS]`: the test binaries that hold tests of timing
# behaviour (admission's gate, the client stack and its breaker, the
# gateway's fan-out, the orders service's payment-token cache, the
# contract's deadlines, SIGTERM under a burst of orders, certificate
# reloads), RUNS times in a row (20 by default), while two busy loops keep
# both cores busy with other work, as a loaded CI machine would. Every run
# must pass: a test that can only pass on an idle machine is a test that
# races the clock (docs/testing.md). Prints each binary's failures and the
# total; exits 1 on any.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
case "$runs" in
  -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *[!0-9]*|"") echo "usage: $0 [RUNS]" >&2; exit 2 ;;
esac

# package and test target of each binary ("lib": its unit tests)
binaries=(
  "shop-kit-rpc lib"
  "shop-kit-client lib"
  "shop-gateway home"
  "shop-orders orders"
  "shop-kit-policy-tests policy"
  "shop shutdown"
  "shop-kit tls"
)
target_args() { # "PACKAGE TARGET"
  local package=${1% *} target=${1#* }
  if [ "$target" = lib ]; then echo "-p $package --lib"; else echo "-p $package --test $target"; fi
}

echo "==> building the test binaries"
for binary in "${binaries[@]}"; do
  # shellcheck disable=SC2046
  cargo test --quiet --no-run $(target_args "$binary") 2>&1 | grep -v '^ *Executable' || true
done

busy=()
stop_busy() { for pid in "${busy[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_busy EXIT
for _ in 1 2; do
  (while :; do :; done) &
  busy+=($!)
done
echo "==> $runs runs of ${#binaries[@]} test binaries, both cores kept busy by two busy loops"

declare -A failed
total=0
started=$(date +%s)
for run in $(seq 1 "$runs"); do
  for binary in "${binaries[@]}"; do
    log=$(mktemp)
    # shellcheck disable=SC2046
    if ! cargo test --quiet $(target_args "$binary") >"$log" 2>&1; then
      failed[$binary]=$(( ${failed[$binary]:-0} + 1 ))
      total=$((total + 1))
      echo "    run $run: $binary FAILED:"
      grep -E '^(test .* FAILED|---- |thread .* panicked|  left|  right)' "$log" | head -12 | sed 's/^/      /'
    fi
    rm -f "$log"
  done
  echo "    run $run of $runs done ($(( $(date +%s) - started )) s, $total failures so far)"
done
echo
for binary in "${binaries[@]}"; do
  echo "  $binary: ${failed[$binary]:-0} failed runs of $runs"
done
echo "timing: $total failures in $runs runs of ${#binaries[@]} binaries with both cores busy"
[ "$total" -eq 0 ]
