// The pages. Each renders into the page element and may keep a stream open
// until `signal` aborts (the user navigated away).

import { ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { h, replace } from "./dom.js";
import { OrderStatus, type Order } from "../gen/shop/orders/v1/orders_pb.js";
import type { Product } from "../gen/shop/catalog/v1/catalog_pb.js";
import { addToCart, cartTotal, formatMoney, itemCount, orderItems, setQuantity } from "./lib/cart.js";
import { cancellationReason, describeError } from "./lib/errors.js";
import type { Shop } from "./shop.js";

export type Page = (shop: Shop, view: HTMLElement, params: URLSearchParams, signal: AbortSignal) => Promise<void>;

const PAGE_SIZE = 8;

const link = (href: string, text: string, attrs: Record<string, string> = {}) =>
  h("a", { href, "data-link": true, ...attrs }, text);

const money = (m?: { currencyCode: string; minorUnits: bigint }) =>
  m ? formatMoney(m.minorUnits, m.currencyCode) : "";

const statusText: Record<number, string> = {
  [OrderStatus.PENDING]: "Pending",
  [OrderStatus.CONFIRMED]: "Confirmed",
  [OrderStatus.CANCELLED]: "Cancelled",
};

/** A problem, with "Try again" or "Log in" when that helps. */
export function problem(view: HTMLElement, error: unknown, retry: () => void): void {
  if (error instanceof ConnectError || error instanceof Error) {
    const p = describeError(error);
    replace(
      view,
      h(
        "div",
        { class: "problem", role: "alert" },
        h("p", {}, p.message),
        p.retry && h("button", { onclick: () => retry() }, "Try again"),
        p.login && link("/login", "Log in"),
      ),
    );
  }
}

function productCard(product: Product): HTMLElement {
  return h(
    "article",
    { class: "card" },
    h("h3", {}, link(`/products/${encodeURIComponent(product.id)}`, product.name)),
    h("p", { class: "muted" }, product.description),
    h("p", {}, h("strong", {}, money(product.price)), " · ", `${product.stockOnHand} in stock`),
  );
}

export const home: Page = async (shop, view) => {
  replace(view, h("p", { class: "loading" }, "Loading…"));
  const page = await shop.bff.getHome({ featuredCount: 6 });
  replace(
    view,
    h("h1", {}, page.account ? `Hello, ${page.account.displayName || page.account.email}` : "Welcome to connect-shop"),
    ...page.degraded.map((d) => h("p", { class: "notice" }, `Some of this page is missing: ${d.reason}.`)),
    h("h2", {}, "Featured"),
    h(
      "div",
      { class: "grid" },
      ...page.featuredProducts.map((p) =>
        h(
          "article",
          { class: "card" },
          h("h3", {}, link(`/products/${encodeURIComponent(p.id)}`, p.name)),
          h("p", {}, h("strong", {}, money(p.price)), " · ", `${p.stockOnHand} in stock`),
        ),
      ),
    ),
    page.recentOrders.length > 0 && h("h2", {}, "Your latest orders"),
    page.recentOrders.length > 0 && orderList(page.recentOrders),
    h("p", {}, link("/catalog", "Browse the whole catalog →")),
  );
};

export const catalog: Page = async (shop, view, params) => {
  const query = params.get("q") ?? "";
  const token = params.get("page") ?? "";
  replace(view, h("p", { class: "loading" }, "Loading…"));
  const page = await shop.catalog.listProducts({ query, pageToken: token, pageSize: PAGE_SIZE });
  const search = h("input", { type: "search", name: "q", value: query, placeholder: "Search mugs, beans…", "aria-label": "Search" });
  replace(
    view,
    h("h1", {}, "Catalog"),
    h(
      "form",
      {
        class: "search",
        onsubmit: (e: Event) => {
          e.preventDefault();
          navigate(`/catalog?q=${encodeURIComponent(search.value)}`);
        },
      },
      search,
      h("button", { type: "submit" }, "Search"),
    ),
    page.products.length === 0 ? h("p", {}, "Nothing matches.") : h("div", { class: "grid" }, ...page.products.map(productCard)),
    page.nextPageToken &&
      h("p", {}, link(`/catalog?q=${encodeURIComponent(query)}&page=${encodeURIComponent(page.nextPageToken)}`, "Next page →")),
  );
};

export const product: Page = async (shop, view, params, signal) => {
  const id = params.get("id") ?? "";
  replace(view, h("p", { class: "loading" }, "Loading…"));
  const { product } = await shop.catalog.getProduct({ id });
  if (!product) return;
  const stock = h("span", { class: "stock" }, `${product.stockOnHand} in stock`);
  const added = h("p", { class: "muted", role: "status" });
  const quantity = h("input", { type: "number", min: 1, max: 100, value: 1, "aria-label": "Quantity" });
  replace(
    view,
    h("h1", {}, product.name),
    h("p", {}, product.description),
    h("p", {}, h("strong", {}, money(product.price)), " · ", stock),
    h(
      "p",
      {},
      quantity,
      " ",
      h(
        "button",
        {
          onclick: () => {
            const n = Math.max(1, Number.parseInt(quantity.value, 10) || 1);
            shop.saveCart(
              addToCart(
                shop.cart(),
                {
                  productId: product.id,
                  name: product.name,
                  currencyCode: product.price?.currencyCode ?? "EUR",
                  unitMinorUnits: Number(product.price?.minorUnits ?? 0n),
                },
                n,
              ),
            );
            added.textContent = `Added ${n} to your cart.`;
            renderNav(shop);
          },
        },
        "Add to cart",
      ),
    ),
    added,
  );
  // Live stock: every reservation, release and sale as it happens.
  try {
    for await (const change of shop.catalog.watchStock({ productIds: [id] }, { signal })) {
      // A quiet stream's sign of life (kit.stream.v1.Heartbeat) says nothing.
      if (change.heartbeat) continue;
      stock.textContent = `${change.stockOnHand} in stock`;
    }
  } catch (error) {
    if (!signal.aborted) stock.textContent += " (live updates paused)";
    void error;
  }
};

export const login: Page = async (shop, view, params) => {
  const signup = params.get("signup") === "1";
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "email" });
  const password = h("input", { type: "password", name: "password", required: true, minlength: 8, autocomplete: signup ? "new-password" : "current-password" });
  const name = h("input", { type: "text", name: "name", autocomplete: "name" });
  const message = h("p", { class: "problem", role: "alert" });
  replace(
    view,
    h("h1", {}, signup ? "Create an account" : "Log in"),
    h(
      "form",
      {
        class: "stack",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          message.textContent = "";
          try {
            const answer = signup
              ? await shop.users.signUp({ email: email.value, password: password.value, displayName: name.value })
              : await shop.users.logIn({ email: email.value, password: password.value });
            if (!answer.session) throw new Error("no session");
            shop.session.start({ accessToken: answer.session.accessToken, refreshToken: answer.session.refreshToken });
            navigate(params.get("next") ?? "/");
          } catch (error) {
            message.textContent = describeError(error).message;
          }
        },
      },
      signup && h("label", {}, "Name", name),
      h("label", {}, "Email", email),
      h("label", {}, "Password", password),
      h("button", { type: "submit" }, signup ? "Sign up" : "Log in"),
      message,
    ),
    h("p", {}, signup ? link("/login", "I have an account") : link("/login?signup=1", "Create an account")),
  );
};

export const cart: Page = async (shop, view) => {
  const render = () => {
    const current = shop.cart();
    const total = cartTotal(current);
    if (current.lines.length === 0) {
      replace(view, h("h1", {}, "Your cart"), h("p", {}, "Your cart is empty. ", link("/catalog", "Browse the catalog")));
      return;
    }
    const message = h("p", { class: "problem", role: "alert" });
    const card = h("select", { "aria-label": "Card" }, h("option", { value: "tok_visa" }, "Visa ending 4242"), h("option", { value: "tok_declined" }, "Card that will be declined"));
    // One key per checkout attempt: a double click (or a retry) orders once.
    const key = crypto.randomUUID();
    const place = h("button", { class: "primary" }, "Place order");
    place.addEventListener("click", async () => {
      if (!shop.session.signedIn) {
        navigate("/login?next=/cart");
        return;
      }
      place.setAttribute("disabled", "");
      try {
        const { order } = await shop.orders.createOrder({ idempotencyKey: key, paymentToken: card.value, items: orderItems(shop.cart()) });
        if (!order) throw new Error("no order");
        shop.saveCart({ lines: [] });
        renderNav(shop);
        navigate(`/orders/${encodeURIComponent(order.id)}`);
      } catch (error) {
        message.textContent = describeError(error).message;
        place.removeAttribute("disabled");
      }
    });
    replace(
      view,
      h("h1", {}, "Your cart"),
      h(
        "table",
        {},
        ...current.lines.map((l) =>
          h(
            "tr",
            {},
            h("td", {}, l.name),
            h("td", {}, h("input", { type: "number", min: 0, max: 100, value: l.quantity, "aria-label": `Quantity of ${l.name}`, onchange: (e: Event) => { shop.saveCart(setQuantity(shop.cart(), l.productId, Number((e.target as HTMLInputElement).value))); renderNav(shop); render(); } })),
            h("td", { class: "num" }, formatMoney(l.unitMinorUnits * l.quantity, l.currencyCode)),
          ),
        ),
      ),
      h("p", {}, "Total: ", h("strong", {}, total ? formatMoney(total.minorUnits, total.currencyCode) : "—")),
      h("p", {}, card, " ", place),
      message,
    );
  };
  render();
};

function orderList(orders: Order[]): HTMLElement {
  return h(
    "ul",
    { class: "orders" },
    ...orders.map((o) =>
      h("li", {}, link(`/orders/${encodeURIComponent(o.id)}`, `${o.createdAt ? timestampDate(o.createdAt).toLocaleString() : ""} · ${money(o.total)}`), " ", h("span", { class: `status s${o.status}` }, statusText[o.status] ?? "")),
    ),
  );
}

export const order: Page = async (shop, view, params, signal) => {
  const id = params.get("id") ?? "";
  replace(view, h("p", { class: "loading" }, "Loading…"));
  const status = h("p", { class: "status-line", role: "status" });
  const items = h("ul", {});
  replace(view, h("h1", {}, "Your order"), status, items, h("p", {}, link("/orders", "All your orders")));
  // Live status: the order as it is, then each change, until it is final.
  for await (const { order } of shop.orders.watchOrder({ orderId: id }, { signal })) {
    // No order: a quiet stream's heartbeat (kit.stream.v1.Heartbeat).
    if (!order) continue;
    status.replaceChildren(
      h("span", { class: `status s${order.status}` }, statusText[order.status] ?? ""),
      order.status === OrderStatus.CANCELLED ? ` — ${cancellationReason(order)}` : order.status === OrderStatus.PENDING ? " — reserving stock and charging your card…" : " — thank you!",
    );
    replace(items, ...order.items.map((i) => h("li", {}, `${i.quantity} × ${i.productName} — ${money(i.unitPrice)}`)), h("li", {}, h("strong", {}, `Total ${money(order.total)}`)));
  }
};

export const history: Page = async (shop, view) => {
  replace(view, h("p", { class: "loading" }, "Loading…"));
  const { orders } = await shop.orders.listOrders({ pageSize: 20 });
  replace(view, h("h1", {}, "Your orders"), orders.length === 0 ? h("p", {}, "No orders yet.") : orderList(orders));
};

/** The header's links, with the cart count and who is signed in. */
export function renderNav(shop: Shop): void {
  const nav = document.getElementById("nav");
  if (!nav) return;
  const count = itemCount(shop.cart());
  replace(
    nav,
    link("/catalog", "Catalog"),
    link("/cart", count > 0 ? `Cart (${count})` : "Cart"),
    shop.session.signedIn ? link("/orders", "Orders") : null,
    shop.session.signedIn
      ? h("button", { class: "linklike", onclick: () => { shop.session.end(); renderNav(shop); navigate("/"); } }, "Log out")
      : link("/login", "Log in"),
  );
}

let onNavigate: (path: string) => void = () => {};

export function setNavigator(go: (path: string) => void): void {
  onNavigate = go;
}

export function navigate(path: string): void {
  onNavigate(path);
}
