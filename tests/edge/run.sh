#!/usr/bin/env bash
# `just edge`: the shop behind real proxies (Debian's nginx and HAProxy,
# installed here if missing, as root, as on CI): the client's address from
# the one header the edge writes, whatever a client forges, and streams
# that outlive a 35 s read timeout (tests/edge.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || [ -n "${NGINX:-}" ] || missing+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || [ -n "${HAPROXY:-}" ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "not installed: ${missing[*]} (apt-get install ${missing[*]}, or set NGINX / HAPROXY)" >&2
    exit 1
  fi
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "==> $("${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}" -v 2>&1)"
echo "==> $("${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}" -v 2>&1 | head -1)"
cargo test --test edge -- --ignored
