// Calls the running gateway (the BFF) with connect-node, as the web and
// mobile apps would: signed out and signed in, over Connect JSON, Connect
// GET and gRPC-Web. Run by tests/interop/run.sh.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { UserService } from "./gen/es/shop/users/v1/users_pb.js";
import { MobileBffService, WebBffService } from "./gen/es/shop/bff/v1/bff_pb.js";

const usersUrl = process.env.USERS_URL ?? "http://127.0.0.1:8081";
const gatewayUrl = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";

async function demoToken() {
  const users = createClient(UserService, createConnectTransport({ baseUrl: usersUrl, httpVersion: "1.1" }));
  const { session } = await users.logIn({ email: "demo@connect-shop.dev", password: "demo-password-1" });
  return session.accessToken;
}

const withToken = (token) => (next) => async (req) => {
  req.header.set("Authorization", `Bearer ${token}`);
  return next(req);
};

test("the web home, signed in, over Connect JSON", async () => {
  const token = await demoToken();
  const web = createClient(
    WebBffService,
    createConnectTransport({ baseUrl: gatewayUrl, httpVersion: "1.1", interceptors: [withToken(token)] }),
  );
  const home = await web.getHome({ featuredCount: 4 });
  assert.equal(home.account?.email, "demo@connect-shop.dev");
  assert.equal(home.featuredProducts.length, 4);
  assert.ok(home.featuredProducts.every((p) => p.price?.currencyCode === "EUR"));
  assert.deepEqual(home.degraded, []);
});

test("the mobile home, signed out, over Connect GET (plain fetch) and gRPC-Web", async () => {
  // A Connect GET is a plain, cacheable HTTP GET.
  const query = "connect=v1&encoding=json&message=%7B%7D";
  const response = await fetch(`${gatewayUrl}/shop.bff.v1.MobileBffService/GetHome?${query}`);
  assert.equal(response.status, 200);
  const home = await response.json();
  assert.equal(home.greeting, "Welcome");
  assert.ok(home.topProduct?.name);

  const viaGrpcWeb = createClient(
    MobileBffService,
    createGrpcWebTransport({ baseUrl: gatewayUrl, httpVersion: "1.1" }),
  );
  assert.equal((await viaGrpcWeb.getHome({})).topProduct?.id, home.topProduct.id);
});
