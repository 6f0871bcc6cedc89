// The shop on TLS (`shop --tls-dir`) called by third-party clients that
// trust its CA: connect-node over Connect, gRPC and gRPC-Web (HTTP/2 and
// HTTP/1.1 on one port, by ALPN), and buf curl with --cacert (the schema by
// reflection). Run by tests/interop/run.sh with CATALOG_URL (https) and
// SHOP_CA (the CA's PEM file).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { CatalogService } from "./gen/es/shop/catalog/v1/catalog_pb.js";

const baseUrl = process.env.CATALOG_URL ?? "https://localhost:8082";
const caFile = process.env.SHOP_CA;
const ca = readFileSync(caFile);

const transports = {
  "connect json (HTTP/1.1)": () =>
    createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }),
  "connect proto (HTTP/2)": () =>
    createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, nodeOptions: { ca } }),
  "grpc (HTTP/2)": () => createGrpcTransport({ baseUrl, nodeOptions: { ca } }),
  "grpc-web (HTTP/1.1)": () =>
    createGrpcWebTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }),
};

for (const [name, makeTransport] of Object.entries(transports)) {
  test(`connect-node over TLS, ${name}`, async () => {
    const catalog = createClient(CatalogService, makeTransport());
    const answer = await catalog.getProduct({ id: "prod_mug" });
    assert.equal(answer.product?.id, "prod_mug");
  });
}

test("connect-node refuses the shop's certificate without its CA", async () => {
  const catalog = createClient(CatalogService, createGrpcTransport({ baseUrl }));
  await assert.rejects(catalog.getProduct({ id: "prod_mug" }));
});

const buf = new URL("./node_modules/.bin/buf", import.meta.url).pathname;

test("buf curl --cacert over gRPC, the schema by reflection", () => {
  const answer = JSON.parse(
    execFileSync(
      buf,
      ["curl", "--cacert", caFile, "--protocol", "grpc", "--reflect", "--data", '{"id":"prod_kettle"}',
        `${baseUrl}/shop.catalog.v1.CatalogService/GetProduct`],
      { encoding: "utf8", timeout: 30_000 },
    ),
  );
  assert.equal(answer.product.id, "prod_kettle");
});

test("buf curl --cacert over Connect", () => {
  const answer = JSON.parse(
    execFileSync(
      buf,
      ["curl", "--cacert", caFile, "--reflect", "--data", '{"id":"prod_filter"}',
        `${baseUrl}/shop.catalog.v1.CatalogService/GetProduct`],
      { encoding: "utf8", timeout: 30_000 },
    ),
  );
  assert.equal(answer.product.id, "prod_filter");
});
