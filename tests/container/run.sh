#!/usr/bin/env bash
# `just image`: builds the container image (deploy/container/build.sh, with
# buildah) and starts the shop from the image's own filesystem as the
# Kubernetes manifests run it: the image's entrypoint, user and environment,
# `serve catalog`, a read-only root with a tmpfs /tmp and an empty /data,
# then asks it for /readyz. No container runtime can run here (runc cannot
# set rlimits in this VM), so the root is the image mounted by buildah in a
# mount namespace of its own (unshare, chroot): the image's loader, its
# libraries, its entrypoint and its user are what run, and any of them
# missing fails this. What it does not check: the runtime's own limits
# (cgroups, seccomp, capabilities); deploy/README.md says so.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v buildah >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then echo "buildah is missing: apt-get install buildah" >&2; exit 2; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "mounting the image and a mount namespace need root (CI runs as root)" >&2
  exit 2
fi
# What ships: the dist profile (fat LTO). CI sets SHOP_IMAGE_PROFILE=release
# to reuse the release build the other suites made (the same files in the
# image, less optimised), rather than link the shop once more. The same
# packages as just chaos and just replicas build: one set of artifacts
# (built alone, shop's dependencies resolve other features and the whole
# build runs again).
profile=${SHOP_IMAGE_PROFILE:-dist}
cargo build --profile "$profile" -p shop -p shop-bench
image=$("$root/deploy/container/build.sh" "${CARGO_TARGET_DIR:-$root/target}/$profile/shop")
echo "==> $image: $(buildah images --format '{{.Size}}' "$image" | head -1)"

config() { buildah inspect --type image --format "$1" "$image"; }
entrypoint=$(config '{{range .OCIv1.Config.Entrypoint}}{{.}} {{end}}')
user=$(config '{{.OCIv1.Config.User}}')
mapfile -t image_env < <(config '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
echo "==> entrypoint: $entrypoint; user: $user; env: ${image_env[*]}"
[ -n "$entrypoint" ] || { echo "the image has no entrypoint" >&2; exit 1; }
[ "$user" = "65532:65532" ] || { echo "the image runs as '$user', not 65532:65532" >&2; exit 1; }

container=$(buildah from --pull-never "$image")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  buildah umount "$container" >/dev/null 2>&1 || true
  buildah rm "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
rootfs=$(buildah mount "$container")
# What a container runtime adds to any image: mount points for /proc and
# /dev (in the container's writable layer, not the image).
mkdir -p "$rootfs/proc" "$rootfs/dev"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
users_port=$(free_port)
catalog_port=$(free_port)
metrics_port=$(free_port)

# `shop serve SERVICE` from the image, as its container would run: the
# image's root read-only, a tmpfs /tmp, an empty /data of its own, the
# image's user, entrypoint and environment (plus the shop's settings).
# unshare, sh, env and chroot each exec the next: $! is the shop's pid.
serve_from_image() {
  local service=$1
  shift
  mkdir -p "$work/$service"
  chown 65532:65532 "$work/$service"
  # shellcheck disable=SC2086 # the entrypoint is words
  unshare --mount --propagation private -- sh -c '
    set -e
    new=$1; data=$2; shift 2
    mount --bind "$new" "$new"
    mount -t tmpfs -o mode=1777,size=16m tmpfs "$new/tmp"
    mount --bind "$data" "$new/data"
    mount -t proc proc "$new/proc"
    mount --rbind /dev "$new/dev"
    mount -o remount,bind,ro "$new"
    exec "$@"
  ' sh "$rootfs" "$work/$service" \
    env -i "${image_env[@]}" SHOP_HOST=127.0.0.1 SHOP_SERVICE_SECRET=image-test \
      SHOP_LOG_FORMAT=json USERS_PORT="$users_port" CATALOG_PORT="$catalog_port" \
      USERS_URL="http://127.0.0.1:$users_port" "$@" \
    chroot --userspec="$user" --groups= "$rootfs" $entrypoint serve "$service" \
    >"$work/$service.log" 2>&1 &
  pids+=($!)
}

# Until /readyz answers on `port`, or the shop (pid) has exited.
wait_ready() {
  local service=$1 pid=$2 port=$3
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$service from the image exited before it was ready; its log:" >&2
      tail -20 "$work/$service.log" >&2
      exit 1
    fi
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$service from the image never answered /readyz; its log:" >&2
  tail -20 "$work/$service.log" >&2
  exit 1
}

# catalog verifies tokens with the users service's keys from its first
# moment: users, from the same image, comes first.
serve_from_image users
wait_ready users "${pids[0]}" "$users_port"
started=$(date +%s%N)
serve_from_image catalog SHOP_METRICS_PORT="$metrics_port"
catalog=${pids[1]}
wait_ready catalog "$catalog" "$catalog_port"
ready=$(( ($(date +%s%N) - started) / 1000000 ))
uid=$(awk '/^Uid:/ {print $2}' "/proc/$catalog/status")
root_mount=$(awk '$5 == "/" {print $6}' "/proc/$catalog/mountinfo")
echo "==> catalog from the image answers /readyz: $(curl -fsS "http://127.0.0.1:$catalog_port/readyz") (ready $ready ms after start)"
echo "==> it runs as uid $uid, its root mounted $root_mount, its data: $(ls "$work/catalog" | tr "\n" " ")"
[ "$uid" = 65532 ] || { echo "it runs as uid $uid, not 65532" >&2; exit 1; }
case ",$root_mount," in *,ro,*) ;; *) echo "its root is not read-only: $root_mount" >&2; exit 1 ;; esac
curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep -q '^# TYPE' \
  || { echo "no metrics on its metrics port" >&2; exit 1; }
products=$(curl -fsS "http://127.0.0.1:$catalog_port/shop.catalog.v1.CatalogService/ListProducts" \
  -H 'Content-Type: application/json' -d '{"pageSize": 3}')
grep -q '"products"' <<<"$products" || { echo "ListProducts: $products" >&2; exit 1; }
echo "==> its metrics port answers; ListProducts answers $(grep -o '"id":"[^"]*"' <<<"$products" | head -3 | tr '\n' ' ')"
for pid in "$catalog" "${pids[0]}"; do
  kill -TERM "$pid"
  if ! wait "$pid"; then
    echo "a shop from the image did not stop cleanly on SIGTERM; the logs:" >&2
    tail -5 "$work"/*.log >&2
    exit 1
  fi
done
pids=()
echo "==> SIGTERM: both stopped cleanly"
