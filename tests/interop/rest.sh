#!/usr/bin/env bash
# curl walks the shop's REST routes (its google.api.http rules), as
# docs/rest.md shows them: sign in, browse, order, watch the order as
# Server-Sent Events until it is final, read the history and a home screen,
# and the refusals (unknown parameter, no token, a confirmed order not
# cancellable) in Connect's error shape under grpc-gateway's statuses.
#
# Usage: rest.sh USERS_URL CATALOG_URL ORDERS_URL GATEWAY_URL
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: $0 USERS_URL CATALOG_URL ORDERS_URL GATEWAY_URL" >&2
  exit 2
fi
users=$1 catalog=$2 orders=$3 gateway=$4

fail() { echo "REST walk: $*" >&2; exit 1; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# The status and the body of one call, "STATUS BODY".
call() { curl -sS -w '\n%{http_code}' "$@" | python3 -c 'import sys; *body, status = sys.stdin.read().split("\n"); print(status, "\n".join(body))'; }
expect() {
  local wanted=$1 what=$2; shift 2
  local answer status
  answer=$(call "$@")
  status=${answer%% *}
  echo "  $what: $status ${answer#* }" | cut -c1-160
  [ "$status" = "$wanted" ] || fail "$what: HTTP $status, not $wanted"
  body=${answer#* }
}

token=$(curl -fsS -X POST "$users/v1/sessions" \
  -d '{"email": "demo@connect-shop.dev", "password": "demo-password-1"}' | json '["session"]["accessToken"]')
auth=(-H "Authorization: Bearer $token")

expect 200 "GET /v1/me" "$users/v1/me" "${auth[@]}"
expect 200 "GET /v1/products?pageSize=2" "$catalog/v1/products?pageSize=2"
[ "$(json '["products"].__len__()' <<<"$body")" = 2 ] || fail "two products"
expect 200 "GET /v1/products/prod_mug" "$catalog/v1/products/prod_mug"
expect 200 "POST /v1/products:batchGet" -X POST "$catalog/v1/products:batchGet" -d '{"productIds": ["prod_mug", "prod_espresso"]}'

key="rest-walk-$(date +%s%N)"
expect 200 "POST /v1/orders" -X POST "$orders/v1/orders" "${auth[@]}" \
  -d "{\"idempotencyKey\": \"$key\", \"paymentToken\": \"tok_visa\", \"items\": [{\"productId\": \"prod_mug\", \"quantity\": 1}]}"
order=$(json '["order"]["id"]' <<<"$body")

echo "  GET /v1/orders/$order:watch (Server-Sent Events, until final):"
events=$(curl -fsSN --max-time 20 "$orders/v1/orders/$order:watch" "${auth[@]}")
echo "$events" | grep '^data:' | cut -c1-120 | sed 's/^/    /'
grep -q 'ORDER_STATUS_CONFIRMED' <<<"$events" || fail "the order's events never said CONFIRMED"

expect 200 "GET /v1/orders/$order" "$orders/v1/orders/$order" "${auth[@]}"
[ "$(json '["order"]["status"]' <<<"$body")" = ORDER_STATUS_CONFIRMED ] || fail "the order is not confirmed"
expect 200 "GET /v1/orders?pageSize=1" "$orders/v1/orders?pageSize=1" "${auth[@]}"
expect 200 "GET /v1/web/home" "$gateway/v1/web/home" "${auth[@]}"
expect 200 "GET /v1/mobile/home" "$gateway/v1/mobile/home"

echo "refusals:"
expect 400 "an unknown query parameter" "$catalog/v1/products?colour=red"
[ "$(json '["code"]' <<<"$body")" = invalid_argument ] || fail "not invalid_argument"
expect 401 "GET /v1/me without a token" "$users/v1/me"
[ "$(json '["code"]' <<<"$body")" = unauthenticated ] || fail "not unauthenticated"
expect 400 "cancelling a confirmed order" -X POST "$orders/v1/orders/$order:cancel" "${auth[@]}"
[ "$(json '["code"]' <<<"$body")" = failed_precondition ] || fail "not failed_precondition"
expect 404 "an unknown order" "$orders/v1/orders/no-such-order" "${auth[@]}"
echo "REST walk: every route answered"
