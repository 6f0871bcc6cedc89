#!/usr/bin/env bash
# `just new-service-check [NAME [--singular WORD]]`: what `just new-service
# NAME [--singular WORD]` gives, end
# to end, in a copy of this commit (a git worktree at a fixed place outside
# the clone, so the target dir's units for it stay warm from run to run):
# the generator, then the whole shop built and started with the new
# service and called over Connect (POST and GET), gRPC (grpcurl: health,
# reflection, a call), gRPC-Web and REST, its caller rule in force, its
# operations at /api's document; its call to the catalog (the peer its
# contract declares: a product it does not have is refused), in the whole
# shop and served alone (`shop serve NAME --catalog-url ...`); an RPC added to its contract and the
# generator run again (a stub, nothing else touched, answering
# unimplemented); buf lint, fmt and clippy of what it wrote, the new
# crate's tests and the launcher's that count the services; the OpenAPI document checked and the manifests with it (`just
# kubernetes`); then `git clean` leaves the copy as the commit was. Prints the time from the command to the new
# service answering (docs/new-service.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
name=${1:-reviews}
options=("${@:2}")
copy=${NEW_SERVICE_COPY:-$HOME/.cache/connect-shop/new-service-copy}
base_port=${NEW_SERVICE_BASE_PORT:-28180}
step() { echo "==> $*"; }
fail() { echo "new-service-check: $*" >&2; exit 1; }

buf="$root/tests/interop/node_modules/.bin/buf"
[ -x "$buf" ] || fail "buf is missing: just tools"
command -v go >/dev/null || fail "go is missing (Debian: golang-go)"
gobin="$(go env GOPATH)/bin"
[ -x "$gobin/grpcurl" ] || go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3

# The Python checks' environments, in the clone (the copy reuses them).
for checks in openapi tests/kubernetes; do
  [ -x "$root/$checks/.venv/bin/python" ] || python3 -m venv "$root/$checks/.venv"
  "$root/$checks/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/$checks/requirements.txt"
done

# The copy's `just contract` and `just kubernetes` use the clone's environment.
export KUBERNETES_VENV="$root/tests/kubernetes/.venv"

step "a copy of this commit ($(git -C "$root" rev-parse --short HEAD)) at $copy"
git -C "$root" worktree remove --force "$copy" 2>/dev/null || rm -rf "$copy"
git -C "$root" worktree prune
git -C "$root" worktree add --quiet --detach "$copy" HEAD
shop=
alone=
cleanup() {
  [ -z "$shop" ] || { kill "$shop" 2>/dev/null; wait "$shop" 2>/dev/null || true; }
  [ -z "$alone" ] || kill "$alone" 2>/dev/null || true
  git -C "$root" worktree remove --force "$copy" 2>/dev/null || true
}
trap cleanup EXIT
cd "$copy"
started=$(date +%s)

step "just new-service $name ${options[*]}"
just new-service "$name" "${options[@]}"
Name=$(python3 -c "import sys; print(sys.argv[1].capitalize())" "$name")
singular=$(grep -o "service [A-Z][a-z0-9]*Service" "proto/shop/$name/v1/$name.proto" | head -1 | sed 's/service \(.*\)Service/\1/')
rpc="shop.$name.v1.${singular}Service"

step "the shop (cargo build), started with $name"
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
data=$(mktemp -d)
gateway=$base_port users=$((base_port + 1)) catalog=$((base_port + 2)) orders=$((base_port + 3)) payments=$((base_port + 4)) own=$((base_port + 5))
until_ready() { # PORT PID LOG WHAT: within 60 s, or fail showing the log
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; fail "$4 stopped"; }
    sleep 0.1
  done
  cat "$3" >&2
  fail "$4 is not ready"
}
start_shop() {
  cargo build --quiet -p shop
  "$target/debug/shop" --data-dir "$data" --gateway-port "$gateway" --users-port "$users" \
    --catalog-port "$catalog" --orders-port "$orders" --payments-port "$payments" \
    "--$name-port" "$own" >"$data/shop.log" 2>&1 &
  shop=$!
  until_ready "$own" "$shop" "$data/shop.log" "the shop with $name"
}
stop_shop() {
  kill "$shop"; wait "$shop" 2>/dev/null || true
  shop=
}
start_shop
answering=$(date +%s)
# The banner comes once every service is ready and the dashboard listens.
for _ in $(seq 1 100); do
  grep -q "^  $name " "$data/shop.log" && break
  sleep 0.1
done
grep -q "^  $name " "$data/shop.log" || fail "the banner does not list $name"

step "calls: Connect, gRPC, gRPC-Web, REST; its caller rule"
login() {
  curl -sf "http://127.0.0.1:$users/shop.users.v1.UserService/$1" -H 'content-type: application/json' -d "$2" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["accessToken"])'
}
demo=$(login LogIn '{"email": "demo@connect-shop.dev", "password": "demo-password-1"}')
other=$(login SignUp "{\"email\": \"other-$$@example.com\", \"password\": \"another-password-1\", \"displayName\": \"Other\"}")
base="http://127.0.0.1:$own/$rpc"
expect() { # what, expected substring, actual
  case "$3" in *"$2"*) echo "    ok: $1" ;; *) fail "$1: expected $2 in: $3" ;; esac
}
created=$(curl -s "$base/Create$singular" -H 'content-type: application/json' -H "authorization: Bearer $demo" \
  -d '{"requestId": "first", "title": "Made by the check", "productId": "prod_espresso"}')
expect "Connect JSON: Create$singular" '"title":"Made by the check"' "$created"
expect "the catalog asked: a product it does not have is refused" '"code":"failed_precondition"' \
  "$(curl -s "$base/Create$singular" -H 'content-type: application/json' -H "authorization: Bearer $demo" \
    -d '{"requestId": "second", "title": "About nothing", "productId": "prod_none"}')"
id=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['${singular,}']['id'])" "$created")
message=$(python3 -c "import json,sys,urllib.parse; print(urllib.parse.quote(json.dumps({'${singular,}Id': sys.argv[1]})))" "$id")
expect "Connect GET: Get$singular" "\"id\":\"$id\"" \
  "$(curl -s "$base/Get$singular?connect=v1&encoding=json&message=$message" -H "authorization: Bearer $demo")"
expect "another customer's is not_found" '"code":"not_found"' \
  "$(curl -s "$base/Get$singular?connect=v1&encoding=json&message=$message" -H "authorization: Bearer $other")"
expect "anonymous is unauthenticated" '"code":"unauthenticated"' \
  "$(curl -s "$base/List$Name" -H 'content-type: application/json' -d '{}')"
expect "REST: GET /v1/$name" "\"id\":\"$id\"" \
  "$(curl -s "http://127.0.0.1:$own/v1/$name?pageSize=5" -H "authorization: Bearer $demo")"
expect "gRPC health: SERVING" 'SERVING' \
  "$("$gobin/grpcurl" -plaintext -d "{\"service\": \"$rpc\"}" "127.0.0.1:$own" grpc.health.v1.Health/Check)"
expect "gRPC reflection lists it" "$rpc" "$("$gobin/grpcurl" -plaintext "127.0.0.1:$own" list)"
expect "gRPC: List$Name" "$id" \
  "$("$gobin/grpcurl" -plaintext -H "authorization: Bearer $demo" -d '{}' "127.0.0.1:$own" "$rpc/List$Name")"
printf '\x00\x00\x00\x00\x00' >"$data/empty.grpcweb"
expect "gRPC-Web: List$Name" "grpc-status:0" \
  "$(curl -s -X POST "$base/List$Name" -H 'content-type: application/grpc-web+proto' -H "authorization: Bearer $demo" \
    --data-binary @"$data/empty.grpcweb" | tr -d '\000-\011\013-\037')"
expect "/api's document lists its operations" "/v1/$name" \
  "$(curl -s "http://127.0.0.1:$gateway/openapi.json" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["paths"]))')"

step "$name served alone (shop serve $name), calling the whole shop's catalog at --catalog-url"
alone_port=$((base_port + 6))
mkdir -p "$data/alone"
"$target/debug/shop" --data-dir "$data/alone" serve "$name" "--$name-port" "$alone_port" \
  --users-url "http://127.0.0.1:$users" --catalog-url "http://127.0.0.1:$catalog" >"$data/alone.log" 2>&1 &
alone=$!
until_ready "$alone_port" "$alone" "$data/alone.log" "shop serve $name"
alone_base="http://127.0.0.1:$alone_port/$rpc"
expect "alone: Create$singular about a product of the catalog" '"productId":"prod_filter"' \
  "$(curl -s "$alone_base/Create$singular" -H 'content-type: application/json' -H "authorization: Bearer $demo" \
    -d '{"requestId": "alone", "title": "Made alone", "productId": "prod_filter"}')"
expect "alone: a product the catalog does not have is refused" '"code":"failed_precondition"' \
  "$(curl -s "$alone_base/Create$singular" -H 'content-type: application/json' -H "authorization: Bearer $demo" \
    -d '{"requestId": "alone-2", "title": "About nothing", "productId": "prod_none"}')"
kill "$alone"; wait "$alone" 2>/dev/null || true
alone=
stop_shop
"$target/debug/shop" --data-dir "$data" migrate "$name" | grep -q "up to date" || fail "shop migrate $name"
echo "    ok: shop migrate $name"

step "an RPC added to its contract: just new-service $name again writes its line and a stub, and touches nothing else"
api="services/$name/src/api.rs"
cp "$api" "$data/api.before"
python3 - "proto/shop/$name/v1/$name.proto" "$singular" <<'PY'
import sys
path, singular = sys.argv[1], sys.argv[2]
text = open(path).read()
service = f"service {singular}Service {{"
at = text.index(service) + len(service)
rpc = f"""
  // Archives one of the caller's own. Who: its customer.
  rpc Archive{singular}(Archive{singular}Request) returns (Archive{singular}Response) {{}}
"""
text = text[:at] + rpc + text[at:]
text += f"""
message Archive{singular}Request {{
  string {singular.lower()}_id = 1;
}}

message Archive{singular}Response {{}}
"""
open(path, "w").write(text)
PY
again=$(just new-service "$name" 2>&1) || { echo "$again" | sed 's/^/    /'; fail "just new-service $name, run again, failed"; }
echo "$again" | sed 's/^/    /'
expect "the stub of Archive$singular" "+ ${singular}Service.Archive$singular" "$again"
changed=$(diff "$data/api.before" "$api" | grep -c '^<' || true)
[ "$changed" = 0 ] || fail "$api: $changed lines that were there changed"
echo "    ok: every line of $api that was there is as it was"
expect "run again, nothing to add" "nothing to add" "$(cargo run --quiet -p shop-new-service -- "$name")"
start_shop
expect "the stub answers unimplemented" '"code":"unimplemented"' \
  "$(curl -s "$base/Archive$singular" -H 'content-type: application/json' -H "authorization: Bearer $demo" -d '{}')"
stop_shop
rm -rf "$data"

step "buf lint (the contract with $rpc in it)"
(cd proto && "$buf" lint)

step "cargo fmt --check; clippy of the new crate and the launcher (warnings are errors)"
cargo fmt --all -- --check
cargo clippy --quiet -p "shop-$name" -p shop --all-targets -- -D warnings

step "cargo test -p shop-$name, and the launcher's tests that count the services (flags, start, Connect GET, the policy and REST tables)"
cargo test --quiet -p "shop-$name"
cargo test --quiet -p shop --test flags --test quiet_start --test connect_get --test policy_table --test rest_routes

step "the OpenAPI document: current with the contract, valid OpenAPI 3.1"
openapi/generate.sh --check
"$root/openapi/.venv/bin/openapi-spec-validator" openapi/openapi.json

step "the alert rules with $name's job and objectives (promtool)"
promtool check rules deploy/observability/rules.yaml

step "the manifests with $name (just kubernetes: the overlays rendered and read, a server dry run)"
tests/kubernetes/run.sh

step "git clean: the copy is as the commit was"
git checkout --quiet -- .
git clean -fdq
[ -z "$(git status --porcelain)" ] || { git status --short; fail "the copy differs from the commit"; }

echo "new-service-check: $name answered $((answering - started)) s after the command (written, built and started in the copy; then linted and tested)"
