// The cart, kept in the browser: pure functions over a plain value, so the
// pages stay simple and the rules are tested (cart.test.ts).

export const MAX_QUANTITY = 100;
export const MAX_LINES = 50;

export interface CartLine {
  productId: string;
  name: string;
  currencyCode: string;
  /** Price of one, in minor units (cents). */
  unitMinorUnits: number;
  quantity: number;
}

export interface Cart {
  lines: CartLine[];
}

export const emptyCart = (): Cart => ({ lines: [] });

/** Adds `quantity` of a product (merging with a line already there, capped). */
export function addToCart(cart: Cart, product: Omit<CartLine, "quantity">, quantity = 1): Cart {
  const existing = cart.lines.find((l) => l.productId === product.productId);
  if (existing) {
    return setQuantity(cart, product.productId, existing.quantity + quantity);
  }
  if (cart.lines.length >= MAX_LINES || quantity < 1) {
    return cart;
  }
  return { lines: [...cart.lines, { ...product, quantity: Math.min(quantity, MAX_QUANTITY) }] };
}

/** Sets a line's quantity; 0 or less removes it. */
export function setQuantity(cart: Cart, productId: string, quantity: number): Cart {
  if (quantity < 1) {
    return { lines: cart.lines.filter((l) => l.productId !== productId) };
  }
  return {
    lines: cart.lines.map((l) =>
      l.productId === productId ? { ...l, quantity: Math.min(Math.floor(quantity), MAX_QUANTITY) } : l,
    ),
  };
}

/** The total in minor units, or undefined when lines mix currencies. */
export function cartTotal(cart: Cart): { currencyCode: string; minorUnits: number } | undefined {
  const currencies = new Set(cart.lines.map((l) => l.currencyCode));
  if (currencies.size > 1) {
    return undefined;
  }
  return {
    currencyCode: cart.lines[0]?.currencyCode ?? "EUR",
    minorUnits: cart.lines.reduce((sum, l) => sum + l.unitMinorUnits * l.quantity, 0),
  };
}

export const itemCount = (cart: Cart): number => cart.lines.reduce((n, l) => n + l.quantity, 0);

/** The cart as CreateOrder wants it: ids and quantities, never prices. */
export const orderItems = (cart: Cart) =>
  cart.lines.map((l) => ({ productId: l.productId, quantity: l.quantity }));

/** Reads a stored cart, dropping whatever does not look like one. */
export function parseCart(stored: string | null): Cart {
  if (!stored) {
    return emptyCart();
  }
  try {
    const value: unknown = JSON.parse(stored);
    const lines = (value as { lines?: unknown }).lines;
    if (!Array.isArray(lines)) {
      return emptyCart();
    }
    return {
      lines: lines
        .filter(
          (l): l is CartLine =>
            typeof l?.productId === "string" &&
            typeof l?.name === "string" &&
            typeof l?.currencyCode === "string" &&
            Number.isInteger(l?.unitMinorUnits) &&
            Number.isInteger(l?.quantity) &&
            l.quantity >= 1,
        )
        .slice(0, MAX_LINES)
        .map((l) => ({ ...l, quantity: Math.min(l.quantity, MAX_QUANTITY) })),
    };
  } catch {
    return emptyCart();
  }
}

/** "27.50 EUR"-style money for people. */
export function formatMoney(minorUnits: number | bigint, currencyCode: string): string {
  let format: Intl.NumberFormat;
  try {
    format = new Intl.NumberFormat("en", { style: "currency", currency: currencyCode });
  } catch {
    return `${decimal(BigInt(minorUnits), 2)} ${currencyCode}`;
  }
  // The currency's ISO 4217 exponent: 2 for EUR, 0 for JPY, 3 for BHD.
  const exponent = format.resolvedOptions().maximumFractionDigits ?? 2;
  // A decimal string keeps every digit (a Number would round large amounts).
  return format.format(decimal(BigInt(minorUnits), exponent) as Intl.StringNumericLiteral);
}

/** `units` minor units as a decimal string with `exponent` digits after the point. */
function decimal(units: bigint, exponent: number): string {
  const sign = units < 0n ? "-" : "";
  const digits = (units < 0n ? -units : units).toString().padStart(exponent + 1, "0");
  if (exponent === 0) {
    return `${sign}${digits}`;
  }
  return `${sign}${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}
