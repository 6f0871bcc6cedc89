//! `just chaos`: the shop as five processes (`shop serve`), customers
//! placing and cancelling orders (and sending them twice, and retrying with
//! the same idempotency key until the shop answers), and a nemesis that
//! kills (SIGKILL) and pauses (SIGSTOP) services for a bounded time. Then
//! every order is followed to its end and the invariants are read from the
//! services' own databases and APIs ([`invariants`]). Prints the figures;
//! fails on any violation.

pub mod calls;
pub mod customers;
pub mod invariants;
mod nemesis;
pub mod session;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use shop_kit::client::PeerTarget;

use crate::{
    app_suite::shop::{Databases, Layout, Shop, addr},
    cpus::Cpus,
};
pub use nemesis::Fault;

/// A chaos run.
#[derive(Clone, Debug)]
pub struct Options {
    pub shop_bin: PathBuf,
    /// Seeds the customers' choices and the nemesis' schedule.
    pub seed: u64,
    /// How long customers place orders while the nemesis strikes.
    pub duration: Duration,
    pub customers: usize,
    pub faults: Vec<Fault>,
    /// The services the nemesis strikes.
    pub targets: Vec<&'static str>,
    /// The longest a service stays killed or paused.
    pub longest_fault: Duration,
    /// Stock each demo product starts with: low enough that some orders
    /// meet an empty shelf.
    pub stock: i32,
    /// An order not charged by then is cancelled (SHOP_ORDER_DEADLINE_SECS).
    pub order_deadline: Duration,
    /// PostgreSQL (a role that may create databases) instead of SQLite.
    pub postgres_url: Option<String>,
    /// Where the services keep their data and logs.
    pub scratch: PathBuf,
}

/// Runs it; `Ok(false)` when an invariant was violated.
pub async fn run(options: &Options) -> anyhow::Result<bool> {
    let databases = match &options.postgres_url {
        Some(url) => Databases::Postgres(url.clone()),
        None => Databases::Sqlite(options.scratch.join("data")),
    };
    databases.recreate().await?;
    let logs = options.scratch.join("logs");
    std::fs::create_dir_all(&logs)?;
    let stock = options.stock.to_string();
    let deadline = options.order_deadline.as_secs().max(1).to_string();
    eprintln!(
        "chaos: seed {}, {} s, {} customers, faults {:?} on {} (each at most {} ms), {} on {}",
        options.seed,
        options.duration.as_secs(),
        options.customers,
        options.faults,
        options.targets.join(", "),
        options.longest_fault.as_millis(),
        match databases {
            Databases::Sqlite(_) => "SQLite",
            Databases::Postgres(_) => "PostgreSQL",
        },
        logs.display(),
    );
    let (mut shop, _) = Shop::start_with(
        &options.shop_bin,
        Layout::ProcessPerService,
        &databases,
        &Cpus::unpinned(),
        &logs,
        &[
            ("SHOP_DEMO_STOCK", stock.as_str()),
            ("SHOP_ORDER_DEADLINE_SECS", deadline.as_str()),
        ],
    )
    .await
    .context("starting the shop")?;

    let started = Instant::now();
    let reach = customers::Reach::at(
        &PeerTarget::addr(addr("users").parse()?),
        &PeerTarget::addr(addr("orders").parse()?),
    )
    .await?;
    let calls = calls::Calls::new(&["orders"]);
    let crowd = customers::Crowd::start(
        options.customers,
        options.seed,
        &reach,
        calls.clone(),
        customers::Pace::Eager,
    )
    .await?;
    let strikes = nemesis::strike(&mut shop, options, started + options.duration).await?;
    eprintln!("chaos: the nemesis rests; every service is up; waiting for the customers");
    let placed = crowd.finish().await?;
    eprintln!(
        "chaos: {} orders acknowledged; following each to its end",
        placed.orders.len()
    );
    let expected = invariants::Expected {
        stock: options.stock,
        order_deadline: options.order_deadline,
    };
    let report = invariants::check(&placed, &databases, &expected, &reach).await?;
    println!("{}", nemesis::summary(&strikes));
    println!("{}", placed.summary());
    println!("{}", calls.summary());
    println!("{report}");
    println!(
        "chaos: {} in {:.0} s (seed {})",
        if report.violations.is_empty() {
            "no violation".to_owned()
        } else {
            format!("{} VIOLATIONS", report.violations.len())
        },
        started.elapsed().as_secs_f64(),
        options.seed
    );
    drop(shop);
    Ok(report.violations.is_empty())
}
