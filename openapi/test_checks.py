"""The verdicts of checks.py, each with an answer it must fail: run by
`just schemathesis` before it launches the shop (pytest)."""

import base64
import json

from checks import connect_error, refused_valid_data, server_error


def error_info(reason, domain="orders.connect-shop"):
    """An encoded google.rpc.ErrorInfo, as the services send it in JSON."""
    def field(number, text):
        data = text.encode()
        return bytes([number << 3 | 2, len(data)]) + data

    raw = field(1, reason) + field(2, domain)
    return {"type": "google.rpc.ErrorInfo", "value": base64.b64encode(raw).decode().rstrip("=")}


def body(code, *reasons):
    return json.dumps(
        {"code": code, "message": "words", "details": [error_info(r) for r in reasons]}
    ).encode()


def test_an_error_is_read_for_its_code_and_reasons():
    assert connect_error(body("failed_precondition", "CARD_DECLINED")) == (
        "failed_precondition",
        ["CARD_DECLINED"],
    )
    assert connect_error(b"<html>oops</html>") is None
    assert connect_error(b'{"code": 3}') is None


def test_a_server_error_fails_whatever_the_operation():
    assert server_error(500, body("internal")) is not None
    assert server_error(503, body("unavailable")) is not None
    assert server_error(502, b"Bad Gateway") is not None
    # Connect's answers to the caller's own asking, by their code only.
    assert server_error(501, body("unimplemented")) is None
    assert server_error(504, body("deadline_exceeded")) is None
    assert server_error(501, body("internal")) is not None
    assert server_error(504, b"") is not None
    assert server_error(400, body("invalid_argument")) is None


def test_valid_data_is_never_refused_with_a_5xx():
    for operation in [
        "shop.orders.v1.OrderService.CreateOrder",
        "shop.catalog.v1.CatalogService.ListProducts.get",
        "shop.payments.v1.PaymentService.Charge.rest",
    ]:
        assert refused_valid_data(operation, 500, body("internal")) is not None
        assert refused_valid_data(operation, 503, body("unavailable")) is not None


def test_a_400_to_valid_data_passes_only_with_its_operations_reason():
    page = "shop.catalog.v1.CatalogService.ListProducts.get"
    assert refused_valid_data(page, 400, body("invalid_argument", "PAGE_TOKEN_NOT_ISSUED")) is None
    # Another reason, or none, is a refusal of valid data.
    assert refused_valid_data(page, 400, body("invalid_argument")) is not None
    assert refused_valid_data(page, 400, body("failed_precondition", "CARD_DECLINED")) is not None
    order = "shop.orders.v1.OrderService.CreateOrder.rest"
    assert refused_valid_data(order, 400, body("invalid_argument", "TOO_MANY_OF_ONE_PRODUCT")) is None
    assert refused_valid_data(order, 400, body("invalid_argument", "PAGE_TOKEN_NOT_ISSUED")) is not None
    charge = "shop.payments.v1.PaymentService.Charge"
    assert refused_valid_data(charge, 400, body("failed_precondition", "CARD_DECLINED")) is None
    # An operation with no listed reason takes no 400 at all.
    me = "shop.users.v1.UserService.GetMe.rest"
    assert refused_valid_data(me, 400, body("invalid_argument", "CARD_DECLINED")) is not None


def test_valid_data_may_be_refused_for_who_asks_or_what_exists():
    operation = "shop.orders.v1.OrderService.GetOrder"
    for status in [200, 401, 403, 404, 409, 429]:
        assert refused_valid_data(operation, status, body("not_found")) is None, status
    assert refused_valid_data(operation, 412, body("failed_precondition")) is not None


def test_a_deadline_the_request_set_may_pass_once_it_has_passed():
    order = "shop.orders.v1.OrderService.CreateOrder"
    # Connect-Timeout-Ms: 0 asks for deadline_exceeded.
    assert refused_valid_data(order, 504, body("deadline_exceeded"), asked_ms=0, took_ms=0.4) is None
    # Before the deadline it set, or with none set, it is the server's.
    assert refused_valid_data(order, 504, body("deadline_exceeded"), asked_ms=5000, took_ms=30.0) is not None
    assert refused_valid_data(order, 504, body("deadline_exceeded")) is not None
    assert refused_valid_data(order, 503, body("unavailable"), asked_ms=0, took_ms=1.0) is not None
