"""The shop's own schemathesis checks, loaded by `just schemathesis`
(SCHEMATHESIS_HOOKS=checks). Each judges an answer by what it says (its
Connect code, its google.rpc.ErrorInfo reason), not by its HTTP status
alone: a status is shared by many answers, and a check that accepts "400"
or "5xx" accepts a server failing.

- `no_server_error`: no 5xx, bar Connect's own answers to what the caller
  asked for: 501 `unimplemented` (a compression the server does not speak,
  a GET's `?compression=`) and 504 `deadline_exceeded` (a
  Connect-Timeout-Ms of 0), each recognised by its code.
- `valid_data_accepted`: data the document calls valid is answered (2xx)
  or refused for who the caller is or what exists (401, 403, 404, 409,
  429); a 400 only for a reason REFUSALS lists for its operation, each
  something no JSON Schema can say; never a 5xx, bar a `deadline_exceeded`
  that came no sooner than the deadline the request itself set (a
  Connect-Timeout-Ms of 0 asks for it).

docs/rest.md says the same, with the reasons.
"""

import base64
import json
import re

try:
    import schemathesis
except ImportError:  # the unit tests run without it
    schemathesis = None

# Valid data refused for who the caller is or what exists.
ACCEPTED = {401, 403, 404, 409, 429}

# The 400s valid data may meet, by operation (its operationId, with the
# `.get` of Connect GET and the `.rest` of the REST route), each with the
# reason (google.rpc.ErrorInfo) the refusal carries and why no schema can
# rule it out.
REFUSALS = {
    # Page tokens are opaque: a well-formed one the service did not issue.
    r"shop\.(catalog\.v1\.CatalogService\.ListProducts|orders\.v1\.OrderService\.ListOrders)": {
        "PAGE_TOKEN_NOT_ISSUED"
    },
    # Lines of one product adding up to more than 100: each line is within
    # its 1 to 100, the sum is a rule across lines.
    r"shop\.orders\.v1\.OrderService\.CreateOrder": {"TOO_MANY_OF_ONE_PRODUCT"},
    # tok_declined is a valid token whose charge the processor refuses.
    r"shop\.payments\.v1\.PaymentService\.Charge": {"CARD_DECLINED"},
    # An order that is no longer pending (schemathesis's own, confirmed).
    r"shop\.orders\.v1\.OrderService\.CancelOrder": {"ORDER_NOT_CANCELLABLE"},
}

# Connect's 5xx that answer the caller's own request, by HTTP status.
CALLERS_5XX = {501: "unimplemented", 504: "deadline_exceeded"}


def _varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _error_info_reason(value):
    """`reason` (field 1) of an encoded google.rpc.ErrorInfo."""
    data = base64.b64decode(value + "=" * (-len(value) % 4))
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        field, wire = key >> 3, key & 7
        if wire == 2:
            length, at = _varint(data, at)
            if field == 1:
                return data[at : at + length].decode()
            at += length
        elif wire == 0:
            _, at = _varint(data, at)
        else:
            return None
    return None


def connect_error(content):
    """The Connect error of a body: (code, [ErrorInfo reasons]), or None."""
    try:
        error = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return None
    reasons = []
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("type") == "google.rpc.ErrorInfo":
            try:
                reason = _error_info_reason(detail.get("value", ""))
            except (ValueError, IndexError):
                reason = None
            if reason:
                reasons.append(reason)
    return error["code"], reasons


def refusals_of(operation_id):
    """The reasons a 400 to valid data of `operation_id` may carry."""
    base = re.sub(r"\.(get|rest)$", "", operation_id or "")
    for pattern, reasons in REFUSALS.items():
        if re.fullmatch(pattern, base):
            return reasons
    return set()


def server_error(status, content):
    """Why an answer is a server error, or None."""
    if status < 500:
        return None
    said = connect_error(content)
    code = said[0] if said else None
    if code is not None and CALLERS_5XX.get(status) == code:
        return None
    return f"{status} {code or 'with no Connect error'}: a server error"


def refused_valid_data(operation_id, status, content, asked_ms=None, took_ms=0.0):
    """Why valid data's answer is a refusal it should not be, or None.
    `asked_ms`: the timeout the request set (Connect-Timeout-Ms), if any;
    `took_ms`: how long the answer took."""
    if 200 <= status < 300 or status in ACCEPTED:
        return None
    said = connect_error(content)
    code, reasons = said if said else (None, [])
    if status == 504 and code == "deadline_exceeded" and asked_ms is not None and took_ms >= asked_ms:
        return None
    if status == 400:
        allowed = refusals_of(operation_id)
        if allowed & set(reasons):
            return None
        return (
            f"400 {code} {reasons or 'with no reason'}: valid data refused; "
            f"{operation_id} may refuse it only for {sorted(allowed) or 'no reason'}"
        )
    return f"{status} {code}: valid data refused"


if schemathesis is not None:

    @schemathesis.check
    def no_server_error(ctx, response, case):
        why = server_error(response.status_code, response.content)
        if why:
            raise AssertionError(why)

    @schemathesis.check
    def valid_data_accepted(ctx, response, case):
        meta = case.meta
        if meta is None or not meta.generation.mode.is_positive:
            return None
        operation_id = case.operation.definition.raw.get("operationId")
        asked = response.request.headers.get("Connect-Timeout-Ms")
        why = refused_valid_data(
            operation_id,
            response.status_code,
            response.content,
            asked_ms=int(asked) if asked is not None and asked.isdigit() else None,
            took_ms=response.elapsed * 1000.0,
        )
        if why:
            raise AssertionError(why)
        return None
