#!/usr/bin/env bash
# `just image`: builds the container image (deploy/container/build.sh) and
# starts it with Debian's podman (`shop serve users`: it needs no peer; host
# network on loopback, runc, explicit ulimits, a read-only root filesystem,
# the data folder a volume), then asks the server in the container for
# /readyz: the image size, and how long from `podman run` to ready. A step
# this machine cannot run is reported and skipped; the others still count.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
for tool in buildah podman runc; do
  if ! command -v "$tool" >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then echo "$tool is missing: apt-get install $tool" >&2; exit 2; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman runc >/dev/null
  fi
done
# The same packages as just chaos and just replicas build: one set of
# release artifacts (built alone, shop's dependencies resolve other
# features and the whole release build runs again).
cargo build --release -p shop -p shop-bench
image=$("$root/deploy/container/build.sh")
size=$(podman image inspect "$image" --format '{{.Size}}')
echo "==> $image: $((size / 1024 / 1024)) MiB ($size bytes)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name="shop-image-test-$$"
data=$(mktemp -d)
chmod 0777 "$data"
started=$(date +%s%N)
if ! podman --runtime runc run -d --rm --name "$name" --network host \
    --ulimit nofile=16384:16384 --ulimit nproc=4096:4096 \
    --read-only --tmpfs /tmp:rw,mode=1777 -v "$data:/data" \
    -e SHOP_HOST=127.0.0.1 -e USERS_PORT="$port" -e SHOP_SERVICE_SECRET=image-test \
    "$image" serve users >/tmp/shop-image-run.txt 2>&1; then
  echo "SKIPPED: starting a container (podman run) is not possible on this machine:"
  sed 's/^/    /' /tmp/shop-image-run.txt | tail -5
  exit 0
fi
trap 'podman stop -t 2 "$name" >/dev/null 2>&1 || true; rm -rf "$data"' EXIT
for _ in $(seq 1 200); do
  if podman exec "$name" /usr/local/bin/shop --version >/dev/null 2>&1 \
      && curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    ready=$(( ($(date +%s%N) - started) / 1000000 ))
    echo "==> the container answers /readyz: $(curl -fsS "http://127.0.0.1:$port/readyz") (ready $ready ms after podman run)"
    echo "==> it runs as $(podman inspect "$name" --format '{{.Config.User}}'), read-only root filesystem"
    exit 0
  fi
  sleep 0.05
done
echo "the container never answered /readyz; its log:" >&2
podman logs "$name" 2>&1 | tail -20 >&2
exit 1
