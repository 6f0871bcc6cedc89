#!/usr/bin/env bash
# The trace tests against a real Jaeger: builds it once (into the tools
# cache, see build-jaeger.sh), then runs tests/traces.rs, which starts it
# and the launched shop themselves. Exports every 200 ms so the tests need
# not wait for the default 5 s batches. The visit's trace is printed as a
# tree (--nocapture).
set -euo pipefail
cd "$(dirname "$0")/../.."
jaeger=$(tests/observe/build-jaeger.sh)
echo "==> $("$jaeger" version 2>/dev/null | head -1 || echo "$jaeger")"
SHOP_JAEGER="$jaeger" OTEL_BSP_SCHEDULE_DELAY=200 \
  cargo test -p shop --test traces -- --ignored --test-threads 1 --nocapture
