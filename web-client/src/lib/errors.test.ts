import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { cancellationReason, describeError } from "./errors.js";

describe("errors for people", () => {
  it("asks to log in again when the session is gone", () => {
    const problem = describeError(new ConnectError("token expired", Code.Unauthenticated));
    expect(problem).toMatchObject({ login: true, retry: false });
  });

  it("offers a retry when a service is down, without leaking its message", () => {
    const problem = describeError(new ConnectError("connection refused 10.0.0.3", Code.Unavailable));
    expect(problem.retry).toBe(true);
    expect(problem.message).not.toContain("10.0.0.3");
  });

  it("passes the server's words for the caller's own mistakes", () => {
    const problem = describeError(new ConnectError("items.quantity: must be 1 to 100", Code.InvalidArgument));
    expect(problem.message).toBe("Items.quantity: must be 1 to 100.");
    expect(describeError(new Error("boom")).retry).toBe(true);
  });

  it("says why an order was cancelled", () => {
    expect(cancellationReason("your card was declined")).toBe("Your card was declined.");
    expect(cancellationReason('out of stock: product "prod_mug" has 1 in stock, 2 requested')).toBe(
      'Not enough stock: product "prod_mug" has 1 in stock, 2 requested.',
    );
  });
});
