//! A service whose migrations wait for their lock (another replica's, or
//! the migration Job's) answers on its port meanwhile: alive to a
//! Kubernetes startup and liveness probe (`/healthz`, within a second,
//! every second), not ready (`/readyz` 503, saying why), every call
//! `unavailable` and marked not processed; ready once the lock is free. On
//! SQLite here for 5 s; `just test-postgres` holds PostgreSQL's advisory
//! lock for 65 s, past the 60 s the manifests once gave a pod to start.

mod launched;

use std::time::{Duration, Instant};

use launched::Shop;
use shop_kit::testing::TestDatabase;

async fn alive_and_unready_while_the_lock_is_held(hold: Duration) {
    let database = TestDatabase::new("users").await;
    let db = shop_kit::db::connect("test", &database.url)
        .await
        .expect("connect");
    let lock = shop_migrations::MigrationLock::take(&db, "users")
        .await
        .expect("the lock");
    let users = Shop::serve_bound("users", &["--users-database-url", &database.url]).await;
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let base = users.url("users");
    let started = Instant::now();
    let mut probes = 0;
    while started.elapsed() < hold {
        let alive = probe.get(format!("{base}/healthz")).send().await;
        assert!(
            alive.as_ref().is_ok_and(|r| r.status() == 200),
            "the startup probe failed after {:?}: {alive:?}",
            started.elapsed()
        );
        let (status, said) = users.readyz("users").await;
        assert_eq!(status, 503, "{said}");
        assert!(said.contains("users is starting"), "{said}");
        probes += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (status, refused) = users
        .call(
            "users",
            "/shop.users.v1.UserService/LogIn",
            &serde_json::json!({"email": "a@example.com", "password": "correct horse 9"}),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (503, Some("unavailable")),
        "{refused}"
    );
    assert!(probes >= hold.as_secs() / 2, "{probes} probes");

    lock.release().await;
    let ready_by = Instant::now() + Duration::from_secs(60);
    while users.readyz("users").await.0 != 200 {
        assert!(
            Instant::now() < ready_by,
            "not ready once the lock was free"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(users.alive("users").await);
}

#[tokio::test]
async fn a_service_waiting_for_its_migrations_lock_is_alive_and_unready() {
    alive_and_unready_while_the_lock_is_held(Duration::from_secs(5)).await;
}

#[tokio::test]
#[ignore = "65 s on PostgreSQL: just test-postgres"]
async fn on_postgres_a_lock_held_past_the_old_startup_budget_kills_nothing() {
    assert!(
        std::env::var(shop_kit::testing::TEST_DATABASE_URL).is_ok_and(|url| !url.is_empty()),
        "SHOP_TEST_DATABASE_URL: just test-postgres sets it"
    );
    alive_and_unready_while_the_lock_is_held(Duration::from_secs(65)).await;
}
