//! The payments service over Connect on loopback, with its own SQLite file.

use std::net::SocketAddr;

use serde_json::{Value, json};
use shop_kit::{app::Launch, auth::TokenKeys};
use shop_payments::{Payments, domain::Payer};
use shop_users::tokens::TokenIssuer;

struct TestPayments {
    addr: SocketAddr,
    ada: String,
    bob: String,
    orders_service: String,
    payments: Payments,
    _database: shop_kit::testing::TestDatabase,
}

impl TestPayments {
    async fn start() -> Self {
        let database = shop_kit::testing::TestDatabase::new("payments").await;
        let (kid, der) = TokenIssuer::generate_key().expect("key");
        let issuer = TokenIssuer::from_pkcs8(kid, &der).expect("issuer");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let running = Launch::new(shop_payments::Config {
            database_url: database.url.as_str().into(),
            nats: None,
            token_keys: TokenKeys::Given(issuer.verifier().expect("verifier")),
        })
        .start()
        .await
        .expect("payments");
        Self {
            addr: running.addr,
            ada: issuer.access_token("ada", now).expect("token"),
            bob: issuer.access_token("bob", now).expect("token"),
            orders_service: issuer.access_token("service:orders", now).expect("token"),
            payments: running.handle,
            _database: database,
        }
    }

    async fn call(&self, method: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let url = format!(
            "http://{}/shop.payments.v1.PaymentService/{method}",
            self.addr
        );
        shop_kit::testing::call_json(&url, token, &body).await
    }

    /// A call to the internal OrderPaymentService (the saga's).
    async fn call_internal(&self, method: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let url = format!(
            "http://{}/shop.payments.v1.OrderPaymentService/{method}",
            self.addr
        );
        shop_kit::testing::call_json(&url, token, &body).await
    }
}

fn charge(key: &str, cents: i64, token: &str) -> Value {
    json!({"idempotencyKey": key, "reference": "order-1", "amount": {"currencyCode": "EUR", "minorUnits": cents.to_string()}, "paymentToken": token})
}

#[tokio::test]
async fn a_charge_is_recorded_once_per_key() {
    let service = TestPayments::start().await;
    let (status, first) = service
        .call("Charge", Some(&service.ada), charge("k1", 2500, "tok_visa"))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["payment"]["status"], "PAYMENT_STATUS_CAPTURED");
    let (_, repeat) = service
        .call("Charge", Some(&service.ada), charge("k1", 2500, "tok_visa"))
        .await;
    assert_eq!(repeat["payment"]["id"], first["payment"]["id"]);

    let (status, other_amount) = service
        .call("Charge", Some(&service.ada), charge("k1", 9999, "tok_visa"))
        .await;
    assert_eq!(
        (status, other_amount["code"].as_str()),
        (409, Some("already_exists"))
    );
    assert!(
        other_amount["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("idempotency_key")
    );
    assert_eq!(
        refusal_reason(&other_amount).as_deref(),
        Some("IDEMPOTENCY_KEY_REUSED"),
        "{other_amount}"
    );

    // Another customer's key of the same name is theirs.
    let (_, bobs) = service
        .call("Charge", Some(&service.bob), charge("k1", 100, "tok_visa"))
        .await;
    assert_ne!(bobs["payment"]["id"], first["payment"]["id"]);
}

#[tokio::test]
async fn racing_repeats_charge_once() {
    let service = TestPayments::start().await;
    let attempts = (0..20).map(|_| {
        service.call(
            "Charge",
            Some(&service.ada),
            charge("race", 1200, "tok_visa"),
        )
    });
    let results = futures::future::join_all(attempts).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["payment"]["id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one payment for one key");
    let stored = service
        .payments
        .store()
        .by_key("ada", Payer::Customer, "race")
        .await
        .expect("read")
        .expect("payment");
    assert!(ids.contains(&stored.id));
}

#[tokio::test]
async fn the_fake_processor_declines_and_fails_by_token() {
    let service = TestPayments::start().await;
    let (status, declined) = service
        .call(
            "Charge",
            Some(&service.ada),
            charge("d", 500, "tok_declined"),
        )
        .await;
    assert_eq!(
        (status, declined["code"].as_str()),
        (400, Some("failed_precondition"))
    );
    assert_eq!(
        refusal_reason(&declined).as_deref(),
        Some("CARD_DECLINED"),
        "{declined}"
    );

    let (status, down) = service
        .call(
            "Charge",
            Some(&service.ada),
            charge("u", 500, "tok_unavailable"),
        )
        .await;
    assert_eq!((status, down["code"].as_str()), (503, Some("unavailable")));

    let (status, unknown) = service
        .call("Charge", Some(&service.ada), charge("x", 500, "tok_nope"))
        .await;
    assert_eq!((status, unknown["code"].as_str()), (404, Some("not_found")));
    assert_eq!(
        refusal_reason(&unknown).as_deref(),
        Some("UNKNOWN_PAYMENT_TOKEN"),
        "{unknown}"
    );
    let (status, free) = service
        .call("Charge", Some(&service.ada), charge("z", 0, "tok_visa"))
        .await;
    assert_eq!(
        (status, free["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    assert!(
        service
            .payments
            .store()
            .by_key("ada", Payer::Customer, "d")
            .await
            .expect("read")
            .is_none(),
        "a decline records nothing"
    );
}

#[tokio::test]
async fn refunds_happen_once_and_only_to_the_owner() {
    let service = TestPayments::start().await;
    let (_, charged) = service
        .call("Charge", Some(&service.ada), charge("r", 700, "tok_visa"))
        .await;
    let id = charged["payment"]["id"].clone();
    for _ in 0..2 {
        let (status, refunded) = service
            .call("Refund", Some(&service.ada), json!({"paymentId": id}))
            .await;
        assert_eq!(
            (status, refunded["payment"]["status"].as_str()),
            (200, Some("PAYMENT_STATUS_REFUNDED"))
        );
    }
    for method in ["Refund", "GetPayment"] {
        let (status, hidden) = service
            .call(method, Some(&service.bob), json!({"paymentId": id}))
            .await;
        assert_eq!(
            (status, hidden["code"].as_str()),
            (404, Some("not_found")),
            "{method}"
        );
    }
    let (status, _) = service
        .call("GetPayment", None, json!({"paymentId": id}))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn services_charge_on_a_customers_behalf_customers_only_themselves() {
    let service = TestPayments::start().await;
    let mut for_ada = charge("order-1-charge", 900, "tok_visa");
    for_ada["customerId"] = json!("ada");
    let (status, charged) = service
        .call_internal(
            "ChargeOrder",
            Some(&service.orders_service),
            for_ada.clone(),
        )
        .await;
    assert_eq!(
        (status, charged["payment"]["customerId"].as_str()),
        (200, Some("ada")),
        "{charged}"
    );
    // Ada sees it as hers; the service may refund it.
    let id = charged["payment"]["id"].clone();
    assert_eq!(
        service
            .call("GetPayment", Some(&service.ada), json!({"paymentId": id}))
            .await
            .0,
        200
    );
    let (status, refunded) = service
        .call_internal(
            "RefundOrder",
            Some(&service.orders_service),
            json!({"paymentId": id}),
        )
        .await;
    assert_eq!(
        (status, refunded["payment"]["status"].as_str()),
        (200, Some("PAYMENT_STATUS_REFUNDED"))
    );

    let (status, nameless) = service
        .call_internal(
            "ChargeOrder",
            Some(&service.orders_service),
            charge("k", 900, "tok_visa"),
        )
        .await;
    assert_eq!(
        (status, nameless["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    let (status, someone_else) = service
        .call("Charge", Some(&service.bob), for_ada.clone())
        .await;
    assert_eq!(
        (status, someone_else["code"].as_str()),
        (403, Some("permission_denied"))
    );
    // Each service to its callers: the shop charges and refunds orders on
    // the internal service only, a customer only on the public one.
    for (status, refused) in [
        service
            .call("Charge", Some(&service.orders_service), for_ada.clone())
            .await,
        service
            .call(
                "Refund",
                Some(&service.orders_service),
                json!({"paymentId": id}),
            )
            .await,
        service
            .call_internal("ChargeOrder", Some(&service.ada), for_ada.clone())
            .await,
        service
            .call_internal("RefundOrder", Some(&service.ada), json!({"paymentId": id}))
            .await,
    ] {
        assert_eq!(
            (status, refused["code"].as_str()),
            (403, Some("permission_denied")),
            "{refused}"
        );
    }
    let (status, anonymous) = service.call_internal("ChargeOrder", None, for_ada).await;
    assert_eq!(
        (status, anonymous["code"].as_str()),
        (401, Some("unauthenticated"))
    );
}

#[tokio::test]
async fn a_charge_key_refunded_before_its_charge_is_never_charged() {
    // The orders saga compensates a charge whose answer it never saw by its
    // key: a charge made is refunded, a charge not made yet never will be.
    let service = TestPayments::start().await;
    let by_key = |key: &str| json!({"idempotencyKey": key, "customerId": "ada"});
    let (status, voided) = service
        .call_internal("RefundOrder", Some(&service.orders_service), by_key("lost"))
        .await;
    assert_eq!(
        (status, voided["payment"]["status"].as_str()),
        (200, Some("PAYMENT_STATUS_VOIDED")),
        "{voided}"
    );
    assert_eq!(
        voided["payment"].get("amount"),
        None,
        "no money moved: {voided}"
    );
    let mut late = charge("lost", 900, "tok_visa");
    late["customerId"] = json!("ada");
    let (status, refused) = service
        .call_internal("ChargeOrder", Some(&service.orders_service), late)
        .await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("aborted")));

    let mut made = charge("made", 900, "tok_visa");
    made["customerId"] = json!("ada");
    service
        .call_internal("ChargeOrder", Some(&service.orders_service), made)
        .await;
    for _ in 0..2 {
        let (status, refunded) = service
            .call_internal("RefundOrder", Some(&service.orders_service), by_key("made"))
            .await;
        assert_eq!(
            (status, refunded["payment"]["status"].as_str()),
            (200, Some("PAYMENT_STATUS_REFUNDED"))
        );
    }
    let (status, neither) = service.call("Refund", Some(&service.ada), json!({})).await;
    assert_eq!(
        (status, neither["code"].as_str()),
        (400, Some("invalid_argument"))
    );

    // Money moved twice (a capture and its refund), and nothing for the void.
    let events =
        shop_kit::testing::outbox_events(service.payments.store().ledger.db(), "payments").await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["payment.captured", "payment.refunded"]);
    assert_eq!(events[1].data["minorUnits"], 900);
    assert_eq!(events[0].aggregate_id, events[1].aggregate_id);
    assert_eq!((events[0].version, events[1].version), (1, 2));
}

#[tokio::test]
async fn a_customer_cannot_refund_or_void_the_charge_for_an_order() {
    // The saga charges with key "order-<id>" on Ada's behalf; Ada knows her
    // order id, so she knows the key. Neither the payment id nor the key
    // lets her undo it: she would keep the goods and get the money back.
    let service = TestPayments::start().await;
    let mut for_order = charge("order-42", 1500, "tok_visa");
    for_order["customerId"] = json!("ada");
    let (_, charged) = service
        .call_internal("ChargeOrder", Some(&service.orders_service), for_order)
        .await;
    let id = charged["payment"]["id"].clone();
    for attempt in [
        json!({"paymentId": id}),
        json!({"idempotencyKey": "order-42"}),
        json!({"idempotencyKey": "order-42", "customerId": "ada"}),
    ] {
        let (status, refused) = service
            .call("Refund", Some(&service.ada), attempt.clone())
            .await;
        let still = service
            .call("GetPayment", Some(&service.ada), json!({"paymentId": id}))
            .await
            .1;
        assert_eq!(
            still["payment"]["status"].as_str(),
            Some("PAYMENT_STATUS_CAPTURED"),
            "{attempt} answered {status} {refused}"
        );
        assert!(
            status == 403 || refused["payment"]["status"] == "PAYMENT_STATUS_VOIDED",
            "{attempt}: {status} {refused}"
        );
    }
    let (status, refused) = service
        .call("Refund", Some(&service.ada), json!({"paymentId": id}))
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("permission_denied"))
    );
    // Ada's own key "order-42" is hers alone: voiding it left the saga's
    // charge alone, and a later saga charge with the same key still works.
    let (status, refunded) = service
        .call_internal(
            "RefundOrder",
            Some(&service.orders_service),
            json!({"idempotencyKey": "order-42", "customerId": "ada"}),
        )
        .await;
    assert_eq!(
        (status, refunded["payment"]["status"].as_str()),
        (200, Some("PAYMENT_STATUS_REFUNDED")),
        "the saga may refund its own charge"
    );
}

#[tokio::test]
async fn a_payment_token_can_be_checked_before_any_charge() {
    let service = TestPayments::start().await;
    for token in ["tok_visa", "tok_declined", "tok_unavailable"] {
        let (status, body) = service
            .call(
                "CheckPaymentToken",
                Some(&service.ada),
                json!({"paymentToken": token}),
            )
            .await;
        assert_eq!((status, body.clone()), (200, json!({})), "{token}");
    }
    let (status, unknown) = service
        .call(
            "CheckPaymentToken",
            Some(&service.ada),
            json!({"paymentToken": "tok_vias"}),
        )
        .await;
    assert_eq!((status, unknown["code"].as_str()), (404, Some("not_found")));
    assert_eq!(
        refusal_reason(&unknown).as_deref(),
        Some("UNKNOWN_PAYMENT_TOKEN"),
        "{unknown}"
    );
    let (status, empty) = service
        .call("CheckPaymentToken", Some(&service.ada), json!({}))
        .await;
    assert_eq!(
        (status, empty["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    // Signed-in callers only.
    let (status, anonymous) = service
        .call(
            "CheckPaymentToken",
            None,
            json!({"paymentToken": "tok_visa"}),
        )
        .await;
    assert_eq!(
        (status, anonymous["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    // NO_SIDE_EFFECTS: a Connect GET works too.
    let message = "%7B%22paymentToken%22%3A%22tok_visa%22%7D";
    let answer = reqwest::Client::new()
        .get(format!(
            "http://{}/shop.payments.v1.PaymentService/CheckPaymentToken?connect=v1&encoding=json&message={message}",
            service.addr
        ))
        .bearer_auth(&service.ada)
        .send()
        .await
        .expect("get");
    assert_eq!(answer.status(), 200);
}

/// The reason a refusal's google.rpc.ErrorInfo gives, if it is in the
/// payments domain.
fn refusal_reason(error: &Value) -> Option<String> {
    shop_kit::testing::error_info(error)
        .and_then(|(reason, domain)| (domain == "payments.connect-shop").then_some(reason))
}

/// The request rules of payments.proto (buf.validate), refused on every
/// protocol with a google.rpc.BadRequest naming each field as the caller
/// wrote it.
#[tokio::test]
async fn payment_requests_breaking_a_rule_are_refused_on_every_protocol() {
    use shop_kit::testing::refusals::assert_bad_request;
    use shop_proto::shop::{common::v1::Money, payments::v1 as pb};
    let payments = TestPayments::start().await;
    let base = format!("http://{}", payments.addr);
    let path = |method: &str| format!("/shop.payments.v1.PaymentService/{method}");

    // A charge without its amount, with a key too long and a currency
    // that is not three capitals (a nested message's rule, with its path).
    let charge = pb::ChargeRequest {
        idempotency_key: "k".repeat(101),
        reference: "order-1".into(),
        amount: None,
        payment_token: "tok_visa".into(),
        customer_id: String::new(),
    };
    assert_bad_request(
        &base,
        &path("Charge"),
        Some(&payments.ada),
        &charge,
        &[("idempotency_key", "idempotencyKey"), ("amount", "amount")],
    )
    .await;
    let euros = pb::ChargeRequest {
        idempotency_key: "k1".into(),
        amount: Some(Money {
            currency_code: "eur".into(),
            minor_units: 100,
        }),
        payment_token: "tok_visa".into(),
        ..Default::default()
    };
    assert_bad_request(
        &base,
        &path("Charge"),
        Some(&payments.ada),
        &euros,
        &[("amount.currency_code", "amount.currencyCode")],
    )
    .await;
    assert_bad_request(
        &base,
        &path("GetPayment"),
        Some(&payments.ada),
        &pb::GetPaymentRequest::default(),
        &[("payment_id", "paymentId")],
    )
    .await;
    assert_bad_request(
        &base,
        &path("CheckPaymentToken"),
        Some(&payments.ada),
        &pb::CheckPaymentTokenRequest::default(),
        &[("payment_token", "paymentToken")],
    )
    .await;
    let refund = pb::RefundRequest {
        payment_id: "p".repeat(101),
        ..Default::default()
    };
    assert_bad_request(
        &base,
        &path("Refund"),
        Some(&payments.ada),
        &refund,
        &[("payment_id", "paymentId")],
    )
    .await;
    // The internal service's: the saga must name the customer.
    let nameless = pb::ChargeOrderRequest {
        idempotency_key: "order-1".into(),
        reference: "order-1".into(),
        amount: Some(Money {
            currency_code: "EUR".into(),
            minor_units: 100,
        }),
        payment_token: "tok_visa".into(),
        customer_id: String::new(),
    };
    assert_bad_request(
        &base,
        "/shop.payments.v1.OrderPaymentService/ChargeOrder",
        Some(&payments.orders_service),
        &nameless,
        &[("customer_id", "customerId")],
    )
    .await;
}
