#!/usr/bin/env bash
# Builds netpol-analyzer (np-guard's NetworkPolicy connectivity analyzer)
# once, into a cache outside the clone, from the wrapper module in
# tests/kubernetes/netpol (go.sum pins it and every dependency). Prints the
# binary's path. About a minute on 2 cores.
set -euo pipefail
module=$(cd "$(dirname "$0")/netpol" && pwd)
version=$(sed -n 's/^\tgithub.com\/np-guard\/netpol-analyzer \(v[^ ]*\).*/\1/p' "$module/go.mod")
source "$(dirname "$0")/../go-tool.sh"
go_tool netpol-analyzer "$version"

# The checksum database this machine reaches has no entry for
# netpol-analyzer; go.sum has its checksum.
export GONOSUMDB=github.com/np-guard
echo "==> building netpol-analyzer $version" >&2
(cd "$module" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$binary.part" github.com/np-guard/netpol-analyzer/cmd/netpolicy)
mv "$binary.part" "$binary"
echo "$binary"
