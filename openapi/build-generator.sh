#!/usr/bin/env bash
# Builds protoc-gen-connect-openapi (the buf/protoc plugin that writes
# OpenAPI 3.1 from the protos: Connect's paths, the google.api.http routes,
# protovalidate's rules as JSON Schema) once, into the tools cache outside
# the clone. `go install ...@latest` is refused by the module proxy, so a
# wrapper module requires it and builds its command. Prints the binary's
# path. ~5 minutes on 2 cores, cold. For `just openapi`.
set -euo pipefail

version=${CONNECT_OPENAPI_VERSION:-v0.25.6}
module=github.com/sudorandom/protoc-gen-connect-openapi
source "$(dirname "$0")/../tests/go-tool.sh"
go_tool protoc-gen-connect-openapi "$version"

printf 'module connect-shop.local/openapi\n\ngo 1.22\n\nrequire %s %s\n' "$module" "$version" > go.mod
echo "==> building protoc-gen-connect-openapi ($module $version)" >&2
GOFLAGS=-mod=mod go get "$module@$version" >&2
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$binary.part" "$module"
mv "$binary.part" "$binary"
echo "$binary"
