// What went wrong, said the way people understand it. Every failed call in
// the app goes through `describeError`; `retry` says whether a "Try again"
// button makes sense.

import { Code, ConnectError } from "@connectrpc/connect";

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

/** Why an order was cancelled, as the orders service says it, as a sentence. */
export function cancellationReason(reason: string): string {
  if (reason.startsWith("out of stock")) {
    return `Not enough stock: ${reason.replace(/^out of stock: /, "")}.`;
  }
  return sentence(reason || "cancelled");
}

function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) {
    return "Something went wrong.";
  }
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}
