//! The app suite, on the launched shop: start-up time and memory, orders
//! end to end on SQLite and PostgreSQL, the BFF's GetHome against the
//! downstream calls it fans out to, and ListProducts over Connect GET.

mod bff;
pub mod orders;
pub mod shop;

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use crate::{
    cpus::Cpus,
    h2load::{self, Load, Medians, Sample},
    stats,
    targets::{self, HttpRequest},
};
pub use bff::{BffRow, DOWNSTREAM_DELAY};
pub use shop::Memory;
use shop::{Databases, Layout, Shop};

#[derive(Clone, Debug)]
pub struct Options {
    pub shop_bin: PathBuf,
    pub postgres_url: Option<String>,
    pub smoke: bool,
    pub repetitions: usize,
    pub warm_up: Duration,
    pub duration: Duration,
    pub scratch: PathBuf,
    /// Orders end to end only.
    pub orders_only: bool,
}

impl Options {
    fn order_concurrency(&self) -> Vec<usize> {
        if self.smoke { vec![1] } else { vec![1, 4, 16] }
    }

    fn call_concurrency(&self) -> Vec<u32> {
        if self.smoke { vec![1] } else { vec![1, 16] }
    }

    fn list_concurrency(&self) -> Vec<u32> {
        if self.smoke { vec![1] } else { vec![1, 16, 64] }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AppResults {
    pub startup: Startup,
    pub databases: Vec<DatabaseResults>,
}

/// `shop` (every service in one process) from spawn to every /readyz
/// answering 200, on fresh SQLite files (migrations and demo data included).
#[derive(Clone, Debug, Serialize)]
pub struct Startup {
    pub ready_ms: Vec<f64>,
    pub median_ms: f64,
    /// The one process's memory, idle after start.
    pub idle: Memory,
}

#[derive(Clone, Debug, Serialize)]
pub struct DatabaseResults {
    pub database: String,
    /// Per service process: (service, its memory idle, its peak VmHWM in
    /// KiB after the loads).
    pub memory: Vec<(String, Memory, u64)>,
    pub orders: Vec<OrdersRow>,
    pub calls: Vec<CallRow>,
    /// GetHome with every downstream `DOWNSTREAM_DELAY` away.
    pub bff: Vec<BffRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OrdersRow {
    pub concurrency: usize,
    pub orders_per_sec: f64,
    pub spread_percent: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub confirmed: u64,
    pub cancelled: u64,
    /// CPU time each service spent per order placed, in ms.
    pub cpu_ms_per_order: Vec<(String, f64)>,
    /// SQL statements each service ran per order placed.
    pub statements_per_order: Vec<(String, f64)>,
}

/// An RPC loaded with h2load over Connect GET.
#[derive(Clone, Debug, Serialize)]
pub struct CallRow {
    pub call: String,
    pub concurrency: u32,
    #[serde(flatten)]
    pub medians: Medians,
}

const LIST_PRODUCTS: &str = "/shop.catalog.v1.CatalogService/ListProducts";

pub async fn run(options: &Options, cpus: &Cpus) -> anyhow::Result<AppResults> {
    h2load::check_installed()?;
    let startup = if options.orders_only {
        Startup {
            ready_ms: Vec::new(),
            median_ms: 0.0,
            idle: Memory::default(),
        }
    } else {
        startup(options, cpus).await?
    };
    eprintln!(
        "app suite: start-up to all ready {:.0} ms (median of {:?}), idle {}",
        startup.median_ms,
        startup
            .ready_ms
            .iter()
            .map(|ms| ms.round())
            .collect::<Vec<_>>(),
        startup.idle
    );
    let mut databases = vec![(
        "SQLite".to_owned(),
        Databases::Sqlite(options.scratch.join("sqlite")),
    )];
    match &options.postgres_url {
        Some(url) => databases.push(("PostgreSQL".to_owned(), Databases::Postgres(url.clone()))),
        None => eprintln!("app suite: no --postgres-url (SHOP_BENCH_POSTGRES_URL): SQLite only"),
    }
    let mut results = Vec::new();
    for (name, database) in databases {
        results.push(
            on_database(options, cpus, &name, &database)
                .await
                .with_context(|| format!("app suite on {name}"))?,
        );
    }
    Ok(AppResults {
        startup,
        databases: results,
    })
}

async fn startup(options: &Options, cpus: &Cpus) -> anyhow::Result<Startup> {
    let mut ready_ms = Vec::new();
    let mut idle = Memory::default();
    for _ in 0..options.repetitions.max(1) {
        let databases = Databases::Sqlite(options.scratch.join("startup"));
        databases.recreate().await?;
        let (shop, took) = Shop::start(
            &options.shop_bin,
            Layout::OneProcess,
            &databases,
            cpus,
            &options.scratch,
        )
        .await?;
        ready_ms.push(took.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
        idle = shop.memory().first().map_or(idle, |(_, memory)| *memory);
    }
    Ok(Startup {
        median_ms: stats::median(&ready_ms),
        ready_ms,
        idle,
    })
}

async fn on_database(
    options: &Options,
    cpus: &Cpus,
    name: &str,
    databases: &Databases,
) -> anyhow::Result<DatabaseResults> {
    databases.recreate().await?;
    let (shop, took) = Shop::start(
        &options.shop_bin,
        Layout::ProcessPerService,
        databases,
        cpus,
        &options.scratch,
    )
    .await?;
    eprintln!(
        "app suite on {name}: a process per service, all ready in {:.0} ms",
        took.as_secs_f64() * 1000.0
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = shop.memory();
    for (service, memory) in &idle {
        eprintln!("  {service:<9} idle {memory}");
    }
    let customers = sign_up(options.order_concurrency().into_iter().max().unwrap_or(1)).await?;
    let orders = measure_orders(options, &shop, &customers).await?;
    let token = customers
        .first()
        .map(|c| c.token.as_str())
        .unwrap_or_default();
    let (calls, bff) = if options.orders_only {
        (Vec::new(), Vec::new())
    } else {
        (
            measure_calls(options, cpus, token).await?,
            bff::measure(options, cpus, token).await?,
        )
    };

    let peak = shop.memory();
    let memory = idle
        .into_iter()
        .map(|(service, memory)| {
            let hwm = peak
                .iter()
                .find(|(s, _)| *s == service)
                .map_or(0, |(_, peak)| peak.peak_kib);
            (service, memory, hwm)
        })
        .collect();
    Ok(DatabaseResults {
        database: name.to_owned(),
        memory,
        orders,
        calls,
        bff,
    })
}

async fn sign_up(count: usize) -> anyhow::Result<Vec<orders::Customer>> {
    let mut customers = Vec::with_capacity(count);
    for number in 0..count {
        customers.push(orders::Customer::sign_up(number).await?);
    }
    Ok(customers)
}

/// Orders end to end at each concurrency, a customer per worker.
async fn measure_orders(
    options: &Options,
    shop: &Shop,
    customers: &[orders::Customer],
) -> anyhow::Result<Vec<OrdersRow>> {
    let mut rows = Vec::new();
    for concurrency in options.order_concurrency() {
        let mut runs = Vec::new();
        let cpu_before = shop.cpu_ms();
        let statements_before = shop::db_statements().await?;
        for _ in 0..options.repetitions.max(1) {
            let workers = customers.get(..concurrency).context("too few customers")?;
            runs.push(orders::run(workers, options.warm_up, options.duration).await?);
        }
        let placed: u64 = runs.iter().map(|r| r.placed).sum();
        // The relays finish their batches within a tenth of a second.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let statements_per_order =
            per_order(&statements_before, shop::db_statements().await?, placed);
        let cpu_ms_per_order = shop
            .cpu_ms()
            .into_iter()
            .map(|(service, after)| {
                let before = cpu_before
                    .iter()
                    .find(|(s, _)| *s == service)
                    .map_or(0.0, |(_, ms)| *ms);
                (service, (after - before) / placed.max(1) as f64)
            })
            .collect();
        let per_sec: Vec<f64> = runs
            .iter()
            .map(|r| (r.confirmed + r.cancelled) as f64 / r.elapsed.as_secs_f64())
            .collect();
        let percentile = |q: f64| {
            stats::median(
                &runs
                    .iter()
                    .map(|r| {
                        let mut sorted = r.latencies_us.clone();
                        sorted.sort_by(f64::total_cmp);
                        stats::percentile(&sorted, q) / 1000.0
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let row = OrdersRow {
            concurrency,
            orders_per_sec: stats::median(&per_sec),
            spread_percent: stats::spread_percent(&per_sec),
            p50_ms: percentile(0.5),
            p99_ms: percentile(0.99),
            confirmed: runs.iter().map(|r| r.confirmed).sum(),
            cancelled: runs.iter().map(|r| r.cancelled).sum(),
            cpu_ms_per_order,
            statements_per_order,
        };
        eprintln!(
            "  orders c={:<3} {:>7.1} orders/s  p50 {:>6.1} ms  p99 {:>6.1} ms  ({} confirmed, {} cancelled)",
            row.concurrency,
            row.orders_per_sec,
            row.p50_ms,
            row.p99_ms,
            row.confirmed,
            row.cancelled
        );
        eprintln!(
            "          CPU per order: {}",
            cpu_per_order(&row.cpu_ms_per_order)
        );
        eprintln!(
            "          SQL statements per order: {}",
            statements_per_order_text(&row.statements_per_order)
        );
        rows.push(row);
    }
    Ok(rows)
}

/// Connect GETs with h2load: the BFF's home and the three calls it fans out
/// to (as it makes them, signed in with `token`), then the catalog's first
/// page as anyone browsing sees it.
async fn measure_calls(
    options: &Options,
    cpus: &Cpus,
    token: &str,
) -> anyhow::Result<Vec<CallRow>> {
    shop::home_is_whole(&shop::addr("gateway"), token).await?;
    let bearer = format!("Bearer {token}");
    let signed_in = || targets::headers(&[("authorization", bearer.as_str())]);
    let home_and_downstreams = [
        (
            "WebBffService/GetHome",
            "gateway",
            "/shop.bff.v1.WebBffService/GetHome",
            json!({}),
        ),
        (
            "UserService/GetMe",
            "users",
            "/shop.users.v1.UserService/GetMe",
            json!({}),
        ),
        (
            "CatalogService/ListProducts (8)",
            "catalog",
            LIST_PRODUCTS,
            json!({"pageSize": 8}),
        ),
        (
            "OrderService/ListOrders (5)",
            "orders",
            "/shop.orders.v1.OrderService/ListOrders",
            json!({"pageSize": 5}),
        ),
    ];
    let mut calls: Vec<(&str, String, HttpRequest, Vec<u32>)> = home_and_downstreams
        .into_iter()
        .map(|(call, service, path, message)| {
            let request = targets::connect_get_json(path, &message, signed_in());
            (
                call,
                shop::addr(service),
                request,
                options.call_concurrency(),
            )
        })
        .collect();
    calls.push((
        "CatalogService/ListProducts (20), anonymous",
        shop::addr("catalog"),
        targets::connect_get_json(LIST_PRODUCTS, &json!({"pageSize": 20}), Vec::new()),
        options.list_concurrency(),
    ));

    let mut rows = Vec::new();
    for (call, addr, request, concurrencies) in calls {
        for concurrency in concurrencies {
            let mut samples: Vec<Sample> = Vec::new();
            for _ in 0..options.repetitions.max(1) {
                let load = Load {
                    concurrency,
                    warm_up: options.warm_up,
                    duration: options.duration,
                };
                samples.push(
                    h2load::run(
                        &format!("http://{addr}"),
                        &request,
                        load,
                        cpus,
                        &options.scratch,
                    )
                    .await
                    .with_context(|| format!("{call} c={concurrency}"))?,
                );
            }
            let row = CallRow {
                call: call.to_owned(),
                concurrency,
                medians: Medians::of(&samples),
            };
            eprintln!(
                "  {:<44} c={:<3} {:>8.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs",
                row.call,
                row.concurrency,
                row.medians.requests_per_sec,
                row.medians.p50_us,
                row.medians.p99_us
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

/// What each service (or process) spent between `before` and `after`, per
/// order.
pub(crate) fn per_order(
    before: &[(String, f64)],
    after: Vec<(String, f64)>,
    placed: u64,
) -> Vec<(String, f64)> {
    after
        .into_iter()
        .map(|(service, count)| {
            let earlier = before
                .iter()
                .find(|(s, _)| *s == service)
                .map_or(0.0, |(_, n)| *n);
            (service, (count - earlier) / placed.max(1) as f64)
        })
        .collect()
}

/// "orders 7.10 + catalog 5.10 + payments 2.05 = 14.25".
pub fn statements_per_order_text(per_service: &[(String, f64)]) -> String {
    let total: f64 = per_service.iter().map(|(_, n)| n).sum();
    let parts: Vec<String> = per_service
        .iter()
        .filter(|(_, n)| *n > 0.0)
        .map(|(s, n)| format!("{s} {n:.2}"))
        .collect();
    format!("{} = {total:.2}", parts.join(" + "))
}

/// "users 0.40 + catalog 1.20 + ... = 5.10 ms".
pub fn cpu_per_order(per_service: &[(String, f64)]) -> String {
    let total: f64 = per_service.iter().map(|(_, ms)| ms).sum();
    let parts: Vec<String> = per_service
        .iter()
        .map(|(s, ms)| format!("{s} {ms:.2}"))
        .collect();
    format!("{} = {total:.2} ms", parts.join(" + "))
}
