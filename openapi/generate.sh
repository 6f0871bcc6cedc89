#!/usr/bin/env bash
# Writes openapi/openapi.json, the OpenAPI 3.1 document of the shop's
# public API, from the protos: protoc-gen-connect-openapi (built once into
# the tools cache) runs twice, once for the Connect paths (POST, and GET
# for the idempotent reads) and once for the google.api.http routes (it
# documents only the REST route of an annotated method), with base.yaml's
# info, servers and security; merge.py joins the two and adds each RPC's
# call policy (who may call, its deadline, the errors it answers) from
# buf's image of the protos, which also says which services are public
# (their caller rule). With --check, fails
# when the checked-in document differs from what the protos give (CI).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

generator=$("$here/build-generator.sh")
buf="$root/tests/interop/node_modules/.bin/buf"
[ -x "$buf" ] || { echo "buf is missing: just tools" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The protos as buf reads them, options included: the public services (the
# internal ones are for the shop's services only) and each RPC's call policy.
(cd "$root/proto" && "$buf" build --path shop -o "$work/image.json")
mapfile -t public < <(python3 "$here/merge.py" --public "$work/image.json")
[ "${#public[@]}" -gt 0 ] || { echo "no public service in the protos" >&2; exit 1; }
for run in connect:connectrpc rest:google.api.http; do
  name=${run%%:*}
  {
    echo "version: v2"
    echo "plugins:"
    echo "  - local: $generator"
    echo "    out: $work/$name"
    echo "    strategy: all"
    echo "    opt:"
    echo "      - format=json"
    echo "      - path=$name.json"
    echo "      - base=$here/base.yaml"
    echo "      - features=${run#*:};protovalidate"
    echo "      - allow-get"
    echo "      - with-google-error-detail"
    echo "      - short-service-tags"
    echo "      - trim-unused-types"
    for service in "${public[@]}"; do echo "      - services=$service"; done
  } > "$work/$name.yaml"
  (cd "$root/proto" && "$buf" generate --template "$work/$name.yaml" --path shop)
done
python3 "$here/merge.py" "$work/connect/connect.json" "$work/rest/rest.json" "$work/image.json" > "$work/openapi.json"

if $check; then
  if ! diff -u "$here/openapi.json" "$work/openapi.json" > "$work/diff"; then
    head -40 "$work/diff"
    echo "openapi/openapi.json is out of date with the protos: run just openapi and commit it" >&2
    exit 1
  fi
  echo "openapi/openapi.json is up to date with the protos"
else
  mv "$work/openapi.json" "$here/openapi.json"
  echo "wrote openapi/openapi.json ($(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["paths"]), "paths,", len(d["components"]["schemas"]), "schemas")' "$here/openapi.json"))"
fi
