#!/usr/bin/env bash
# Builds kube-apiserver (the version of Debian's kubectl, give or take
# nothing) from its Go module, once, into a cache outside the clone:
# `go install k8s.io/kubernetes/cmd/kube-apiserver@vX` is refused because
# Kubernetes' go.mod replaces its staging modules (k8s.io/api, ...) with
# local paths. A wrapper module requires k8s.io/kubernetes and replaces
# each staging module with its published twin (v0.<minor>.<patch>), read
# from that very go.mod. Prints the binary's path. ~15 minutes on 2 cores.
set -euo pipefail

version=${KUBE_VERSION:-v1.32.4}
source "$(dirname "$0")/../go-tool.sh"
go_tool kube-apiserver "$version"

staging="v0.${version#v1.}"
# The checksum database this machine reaches has no entries for the
# Kubernetes modules (k8s.io/...); every other module is checked as usual.
export GONOSUMDB=k8s.io,sigs.k8s.io
gomod=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -n "$gomod" ] || { echo "could not download k8s.io/kubernetes@$version" >&2; exit 1; }

{
  echo "module connect-shop.local/kube-apiserver"
  echo
  grep -E '^go [0-9]' "$gomod"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  # `k8s.io/api => ./staging/src/k8s.io/api` becomes `k8s.io/api => k8s.io/api v0.32.4`
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" \
    | awk -v v="$staging" '{ print "\t" $1 " => " $1 " " v }'
  echo ")"
} > go.mod
echo "==> building kube-apiserver $version (staging modules at $staging)" >&2
GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$version" >&2
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$binary.part" k8s.io/kubernetes/cmd/kube-apiserver
mv "$binary.part" "$binary"
echo "$binary"
