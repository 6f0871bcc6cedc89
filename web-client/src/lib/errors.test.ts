import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { CancelReason } from "../../gen/shop/orders/v1/orders_pb.js";
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

  it("says why an order was cancelled, by its reason", () => {
    const cancelled = (cancelReason: CancelReason, cancelMessage: string) => ({ cancelReason, cancelMessage });
    expect(cancellationReason(cancelled(CancelReason.CARD_DECLINED, "your card was declined"))).toBe(
      "Your card was declined.",
    );
    expect(
      cancellationReason(
        cancelled(CancelReason.OUT_OF_STOCK, 'out of stock: product "prod_mug" has 1 in stock, 2 requested'),
      ),
    ).toBe('Not enough stock: product "prod_mug" has 1 in stock, 2 requested.');
    // The words do not decide: a reason does, whatever they say.
    expect(cancellationReason(cancelled(CancelReason.CUSTOMER_REQUEST, "out of stock?"))).toBe("You cancelled it.");
    expect(cancellationReason(cancelled(CancelReason.TIMED_OUT, ""))).toMatch(/in time/);
    // A reason this app does not know yet: the service's words.
    expect(cancellationReason(cancelled(99 as CancelReason, "a reason from the future"))).toBe(
      "A reason from the future.",
    );
  });
});
