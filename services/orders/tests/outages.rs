//! Peers that go away for a moment. While customers place orders, payments
//! or the catalog is killed (every task and connection at once, as kill -9
//! would) and started again on its port and database: an outage shorter
//! than an order's deadline cancels nothing. Every order placed ends
//! CONFIRMED, within its deadline; a CreateOrder that failed meanwhile (the
//! catalog prices orders) is retried by the customer with the same key, as
//! a client should.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use support::{Options, Shop};

const CUSTOMERS: usize = 6;

async fn no_order_is_cancelled_by_an_outage_of(service: &str, outage: Duration) {
    let mut shop = Shop::start_with(Options {
        stock: 100_000,
        ..Options::default()
    })
    .await;
    let deadline_ms = i64::try_from(support::fast_policy().deadline.as_millis()).expect("ms");
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!(
        "http://{}/shop.orders.v1.OrderService/CreateOrder",
        shop.orders
    );
    let customers: Vec<_> = (0..CUSTOMERS)
        .map(|customer| {
            let (url, token, stop) = (url.clone(), shop.ada.clone(), stop.clone());
            shop_kit::task::spawn(async move {
                let mut placed = Vec::new();
                let mut failed_calls = 0;
                // At least two orders each, however slow the machine: one
                // before the outage and one across or after it.
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) && placed.len() >= 2 {
                        break;
                    }
                    let body = json!({
                        "idempotencyKey": format!("{customer}-{n}"),
                        "paymentToken": "tok_visa",
                        "items": [{"productId": "p1", "quantity": 1}],
                    });
                    // Until it is placed: the same key, so at most once.
                    loop {
                        let (status, answer) =
                            shop_kit::testing::call_json(&url, Some(&token), &body).await;
                        if status == 200 {
                            placed.push(answer["order"]["id"].as_str().expect("id").to_owned());
                            break;
                        }
                        assert_eq!(answer["code"], "unavailable", "{answer}");
                        failed_calls += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                (placed, failed_calls)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    shop.outage(service, outage).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut placed = Vec::new();
    let mut failed_calls = 0;
    for customer in customers {
        let (orders, failed) = customer.await.expect("customer");
        placed.extend(orders);
        failed_calls += failed;
    }
    for id in &placed {
        let order = shop.settled(&shop.ada, id).await;
        assert_eq!(order["status"], "ORDER_STATUS_CONFIRMED", "{order}");
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(order[field].as_str().expect("time"))
                .expect("RFC 3339")
                .timestamp_millis()
        };
        assert!(at("updatedAt") - at("createdAt") < deadline_ms, "{order}");
    }
    println!(
        "{service} down {outage:?}: {} orders placed, all confirmed; {failed_calls} CreateOrder calls retried",
        placed.len()
    );
}

#[tokio::test]
async fn payments_down_half_a_second_cancels_nothing() {
    no_order_is_cancelled_by_an_outage_of("payments", Duration::from_millis(500)).await;
}

#[tokio::test]
async fn payments_down_three_seconds_cancels_nothing() {
    no_order_is_cancelled_by_an_outage_of("payments", Duration::from_secs(3)).await;
}

#[tokio::test]
async fn catalog_down_half_a_second_cancels_nothing() {
    no_order_is_cancelled_by_an_outage_of("catalog", Duration::from_millis(500)).await;
}

#[tokio::test]
async fn catalog_down_three_seconds_cancels_nothing() {
    no_order_is_cancelled_by_an_outage_of("catalog", Duration::from_secs(3)).await;
}
