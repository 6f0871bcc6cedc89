#!/usr/bin/env bash
# The event tests on a real NATS JetStream: installs Debian's nats-server if
# missing (as root, as on CI), then runs the tests that start it themselves.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v nats-server >/dev/null && [ -z "${NATS_SERVER:-}" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "nats-server is not installed: apt-get install nats-server (or set NATS_SERVER)" >&2
    exit 1
  fi
  echo "==> apt-get install nats-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi
echo "==> $(${NATS_SERVER:-nats-server} --version)"
cargo test -p shop-orders --test nats -- --ignored
