//! Two replicas' relays on one outbox (each its own pool, as two processes
//! have): every event recorded and never relayed (its process died after
//! the commit) is relayed by exactly one of them. SQLite by default;
//! PostgreSQL with `SHOP_TEST_DATABASE_URL` (`just test-postgres`), where
//! each poll skips the rows the other claimed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use shop_kit::{
    Shutdown,
    events::{Broker, Delivery, Event, Outbox, Relay, Subscription},
    testing::TestDatabase,
};

const EVENTS: usize = 600;

#[tokio::test]
async fn replicas_sharing_an_outbox_relay_each_lost_event_once() {
    let database = TestDatabase::new("payments").await;
    let db = shop_kit::db::connect("payments", &database.url)
        .await
        .expect("connect");
    shop_migrations::up::<shop_migrations::payments::Migrator>(&db, "payments")
        .await
        .expect("migrate");
    // Committed a minute ago by a process that died before relaying them.
    let lost: Vec<Event> = (0..EVENTS)
        .map(|n| {
            let mut event = Event::new(
                "payments",
                "payment.captured",
                &format!("pay-{n}"),
                1,
                serde_json::json!({"n": n}),
            );
            event.time = "2026-11-23T10:00:00.000Z".to_owned();
            event
        })
        .collect();
    for chunk in lost.chunks(100) {
        Outbox::new("payments")
            .append_all(&db, chunk)
            .await
            .expect("record");
    }

    let delivered: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let shutdown = Shutdown::new();
    let mut relays = Vec::new();
    for _replica in 0..2 {
        let pool = shop_kit::db::connect("payments", &database.url)
            .await
            .expect("connect");
        let seen = delivered.clone();
        let counting = Subscription::batched(
            "counting",
            "payment.",
            Delivery::Durable,
            move |batch: Vec<Event>| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().expect("lock");
                    for event in batch {
                        *seen.entry(event.id).or_default() += 1;
                    }
                    Ok(())
                }
            },
        );
        relays.push(Relay::start(
            pool,
            "payments",
            Broker::InProcess,
            vec![counting],
            &shutdown,
        ));
    }
    let outbox = Outbox::new("payments");
    for _ in 0..200 {
        if outbox.backlog(&db).await.expect("backlog") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.trigger();
    assert!(shutdown.work_finished(Duration::from_secs(5)).await);
    assert_eq!(
        outbox.backlog(&db).await.expect("backlog"),
        0,
        "all relayed"
    );
    let delivered = delivered.lock().expect("lock");
    assert_eq!(delivered.len(), EVENTS, "every event delivered");
    let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "relayed twice: {} events", twice.len());
}
