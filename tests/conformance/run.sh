#!/usr/bin/env bash
# Runs the official Connect conformance suite (connectconformance, server
# mode) against the kit-served conformance server, once per config, and
# prints passed / failed / total for each. Exits non-zero on any failure
# not listed in config/<name>.known-failing.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=v1.0.5
gobin="$(go env GOPATH)/bin"
runner="$gobin/connectconformance"

if ! "$runner" --version 2>/dev/null | grep -q "${version#v}"; then
  echo "==> go install connectrpc.com/conformance/cmd/connectconformance@$version"
  go install "connectrpc.com/conformance/cmd/connectconformance@$version"
fi

echo "==> cargo build (tests/conformance)"
cargo build --quiet --release --manifest-path "$here/Cargo.toml"
target=$(cd "$here" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
server="$target/release/shop-conformance"

configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(connect grpc grpc-web)
summary=()
status=0
for config in "${configs[@]}"; do
  echo "==> $config"
  log=$(mktemp)
  set +e
  "$runner" --mode server --conf "$here/config/$config.yaml" \
    --known-failing "@$here/config/$config.known-failing.txt" \
    -- "$server" >"$log" 2>"$log.err"
  code=$?
  set -e
  grep -E '^(FAILED|INFO): ' "$log" | sed 's/^/  /' | cut -c1-220 || true
  total=$(sed -n 's/^Total cases: \([0-9]*\)$/\1/p' "$log")
  counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" || true)
  expected=$(sed -n 's/^(Another \([0-9]*\) failed as expected.*/\1/p' "$log")
  if [ -z "$total" ]; then
    echo "  the runner did not finish:"; tail -20 "$log" "$log.err" | sed 's/^/    /'
    summary+=("$(printf '%-9s runner error (exit %s)' "$config" "$code")")
    status=1
    continue
  fi
  passed=${counts%% passed*}
  failed=$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$counts")
  summary+=("$(printf '%-9s %5s passed  %4s failed  %4s known-failing  %5s total' "$config" "$passed" "$failed" "${expected:-0}" "$total")")
  [ "$code" -eq 0 ] || status=1
  rm -f "$log" "$log.err"
done

echo
echo "Connect conformance $version (server mode):"
printf '  %s\n' "${summary[@]}"
exit $status
