// The API reference at the gateway's /api in a real browser (Debian's
// Chromium driven by playwright-core): it renders every operation of the
// shop's OpenAPI document with no request leaving the shop, and its "try
// it" calls the real service as the web app's signed-in user. Run by
// tests/e2e/run.sh.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
});
after(async () => browser?.close());

test("the reference renders offline and tries GET /v1/me as the signed-in user", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on("request", (r) => requests.push(`${r.method()} ${r.url()}`));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));

  // Signed in as the web app is: its tokens in localStorage.
  const config = await (await fetch(`${gateway}/config.json`)).json();
  const session = await (
    await fetch(`${config.usersUrl}/v1/sessions`, {
      method: "POST",
      body: JSON.stringify({ email: "demo@connect-shop.dev", password: "demo-password-1" }),
    })
  ).json();
  await page.goto(`${gateway}/config.json`);
  await page.evaluate((tokens) => localStorage.setItem("connect-shop.session", JSON.stringify(tokens)), {
    accessToken: session.session.accessToken,
    refreshToken: session.session.refreshToken,
  });

  await page.goto(`${gateway}/api`);
  await page.waitForSelector(".opblock");
  const document = await (await fetch(`${gateway}/openapi.json`)).json();
  const operations = Object.values(document.paths)
    .flatMap((item) => Object.keys(item).filter((key) => key !== "servers")).length;
  assert.equal(await page.locator(".opblock").count(), operations, "every operation shown");

  // Try GET /v1/me: the call goes to the users service with the token.
  const me = page.locator(".opblock-get", { has: page.locator('[data-path="/v1/me"]') });
  await me.locator(".opblock-summary").click();
  await me.locator("button.try-out__btn").click();
  await me.locator("button.execute").click();
  const status = me.locator(".live-responses-table tbody .response-col_status");
  await status.waitFor();
  assert.equal((await status.textContent()).trim(), "200");
  assert.match(await me.locator(".live-responses-table .microlight").first().textContent(), /demo@connect-shop\.dev/);
  await page.screenshot({ path: `${process.env.SCREENSHOTS ?? "screenshots"}/api-reference.png` });

  // The network log: the page, its assets, the document, the call; all to
  // the shop's own origins.
  const shop = new Set([gateway, config.usersUrl, config.catalogUrl, config.ordersUrl].map((url) => new URL(url).origin));
  console.log(`network log of ${gateway}/api:\n  ${requests.join("\n  ")}`);
  const outside = requests.filter((line) => !shop.has(new URL(line.split(" ")[1]).origin));
  assert.deepEqual(outside, [], "no request leaves the shop");
  assert.ok(requests.some((line) => line === `GET ${config.usersUrl}/v1/me`), "the try-it call reached the users service");
  assert.deepEqual(errors, [], "a clean console (no CSP violation)");
  await context.close();
});
