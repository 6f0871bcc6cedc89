// The shopper's journey in a real browser (Debian's Chromium driven by
// playwright-core) against the launched shop: the app served by the gateway
// calls each service directly over Connect. Run by tests/e2e/run.sh.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const app = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";
const shots = process.env.SCREENSHOTS ?? "screenshots";
mkdirSync(shots, { recursive: true });

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // On TLS (run.sh, second pass): the shop's certificates, pinned by
    // their public keys, are trusted; no other certificate error is.
    args: ["--no-sandbox", ...(process.env.CHROMIUM_ARGS ?? "").split(" ").filter(Boolean)],
  });
});
after(async () => browser?.close());

/** A page that records console errors and every RPC the app sends. */
async function open(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  const rpcs = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (/^\/shop\.[a-z]+\.v1\.\w+\/\w+$/.test(url.pathname)) {
      rpcs.push({ method: r.method(), url, headers: r.headers() });
    }
  });
  return { page, errors, rpcs, close: () => context.close() };
}

async function signUp(page) {
  await page.goto(`${app}/login?signup=1`);
  await page.fill("input[name=name]", "Ada");
  await page.fill("input[name=email]", `ada-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`);
  await page.fill("input[name=password]", "correct horse 9");
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Hello, Ada");
}

async function addToCart(page, product) {
  await page.goto(`${app}/products/${product}`);
  await page.click("text=Add to cart");
  await page.waitForSelector("text=Added 1 to your cart.");
}

async function stockOf(page, product) {
  await page.goto(`${app}/products/${product}`);
  const text = await page.textContent(".stock");
  return Number.parseInt(text, 10);
}

async function historyCount(page) {
  await page.goto(`${app}/orders`);
  await page.waitForSelector("h1:text('Your orders')");
  return page.locator(".orders li").count();
}

test("sign up, search, add two items, check out, watch it confirmed, see it in history", async () => {
  const { page, errors, rpcs, close } = await open();
  await page.goto(app);
  await page.waitForSelector("text=Featured");
  await page.screenshot({ path: `${shots}/home.png`, fullPage: true });
  await signUp(page);

  await page.goto(`${app}/catalog`);
  await page.fill("input[type=search]", "beans");
  await page.click("text=Search");
  await page.waitForSelector(".card >> text=Espresso beans 250 g");
  await page.screenshot({ path: `${shots}/catalog.png`, fullPage: true });
  await page.click("text=Espresso beans 250 g");
  await page.waitForSelector("text=Add to cart");
  await page.screenshot({ path: `${shots}/product.png`, fullPage: true });
  await page.click("text=Add to cart");
  await addToCart(page, "prod_mug");

  await page.click("#nav >> text=Cart (2)");
  await page.waitForSelector("text=Place order");
  await page.screenshot({ path: `${shots}/cart.png`, fullPage: true });
  await page.click("text=Place order");
  // No reload: the order page follows WatchOrder to the end.
  await page.waitForSelector(".status-line >> text=Confirmed", { timeout: 15_000 });
  await page.screenshot({ path: `${shots}/order.png`, fullPage: true });
  const orderUrl = page.url();

  assert.equal(await historyCount(page), 1);
  await page.screenshot({ path: `${shots}/history.png`, fullPage: true });
  assert.ok(await page.locator(`.orders a[href="${new URL(orderUrl).pathname}"]`).count());

  // Straight to each service, and really Connect: GET with connect=v1 for
  // idempotent reads, POST with Connect-Protocol-Version otherwise.
  const byService = new Map(rpcs.map((r) => [r.url.pathname.split("/")[1], r.url.origin]));
  for (const service of [
    "shop.users.v1.UserService",
    "shop.catalog.v1.CatalogService",
    "shop.orders.v1.OrderService",
    "shop.bff.v1.WebBffService",
  ]) {
    assert.ok(byService.has(service), `no call to ${service}`);
  }
  assert.equal(byService.get("shop.bff.v1.WebBffService"), new URL(app).origin);
  assert.notEqual(byService.get("shop.catalog.v1.CatalogService"), new URL(app).origin, "the catalog is called directly");
  for (const rpc of rpcs) {
    if (rpc.method === "GET") {
      assert.equal(rpc.url.searchParams.get("connect"), "v1", rpc.url.href);
    } else {
      assert.equal(rpc.headers["connect-protocol-version"], "1", rpc.url.href);
      assert.match(rpc.headers["content-type"], /^application\/(connect\+)?json/);
    }
  }
  assert.ok(
    rpcs.some((r) => r.method === "GET" && r.url.pathname.endsWith("/ListProducts")),
    "catalog reads are Connect GETs",
  );
  assert.deepEqual(errors, []);
  await close();
});

test("a declined card says so and the stock comes back", async () => {
  const { page, errors, close } = await open();
  await signUp(page);
  const before = await stockOf(page, "prod_grinder");
  await addToCart(page, "prod_grinder");
  await page.goto(`${app}/cart`);
  await page.selectOption("select", "tok_declined");
  await page.click("text=Place order");
  await page.waitForSelector(".status-line >> text=Your card was declined.", { timeout: 15_000 });
  await page.screenshot({ path: `${shots}/declined.png`, fullPage: true });
  assert.equal(await stockOf(page, "prod_grinder"), before);
  assert.deepEqual(errors, []);
  await close();
});

test("a double click on Place order places one order", async () => {
  const { page, errors, rpcs, close } = await open();
  await signUp(page);
  await addToCart(page, "prod_filters");
  await page.goto(`${app}/cart`);
  await page.dblclick("text=Place order");
  await page.waitForSelector(".status-line >> text=Confirmed", { timeout: 15_000 });
  assert.equal(await historyCount(page), 1);
  const creates = rpcs.filter((r) => r.url.pathname.endsWith("/CreateOrder")).length;
  assert.ok(creates >= 1);
  assert.deepEqual(errors, []);
  await close();
});

test("yen are whole and euros have cents, from the product page to the history", async () => {
  const { page, errors, close } = await open();
  await signUp(page);
  // ISO 4217: JPY has no minor unit (1200 minor units are 1,200 yen), EUR
  // two (1800 are 18.00 euros).
  await page.goto(`${app}/products/prod_mug`);
  await page.waitForSelector("main strong:text-is('€18.00')");
  await addToCart(page, "prod_tenugui");
  await page.waitForSelector("main strong:text-is('¥1,200')");
  await page.goto(`${app}/cart`);
  await page.waitForSelector("p:has-text('Total') strong:text-is('¥1,200')");
  await page.click("text=Place order");
  await page.waitForSelector(".status-line >> text=Confirmed", { timeout: 15_000 });
  await page.waitForSelector("li strong:text-is('Total ¥1,200')");
  await page.screenshot({ path: `${shots}/yen.png`, fullPage: true });
  await page.goto(`${app}/orders`);
  await page.waitForSelector(".orders li:has-text('¥1,200')");
  assert.deepEqual(errors, []);
  await close();
});

test("at phone width the pages fit the screen", async () => {
  const { page, errors, close } = await open({ width: 390, height: 844 });
  for (const [path, name] of [["/", "phone-home"], ["/catalog", "phone-catalog"], ["/products/prod_mug", "phone-product"]]) {
    await page.goto(`${app}${path}`);
    await page.waitForSelector("main h1");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${path} is ${overflow}px too wide`);
    await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  }
  assert.deepEqual(errors, []);
  await close();
});
