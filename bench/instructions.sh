#!/usr/bin/env bash
# `just bench-instructions [KIND] [PROTOCOL] [TRACES]`: user-space instructions per
# request of one echo server served in process (bare, kit, library: the
# kit's library connectrpc-axum without the kit, or tonic), or of one client
# calling an echo server (caller-kit: the kit's client stack; caller-tonic:
# tonic's channel alone; caller-h2: hyper's HTTP/2 connection alone, the
# floor; PROTOCOL grpc), counted by
# valgrind's callgrind: unlike req/s on a shared machine, the count is the
# same run after run, so an A/B of two builds shows even a 2% change. The
# count is the difference between 3,000 and 1,000 requests, per request;
# h2load sends them on 4 connections. Counting starts once the server
# answers, so start-up is left out: it includes work bounded by time, not
# by instructions (quanta calibrates its clock by spinning on
# clock_gettime), which varied by 5-10 million instructions from run to
# run and showed as ±5k per request.
# PROTOCOL: connect (Connect proto, the default), json (Connect JSON) or
# grpc. TRACES: off (the default), or the share of calls traced (0.01, 1):
# the kit's server then exports its spans over OTLP/HTTP to a collector
# that takes and forgets them (bench/null-collector.py, so only the
# server's own work is counted), configured by the standard OTEL_*
# variables, which the kit reads. SHOP_BENCH_KEPT=1 has the kit server keep
# its last lines and traces as well, as the dashboard has the shop do.
# SHOP_MAX_CALLS_IN_FLIGHT=0 turns the kit
# server's admission control off (what it costs a call: the difference).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-kit}
protocol=${2:-connect}
traces=${3:-off}
case "$kind" in
  bare|kit|library|tonic|caller-kit|caller-tonic|caller-h2) ;;
  *) echo "bench-instructions: KIND is bare, kit, library or tonic (a server), or caller-kit, caller-tonic or caller-h2 (a client: the kit's stack, tonic's channel, hyper's connection)" >&2; exit 2 ;;
esac
for tool in valgrind h2load; do
  command -v "$tool" >/dev/null || { echo "bench-instructions: $tool is missing (Debian: valgrind, nghttp2-client)" >&2; exit 2; }
done
# The dist build, what ships; SHOP_BENCH_PROFILE=release counts the
# release build instead (CI, which has it built already: the ratios hold
# there too, the absolute counts are higher).
profile=${SHOP_BENCH_PROFILE:-dist}
cargo build --quiet --profile "$profile" -p shop-bench
bin="${CARGO_TARGET_DIR:-target}/$profile/shop-bench"
scratch=$(mktemp -d)
collector=
trap '[ -z "$collector" ] || kill "$collector" 2>/dev/null; rm -rf "$scratch"' EXIT
if [ "$traces" != off ]; then
  case "$traces" in
    0|0.*|1|1.0) ;;
    *) echo "bench-instructions: TRACES is off or a share of calls from 0 to 1 (0.01 for 1%)" >&2; exit 2 ;;
  esac
  [ "$kind" = kit ] || { echo "bench-instructions: only the kit is traced (TRACES with KIND kit)" >&2; exit 2; }
  collector_port=19391
  python3 bench/null-collector.py "$collector_port" &
  collector=$!
  for _ in $(seq 1 50); do
    curl -s -o /dev/null -X POST "http://127.0.0.1:$collector_port/v1/traces" && break
    sleep 0.1
  done
  export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$collector_port"
  export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
  export OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG="$traces"
fi
# EchoRequest {message: "hello, bench", number: 42, tags: ["a", "b"]}.
printf '\x0a\x0chello, bench\x10\x2a\x1a\x01a\x1a\x01b' >"$scratch/echo.bin"
{ printf '\x00\x00\x00\x00\x16'; cat "$scratch/echo.bin"; } >"$scratch/echo.grpc"
printf '{"message":"hello, bench","number":42,"tags":["a","b"]}' >"$scratch/echo.json"
case "$protocol" in
  connect) headers=(-H 'content-type: application/proto'); body="$scratch/echo.bin" ;;
  json) headers=(-H 'content-type: application/json'); body="$scratch/echo.json" ;;
  grpc) headers=(-H 'content-type: application/grpc' -H 'te: trailers'); body="$scratch/echo.grpc" ;;
  *) echo "bench-instructions: PROTOCOL is connect, json or grpc" >&2; exit 2 ;;
esac
port=19390
if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
  echo "bench-instructions: port $port is taken" >&2
  exit 2
fi
measure() {
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$scratch/out" "$bin" peer "$kind" --port $port >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
    h2load -n 1 "${headers[@]}" -d "$body" "http://127.0.0.1:$port/bench.v1.EchoService/Echo" 2>/dev/null | grep -q "1 succeeded" && break
    sleep 0.3
  done
  # One call before counting starts, so what the first call sets up lazily
  # is left out too.
  h2load -n 1 "${headers[@]}" -d "$body" "http://127.0.0.1:$port/bench.v1.EchoService/Echo" >/dev/null 2>&1
  callgrind_control --instr=on "$pid" >/dev/null 2>&1
  h2load -n "$1" -c 4 -m 1 "${headers[@]}" -d "$body" "http://127.0.0.1:$port/bench.v1.EchoService/Echo" >"$scratch/h2load" 2>&1
  grep -q " $1 succeeded" "$scratch/h2load" || { echo "bench-instructions: requests failed:" >&2; cat "$scratch/h2load" >&2; kill "$pid"; exit 1; }
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  sed -n 's/^summary: //p' "$scratch/out"
}
# A client's side: the caller under callgrind, calling tonic's echo
# server (another process, not counted) N times in a row.
measure_caller() {
  local callee=$((port + 1)) fifo="$scratch/calls"
  "$bin" peer tonic --port "$callee" >/dev/null 2>&1 &
  local server=$!
  rm -f "$fifo"; mkfifo "$fifo"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$scratch/out" \
    "$bin" caller "${kind#caller-}" --port "$callee" <"$fifo" >"$scratch/said" 2>&1 &
  local pid=$!
  exec 3>"$fifo"
  for _ in $(seq 1 600); do grep -q '^ready' "$scratch/said" && break; sleep 0.1; done
  grep -q '^ready' "$scratch/said" || { echo "bench-instructions: the caller did not start:" >&2; cat "$scratch/said" >&2; exit 1; }
  callgrind_control --instr=on "$pid" >/dev/null 2>&1
  echo "$1" >&3
  for _ in $(seq 1 1200); do grep -q "^done $1" "$scratch/said" && break; sleep 0.1; done
  grep -q "^done $1" "$scratch/said" || { echo "bench-instructions: the calls failed:" >&2; cat "$scratch/said" >&2; exit 1; }
  exec 3>&-
  wait "$pid" 2>/dev/null || true
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
  sed -n 's/^summary: //p' "$scratch/out"
}
case "$kind" in
  caller-*)
    [ "$protocol" = grpc ] || { echo "bench-instructions: a caller speaks gRPC (PROTOCOL grpc)" >&2; exit 2; }
    few=$(measure_caller 1000)
    many=$(measure_caller 3000)
    ;;
  *)
    few=$(measure 1000)
    many=$(measure 3000)
    ;;
esac
echo "$kind $protocol (traces: $traces): $(( (many - few) / 2000 )) instructions per request"
