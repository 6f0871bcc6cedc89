#!/usr/bin/env bash
# Builds Jaeger v2 (the all-in-one `jaeger` binary: OTLP in, in-memory
# storage, the query API and UI) from its Go module, once, into a cache
# outside the clone. `go install github.com/jaegertracing/jaeger/cmd/jaeger`
# is refused because Jaeger's go.mod has a replace directive; a wrapper
# module requires github.com/jaegertracing/jaeger v1.76.0 (= Jaeger v2.13)
# and repeats that replace (sarama). Prints the binary's path. ~12 minutes
# on 2 cores. For `just observe` and the trace tests (issue 27).
set -euo pipefail

version=${JAEGER_MODULE_VERSION:-v1.76.0}
source "$(dirname "$0")/../go-tool.sh"
go_tool jaeger "$version"

# The checksum database this machine reaches has no entries for these
# OpenTelemetry Collector modules; every other module is checked as usual.
export GONOSUMDB=github.com/open-telemetry/opentelemetry-collector-contrib,go.opentelemetry.io/collector
gomod=$(GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -n "$gomod" ] || { echo "could not download github.com/jaegertracing/jaeger@$version" >&2; exit 1; }
{
  echo "module connect-shop.local/jaeger"
  echo
  grep -E '^go [0-9]' "$gomod"
  echo
  echo "require github.com/jaegertracing/jaeger $version"
  echo
  echo "replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0"
} > go.mod
echo "==> building Jaeger (github.com/jaegertracing/jaeger $version)" >&2
GOFLAGS=-mod=mod go get "github.com/jaegertracing/jaeger/cmd/jaeger@$version" >&2
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$binary.part" github.com/jaegertracing/jaeger/cmd/jaeger
mv "$binary.part" "$binary"
echo "$binary"
