// The local dashboard in a real browser (Debian's Chromium driven by
// playwright-core) against the launched shop: it loads, lists every service
// and every RPC of the contract, its explorer places an order as the demo
// customer, and that order's trace and saga appear within seconds. Run by
// tests/e2e/run.sh; its screenshots are docs/dashboard.md's pictures.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const dashboard = process.env.DASHBOARD_URL ?? "http://127.0.0.1:8079";
const shots = process.env.SCREENSHOTS ?? "screenshots";
mkdirSync(shots, { recursive: true });

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
});
after(async () => browser?.close());

test("the dashboard lists every service and RPC, and an explorer call's order shows its trace and saga", async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));

  // Services, live: every one ready, with figures from the first snapshot.
  await page.goto(`${dashboard}/#services`);
  for (const service of ["users", "catalog", "orders", "payments", "gateway"]) {
    await page.waitForSelector(`[data-testid=service-${service}] .dot:not(.down)`, { timeout: 10_000 });
  }
  await page.waitForSelector("[data-testid=status]:has-text('5/5 services ready')");
  await page.screenshot({ path: `${shots}/dashboard-services.png` });

  // The contract: every RPC the API lists is a link.
  const contract = await (await page.request.get(`${dashboard}/api/contract`)).json();
  const rpcs = contract.services.reduce((n, s) => n + s.methods.length, 0);
  assert.ok(rpcs >= 25, `${rpcs} RPCs`);
  await page.goto(`${dashboard}/#contract/shop.orders.v1.OrderService/CreateOrder`);
  await page.waitForSelector("[data-testid=method-detail]");
  assert.equal(await page.locator("[data-testid=rpc]").count(), rpcs, "every RPC listed");
  const detail = await page.textContent("[data-testid=method-detail]");
  assert.match(detail, /a signed-in customer/);
  assert.match(detail, /POST \/v1\/orders/);
  assert.match(detail, /idempotency_key/);

  // The explorer places an order as the demo customer.
  await page.selectOption("[data-testid=explorer-as]", "demo");
  await page.click("[data-testid=explorer-call]");
  await page.waitForSelector("[data-testid=explorer-code]:has-text('ok')", { timeout: 15_000 });
  const answer = await page.textContent("[data-testid=explorer-answer]");
  assert.match(answer, /"order"/);
  assert.match(await page.textContent("[data-testid=explorer-result]"), /grpcurl -plaintext/);
  await page.screenshot({ path: `${shots}/dashboard-explorer.png`, fullPage: true });

  // Its saga: every step to CONFIRMED, within seconds.
  await page.click("[data-testid=explorer-order]");
  await page.waitForSelector("[data-testid=saga-ended]:has-text('confirmed')", { timeout: 10_000 });
  const steps = await page.locator("[data-testid=saga-step-name]").allTextContents();
  assert.deepEqual(steps, ["reserve_stock", "charge", "commit_stock"]);
  await page.screenshot({ path: `${shots}/dashboard-saga.png`, fullPage: true });

  // Its trace, from the saga: a waterfall across orders, catalog and payments.
  await page.click("a:has-text('its trace')");
  await page.waitForSelector("[data-testid=waterfall] [data-testid=span]");
  const waterfall = await page.textContent("[data-testid=waterfall]");
  for (const service of ["orders", "catalog", "payments"]) assert.match(waterfall, new RegExp(service));
  assert.ok((await page.locator("[data-testid=span]").count()) >= 10, "the order's spans");
  await page.screenshot({ path: `${shots}/dashboard-trace.png`, fullPage: true });

  // The flow: the calls between services drawn, with rates.
  await page.goto(`${dashboard}/#flow`);
  await page.waitForSelector("[data-testid=flow] text:has-text('orders')");
  await page.screenshot({ path: `${shots}/dashboard-flow.png` });

  // The log, filtered to one service.
  await page.goto(`${dashboard}/#logs`);
  await page.waitForSelector("[data-testid=log] div");
  await page.screenshot({ path: `${shots}/dashboard-logs.png` });

  assert.deepEqual(errors, [], "no errors in the page's console");
  await context.close();
});
