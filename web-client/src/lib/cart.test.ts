import { describe, expect, it } from "vitest";
import {
  MAX_QUANTITY,
  addToCart,
  cartTotal,
  emptyCart,
  formatMoney,
  itemCount,
  orderItems,
  parseCart,
  setQuantity,
} from "./cart.js";

const mug = { productId: "prod_mug", name: "Mug", currencyCode: "EUR", unitMinorUnits: 1800 };
const beans = { productId: "prod_beans", name: "Beans", currencyCode: "EUR", unitMinorUnits: 1290 };

describe("the cart", () => {
  it("merges repeated products and totals in minor units", () => {
    let cart = addToCart(emptyCart(), mug);
    cart = addToCart(cart, beans, 2);
    cart = addToCart(cart, mug);
    expect(cart.lines.map((l) => [l.productId, l.quantity])).toEqual([
      ["prod_mug", 2],
      ["prod_beans", 2],
    ]);
    expect(cartTotal(cart)).toEqual({ currencyCode: "EUR", minorUnits: 2 * 1800 + 2 * 1290 });
    expect(itemCount(cart)).toBe(4);
    expect(orderItems(cart)).toEqual([
      { productId: "prod_mug", quantity: 2 },
      { productId: "prod_beans", quantity: 2 },
    ]);
  });

  it("caps quantities and removes lines set to zero", () => {
    let cart = addToCart(emptyCart(), mug, 500);
    expect(cart.lines[0].quantity).toBe(MAX_QUANTITY);
    cart = setQuantity(cart, "prod_mug", 0);
    expect(cart.lines).toEqual([]);
  });

  it("refuses to total mixed currencies", () => {
    const cart = addToCart(addToCart(emptyCart(), mug), { ...beans, currencyCode: "USD" });
    expect(cartTotal(cart)).toBeUndefined();
  });

  it("survives whatever is in storage", () => {
    expect(parseCart(null)).toEqual(emptyCart());
    expect(parseCart("not json")).toEqual(emptyCart());
    expect(parseCart('{"lines": 3}')).toEqual(emptyCart());
    const stored = JSON.stringify({ lines: [{ ...mug, quantity: 2 }, { productId: 7 }, { ...beans, quantity: 0 }] });
    expect(parseCart(stored).lines).toEqual([{ ...mug, quantity: 2 }]);
  });

  it("formats money for people", () => {
    expect(formatMoney(2750, "EUR")).toBe("€27.50");
    expect(formatMoney(5n, "XYZ")).toContain("0.05");
  });

  it("counts each currency in its own minor unit (ISO 4217 exponents)", () => {
    expect(formatMoney(1200n, "JPY")).toBe("¥1,200");
    expect(formatMoney(1500n, "BHD")).toMatch(/^BHD\s1\.500$/);
    expect(formatMoney(7n, "BHD")).toMatch(/^BHD\s0\.007$/);
    expect(formatMoney(199n, "USD")).toBe("$1.99");
    expect(formatMoney(-250n, "EUR")).toBe("-€2.50");
    // Beyond a float's 53 bits, every digit survives.
    expect(formatMoney(9007199254740993n, "EUR")).toBe("€90,071,992,547,409.93");
  });
});
