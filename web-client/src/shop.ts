// The app's connection to the shop: one Connect client per service (each
// called directly from the browser), the session, the cart.

import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { WebBffService } from "../gen/shop/bff/v1/bff_pb.js";
import { CatalogService } from "../gen/shop/catalog/v1/catalog_pb.js";
import { OrderService } from "../gen/shop/orders/v1/orders_pb.js";
import { UserService } from "../gen/shop/users/v1/users_pb.js";
import { type Cart, parseCart } from "./lib/cart.js";
import { resendRefused } from "./lib/overload.js";
import { Session, browserStore } from "./lib/session.js";

export interface RuntimeConfig {
  usersUrl: string;
  catalogUrl: string;
  ordersUrl: string;
}

export interface Shop {
  users: Client<typeof UserService>;
  catalog: Client<typeof CatalogService>;
  orders: Client<typeof OrderService>;
  bff: Client<typeof WebBffService>;
  session: Session;
  cart(): Cart;
  saveCart(cart: Cart): void;
}

const CART_KEY = "connect-shop.cart";

export async function connect(): Promise<Shop> {
  const config: RuntimeConfig = await (await fetch("/config.json")).json();
  // Refreshing needs no token: a bare client.
  const bareUsers = createClient(UserService, createConnectTransport({ baseUrl: config.usersUrl, interceptors: [resendRefused()] }));
  const session = new Session(browserStore(), async (refreshToken) => {
    const { session } = await bareUsers.refresh({ refreshToken });
    if (!session) throw new Error("no session");
    return { accessToken: session.accessToken, refreshToken: session.refreshToken };
  });
  // Idempotent methods go as Connect GET: cacheable, visible in the network tab.
  // A call a service refused before any work (overloaded) is sent once more.
  const transport = (baseUrl: string) =>
    createConnectTransport({ baseUrl, useHttpGet: true, interceptors: [resendRefused(), session.interceptor()] });
  return {
    users: createClient(UserService, transport(config.usersUrl)),
    catalog: createClient(CatalogService, transport(config.catalogUrl)),
    orders: createClient(OrderService, transport(config.ordersUrl)),
    // The BFF is the gateway itself, which served this page.
    bff: createClient(WebBffService, transport(window.location.origin)),
    session,
    cart: () => parseCart(localStorage.getItem(CART_KEY)),
    saveCart: (cart) => localStorage.setItem(CART_KEY, JSON.stringify(cart)),
  };
}
