#!/usr/bin/env bash
# `just observe`: the shop with what observes it, all on this machine:
# Jaeger (traces; built once, see tests/observe/build-jaeger.sh), Debian's
# Prometheus scraping every service with the rules in rules.yaml, then the
# whole shop sending its traces to Jaeger. Ctrl-C stops everything.
# Arguments go to the shop (e.g. --trace-sample-ratio 0.1).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v prometheus >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "prometheus is not installed: apt-get install prometheus" >&2
    exit 1
  fi
  echo "==> apt-get install prometheus"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
jaeger=$(tests/observe/build-jaeger.sh)
for port in 4317 4318 16686 9090 8080 8081 8082 8083 8084; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is taken: stop what listens there first" >&2
    exit 1
  fi
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The one-process shop keeps one set of metrics and serves it on every
# port (the service label tells the services apart): scraping one port
# counts each call once, scraping all five would count it five times. On
# Kubernetes each service is a job of its own (the pods' name label), and
# the alert on an absent service reads their up series: here the same
# process answers for all of them, so a job per service (each the alert
# asks for, in rules.yaml) scrapes it and keeps nothing but up.
presence() {
  cat <<YAML
  - job_name: $1
    static_configs:
      - targets: ['127.0.0.1:8081']
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: '.+'
        action: drop
YAML
}
{
  cat <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 15s
rule_files:
  - $PWD/deploy/observability/rules.yaml
scrape_configs:
  - job_name: connect-shop
    static_configs:
      - targets: ['127.0.0.1:8081']
YAML
  for service in $(sed -n 's/.*absent(up{job="\([a-z]*\)"}).*/\1/p' deploy/observability/rules.yaml); do
    presence "$service"
  done
} > "$work/prometheus.yml"
"$jaeger" > "$work/jaeger.log" 2>&1 &
pids+=($!)
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address=127.0.0.1:9090 > "$work/prometheus.log" 2>&1 &
pids+=($!)

cat <<TEXT
==> observing the shop
    traces (Jaeger)      http://127.0.0.1:16686   (a service per shop service)
    metrics (Prometheus) http://127.0.0.1:9090    (alerts: http://127.0.0.1:9090/alerts)
    a trace by id        curl -s http://127.0.0.1:16686/api/traces/<trace id>
    the shop follows; its log lines end with trace_id=... span_id=...
TEXT
# Every call's trace is kept and each service's calls continue their
# caller's trace (this is a machine of your own).
cargo run --release -- --otlp-endpoint http://127.0.0.1:4317 --trace-trust all "$@"
