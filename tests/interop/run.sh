#!/usr/bin/env bash
# Starts the shop (release build, fresh data folder, its own ports) and calls
# it with real third-party clients: buf curl and connect-node (node --test),
# which also places orders through the saga, Python grpcio (unittest),
# grpcurl (a refusal's ErrorInfo decoded through reflection), curl on the
# REST routes (rest.sh) and connect-go, each RPC client on code generated
# from proto/ by its own plain plugins (every generated Go package
# compiles, every Python module imports). Then
# a second shop on TLS (shop certs, shop --tls-dir) is called by curl,
# connect-node, buf curl, grpcio and grpcurl (a client certificate against
# an internal service). Fails if any call fails, then checks that the
# shop's /metrics counted the calls on every protocol.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${INTEROP_CATALOG_PORT:-18082}
users_port=${INTEROP_USERS_PORT:-18081}
orders_port=${INTEROP_ORDERS_PORT:-18083}
gateway_port=${INTEROP_GATEWAY_PORT:-18080}
data=$(mktemp -d)
log="$data/shop.log"

step() { printf '\n==> %s\n' "$*"; }

step "client dependencies (npm, pip)"
cd "$here"
[ -x node_modules/.bin/buf ] || npm install --no-audit --no-fund --loglevel=error
PATH="$here/node_modules/.bin:$PATH" npm run --silent generate
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
mkdir -p gen/python
# protovalidate's options (proto/vendor/protovalidate) are imported by every
# request message: generated too, as buf/validate/validate_pb2.py. The
# google.api.http options (proto/vendor/googleapis) are imported from the
# googleapis-common-protos package (a dependency of grpcio-status).
validate="$root/proto/vendor/protovalidate"
googleapis="$root/proto/vendor/googleapis"
.venv/bin/python -m grpc_tools.protoc -I "$root/proto" -I "$validate" -I "$googleapis" --python_out=gen/python --grpc_python_out=gen/python \
  $(cd "$root/proto" && find shop kit -name '*.proto') buf/validate/validate.proto

step "Go clients (protoc-gen-go, protoc-gen-connect-go from go install)"
gobin="$(go env GOPATH)/bin"
[ -x "$gobin/protoc-gen-go" ] || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
[ -x "$gobin/protoc-gen-connect-go" ] || go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
[ -x "$gobin/grpcurl" ] || go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
rm -rf go/shop go/kit
# Only the shop's files and the kit's options they import: protovalidate's
# and google.api's Go packages come from the Go module proxy
# (buf.build/gen/go/bufbuild/protovalidate/... and
# google.golang.org/genproto/googleapis/api, in go.mod).
(cd go && PATH="$gobin:$PATH" ../node_modules/.bin/buf generate "$root/proto" --template buf.gen.yaml --path "$root/proto/shop" --path "$root/proto/kit" && go build -o "$data/catalog-go" ./cmd/catalog)

step "the shop (cargo build --release)"
cd "$root"
cargo build --release --quiet --bin shop
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
"$target/release/shop" --data-dir "$data" --catalog-port "$port" --users-port "$users_port" --orders-port "$orders_port" --payments-port "${INTEROP_PAYMENTS_PORT:-18084}" --gateway-port "$gateway_port" >"$log" 2>&1 &
shop=$!
trap 'kill $shop 2>/dev/null; wait $shop 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 $shop 2>/dev/null || { cat "$log"; echo "the shop exited"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$log"; echo "the shop never became ready"; exit 1; }
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$gateway_port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done

step "connect-node and buf curl"
cd "$here"
CATALOG_URL="http://127.0.0.1:$port" node --test connect-node.test.mjs

step "connect-node places orders (the saga, WatchOrder, the history)"
USERS_URL="http://127.0.0.1:$users_port" ORDERS_URL="http://127.0.0.1:$orders_port" node --test orders.test.mjs

step "connect-node calls the gateway (BFF)"
USERS_URL="http://127.0.0.1:$users_port" GATEWAY_URL="http://127.0.0.1:$gateway_port" node --test gateway.test.mjs

step "Python grpcio"
CATALOG_ADDR="127.0.0.1:$port" .venv/bin/python grpcio_test.py

step "curl walks the REST routes (docs/rest.md)"
"$here/rest.sh" "http://127.0.0.1:$users_port" "http://127.0.0.1:$port" \
  "http://127.0.0.1:$orders_port" "http://127.0.0.1:$gateway_port"

step "connect-go (Connect, gRPC, gRPC-Web)"
CATALOG_URL="http://127.0.0.1:$port" "$data/catalog-go"

step "grpcurl decodes a refusal's details (google.rpc.ErrorInfo) through reflection"
token=$(curl -fsS "http://127.0.0.1:$users_port/shop.users.v1.UserService/LogIn" -H 'Content-Type: application/json' \
  -d '{"email": "demo@connect-shop.dev", "password": "demo-password-1"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["accessToken"])')
refused=$("$gobin/grpcurl" -plaintext -H "authorization: Bearer $token" \
  -d '{"idempotencyKey": "interop-typo", "paymentToken": "tok_vias", "items": [{"productId": "prod_mug", "quantity": 1}]}' \
  "127.0.0.1:$orders_port" shop.orders.v1.OrderService/CreateOrder 2>&1 || true)
echo "$refused" | sed 's/^/  /'
grep -q 'Code: NotFound' <<<"$refused" || { echo "not not_found"; exit 1; }
grep -q '"@type": "type.googleapis.com/google.rpc.ErrorInfo"' <<<"$refused" || { echo "ErrorInfo not decoded"; exit 1; }
grep -q '"reason": "UNKNOWN_PAYMENT_TOKEN"' <<<"$refused" || { echo "no reason"; exit 1; }

step "grpcurl decodes a broken rule's google.rpc.BadRequest through reflection"
broken=$("$gobin/grpcurl" -plaintext -d '{"productIds": []}' \
  "127.0.0.1:$port" shop.catalog.v1.CatalogService/BatchGetProducts 2>&1 || true)
echo "$broken" | sed 's/^/  /'
grep -q 'Code: InvalidArgument' <<<"$broken" || { echo "not invalid_argument"; exit 1; }
grep -q '"@type": "type.googleapis.com/google.rpc.BadRequest"' <<<"$broken" || { echo "BadRequest not decoded"; exit 1; }
grep -q '"field": "product_ids"' <<<"$broken" || { echo "no field named"; exit 1; }

step "the shop on TLS (shop certs, shop --tls-dir): mutual TLS between its services"
certs="$data/certs"
"$target/release/shop" certs "$certs" >/dev/null
tls_ports=(${INTEROP_TLS_PORTS:-28080 28081 28082 28083 28084})
"$target/release/shop" --tls-dir "$certs" --data-dir "$data/tls" --gateway-port "${tls_ports[0]}" \
  --users-port "${tls_ports[1]}" --catalog-port "${tls_ports[2]}" --orders-port "${tls_ports[3]}" \
  --payments-port "${tls_ports[4]}" >"$data/tls.log" 2>&1 &
tls_shop=$!
trap 'kill $shop $tls_shop 2>/dev/null; wait $shop $tls_shop 2>/dev/null; rm -rf "$data"' EXIT
tls_catalog="https://localhost:${tls_ports[2]}"
for _ in $(seq 1 150); do
  curl -fsS --cacert "$certs/ca.pem" "$tls_catalog/readyz" >/dev/null 2>&1 && break
  kill -0 $tls_shop 2>/dev/null || { cat "$data/tls.log"; echo "the TLS shop exited"; exit 1; }
  sleep 0.2
done

step "curl --cacert (HTTP/2 and HTTP/1.1 by ALPN)"
for version in --http2 --http1.1; do
  answer=$(curl -fsS "$version" --cacert "$certs/ca.pem" -w ' %{http_version}' \
    "$tls_catalog/shop.catalog.v1.CatalogService/GetProduct" -H 'Content-Type: application/json' -d '{"id": "prod_mug"}')
  echo "  $version: ${answer: -40}"
  grep -q '"prod_mug"' <<<"$answer" || { echo "curl $version over TLS failed"; exit 1; }
done
plain=$(curl -sS "http://127.0.0.1:${tls_ports[2]}/healthz" || true)
echo "  plain text to the TLS port: $plain"
grep -q 'speaks TLS only' <<<"$plain" || { echo "plain text was not refused"; exit 1; }

step "connect-node and buf curl over TLS"
CATALOG_URL="$tls_catalog" SHOP_CA="$certs/ca.pem" node --test tls.test.mjs

step "Python grpcio over TLS (ssl_channel_credentials)"
CATALOG_ADDR="localhost:${tls_ports[2]}" SHOP_CA="$certs/ca.pem" .venv/bin/python grpcio_test.py

step "grpcurl over TLS: -cacert, and -cert/-key against an internal service"
"$gobin/grpcurl" -cacert "$certs/ca.pem" -d '{"id": "prod_mug"}' "localhost:${tls_ports[2]}" \
  shop.catalog.v1.CatalogService/GetProduct | grep -q '"prod_mug"' || { echo "grpcurl over TLS failed"; exit 1; }
echo "  CatalogService/GetProduct: ok"
# CommitStock, not ReleaseStock: a release of a reservation the catalog
# never saw is recorded (it may overtake its reserve) and answers RELEASED,
# where a commit looks the reservation up and says there is none.
commit='{"reservationId": "interop-no-such-reservation"}'
without=$("$gobin/grpcurl" -cacert "$certs/ca.pem" -d "$commit" "localhost:${tls_ports[2]}" \
  shop.catalog.v1.StockService/CommitStock 2>&1 || true)
echo "  StockService/CommitStock without a client certificate: $(tr '\n' ' ' <<<"$without")"
grep -q 'Code: Unauthenticated' <<<"$without" || { echo "an internal call without a certificate was not refused"; exit 1; }
with=$("$gobin/grpcurl" -cacert "$certs/ca.pem" -cert "$certs/orders-client.pem" -key "$certs/orders-client-key.pem" \
  -d "$commit" "localhost:${tls_ports[2]}" shop.catalog.v1.StockService/CommitStock 2>&1 || true)
echo "  StockService/CommitStock as orders (spiffe://connect-shop/orders): $(tr '\n' ' ' <<<"$with")"
# Accepted means the call ran: the catalog looked for the reservation and
# said there is none. A refusal, a failed handshake or a dial error fail.
grep -q 'Code: NotFound' <<<"$with" && grep -q 'interop-no-such-reservation' <<<"$with" \
  || { echo "orders' client certificate did not get the call served"; exit 1; }

step "the shop's metrics counted every protocol"
metrics=$(curl -fsS "http://127.0.0.1:$port/metrics")
for protocol in connect grpc grpcweb rest; do
  line=$(grep -E "^rpc_server_call_duration_seconds_count\{.*method=\"GetProduct\",protocol=\"$protocol\",code=\"ok\"\}" <<<"$metrics" || true)
  [ -n "$line" ] || { echo "no $protocol GetProduct calls counted"; exit 1; }
  echo "  $line"
done
echo
echo "interop: all third-party clients passed"
