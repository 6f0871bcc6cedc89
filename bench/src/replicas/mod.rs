//! `just replicas`: the shop as replicas on one PostgreSQL and one NATS
//! JetStream (two of catalog, orders and payments on their own loopback
//! addresses, one users, one gateway), customers ordering through both
//! orders replicas, balanced by the kit's client as the services balance
//! each other. Then every replica is restarted in turn (SIGTERM: it drains,
//! exits, starts again), then one replica of each is killed (SIGKILL) and
//! started again. What must hold:
//!
//! - no customer call fails, in any phase (the kills included), and each
//!   phase has at least `--min-calls-per-phase` of them;
//! - every attempt that failed is counted, by phase and pair, whether or
//!   not a retry then answered it (every call between the services and
//!   from the customers' client, see `attempts`); one in the rolling
//!   restart is said as a finding (not yet a failure: its cause is open);
//! - no order is cancelled for want of a peer (timed out, stock lost);
//! - the invariants of `just chaos`: every order final, one per key, stock
//!   and charges conserved, every event published, the history agreeing;
//! - every event relayed once (counted on the wire), no deadlock in
//!   PostgreSQL.
//!
//! Prints the figures, and how the calls were spread over the replicas.

pub(crate) mod attempts;
pub(crate) mod otlp;
pub mod parts;
pub(crate) mod production;
pub(crate) mod topology;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context;
use futures::StreamExt;
use sea_orm::ConnectionTrait;
use shop_kit::client::PeerTarget;

use crate::{
    app_suite::shop::Databases,
    chaos::{
        calls::Calls,
        customers::{Crowd, Pace, Reach},
        invariants::{self, Expected},
    },
    dial::Dial,
};
use parts::Parts;
use topology::{Counts, Nats, Topology, addr, calls_served, peer_list};

/// A replicas run.
#[derive(Clone, Debug)]
pub struct Options {
    pub parts: Parts,
    pub customers: usize,
    /// Replicas of catalog, orders and payments.
    pub replicas: usize,
    /// Orders before the first restart.
    pub warm_up: Duration,
    /// The pause after each restart and each kill.
    pub between: Duration,
    pub stock: i32,
    pub order_deadline: Duration,
    /// How long a replica drains after SIGTERM (SHOP_DRAIN_MS).
    pub drain: Duration,
    /// Customer calls each phase must have.
    pub min_calls_per_phase: u64,
    /// Failed attempts (retried or not) tolerated during the rolling
    /// restart: a replica leaving must be left before it is gone, so none
    /// by default.
    pub tolerated_failed_attempts: u64,
}

/// What a run saw, as the verdict reads it.
#[derive(Debug, Default)]
struct Seen {
    /// Per phase: its name, the customer calls made and failed.
    calls_by_phase: Vec<(&'static str, u64, u64)>,
    /// Attempts that failed during the rolling restart, retried or not.
    failed_attempts_in_restart: f64,
    cancelled_for_want_of_a_peer: usize,
    /// Events relayed more than once while no replica was killed.
    relayed_again_unexplained: usize,
    events_on_the_wire: u64,
    events_stored: u64,
    deadlocks: i64,
}

/// Everything that must hold and did not, each said: empty when the run
/// passes.
fn verdict(seen: &Seen, options: &Options) -> Vec<String> {
    let mut broken = Vec::new();
    for (phase, made, failed) in &seen.calls_by_phase {
        if *failed > 0 {
            broken.push(format!("{failed} customer calls failed during the {phase}"));
        }
        if *made < options.min_calls_per_phase {
            broken.push(format!(
                "only {made} customer calls during the {phase} (at least {} wanted)",
                options.min_calls_per_phase
            ));
        }
    }
    if seen.failed_attempts_in_restart > options.tolerated_failed_attempts as f64 {
        broken.push(format!(
            "{:.0} attempts failed during the rolling restart (retries answered them; {} \
             tolerated, --tolerate-failed-attempts)",
            seen.failed_attempts_in_restart, options.tolerated_failed_attempts
        ));
    }
    if seen.cancelled_for_want_of_a_peer > 0 {
        broken.push(format!(
            "{} orders cancelled for want of a peer",
            seen.cancelled_for_want_of_a_peer
        ));
    }
    if seen.relayed_again_unexplained > 0 {
        broken.push(format!(
            "{} events relayed more than once with no replica killed",
            seen.relayed_again_unexplained
        ));
    }
    if seen.events_stored != seen.events_on_the_wire {
        broken.push(format!(
            "JetStream stored {} events for {} distinct ones",
            seen.events_stored, seen.events_on_the_wire
        ));
    }
    if seen.deadlocks > 0 {
        broken.push(format!("{} PostgreSQL deadlocks", seen.deadlocks));
    }
    broken
}

/// The services with replicas, in the order they are restarted.
const REPLICATED: [&str; 3] = ["catalog", "payments", "orders"];
/// The RPC service whose calls show how a service's load was spread.
const BALANCED_BY: [(&str, &str); 3] = [
    ("catalog", "shop.catalog.v1.StockService"),
    ("payments", "shop.payments.v1.OrderPaymentService"),
    ("orders", "shop.orders.v1.OrderService"),
];
const PHASES: [&str; 4] = ["warm-up", "rolling restart", "kills", "after"];

/// How many replicas of each service run, with `n` of the replicated ones.
pub(crate) fn counts_of(n: usize) -> Vec<(&'static str, usize)> {
    vec![
        ("users", 1),
        ("catalog", n),
        ("payments", n),
        ("orders", n),
        ("gateway", 1),
    ]
}

/// Runs it; `Ok(false)` when something that must hold did not.
pub async fn run(options: &Options) -> anyhow::Result<bool> {
    // Before any client takes a metric handle: the customers' own failed
    // attempts are read from it.
    let own_metrics = shop_kit::observe::metrics::Metrics::install();
    let databases = Databases::Postgres(options.parts.postgres_url.clone());
    databases.recreate().await?;
    let logs = options.parts.scratch.join("logs");
    std::fs::create_dir_all(&logs)?;
    let nats = Nats::start(
        &options.parts.nats_server,
        &options.parts.scratch.join("nats"),
        &logs,
    )
    .await?;
    let deadlocks_before = deadlocks(&options.parts.postgres_url).await?;
    let n = options.replicas.max(1);
    let counts = Counts(counts_of(n));
    eprintln!(
        "replicas: seed {}, {} customers, {n} replicas of {} on 127.0.0.2-{}, PostgreSQL, \
         {}; logs in {}",
        options.parts.seed,
        options.customers,
        REPLICATED.join(", "),
        1 + n,
        nats.url,
        logs.display()
    );
    let dial = Dial::plain();
    let mut topology = Topology::start(
        &options.parts.shop_bin,
        &dial,
        &logs,
        &databases,
        &nats.url,
        counts,
        &[
            ("SHOP_DEMO_STOCK", options.stock.to_string()),
            (
                "SHOP_ORDER_DEADLINE_SECS",
                options.order_deadline.as_secs().max(1).to_string(),
            ),
            ("SHOP_DRAIN_MS", options.drain.as_millis().to_string()),
        ],
    )
    .await
    .context("starting the replicas")?;

    let calls = Calls::new(&PHASES);
    let every_process = counts_of(n)
        .into_iter()
        .flat_map(|(service, count)| {
            (0..count).map(move |index| (format!("{service}-{index}"), addr(service, index)))
        })
        .collect();
    let attempts =
        attempts::Attempts::watch(dial.clone(), every_process, own_metrics, calls.clone());
    let relayed = EventsOnTheWire::watch(&nats.url, calls.clone()).await?;
    let reach = Reach::at(
        &peer_list("users", 1, "http").parse::<PeerTarget>()?,
        &peer_list("orders", n, "http").parse::<PeerTarget>()?,
    )
    .await?;
    let started = Instant::now();
    let crowd = Crowd::start(
        options.customers,
        options.parts.seed,
        &reach,
        calls.clone(),
        Pace::Eager,
    )
    .await?;

    tokio::time::sleep(options.warm_up).await;
    let balance = balance(&dial, n).await;

    calls.enter("rolling restart");
    let mut restarts = Vec::new();
    for service in REPLICATED {
        for index in 0..n {
            let drained = topology.stop(service, index).await?;
            let back = topology.start_again(service, index).await?;
            eprintln!(
                "replicas: {service} {index} drained and exited in {} ms, ready again in {} ms",
                drained.as_millis(),
                back.as_millis()
            );
            restarts.push((service, index, drained, back));
            tokio::time::sleep(options.between).await;
        }
    }

    calls.enter("kills");
    let mut kills = Vec::new();
    for service in REPLICATED {
        let index = n - 1;
        topology.kill(service, index).await?;
        eprintln!("replicas: {service} {index} killed (SIGKILL)");
        kills.push((service, index));
        tokio::time::sleep(options.between).await;
    }
    for (service, index) in &kills {
        topology.start_again(service, *index).await?;
    }

    calls.enter("after");
    tokio::time::sleep(options.between).await;
    let placed = crowd.finish().await?;
    eprintln!(
        "replicas: {} orders acknowledged; following each to its end",
        placed.orders.len()
    );
    let expected = Expected {
        stock: options.stock,
        order_deadline: options.order_deadline,
    };
    let report = invariants::check(&placed, &databases, &expected, &reach).await?;
    // The last events relayed after the orders ended.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (events, again) = relayed.tally();
    let stored = stream_messages(&nats.url).await?;
    let deadlocks = deadlocks(&options.parts.postgres_url).await? - deadlocks_before;

    let (failed_attempts, failing_pairs) = attempts.finish().await;
    let for_want_of_a_peer: usize = ["CANCEL_REASON_TIMED_OUT", "CANCEL_REASON_STOCK_LOST"]
        .iter()
        .filter_map(|reason| report.reasons.get(*reason))
        .sum();
    // A replica killed after publishing a batch and before marking it
    // published leaves it to be relayed again (JetStream drops the copy by
    // its message id): at least once on the wire then, never otherwise.
    let relayed_again_unexplained: usize = again
        .iter()
        .filter(|(phase, _)| !matches!(*phase, "kills" | "after"))
        .map(|(_, n)| n)
        .sum();
    let broken = verdict(
        &Seen {
            calls_by_phase: calls.by_phase(),
            failed_attempts_in_restart: failed_attempts
                .get("rolling restart")
                .copied()
                .unwrap_or(0.0),
            cancelled_for_want_of_a_peer: for_want_of_a_peer,
            relayed_again_unexplained,
            events_on_the_wire: events as u64,
            events_stored: stored,
            deadlocks,
        },
        options,
    );

    println!("{}", placed.summary());
    println!("{}", calls.summary());
    println!(
        "failed attempts, retried or not (by phase): {}",
        PHASES
            .iter()
            .map(|phase| format!(
                "{phase} {:.0}",
                failed_attempts.get(phase).copied().unwrap_or(0.0)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for pair in &failing_pairs {
        println!("  failed attempts {pair}");
    }
    for kind in calls.failed_by_kind() {
        println!("  failed calls {kind}");
    }
    for example in calls.examples() {
        println!("  failed: {example}");
    }
    println!(
        "restarts: {} (SIGTERM, drained, started again; drain to exit {}, start to ready {})",
        restarts.len(),
        spread(restarts.iter().map(|(_, _, drained, _)| *drained)),
        spread(restarts.iter().map(|(_, _, _, back)| *back)),
    );
    println!(
        "kills: {} ({})",
        kills.len(),
        kills
            .iter()
            .map(|(service, index)| format!("{service} {index}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("calls served per replica during the warm-up:");
    for line in balance {
        println!("  {line}");
    }
    let twice: Vec<String> = again
        .iter()
        .map(|(phase, n)| format!("{n} during {phase}"))
        .collect();
    println!(
        "events: {events} distinct on the wire, {stored} stored by JetStream; relayed again: {}",
        if twice.is_empty() {
            "none".to_owned()
        } else {
            twice.join(", ")
        }
    );
    println!("PostgreSQL deadlocks: {deadlocks}");
    println!("{report}");
    for violation in &broken {
        println!("  VIOLATION {violation}");
    }
    let held = report.violations.is_empty() && broken.is_empty();
    println!(
        "replicas: {} in {:.0} s (seed {})",
        if held {
            "all hold".to_owned()
        } else {
            format!("{} VIOLATIONS", report.violations.len() + broken.len())
        },
        started.elapsed().as_secs_f64(),
        options.parts.seed
    );
    drop(topology);
    drop(nats);
    Ok(held)
}

/// "min-max ms (median m)".
fn spread(durations: impl Iterator<Item = Duration>) -> String {
    let mut ms: Vec<u128> = durations.map(|d| d.as_millis()).collect();
    ms.sort_unstable();
    match (ms.first(), ms.last()) {
        (Some(low), Some(high)) => format!("{low}-{high} ms, median {}", ms[ms.len() / 2]),
        _ => "none".to_owned(),
    }
}

/// How each replicated service's calls were spread over its replicas.
async fn balance(dial: &Dial, replicas: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for (service, rpc_service) in BALANCED_BY {
        let mut served = Vec::new();
        for index in 0..replicas {
            served.push(
                calls_served(dial, addr(service, index), rpc_service)
                    .await
                    .unwrap_or(0.0),
            );
        }
        let total: f64 = served.iter().sum();
        let each: Vec<String> = served
            .iter()
            .enumerate()
            .map(|(index, calls)| {
                let share = if total > 0.0 {
                    calls / total * 100.0
                } else {
                    0.0
                };
                format!("{index}: {calls:.0} ({share:.0}%)")
            })
            .collect();
        lines.push(format!("{rpc_service}: {}", each.join(", ")));
    }
    lines
}

/// PostgreSQL's deadlocks so far in the run's databases.
async fn deadlocks(admin_url: &str) -> anyhow::Result<i64> {
    let db = sea_orm::Database::connect(admin_url).await?;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COALESCE(SUM(deadlocks), 0)::BIGINT AS n FROM pg_stat_database \
             WHERE datname LIKE 'bench\\_%'"
                .to_owned(),
        ))
        .await?
        .context("no row")?;
    let n: i64 = row.try_get("", "n")?;
    let _ = db.close().await;
    Ok(n)
}

/// Every event published, as a plain NATS subscriber sees it (JetStream
/// drops duplicate publishes from its stream, not from the wire): how
/// many times each event id went out.
struct EventsOnTheWire {
    seen: Arc<Mutex<Tally>>,
    _task: tokio::task::JoinHandle<()>,
}

/// Each event id seen, and the repeats by the phase they came in.
#[derive(Default)]
struct Tally {
    ids: HashMap<String, u32>,
    again: HashMap<&'static str, usize>,
}

impl EventsOnTheWire {
    async fn watch(nats_url: &str, calls: Arc<Calls>) -> anyhow::Result<Self> {
        let client = async_nats::connect(nats_url).await?;
        let mut messages = client.subscribe("shop.events.>").await?;
        let seen: Arc<Mutex<Tally>> = Arc::default();
        let tally = seen.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            while let Some(message) = messages.next().await {
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&message.payload)
                else {
                    continue;
                };
                if let Some(id) = event["id"].as_str() {
                    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                    let seen = tally.ids.entry(id.to_owned()).or_default();
                    *seen += 1;
                    if *seen > 1 {
                        *tally.again.entry(calls.phase()).or_default() += 1;
                    }
                }
            }
        });
        Ok(Self { seen, _task: task })
    }

    /// (distinct events, repeats by phase).
    fn tally(&self) -> (usize, Vec<(&'static str, usize)>) {
        let tally = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut again: Vec<_> = tally.again.iter().map(|(p, n)| (*p, *n)).collect();
        again.sort_unstable();
        (tally.ids.len(), again)
    }
}

/// The events the stream holds.
async fn stream_messages(nats_url: &str) -> anyhow::Result<u64> {
    let client = async_nats::connect(nats_url).await?;
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("SHOP_EVENTS")
        .await?;
    Ok(stream.info().await?.state.messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(tolerated_failed_attempts: u64) -> Options {
        Options {
            parts: Parts {
                shop_bin: "shop".into(),
                postgres_url: String::new(),
                nats_server: "nats-server".to_owned(),
                seed: 1,
                scratch: std::env::temp_dir(),
            },
            customers: 4,
            replicas: 2,
            warm_up: Duration::from_secs(1),
            between: Duration::from_secs(1),
            stock: 100,
            order_deadline: Duration::from_secs(60),
            drain: Duration::from_secs(1),
            min_calls_per_phase: 10,
            tolerated_failed_attempts,
        }
    }

    fn clean() -> Seen {
        Seen {
            calls_by_phase: PHASES.iter().map(|phase| (*phase, 40, 0)).collect(),
            events_on_the_wire: 12,
            events_stored: 12,
            ..Seen::default()
        }
    }

    #[test]
    fn a_clean_run_passes() {
        assert_eq!(verdict(&clean(), &options(0)), Vec::<String>::new());
    }

    #[test]
    fn a_failed_attempt_in_the_rolling_restart_fails_beyond_the_tolerance() {
        let seen = Seen {
            failed_attempts_in_restart: 3.0,
            ..clean()
        };
        let broken = verdict(&seen, &options(0));
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].contains("3 attempts failed during the rolling restart"));
        assert_eq!(verdict(&seen, &options(3)), Vec::<String>::new());
    }

    #[test]
    fn failed_calls_thin_phases_lost_orders_and_stray_events_each_fail() {
        let seen = Seen {
            calls_by_phase: vec![("warm-up", 40, 0), ("rolling restart", 5, 2)],
            cancelled_for_want_of_a_peer: 1,
            relayed_again_unexplained: 2,
            events_stored: 11,
            deadlocks: 1,
            ..clean()
        };
        let broken = verdict(&seen, &options(0)).join("\n");
        for said in [
            "2 customer calls failed during the rolling restart",
            "only 5 customer calls during the rolling restart",
            "1 orders cancelled for want of a peer",
            "2 events relayed more than once",
            "JetStream stored 11 events for 12",
            "1 PostgreSQL deadlocks",
        ] {
            assert!(broken.contains(said), "{said}: {broken}");
        }
    }
}
