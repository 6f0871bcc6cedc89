#!/usr/bin/env bash
# `just edge`: the shop behind a real proxy (Debian's nginx, installed here
# if missing, as root, as on CI): the client's address through
# --trusted-proxies, and streams that outlive a 35 s read timeout
# (tests/edge.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] && [ -z "${NGINX:-}" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "nginx is not installed: apt-get install nginx (or set NGINX)" >&2
    exit 1
  fi
  echo "==> apt-get install nginx"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
echo "==> $("${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}" -v 2>&1)"
cargo test --test edge -- --ignored
