// The browser app: routes to pages; every page calls the services directly
// with connect-web.

import "./style.css";
import { h, replace } from "./dom.js";
import { type Page, cart, catalog, history as orderHistory, home, login, order, problem, product, renderNav, setNavigator } from "./pages.js";
import { connect } from "./shop.js";

const routes: [RegExp, Page, string[]][] = [
  [/^\/$/, home, []],
  [/^\/catalog$/, catalog, []],
  [/^\/products\/([^/]+)$/, product, ["id"]],
  [/^\/login$/, login, []],
  [/^\/cart$/, cart, []],
  [/^\/orders$/, orderHistory, []],
  [/^\/orders\/([^/]+)$/, order, ["id"]],
];

async function main(): Promise<void> {
  const view = document.getElementById("page");
  if (!view) return;
  let shop;
  try {
    shop = await connect();
  } catch {
    replace(view, h("p", { class: "problem" }, "The shop cannot be reached. Is it running?"));
    return;
  }
  let current = new AbortController();
  const show = async () => {
    current.abort();
    current = new AbortController();
    const signal = current.signal;
    renderNav(shop);
    const url = new URL(window.location.href);
    const match = routes.find(([pattern]) => pattern.test(url.pathname));
    if (!match) {
      replace(view, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/", "data-link": true }, "Home")));
      return;
    }
    const [pattern, page, names] = match;
    const params = new URLSearchParams(url.search);
    const groups = pattern.exec(url.pathname) ?? [];
    names.forEach((name, i) => params.set(name, decodeURIComponent(groups[i + 1] ?? "")));
    try {
      await page(shop, view, params, signal);
    } catch (error) {
      if (!signal.aborted) problem(view, error, () => void show());
    }
  };
  setNavigator((path) => {
    window.history.pushState(null, "", path);
    void show();
  });
  document.addEventListener("click", (event) => {
    const anchor = (event.target as Element).closest("a[data-link]");
    if (anchor instanceof HTMLAnchorElement && anchor.origin === window.location.origin) {
      event.preventDefault();
      window.history.pushState(null, "", anchor.href);
      void show();
    }
  });
  window.addEventListener("popstate", () => void show());
  await show();
}

void main();
