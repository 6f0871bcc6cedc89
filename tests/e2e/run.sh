#!/usr/bin/env bash
# The browser journey: builds and starts the shop (release launcher, which
# builds the web app), then drives Debian's Chromium through it with
# playwright-core, and through the API reference at /api. Screenshots land
# in tests/e2e/screenshots.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
base=${E2E_BASE_PORT:-18280}
data=$(mktemp -d)
log="$data/shop.log"
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "no Chromium at $chromium (apt-get install chromium, or set CHROMIUM)" >&2; exit 1; }

echo "==> playwright-core (npm)"
cd "$here"
npm install --no-audit --no-fund --loglevel=error

echo "==> the shop (cargo build --release; builds the web app into the binary)"
cd "$root"
cargo build --release --quiet --bin shop
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
gateway="http://127.0.0.1:$base"
# Started from another folder: the app comes from the binary, not the checkout.
(cd "$data" && exec "$target/release/shop" --data-dir "$data/db" --gateway-port "$base" --users-port $((base + 1)) \
  --catalog-port $((base + 2)) --orders-port $((base + 3)) --payments-port $((base + 4)) \
  --dashboard-port $((base + 9)) >"$log" 2>&1) &
shop=$!
trap 'kill $shop 2>/dev/null; wait $shop 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 150); do
  curl -fsS "$gateway/readyz" >/dev/null 2>&1 && break
  kill -0 $shop 2>/dev/null || { cat "$log"; echo "the shop exited"; exit 1; }
  sleep 0.2
done
curl -fsS "$gateway/readyz" >/dev/null || { cat "$log"; echo "the shop never became ready"; exit 1; }
curl -fsS "$gateway/" | grep -q '<script type="module"' || { echo "the binary has no web app built in" >&2; exit 1; }

echo "==> the journey in Chromium"
cd "$here"
rm -rf screenshots
GATEWAY_URL="$gateway" CHROMIUM="$chromium" SCREENSHOTS="$here/screenshots" node --test journey.test.mjs

echo "==> the API reference (/api) in Chromium: offline, and its try-it as the signed-in user"
GATEWAY_URL="$gateway" CHROMIUM="$chromium" SCREENSHOTS="$here/screenshots" node --test reference.test.mjs

echo "==> the dashboard in Chromium: every service and RPC, an order from its explorer, its trace and saga"
DASHBOARD_URL="http://127.0.0.1:$((base + 9))" CHROMIUM="$chromium" SCREENSHOTS="$here/screenshots" node --test dashboard.test.mjs

echo "==> the first journey again, the shop on TLS (shop certs, shop --tls-dir) in Chromium"
certs="$data/certs"
"$target/release/shop" certs "$certs" >/dev/null
tls_base=$((base + 10))
(cd "$data" && exec "$target/release/shop" --tls-dir "$certs" --data-dir "$data/tls-db" --gateway-port "$tls_base" \
  --users-port $((tls_base + 1)) --catalog-port $((tls_base + 2)) --orders-port $((tls_base + 3)) \
  --payments-port $((tls_base + 4)) --dashboard off >"$data/tls.log" 2>&1) &
tls_shop=$!
trap 'kill $shop $tls_shop 2>/dev/null; wait $shop $tls_shop 2>/dev/null; rm -rf "$data"' EXIT
tls_gateway="https://localhost:$tls_base"
for _ in $(seq 1 150); do
  curl -fsS --cacert "$certs/ca.pem" "$tls_gateway/readyz" >/dev/null 2>&1 && break
  kill -0 $tls_shop 2>/dev/null || { cat "$data/tls.log"; echo "the TLS shop exited"; exit 1; }
  sleep 0.2
done
# Chromium trusts exactly the shop's five certificates (their public keys).
spki=$(for service in users catalog orders payments gateway; do
  openssl x509 -in "$certs/$service.pem" -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64
done | paste -sd, -)
GATEWAY_URL="$tls_gateway" CHROMIUM="$chromium" SCREENSHOTS="$here/screenshots/tls" \
  CHROMIUM_ARGS="--ignore-certificate-errors-spki-list=$spki" \
  node --test --test-name-pattern "sign up, search" journey.test.mjs
echo
echo "screenshots (tests/e2e/screenshots):"
ls -l screenshots
