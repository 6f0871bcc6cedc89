// What went wrong, said the way people understand it. Every failed call in
// the app goes through `describeError`; `retry` says whether a "Try again"
// button makes sense.

import { Code, ConnectError } from "@connectrpc/connect";
import { CancelReason } from "../../gen/shop/orders/v1/orders_pb.js";

export interface Problem {
  message: string;
  /** A button that repeats the call may help. */
  retry: boolean;
  /** The user must log in (again). */
  login: boolean;
}

export function describeError(error: unknown): Problem {
  const err = ConnectError.from(error);
  const detail = err.rawMessage;
  switch (err.code) {
    case Code.Unauthenticated:
      return { message: "Your session has expired. Please log in again.", retry: false, login: true };
    case Code.PermissionDenied:
      return { message: "You are not allowed to do that.", retry: false, login: false };
    case Code.InvalidArgument:
    case Code.AlreadyExists:
      return { message: sentence(detail), retry: false, login: false };
    case Code.NotFound:
      return { message: "We could not find that. It may have been removed.", retry: false, login: false };
    case Code.FailedPrecondition:
      return { message: sentence(detail), retry: false, login: false };
    case Code.ResourceExhausted:
      return { message: "Too many requests at once. Wait a moment and try again.", retry: true, login: false };
    case Code.DeadlineExceeded:
      return { message: "The shop took too long to answer. Try again.", retry: true, login: false };
    case Code.Unavailable:
    case Code.Unknown:
    case Code.Internal:
    case Code.Aborted:
      return { message: "The shop is having trouble right now. Try again in a moment.", retry: true, login: false };
    default:
      return { message: "Something went wrong. Try again.", retry: true, login: false };
  }
}

/** Why an order was cancelled, as a sentence: by its reason, with the
 * service's words where they say more (which product ran short). */
export function cancellationReason(order: { cancelReason: CancelReason; cancelMessage: string }): string {
  switch (order.cancelReason) {
    case CancelReason.OUT_OF_STOCK:
      return `Not enough stock: ${order.cancelMessage.replace(/^out of stock: /, "")}.`;
    case CancelReason.NOT_IN_CATALOG:
      return "A product in it is no longer sold.";
    case CancelReason.CARD_DECLINED:
      return "Your card was declined.";
    case CancelReason.PAYMENT_REFUSED:
      return "The payment was refused. Try another card.";
    case CancelReason.CUSTOMER_REQUEST:
      return "You cancelled it.";
    case CancelReason.TIMED_OUT:
      return "The shop could not complete it in time. Any charge was refunded.";
    case CancelReason.STOCK_LOST:
      return "The items set aside for it were lost. Your money was refunded.";
    default:
      // A reason newer than this app: the service's words.
      return sentence(order.cancelMessage || "cancelled");
  }
}

function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) {
    return "Something went wrong.";
  }
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}
