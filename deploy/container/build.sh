#!/usr/bin/env bash
# Builds the image localhost/connect-shop:<version> (the workspace's
# version, as the Kubernetes overlays name it; or $SHOP_IMAGE) from
# deploy/Containerfile with Debian's buildah: the `shop` binary of the dist
# profile (fat LTO; or the one given as $1), the
# shared libraries `ldd` says it needs (glibc's, as a distroless image
# carries them), CA certificates (PostgreSQL or NATS over TLS), a passwd
# entry for user 65532 and an empty /data and /tmp. Prints the image name.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
binary=${1:-${CARGO_TARGET_DIR:-$root/target}/dist/shop}
version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")
[ -n "$version" ] || { echo "no version in $root/Cargo.toml's [workspace.package]" >&2; exit 2; }
image=${SHOP_IMAGE:-localhost/connect-shop:$version}
[ -x "$binary" ] || { echo "$binary is missing: cargo build --profile dist -p shop" >&2; exit 2; }
command -v buildah >/dev/null || { echo "buildah is missing: apt-get install buildah" >&2; exit 2; }

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/data" "$rootfs/tmp"
install -m 0755 "$binary" "$rootfs/usr/local/bin/shop"
ldd "$binary" | awk '/=> \// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | while read -r lib; do
  cp --parents -L "$lib" "$rootfs/"
done
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >"$rootfs/etc/passwd"
echo 'nonroot:x:65532:' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
chown 65532:65532 "$rootfs/data"
cp "$root/deploy/Containerfile" "$context/Containerfile"
buildah bud --quiet --layers=false -f "$context/Containerfile" -t "$image" "$context" >&2
echo "$image"
