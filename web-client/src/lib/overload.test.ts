import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OrderService } from "../../gen/shop/orders/v1/orders_pb.js";
import { NOT_PROCESSED, pauseAsked, resendRefused } from "./overload.js";

/** What the shop's admission control answers a call it has no room for. */
function refusal(retryAfter = "1"): ConnectError {
  return new ConnectError(
    "overloaded: 32 calls at work and 64 queued, as many as this server takes; try again shortly",
    Code.ResourceExhausted,
    new Headers({ [NOT_PROCESSED]: "overloaded", "retry-after": retryAfter }),
  );
}

/** An orders service (connect's router transport) that refuses the first `refused` calls. */
function ordersRefusing(refused: number, retryAfter = "1") {
  const seen: string[] = [];
  const pauses: number[] = [];
  const transport = createRouterTransport(
    ({ service }) => {
      service(OrderService, {
        getOrder(req) {
          seen.push(req.orderId);
          if (seen.length <= refused) throw refusal(retryAfter);
          return { order: { id: req.orderId } };
        },
        async *watchOrder(req, ctx) {
          seen.push(req.orderId);
          if (seen.length <= refused) {
            // As the shop's gate answers a stream: the mark in the headers.
            ctx.responseHeader.set(NOT_PROCESSED, "overloaded");
            ctx.responseHeader.set("retry-after", retryAfter);
            throw refusal(retryAfter);
          }
          yield { order: { id: req.orderId } };
        },
      });
    },
    {
      transport: {
        interceptors: [
          resendRefused(async (ms) => {
            pauses.push(ms);
          }),
        ],
      },
    },
  );
  return { seen, pauses, client: createClient(OrderService, transport) };
}

describe("a call refused before any work", () => {
  it("is sent once more after the pause the shop asked for", async () => {
    const { seen, pauses, client } = ordersRefusing(1);
    const { order } = await client.getOrder({ orderId: "o-1" });
    expect(order?.id).toBe("o-1");
    expect(seen).toEqual(["o-1", "o-1"]);
    expect(pauses).toEqual([1000]);
  });

  it("is sent once more as a stream too, with its request", async () => {
    const { seen, pauses, client } = ordersRefusing(1);
    const ids: string[] = [];
    for await (const { order } of client.watchOrder({ orderId: "o-2" })) ids.push(order?.id ?? "");
    expect(ids).toEqual(["o-2"]);
    expect(seen).toEqual(["o-2", "o-2"]);
    expect(pauses).toEqual([1000]);
  });

  it("reaches the page when refused again", async () => {
    const { seen, client } = ordersRefusing(2);
    await expect(client.getOrder({ orderId: "o-3" })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    expect(seen).toHaveLength(2);
  });

  it("reaches the page at once when the shop asks for a long pause", async () => {
    const { seen, pauses, client } = ordersRefusing(1, "30");
    await expect(client.getOrder({ orderId: "o-4" })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    expect(seen).toHaveLength(1);
    expect(pauses).toEqual([]);
  });
});

describe("any other failure", () => {
  it("is not sent again", async () => {
    let calls = 0;
    const transport = createRouterTransport(
      ({ service }) => {
        service(OrderService, {
          getOrder() {
            calls += 1;
            // Worked on, or maybe: not the gate's refusal.
            throw new ConnectError("the orders database is busy", Code.ResourceExhausted, new Headers({ "retry-after": "1" }));
          },
        });
      },
      { transport: { interceptors: [resendRefused(async () => {})] } },
    );
    const client = createClient(OrderService, transport);
    await expect(client.getOrder({ orderId: "o-5" })).rejects.toMatchObject({ code: Code.ResourceExhausted });
    expect(calls).toBe(1);
  });

  it("is read from the headers only", () => {
    expect(pauseAsked(new Headers())).toBeUndefined();
    expect(pauseAsked(new Headers({ [NOT_PROCESSED]: "overloaded" }))).toBe(1000);
    expect(pauseAsked(new Headers({ [NOT_PROCESSED]: "overloaded", "retry-after": "2" }))).toBe(2000);
    expect(pauseAsked(new Headers({ [NOT_PROCESSED]: "overloaded", "retry-after": "soon" }))).toBe(1000);
  });
});
