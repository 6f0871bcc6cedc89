# Sourced by the scripts that build a Go tool once into the tools cache
# (tests/kubernetes/build-apiserver.sh, tests/observe/build-jaeger.sh):
# `go_tool NAME VERSION` sets `binary` to its cached path, prints it and
# exits when it is built already; otherwise it checks for Go and leaves the
# caller in a scratch folder (removed on exit) to write its wrapper module.
go_tool() {
  local cache=${SHOP_TOOLS_CACHE:-$HOME/.cache/connect-shop/tools}
  binary="$cache/$1-$2"
  if [ -x "$binary" ]; then
    echo "$binary"
    exit 0
  fi
  command -v go >/dev/null || { echo "$1 needs Go to build" >&2; exit 2; }
  mkdir -p "$cache"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$work"
}
