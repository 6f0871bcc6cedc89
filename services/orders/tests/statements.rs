//! What an order costs the databases: SQL statements per order, summed
//! over orders, catalog and payments (the kit counts every statement run on
//! a service's pool), for the whole of it: CreateOrder, the saga's steps,
//! the events relayed, the order history kept, and WatchOrder following the
//! order to its end, as `just bench` places them. Alone in its binary, so
//! the process's counters are this test's.

mod support;

use std::{
    collections::BTreeMap,
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use sea_orm::{ConnectionTrait, Database, Statement};
use shop_orders::SagaPolicy;
use support::{Options, Shop, fast_policy};

/// Statements one order may cost, all services together, on SQLite (a
/// change and its outbox row are two statements in a transaction)...
const BUDGET: f64 = 15.0;
/// ...and on PostgreSQL, where they are one, with no transaction around
/// it (`Relay::record`), and a reservation is one statement.
const BUDGET_POSTGRES: f64 = 10.0;
const ORDERS: usize = 128;
const CONCURRENCY: usize = 16;

/// The SQL the services ran, as the kit traces it (`shop::sql`).
#[derive(Clone, Default)]
struct SqlLog(Arc<Mutex<Vec<u8>>>);

impl Write for SqlLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SqlLog {
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().expect("log"))).into_owned()
    }
}

#[tokio::test]
async fn an_order_costs_at_most_its_statement_budget() {
    let log = SqlLog::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("warn,shop::sql=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .init();
    let shop = Shop::start_with(Options {
        stock: 10_000,
        // No sweep while we count: it finds nothing to do on a healthy run.
        policy: SagaPolicy {
            sweep_every: Duration::from_secs(3600),
            ..fast_policy()
        },
        ..Options::default()
    })
    .await;
    // Warm: the service token fetched, connections open.
    let first = shop.order(&shop.ada, "warm-up").await;
    shop.watch_until_final(&shop.ada, first["id"].as_str().expect("id"))
        .await;
    quiet(&shop).await;

    let before = statements(&shop).await;
    log.take();
    let placed = futures::stream::iter(0..ORDERS)
        .map(|n| {
            let shop = &shop;
            async move {
                let order = shop
                    .order_with(&shop.ada, &format!("order-{n}"), "tok_visa", &[("p1", 1)])
                    .await;
                shop.watch_until_final(&shop.ada, order["id"].as_str().expect("id"))
                    .await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    assert!(
        placed
            .iter()
            .all(|status| status == "ORDER_STATUS_CONFIRMED"),
        "{placed:?}"
    );
    quiet(&shop).await;
    let after = statements(&shop).await;

    let mut total = 0.0;
    let mut table = String::new();
    for (service, count) in &after {
        let spent = (count - before.get(service).copied().unwrap_or(0.0)) / ORDERS as f64;
        total += spent;
        table.push_str(&format!("  {service:<9} {spent:5.2}\n"));
    }
    let log = log.take();
    let listing = statement_list(&log);
    // Each relay claims its outbox's lost events once a second, however
    // many orders there are: a cost of the run's length, not of an order
    // (a slow machine runs longer, not dearer per order).
    let polls = log
        .lines()
        .filter(|line| line.contains("SET \"claimed_until_ms\""))
        .count();
    let per_order = total - polls as f64 / ORDERS as f64;
    println!(
        "statements per order ({ORDERS} orders, {CONCURRENCY} at a time):\n{table}  total     {total:5.2}\n  \
         of which {polls} outbox polls (one a second per service), so {per_order:.2} per order\n{listing}"
    );
    let budget = if std::env::var_os(shop_kit::testing::TEST_DATABASE_URL).is_some() {
        BUDGET_POSTGRES
    } else {
        BUDGET
    };
    assert!(
        per_order <= budget,
        "an order costs {per_order:.2} statements (besides {polls} polls), over the budget of {budget}:\n{table}{listing}"
    );
}

/// Each service's statement count, from /metrics.
async fn statements(shop: &Shop) -> BTreeMap<String, f64> {
    let text = reqwest::get(format!("http://{}/metrics", shop.orders))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter_map(|line| line.strip_prefix("shop_db_statements_total{service=\""))
        .filter_map(|rest| {
            let (service, value) = rest.split_once("\"} ")?;
            Some((service.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Waits until every event is relayed (the outboxes are empty) and the
/// history holds every order, reading the databases on connections of the
/// test's own (not counted).
async fn quiet(shop: &Shop) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for (service, url) in shop.database_urls() {
        let db = Database::connect(url).await.expect("connect");
        let checks = match service {
            "users" => continue,
            "orders" => vec![
                "SELECT COUNT(*) FROM orders_outbox WHERE published_at_ms IS NULL",
                "SELECT (SELECT COUNT(*) FROM orders) - (SELECT COUNT(*) FROM order_history \
                 WHERE status <> 'pending')",
            ],
            _ => vec![],
        };
        let outbox = format!("SELECT COUNT(*) FROM {service}_outbox WHERE published_at_ms IS NULL");
        for check in checks.iter().copied().chain([outbox.as_str()]) {
            loop {
                let row = db
                    .query_one_raw(Statement::from_string(
                        db.get_database_backend(),
                        check.to_owned(),
                    ))
                    .await
                    .expect("check")
                    .expect("a row");
                if row.try_get_by_index::<i64>(0).expect("a count") == 0 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{service} never settled: {check}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let _ = db.close().await;
    }
}

/// The statements run, by service and SQL text, most frequent first.
fn statement_list(log: &str) -> String {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in log.lines() {
        let Some((_, fields)) = line.split_once("shop::sql: ") else {
            continue;
        };
        let service = fields
            .split_once("service=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or("?", |(service, _)| service);
        let sql = fields.split_once("sql=").map_or(fields, |(_, sql)| sql);
        *counts
            .entry((service.to_owned(), sql.chars().take(140).collect()))
            .or_default() += 1;
    }
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1));
    rows.iter()
        .map(|((service, sql), n)| format!("  {n:>5} {service:<9} {sql}\n"))
        .collect()
}
