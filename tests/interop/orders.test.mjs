// Places orders in the running shop with connect-node, as a customer would:
// logs in as the demo account, orders over Connect JSON, watches the saga
// take the order to CONFIRMED live, sees a declined card cancel an order
// over gRPC-Web, and lists the history over gRPC. Run by tests/interop/run.sh.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { UserService } from "./gen/es/shop/users/v1/users_pb.js";
import { CancelReason, OrderService, OrderStatus } from "./gen/es/shop/orders/v1/orders_pb.js";

const usersUrl = process.env.USERS_URL ?? "http://127.0.0.1:8081";
const ordersUrl = process.env.ORDERS_URL ?? "http://127.0.0.1:8083";

async function demoToken() {
  const users = createClient(UserService, createConnectTransport({ baseUrl: usersUrl, httpVersion: "1.1" }));
  const { session } = await users.logIn({ email: "demo@connect-shop.dev", password: "demo-password-1" });
  assert.ok(session?.accessToken);
  return session.accessToken;
}

const withToken = (token) => (next) => async (req) => {
  req.header.set("Authorization", `Bearer ${token}`);
  return next(req);
};

test("an order is watched from PENDING to CONFIRMED over Connect JSON", async () => {
  const token = await demoToken();
  const orders = createClient(
    OrderService,
    createConnectTransport({ baseUrl: ordersUrl, httpVersion: "1.1", interceptors: [withToken(token)] }),
  );
  const { order } = await orders.createOrder({
    idempotencyKey: `interop-${Date.now()}`,
    paymentToken: "tok_visa",
    items: [{ productId: "prod_mug", quantity: 1 }],
  });
  assert.equal(order?.status, OrderStatus.PENDING);
  assert.equal(order?.total?.minorUnits, 1800n);

  const seen = [];
  for await (const { order: now } of orders.watchOrder({ orderId: order.id }, { timeoutMs: 15000 })) {
    seen.push(now.status);
  }
  assert.equal(seen.at(-1), OrderStatus.CONFIRMED, `statuses: ${seen}`);
});

test("a declined card cancels the order, seen over gRPC-Web; the history over gRPC lists it", async () => {
  const token = await demoToken();
  const grpcWeb = createClient(
    OrderService,
    createGrpcWebTransport({ baseUrl: ordersUrl, httpVersion: "1.1", interceptors: [withToken(token)] }),
  );
  const { order } = await grpcWeb.createOrder({
    idempotencyKey: `interop-declined-${Date.now()}`,
    paymentToken: "tok_declined",
    items: [{ productId: "prod_mug", quantity: 1 }],
  });
  let last;
  for await (const { order: now } of grpcWeb.watchOrder({ orderId: order.id }, { timeoutMs: 15000 })) {
    last = now;
  }
  assert.equal(last?.status, OrderStatus.CANCELLED);
  assert.equal(last?.cancelReason, CancelReason.CARD_DECLINED);
  assert.equal(last?.cancelMessage, "your card was declined");

  const grpc = createClient(
    OrderService,
    createGrpcTransport({ baseUrl: ordersUrl, interceptors: [withToken(token)] }),
  );
  // The history follows the order events: poll briefly.
  for (let attempt = 0; ; attempt++) {
    const { orders } = await grpc.listOrders({ pageSize: 10 });
    const listed = orders.find((o) => o.id === order.id);
    if (listed?.status === OrderStatus.CANCELLED) {
      assert.equal(listed.items[0]?.productName, "Stoneware mug");
      break;
    }
    assert.ok(attempt < 50, "the history never showed the cancelled order");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});
