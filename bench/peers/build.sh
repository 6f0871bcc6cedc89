#!/usr/bin/env bash
# Builds the benchmark peers for `just bench` (same semantics as the Rust
# servers): the connect-rust binary (.bin/connect-rust-peer), the connect-go
# binary (.bin/connect-go-peer) and the connect-node server
# (connect-node/server.mjs with its node_modules and gen/).
# Runnable from any directory; does only what changed since the last run.
set -euo pipefail

peers="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$peers/.bin"
go_dir="$peers/connect-go"
node_dir="$peers/connect-node"
proto_dir="$peers/../proto"

for tool in go node npm cargo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build.sh: '$tool' is not on PATH; the benchmark peers need Go, Node (with npm) and Rust" >&2
    exit 1
  fi
done

# 1. npm packages of the Node peer; they also bring buf and protoc-gen-es.
if [[ ! -f "$node_dir/node_modules/.package-lock.json" ||
      "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ||
      "$node_dir/package.json" -nt "$node_dir/node_modules/.package-lock.json" ]]; then
  echo "build.sh: npm install in connect-node" >&2
  (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error)
fi
buf="$node_dir/node_modules/.bin/buf"

# 2. The Go protoc plugins, at the versions go.mod pins.
go_mod_version() { awk -v m="$1" '$1 == m { print $2 }' "$go_dir/go.mod"; }
install_plugin() { # binary name, package, module
  local version
  version="$(go_mod_version "$3")"
  if [[ -z "$version" ]]; then
    echo "build.sh: $3 is not in $go_dir/go.mod" >&2
    exit 1
  fi
  local installed=""
  [[ -x "$bin/$1" ]] && installed="$("$bin/$1" --version 2>&1 | awk '{ print $NF }')"
  if [[ "${installed#v}" != "${version#v}" ]]; then
    echo "build.sh: go install $2@$version" >&2
    GOBIN="$bin" go install "$2@$version"
  fi
}
install_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/protobuf
install_plugin protoc-gen-connect-go connectrpc.com/connect/cmd/protoc-gen-connect-go connectrpc.com/connect

# 3. Generated code, redone when the proto, a template or a plugin is newer.
generate() { # peer dir, plugin files...
  local dir="$1" stamp="$1/gen/.stamp"
  shift
  if [[ -f "$stamp" ]] &&
     [[ -z "$(find "$proto_dir" "$dir/buf.gen.yaml" "$@" -newer "$stamp" -print -quit)" ]]; then
    return
  fi
  echo "build.sh: buf generate in $(basename "$dir")" >&2
  (cd "$dir" && "$buf" generate --template buf.gen.yaml)
  touch "$stamp"
}
generate "$go_dir" "$bin/protoc-gen-go" "$bin/protoc-gen-connect-go"
generate "$node_dir" "$node_dir/node_modules/.package-lock.json"

# 4. The Go peer (go's build cache makes this quick when nothing changed).
(cd "$go_dir" && go build -o "$bin/connect-go-peer" .)

# 5. The connect-rust peer: its code generator reads a descriptor set of the
# contract (buf builds it), cargo does only what changed. Its own workspace
# and lock; its build goes to the shared cargo target dir when one is set.
rust_dir="$peers/connect-rust"
fds="$rust_dir/gen/bench.fds"
if [[ ! -f "$fds" ]] || [[ -n "$(find "$proto_dir" -newer "$fds" -name '*.proto' -print -quit)" ]]; then
  echo "build.sh: buf build (descriptor set for connect-rust)" >&2
  mkdir -p "$rust_dir/gen"
  "$buf" build "$proto_dir" --as-file-descriptor-set -o "$fds"
fi
rust_target="${CARGO_TARGET_DIR:-$rust_dir/target}"
cargo build --quiet --release --locked --manifest-path "$rust_dir/Cargo.toml" --target-dir "$rust_target"
cp "$rust_target/release/connect-rust-peer" "$bin/connect-rust-peer"

echo "connect-rust peer: $bin/connect-rust-peer [--port 9096]"
echo "connect-go peer:   $bin/connect-go-peer [-addr 127.0.0.1:9094]"
echo "connect-node peer: node $node_dir/server.mjs [--port 9095]"
