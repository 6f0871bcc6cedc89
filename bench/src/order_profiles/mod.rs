//! `just bench orders [--profile production]`: the order path as a
//! newcomer runs it and as production runs it, measured in one run.
//!
//! - **embedded**: `shop`, every service in one process, SQLite, h2c, no
//!   traces (the README's first command);
//! - **production**: every service its own `shop serve` process on
//!   PostgreSQL (a database each) and NATS JetStream, mutual TLS between
//!   them and TLS to the client, traces sampled at 1% to a local OTLP
//!   receiver ([`Production`]); the embedded profile runs beside it, the
//!   two taking turns round by round.
//!
//! Each round starts the profile afresh, signs up `concurrency` customers
//! and has them place `orders` orders one after another (closed loop,
//! CreateOrder over gRPC, no retries: a failed call is a failed order,
//! counted from the first call after every `/readyz` said ready), then
//! follows the last orders until their sagas are over. It reports orders
//! per second, CreateOrder's p50 and p99, the CPU per order of each
//! process (each service, PostgreSQL, nats-server) and the statements per
//! order of each database as `pg_stat_statements` counts them; medians of
//! the rounds.

mod load;
mod usage;

use std::{collections::BTreeMap, time::Duration};

use shop_kit::client::PeerTarget;

use crate::{
    app_suite::{
        cpu_per_order, per_order,
        shop::{self as launched, Databases, Layout},
        statements_per_order_text,
    },
    cpus::Cpus,
    replicas::{parts::Parts, production::Production, topology::Counts},
    stats,
};
use load::{Customers, Round};

/// Which profile is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// One process, SQLite, h2c, no traces.
    Embedded,
    /// A process per service, PostgreSQL, NATS, mutual TLS, traces at 1%;
    /// the embedded profile beside it.
    Production,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Production => "production",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub profile: Profile,
    /// Orders per round.
    pub orders: usize,
    /// Customers ordering at once.
    pub concurrency: usize,
    pub rounds: usize,
    /// What the production profile runs on (its PostgreSQL, nats-server,
    /// the shop's binary, where logs go).
    pub parts: Parts,
}

/// Stock of each demo product: enough for every order of a run.
const STOCK: i32 = 1_000_000;

/// One round of one profile, measured.
#[derive(Debug)]
struct Measured {
    round: Round,
    cpu_per_order: Vec<(String, f64)>,
    statements_per_order: Result<Vec<(String, f64)>, String>,
}

/// Runs it; `Ok(false)` when an order failed.
pub async fn run(options: &Options) -> anyhow::Result<bool> {
    let profiles: &[Profile] = match options.profile {
        Profile::Embedded => &[Profile::Embedded],
        Profile::Production => &[Profile::Embedded, Profile::Production],
    };
    let mut measured: BTreeMap<&'static str, Vec<Measured>> = BTreeMap::new();
    for round in 1..=options.rounds.max(1) {
        for profile in profiles {
            let m = match profile {
                Profile::Embedded => embedded(options).await?,
                Profile::Production => production(options).await?,
            };
            eprintln!(
                "orders: round {round}, {}: {:.0} orders/s placed, {:.0} done, p50 {:.1} ms, \
                 p99 {:.1} ms, {} failed; the last sagas over {:.0} ms after the last order",
                profile.name(),
                m.round.placed as f64 / m.round.elapsed.as_secs_f64(),
                done_per_sec(&m.round),
                percentile(&m.round, 0.5),
                percentile(&m.round, 0.99),
                m.round.failed_count(),
                m.round.settled_after.as_secs_f64() * 1000.0
            );
            measured.entry(profile.name()).or_default().push(m);
        }
    }
    print_report(options, profiles, &measured);
    Ok(measured
        .values()
        .flatten()
        .all(|m| m.round.failed_count() == 0))
}

/// The embedded shop on fresh SQLite files.
async fn embedded(options: &Options) -> anyhow::Result<Measured> {
    let databases = Databases::Sqlite(options.parts.scratch.join("embedded"));
    databases.recreate().await?;
    let logs = options.parts.scratch.join("logs");
    std::fs::create_dir_all(&logs)?;
    let (shop, _) = launched::Shop::start_with(
        &options.parts.shop_bin,
        Layout::OneProcess,
        &databases,
        &Cpus::unpinned(),
        &logs,
        &[],
    )
    .await?;
    let target =
        |service: &str| format!("http://{}", launched::addr(service)).parse::<PeerTarget>();
    let customers =
        Customers::sign_up(&target("users")?, &target("orders")?, options.concurrency).await?;
    let before = named_shop(shop.cpu_ms());
    let round = customers.order(options.orders).await?;
    let cpu_per_order = per_order(&before, named_shop(shop.cpu_ms()), round.placed as u64);
    shop.stop().await?;
    Ok(Measured {
        round,
        cpu_per_order,
        statements_per_order: Err("SQLite".to_owned()),
    })
}

/// The one process's CPU, named `shop`.
fn named_shop(cpu: Vec<(String, f64)>) -> Vec<(String, f64)> {
    cpu.into_iter()
        .map(|(_, ms)| ("shop".to_owned(), ms))
        .collect()
}

/// The production set-up with one process per service.
async fn production(options: &Options) -> anyhow::Result<Measured> {
    let counts = Counts(
        ["users", "catalog", "payments", "orders", "gateway"]
            .into_iter()
            .map(|service| (service, 1))
            .collect(),
    );
    let production = Production::start(&options.parts, counts, STOCK).await?;
    let customers = Customers::sign_up(
        &production.target("users")?,
        &production.target("orders")?,
        options.concurrency,
    )
    .await?;
    let processes = production.processes();
    let cpu = || {
        let mut cpu = usage::cpu_ms(&processes);
        cpu.push((usage::POSTGRESQL.to_owned(), usage::postgresql_cpu_ms()));
        cpu
    };
    let admin = &options.parts.postgres_url;
    let (cpu_before, statements_before) = (cpu(), usage::statements(admin).await);
    let round = customers.order(options.orders).await?;
    // The relays publish what the last sagas wrote within moments.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu_per_order = per_order(&cpu_before, cpu(), round.placed as u64);
    let statements_per_order = match (statements_before, usage::statements(admin).await) {
        (Ok(before), Ok(after)) => Ok(per_order(&before, after, round.placed as u64)),
        (Err(why), _) | (_, Err(why)) => Err(why),
    };
    Ok(Measured {
        round,
        cpu_per_order,
        statements_per_order,
    })
}

/// Orders taken through their sagas per second: from the first call to
/// the last saga over.
fn done_per_sec(round: &Round) -> f64 {
    round.placed as f64 / (round.elapsed + round.settled_after).as_secs_f64()
}

fn percentile(round: &Round, q: f64) -> f64 {
    let mut sorted = round.latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    stats::percentile(&sorted, q)
}

/// The median over rounds of each name's value.
fn medians(per_round: &[&Vec<(String, f64)>]) -> Vec<(String, f64)> {
    let mut names: Vec<String> = Vec::new();
    for round in per_round {
        for (name, _) in round.iter() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let values: Vec<f64> = per_round
                .iter()
                .filter_map(|round| round.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
                .collect();
            (name, stats::median(&values))
        })
        .collect()
}

fn print_report(
    options: &Options,
    profiles: &[Profile],
    measured: &BTreeMap<&'static str, Vec<Measured>>,
) {
    println!(
        "\nOrders: {} customers at once, {} orders a round, {} round(s) each; medians, \
         (lowest-highest) of orders/s done (placed and through their sagas)\n",
        options.concurrency,
        options.orders,
        options.rounds.max(1)
    );
    println!(
        "| profile | orders/s | CreateOrder p50 / p99 ms | CPU ms per order | statements per order | failed |"
    );
    println!("|---|---:|---:|---|---|---:|");
    for profile in profiles {
        let Some(rounds) = measured.get(profile.name()) else {
            continue;
        };
        let rates: Vec<f64> = rounds.iter().map(|m| done_per_sec(&m.round)).collect();
        let (lowest, highest) = rates
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        let p = |q| {
            stats::median(
                &rounds
                    .iter()
                    .map(|m| percentile(&m.round, q))
                    .collect::<Vec<_>>(),
            )
        };
        let cpu = medians(&rounds.iter().map(|m| &m.cpu_per_order).collect::<Vec<_>>());
        let statements: Vec<&Vec<(String, f64)>> = rounds
            .iter()
            .filter_map(|m| m.statements_per_order.as_ref().ok())
            .collect();
        let statements_text = if statements.is_empty() {
            rounds
                .first()
                .and_then(|m| m.statements_per_order.as_ref().err())
                .map_or_else(String::new, |why| format!("— ({why})"))
        } else {
            statements_per_order_text(&medians(&statements))
        };
        let failed: usize = rounds.iter().map(|m| m.round.failed_count()).sum();
        println!(
            "| {} | {:.0} ({lowest:.0}-{highest:.0}) | {:.1} / {:.1} | {} | {statements_text} | {failed} |",
            profile.name(),
            stats::median(&rates),
            p(0.5),
            p(0.99),
            cpu_per_order(&cpu),
        );
    }
    for profile in profiles {
        for m in measured.get(profile.name()).into_iter().flatten() {
            for (reason, n) in &m.round.failed {
                println!("{}: {n} failed: {reason}", profile.name());
            }
        }
    }
}
