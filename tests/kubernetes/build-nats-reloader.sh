#!/usr/bin/env bash
# Builds nats-server-config-reloader (the NATS project's, the sidecar of
# overlays/production/nats.yaml) once, into a cache outside the clone, from
# the wrapper module in tests/kubernetes/nats-reloader (go.sum pins it and
# every dependency) at the version of the image the manifest names. Prints
# the binary's path. Seconds.
set -euo pipefail
module=$(cd "$(dirname "$0")/nats-reloader" && pwd)
version=$(sed -n 's/^\tgithub.com\/nats-io\/nack \(v[^ ]*\).*/\1/p' "$module/go.mod")
image=$(grep -o 'natsio/nats-server-config-reloader:[^ ]*' "$module/../../../deploy/kubernetes/overlays/production/nats.yaml")
if [ "v${image##*:}" != "$version" ]; then
  echo "the manifest runs $image, the test would build $version: make them one" >&2
  exit 1
fi
source "$(dirname "$0")/../go-tool.sh"
go_tool nats-server-config-reloader "$version"

export GONOSUMDB=github.com/nats-io
echo "==> building nats-server-config-reloader $version" >&2
(cd "$module" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$binary.part" github.com/nats-io/nack/cmd/nats-server-config-reloader)
mv "$binary.part" "$binary"
echo "$binary"
