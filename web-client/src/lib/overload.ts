// A moment of overload costs the visitor a second, not an error box. A
// service with more calls at work than it takes refuses the rest at once,
// before any work (`resource_exhausted`, marked `x-shop-not-processed`,
// with `Retry-After`). Such a call is sent once more after the pause the
// service asked for, whatever the method: it was never worked on, so even
// an order is safe to send again. Any other failure, a second refusal, or
// a pause longer than `MAX_PAUSE_MS` reaches the page as it came.

import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";

/** The mark of a refusal of a call no service worked on. */
export const NOT_PROCESSED = "x-shop-not-processed";
/** The longest pause waited out for the visitor; a longer one is theirs to see. */
export const MAX_PAUSE_MS = 2_000;

type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Sends a call refused before any work once more, after the pause asked for. */
export function resendRefused(sleep: Sleep = pause): Interceptor {
  return (next) => async (req) => {
    if (req.stream && req.method.methodKind !== "server_streaming") {
      // A client stream is not kept to be sent again (the browser makes none).
      return await next(req);
    }
    // A server stream's one request message, kept to be sent again.
    const again = req.stream ? await collect(req.message) : [];
    const attempt = () => next(req.stream ? { ...req, message: createAsyncIterable(again) } : req);
    let asked: number | undefined;
    try {
      const res = await attempt();
      // A stream's refusal comes in its headers (its error follows at the end).
      asked = res.stream ? pauseAsked(res.header) : undefined;
      if (asked === undefined) return res;
    } catch (error) {
      asked = pauseAsked(ConnectError.from(error).metadata);
      if (asked === undefined) throw error;
    }
    await sleep(asked, req.signal);
    return await attempt();
  };
}

/** The pause a refusal of a call not worked on asks for, if it is one worth waiting. */
export function pauseAsked(headers: Headers): number | undefined {
  if (!headers.has(NOT_PROCESSED)) return undefined;
  const seconds = Number(headers.get("retry-after") ?? "1");
  const ms = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 1000;
  return ms <= MAX_PAUSE_MS ? ms : undefined;
}

async function collect<T>(messages: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const message of messages) all.push(message);
  return all;
}

/** Waits `ms`, or rejects when the call is given up (the page left). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
