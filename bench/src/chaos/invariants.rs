//! What must hold after a chaos run, read from the services' own databases
//! (and what the orders API tells each customer):
//!
//! 1. every acknowledged order is final, and every saga done;
//! 2. one order per (customer, key), and every order a customer was told
//!    of is the one the shop holds for that key;
//! 3. stock is conserved per product: initial = on hand + sold (the lines
//!    of confirmed orders), and no reservation is left held;
//! 4. every confirmed order is charged exactly once, for its total; every
//!    cancelled one nets zero (no capture left);
//! 5. every event is published, and every order placed since the outbox's
//!    oldest kept events (`KEEP_PUBLISHED_FOR` ago, a minute spare) has its
//!    order.created and its one final event;
//! 6. the order history agrees with the orders.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
    time::Duration,
};

use anyhow::Context;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult, Statement};
use shop_proto::shop::orders::v1::OrderStatus;

use super::customers::{self, PRODUCTS, Placed, Reach};
use crate::app_suite::shop::Databases;

/// What the run promised: each demo product's starting stock, and how long
/// an order may take to be charged before it is cancelled.
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    pub stock: i32,
    pub order_deadline: Duration,
}

/// The figures and every violation found.
pub struct Report {
    pub confirmed: usize,
    pub cancelled: usize,
    /// Orders whose customer asked to cancel, and of those, cancelled.
    pub cancels: (usize, usize),
    /// Cancel reasons, how many of each.
    pub reasons: BTreeMap<String, usize>,
    pub sold: i64,
    pub violations: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "orders: {} confirmed, {} cancelled ({} of the {} cancels asked for took); {} units sold",
            self.confirmed, self.cancelled, self.cancels.1, self.cancels.0, self.sold
        )?;
        for (reason, n) in &self.reasons {
            writeln!(f, "  cancelled {n:>4}: {reason}")?;
        }
        if self.violations.is_empty() {
            write!(f, "invariants: all hold")
        } else {
            writeln!(f, "invariants: {} violations", self.violations.len())?;
            for violation in self.violations.iter().take(50) {
                writeln!(f, "  VIOLATION {violation}")?;
            }
            Ok(())
        }
    }
}

async fn connect(databases: &Databases, service: &str) -> anyhow::Result<DatabaseConnection> {
    let url = match databases {
        Databases::Sqlite(dir) => shop_kit::db::sqlite_url(dir, service),
        Databases::Postgres(_) => databases
            .postgres_url(service)
            .context("a PostgreSQL URL")?,
    };
    sea_orm::Database::connect(url)
        .await
        .with_context(|| format!("reading {service}'s database"))
}

async fn rows(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<QueryResult>> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .with_context(|| sql.to_owned())
}

fn text(row: &QueryResult, column: &str) -> anyhow::Result<String> {
    row.try_get("", column).with_context(|| column.to_owned())
}

fn number(row: &QueryResult, column: &str) -> anyhow::Result<i64> {
    row.try_get::<i64>("", column)
        .or_else(|_| row.try_get::<i32>("", column).map(i64::from))
        .with_context(|| column.to_owned())
}

/// An order as the orders database holds it.
struct StoredOrder {
    user_id: String,
    key: String,
    status: String,
    total: i64,
    version: i64,
    created_at_ms: i64,
    lines: Vec<(String, i64)>,
}

pub async fn check(
    placed: &Placed,
    databases: &Databases,
    expected: &Expected,
    reach: &Reach,
) -> anyhow::Result<Report> {
    let mut violations: Vec<String> = placed.broken_promises.clone();

    // 1. What each customer is told now: final, in time.
    let patience = expected.order_deadline + Duration::from_secs(60);
    let told: Vec<_> = futures::stream::iter(&placed.orders)
        .map(|order| async move { (order, customers::final_order(reach, order, patience).await) })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut reasons = BTreeMap::new();
    let (mut confirmed, mut cancelled, mut cancels) = (0, 0, (0, 0));
    for (order, answer) in told {
        cancels.0 += usize::from(order.cancel_asked);
        match answer? {
            None => violations.push(format!("order {} never became final", order.id)),
            Some(found) => match found.status() {
                OrderStatus::Confirmed => confirmed += 1,
                _ => {
                    cancelled += 1;
                    cancels.1 += usize::from(order.cancel_asked);
                    *reasons
                        .entry(found.cancel_reason().as_str_name().to_owned())
                        .or_insert(0) += 1;
                }
            },
        }
    }

    // Let the relays finish what is under way.
    wait_for_outboxes(databases, &mut violations).await?;

    let orders_db = connect(databases, "orders").await?;
    let mut stored: HashMap<String, StoredOrder> = HashMap::new();
    for row in rows(
        &orders_db,
        "SELECT id, user_id, idempotency_key, status, total_minor_units, version, lines, \
         saga_step, created_at_ms FROM orders",
    )
    .await?
    {
        let id = text(&row, "id")?;
        if text(&row, "saga_step")? != "done" {
            violations.push(format!("order {id}: its saga is not done"));
        }
        let lines: Vec<serde_json::Value> = serde_json::from_str(&text(&row, "lines")?)?;
        stored.insert(
            id,
            StoredOrder {
                user_id: text(&row, "user_id")?,
                key: text(&row, "idempotency_key")?,
                status: text(&row, "status")?,
                total: number(&row, "total_minor_units")?,
                version: number(&row, "version")?,
                created_at_ms: number(&row, "created_at_ms")?,
                lines: lines
                    .iter()
                    .map(|line| {
                        (
                            line["productId"].as_str().unwrap_or_default().to_owned(),
                            line["quantity"].as_i64().unwrap_or_default(),
                        )
                    })
                    .collect(),
            },
        );
    }

    // 2. One order per key, the one the customer was told of.
    let mut keys: HashMap<(&str, &str), &str> = HashMap::new();
    for (id, order) in &stored {
        if order.status == "pending" {
            violations.push(format!("order {id} is still pending"));
        }
        if let Some(other) = keys.insert((order.user_id.as_str(), order.key.as_str()), id) {
            violations.push(format!("key {} placed {other} and {id}", order.key));
        }
    }
    let acknowledged: HashSet<&str> = placed.orders.iter().map(|o| o.id.as_str()).collect();
    let unanswered: HashSet<(&str, &str)> = placed
        .unanswered
        .iter()
        .map(|(user, key)| (user.as_str(), key.as_str()))
        .collect();
    for order in &placed.orders {
        let asked = sorted(order.lines.iter().map(|(p, q)| (p.clone(), i64::from(*q))));
        match stored.get(&order.id) {
            None => violations.push(format!("order {} was acknowledged, not stored", order.id)),
            Some(held)
                if held.key != order.key
                    || held.user_id != order.user_id
                    || held.total != order.total_minor_units
                    || sorted(held.lines.iter().cloned()) != asked =>
            {
                violations.push(format!("order {} is not what was placed", order.id));
            }
            Some(_) => {}
        }
    }
    for (id, order) in &stored {
        let known = acknowledged.contains(id.as_str())
            || unanswered.contains(&(order.user_id.as_str(), order.key.as_str()));
        if !known {
            violations.push(format!("order {id} was stored for nobody's call"));
        }
    }

    // 3. Stock conserved; nothing left held.
    let catalog_db = connect(databases, "catalog").await?;
    let mut sold: HashMap<&str, i64> = HashMap::new();
    for order in stored.values().filter(|o| o.status == "confirmed") {
        for (product, quantity) in &order.lines {
            if let Some(product) = PRODUCTS.iter().find(|p| *p == product) {
                *sold.entry(product).or_default() += quantity;
            }
        }
    }
    for row in rows(&catalog_db, "SELECT id, stock_on_hand FROM products").await? {
        let id = text(&row, "id")?;
        let on_hand = number(&row, "stock_on_hand")?;
        let sold = sold.get(id.as_str()).copied().unwrap_or(0);
        if on_hand + sold != i64::from(expected.stock) {
            violations.push(format!(
                "{id}: {on_hand} on hand + {sold} sold != {} at the start",
                expected.stock
            ));
        }
    }
    for row in rows(
        &catalog_db,
        "SELECT id FROM stock_reservations WHERE status = 'reserved'",
    )
    .await?
    {
        violations.push(format!("reservation {} is still held", text(&row, "id")?));
    }

    // 4. Money.
    let payments_db = connect(databases, "payments").await?;
    let mut captures: HashMap<String, Vec<i64>> = HashMap::new();
    for row in rows(
        &payments_db,
        "SELECT reference, amount_minor_units FROM payments \
         WHERE status = 'captured' AND charged_by = 'service'",
    )
    .await?
    {
        captures
            .entry(text(&row, "reference")?)
            .or_default()
            .push(number(&row, "amount_minor_units")?);
    }
    for (id, order) in &stored {
        let charged = captures.get(id).map(Vec::as_slice).unwrap_or_default();
        match order.status.as_str() {
            "confirmed" if charged != [order.total] => violations.push(format!(
                "confirmed order {id} of {} charged {charged:?}",
                order.total
            )),
            "cancelled" if !charged.is_empty() => {
                violations.push(format!("cancelled order {id} still charged {charged:?}"));
            }
            _ => {}
        }
    }

    // 5. Events: each order's created and one final event, for the orders
    // whose events the outbox still keeps (published ones go once
    // `KEEP_PUBLISHED_FOR` old): those placed since then, a minute spare.
    let kept_since = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .saturating_sub(shop_kit::events::KEEP_PUBLISHED_FOR)
            .saturating_add(Duration::from_secs(60))
            .as_millis(),
    )?;
    let mut events: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows(
        &orders_db,
        "SELECT aggregate_id, event_type FROM orders_outbox",
    )
    .await?
    {
        events
            .entry(text(&row, "aggregate_id")?)
            .or_default()
            .push(text(&row, "event_type")?);
    }
    for (id, order) in stored
        .iter()
        .filter(|(_, order)| order.created_at_ms >= kept_since)
    {
        let mut got = events.remove(id).unwrap_or_default();
        got.sort();
        let expected = vec![
            format!("order.{}", order.status),
            "order.created".to_owned(),
        ];
        if got != expected {
            violations.push(format!("order {id} ({}) has events {got:?}", order.status));
        }
    }

    // 6. The history agrees.
    let mut history: HashMap<String, (String, i64)> = HashMap::new();
    for row in rows(
        &orders_db,
        "SELECT order_id, status, version FROM order_history",
    )
    .await?
    {
        history.insert(
            text(&row, "order_id")?,
            (text(&row, "status")?, number(&row, "version")?),
        );
    }
    for (id, order) in &stored {
        match history.get(id) {
            Some((status, version)) if *status == order.status && *version == order.version => {}
            other => violations.push(format!(
                "history of {id} says {other:?}, the order is {} v{}",
                order.status, order.version
            )),
        }
    }

    Ok(Report {
        confirmed,
        cancelled,
        cancels,
        reasons,
        sold: sold.values().sum(),
        violations,
    })
}

fn sorted(lines: impl Iterator<Item = (String, i64)>) -> Vec<(String, i64)> {
    let mut lines: Vec<_> = lines.collect();
    lines.sort();
    lines
}

/// Waits (up to a minute) until no outbox holds an unpublished event and
/// the history has caught up; a violation if they never do.
async fn wait_for_outboxes(
    databases: &Databases,
    violations: &mut Vec<String>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for service in ["orders", "catalog", "payments"] {
        let db = connect(databases, service).await?;
        let mut checks = vec![format!(
            "SELECT COUNT(*) AS n FROM {service}_outbox WHERE published_at_ms IS NULL"
        )];
        if service == "orders" {
            checks.push(
                "SELECT COUNT(*) AS n FROM orders o LEFT JOIN order_history h \
                 ON h.order_id = o.id WHERE h.version IS NULL OR h.version <> o.version"
                    .to_owned(),
            );
        }
        for check in checks {
            loop {
                let left = match rows(&db, &check).await?.first() {
                    Some(row) => number(row, "n")?,
                    None => 0,
                };
                if left == 0 {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    violations.push(format!("{service}: {left} left by `{check}`"));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(())
}
