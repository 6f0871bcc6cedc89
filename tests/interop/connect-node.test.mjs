// Calls the running catalog with connect-node over its three transports,
// and with buf curl over connect, grpc and grpcweb (schema from proto/ and
// from server reflection). Run by tests/interop/run.sh.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import http from "node:http";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { CatalogService } from "./gen/es/shop/catalog/v1/catalog_pb.js";

const baseUrl = process.env.CATALOG_URL ?? "http://127.0.0.1:8082";

/** Records the HTTP method and protocol headers of every request sent. */
function recorder() {
  const seen = [];
  const interceptor = (next) => async (req) => {
    seen.push({ method: req.requestMethod, url: req.url, headers: new Headers(req.header) });
    return next(req);
  };
  return { seen, interceptor };
}

const transports = {
  "connect json (HTTP/1.1)": (i) =>
    createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [i] }),
  "connect proto (HTTP/2)": (i) =>
    createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors: [i] }),
  "grpc (HTTP/2)": (i) => createGrpcTransport({ baseUrl, interceptors: [i] }),
  "grpc-web (HTTP/1.1)": (i) =>
    createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors: [i] }),
};

for (const [name, makeTransport] of Object.entries(transports)) {
  test(`connect-node ${name}: unary, errors and a stream`, async () => {
    const { interceptor } = recorder();
    const client = createClient(CatalogService, makeTransport(interceptor));

    const { product } = await client.getProduct({ id: "prod_mug" });
    assert.equal(product?.sku, "MUG-STONE-01");
    assert.equal(product?.price?.currencyCode, "EUR");
    assert.equal(product?.price?.minorUnits, 1800n);

    const page = await client.listProducts({ pageSize: 3 });
    assert.equal(page.products.length, 3);
    assert.notEqual(page.nextPageToken, "");

    await assert.rejects(client.getProduct({ id: "no-such-product" }), (err) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.NotFound);
      return true;
    });

    // A stream: the current stock first, then the server ends it at the deadline.
    const received = [];
    await assert.rejects(
      (async () => {
        for await (const update of client.watchStock({ productIds: ["prod_mug"] }, { timeoutMs: 400 })) {
          received.push(update);
        }
      })(),
      (err) => {
        assert.equal(ConnectError.from(err).code, Code.DeadlineExceeded);
        return true;
      },
    );
    assert.equal(received[0]?.productId, "prod_mug");
  });
}

/** A loopback proxy that records what really crosses the wire. */
async function recordingProxy() {
  const upstream = new URL(baseUrl);
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url });
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(forward);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { seen, url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

test("connect-node uses Connect GET for idempotent methods", async () => {
  const proxy = await recordingProxy();
  try {
    const client = createClient(
      CatalogService,
      createConnectTransport({ baseUrl: proxy.url, httpVersion: "1.1", useHttpGet: true }),
    );
    const { product } = await client.getProduct({ id: "prod_espresso" });
    assert.equal(product?.name, "Espresso beans 250 g");
    const call = proxy.seen.at(-1);
    assert.equal(call?.method, "GET");
    assert.match(call?.url ?? "", /^\/shop\.catalog\.v1\.CatalogService\/GetProduct\?.*message=/);
  } finally {
    proxy.close();
  }
});

const buf = new URL("./node_modules/.bin/buf", import.meta.url).pathname;
const schema = new URL("../../proto", import.meta.url).pathname;
const method = `${baseUrl}/shop.catalog.v1.CatalogService/GetProduct`;

function bufCurl(...args) {
  return JSON.parse(execFileSync(buf, ["curl", ...args], { encoding: "utf8", timeout: 30_000 }));
}

for (const [protocol, extra] of [
  ["connect", []],
  ["grpc", ["--http2-prior-knowledge"]],
  ["grpcweb", []],
]) {
  test(`buf curl --protocol ${protocol}`, () => {
    const answer = bufCurl("--protocol", protocol, ...extra, "--schema", schema, "--data", '{"id":"prod_mug"}', method);
    assert.equal(answer.product.sku, "MUG-STONE-01");
  });
}

test("buf curl discovers the schema by gRPC reflection", () => {
  const answer = bufCurl("--protocol", "grpc", "--http2-prior-knowledge", "--reflect", "--data", '{"id":"prod_kettle"}', method);
  assert.equal(answer.product.name, "Gooseneck kettle");
  const methods = execFileSync(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect", "--list-methods", baseUrl], {
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.match(methods, /shop\.catalog\.v1\.CatalogService\/WatchStock/);
});

test("buf curl with its defaults (Connect) discovers the schema by reflection", () => {
  const answer = bufCurl("--reflect", "--data", '{"id":"prod_filter"}', method);
  assert.equal(answer.product.sku, "BEAN-FLT-250");
});

test("grpc.health.v1 answers Connect too", async () => {
  const response = await fetch(`${baseUrl}/grpc.health.v1.Health/Check`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: "SERVING" });
});
