//! With traces on, the work a call causes carries its trace: a stock
//! change's outbox event names the trace of the ReserveStock that made it,
//! which continues the trace of the service that called (orders, with its
//! service token). Traces go to an OTLP endpoint nobody listens on: the
//! spans are made and propagated for real, their export fails and is
//! counted, and no call notices.

mod support;

use serde_json::json;
use shop_kit::testing::traces_on;
use support::TestCatalog;

#[tokio::test]
async fn every_stock_change_is_an_outbox_event_in_the_callers_trace() {
    traces_on();
    let catalog = TestCatalog::start().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let (status, _) = shop_kit::testing::call_json_with(
        &catalog.url("ReserveStock"),
        Some(&catalog.service_token),
        &[("traceparent", &traceparent)],
        &json!({"reservationId": "r1", "items": [{"productId": "p1", "quantity": 2}]}),
    )
    .await;
    assert_eq!(status, 200);
    let events =
        shop_kit::testing::outbox_events(catalog.catalog.store().ledger.db(), "catalog").await;
    let event = events.last().expect("an event");
    assert_eq!(event.event_type, "stock.changed");
    assert_eq!(event.aggregate_id, "p1");
    // The facts in full, as a consumer parses them (on PostgreSQL the
    // statement that moved the stock wrote them).
    assert_eq!(
        event.data,
        json!({"productId": "p1", "stockOnHand": 3, "version": event.version}),
    );
    assert!(event.version > 0);
    let parts: Vec<&str> = event.traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{}", event.traceparent);
    assert_eq!(parts[1], trace_id, "the caller's trace");
    assert_ne!(parts[2], "00f067aa0ba902b7", "a span of the catalog's own");
}

#[tokio::test]
async fn a_call_naming_no_trace_starts_one() {
    traces_on();
    let catalog = TestCatalog::start().await;
    let (status, _) = shop_kit::testing::call_json_with(
        &catalog.url("ReserveStock"),
        Some(&catalog.service_token),
        &[],
        &json!({"reservationId": "r3", "items": [{"productId": "p1", "quantity": 1}]}),
    )
    .await;
    assert_eq!(status, 200);
    let events =
        shop_kit::testing::outbox_events(catalog.catalog.store().ledger.db(), "catalog").await;
    let event = events.last().expect("an event");
    let parts: Vec<&str> = event.traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "a trace of its own: {}", event.traceparent);
    assert!(parts[1].bytes().any(|b| b != b'0'));
}
