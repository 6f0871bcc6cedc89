#!/usr/bin/env bash
# Runs the official Connect conformance suite (connectconformance) against
# the kit.
#
#   run.sh [CONFIG...]           server mode: the kit-served conformance
#                                server, once per config (connect, grpc,
#                                grpc-web); failures not listed in
#                                config/<name>.known-failing.txt fail it.
#   run.sh --client [RUN...]     client mode: the kit's client stack
#                                (shop-conformance-client), once per run:
#     grpc                       as the services call each other;
#     grpc+retries, grpc+hedging the same with retries (hedging) forced on
#                                for every method: the suite's methods are
#                                not marked safe to repeat, so no call may
#                                be sent twice (the runner fails a case
#                                whose call it receives twice);
#     grpc+retries-repeatable,   the same with every method marked safe to
#     grpc+hedging-repeatable    repeat: calls are sent again, and every
#                                case's result must still be as expected
#                                (only the runner's count of copies differs).
#                                No known-failing list.
#
# Prints passed / failed / total for each; exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=v1.0.5
gobin="$(go env GOPATH)/bin"
runner="$gobin/connectconformance"

mode=server
if [ "${1:-}" = --client ]; then
  mode=client
  shift
fi

if ! "$runner" --version 2>/dev/null | grep -q "${version#v}"; then
  echo "==> go install connectrpc.com/conformance/cmd/connectconformance@$version"
  go install "connectrpc.com/conformance/cmd/connectconformance@$version"
fi

echo "==> cargo build (tests/conformance)"
cargo build --quiet --release --manifest-path "$here/Cargo.toml"
target=$(cd "$here" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
  if [ $mode = server ]; then
    runs=(connect grpc grpc-web)
  else
    runs=(grpc grpc+retries grpc+hedging grpc+retries-repeatable grpc+hedging-repeatable)
  fi
fi
summary=()
status=0
width=9
[ $mode = server ] || width=26
for run in "${runs[@]}"; do
  echo "==> $mode: $run"
  log=$(mktemp)
  if [ $mode = server ]; then
    config="$here/config/$run.yaml"
    args=(--known-failing "@$here/config/$run.known-failing.txt" -- "$target/release/shop-conformance")
  else
    config="$here/config/client/${run%%+*}.yaml"
    client=("$target/release/shop-conformance-client")
    case "$run" in
      *+retries*) client+=(--force retries) ;;
      *+hedging*) client+=(--force hedging) ;;
    esac
    case "$run" in *-repeatable) client+=(--repeatable) ;; esac
    args=(-- "${client[@]}")
  fi
  set +e
  "$runner" --mode $mode --conf "$config" "${args[@]}" >"$log" 2>"$log.err"
  code=$?
  set -e
  made=$(grep -o 'shop-conformance-client: .*' "$log.err" | sed 's/^shop-conformance-client: //' || true)
  if [[ "$run" == *-repeatable ]]; then
    verdict=$(python3 "$here/check-resent.py" "$log") || status=1
    sed '$d' <<<"$verdict" | sed 's/^/  /'
    # Retries or hedges must have been made, or the run showed nothing.
    if ! grep -Eq '[1-9][0-9]* (retries|hedges)' <<<"$made"; then
      echo "  no call was sent again: $made"
      status=1
    fi
    summary+=("$(printf '%-*s %s (%s)' $width "$run" "$(tail -1 <<<"$verdict")" "$made")")
    rm -f "$log" "$log.err"
    continue
  fi
  grep -E '^(FAILED|INFO): ' "$log" | sed 's/^/  /' | cut -c1-220 || true
  total=$(sed -n 's/^Total cases: \([0-9]*\)$/\1/p' "$log")
  counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" || true)
  expected=$(sed -n 's/^(Another \([0-9]*\) failed as expected.*/\1/p' "$log")
  if [ -z "$total" ]; then
    echo "  the runner did not finish:"; tail -20 "$log" "$log.err" | sed 's/^/    /'
    summary+=("$(printf '%-*s runner error (exit %s)' $width "$run" "$code")")
    status=1
    continue
  fi
  passed=${counts%% passed*}
  failed=$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$counts")
  line=$(printf '%-*s %5s passed  %4s failed  %4s known-failing  %5s total' $width "$run" "$passed" "$failed" "${expected:-0}" "$total")
  [ -z "$made" ] || line+=" ($made)"
  summary+=("$line")
  [ "$code" -eq 0 ] || status=1
  rm -f "$log" "$log.err"
done

echo
echo "Connect conformance $version ($mode mode):"
printf '  %s\n' "${summary[@]}"
exit $status
