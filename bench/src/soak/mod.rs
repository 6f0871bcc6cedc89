//! `just soak [DURATION]`: the production set-up of `just replicas` (two of
//! catalog, orders and payments, one users and one gateway, on PostgreSQL
//! and NATS JetStream) with mutual TLS between the services, TLS to the
//! clients and traces sampled at 1% to an OTLP receiver, held at a share
//! (80%) of its measured peak for a long time by a mix of clients:
//!
//! - customers over gRPC (the kit's client, balanced): sign up, order one
//!   to three products, sometimes twice with the same key, sometimes
//!   cancel (the crowd of `just chaos`, paced);
//! - visitors over Connect (GET, POST, streaming), gRPC-Web and REST:
//!   browse, look at a product, the web home, watch their order, sign in
//!   again ([`visitors`]).
//!
//! First the peak of that mix is measured (both as fast as the shop
//! answers); then the soak offers 80% of it: customers paced, visitors at
//! a fixed rate (open loop). Every so often it looks at the calls (per
//! second, failed, p99), each process's memory and file descriptors and
//! each database's connections ([`timeline`]). What must hold:
//!
//! - no call fails, and no attempt fails behind a retry either (nothing
//!   is restarted or killed here);
//! - memory, file descriptors and database connections flat: each
//!   process's (each database's) median in the last tenth of the run at
//!   most 5% above its median in the second tenth, after the warm-up (for
//!   counts, also more than one above), judged on runs of 2 minutes or
//!   more; nats-server's memory is shown, not judged (it holds the stream,
//!   bounded by the stream's limits), nor a database's connections growing
//!   within its pools' bound (16 per process);
//! - the outboxes drained and the invariants of `just chaos` at the end.
//!
//! Writes `soak.html` (the plot, self-contained) and `soak.csv` beside.

mod otlp;
mod plot;
mod timeline;
mod visitors;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use shop_kit::{client::PeerTarget, db::POSTGRES_POOL_MAX, tls::ClientTls};

use crate::{
    app_suite::shop::Databases,
    chaos::{
        customers::{Calls, Crowd, Pace, Reach},
        invariants::{self, Expected},
    },
    dial::Dial,
    overload::load,
    replicas::{
        attempts::Attempts,
        counts_of,
        topology::{Counts, Nats, Topology, addr, peer_list},
    },
};
use timeline::{Point, Timeline, drift};
use visitors::{Addresses, Visitors};

/// A soak.
#[derive(Clone, Debug)]
pub struct Options {
    pub shop_bin: PathBuf,
    /// A PostgreSQL role that may create databases.
    pub postgres_url: String,
    pub nats_server: String,
    pub seed: u64,
    /// How long the load is held (after the peak is measured).
    pub duration: Duration,
    /// Customers ordering over gRPC.
    pub customers: usize,
    /// Visitors signed up; as many call at once while the peak is measured.
    pub visitors: usize,
    /// How long the peak is measured.
    pub peak: Duration,
    /// The share of the peak offered (0.8).
    pub share: f64,
    /// How often the timeline looks.
    pub every: Duration,
    pub stock: i32,
    /// Where `soak.html` and `soak.csv` go.
    pub out: PathBuf,
    /// Where the services keep their logs, certificates (and NATS its store).
    pub scratch: PathBuf,
}

const PHASES: [&str; 2] = ["peak", "soak"];
/// Drift is judged on runs this long or longer.
const JUDGE_DRIFT_FROM: Duration = Duration::from_secs(120);
const DRIFT_PERCENT: f64 = 5.0;
const REPLICAS: usize = 2;
/// The broker's name on the timeline.
const NATS: &str = "nats-server";

fn counts() -> Counts {
    Counts(counts_of(REPLICAS))
}

/// Runs it; `Ok(false)` when something that must hold did not.
pub async fn run(options: &Options) -> anyhow::Result<bool> {
    let own_metrics = shop_kit::observe::metrics::Metrics::install();
    let databases = Databases::Postgres(options.postgres_url.clone());
    databases.recreate().await?;
    let logs = options.scratch.join("logs");
    std::fs::create_dir_all(&logs)?;
    std::fs::create_dir_all(&options.out)?;
    let certs = write_certs(options).await?;
    let ca = certs.join("ca.pem");
    let nats = Nats::start(&options.nats_server, &options.scratch.join("nats"), &logs).await?;
    let sink = otlp::Sink::start().await?;
    eprintln!(
        "soak: seed {}, {} customers (gRPC) and {} visitors (Connect, gRPC-Web, REST), \
         {REPLICAS} replicas of catalog, payments, orders; PostgreSQL, {}, mutual TLS, \
         traces at 1% to {}; logs in {}",
        options.seed,
        options.customers,
        options.visitors,
        nats.url,
        sink.endpoint,
        logs.display()
    );
    let dial = Dial::tls(&ca)?;
    let topology = Topology::start(
        &options.shop_bin,
        &dial,
        &logs,
        &databases,
        &nats.url,
        counts(),
        &[
            ("SHOP_TLS_DIR", certs.display().to_string()),
            ("SHOP_DEMO_STOCK", options.stock.to_string()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".to_owned()),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01".to_owned()),
        ],
    )
    .await
    .context("starting the replicas")?;

    let calls = Calls::timed(&PHASES);
    let mut processes = topology.pids();
    processes.extend(nats.pid().map(|pid| (NATS.to_owned(), pid)));
    let every_process = counts()
        .0
        .iter()
        .flat_map(|(service, n)| {
            (0..*n).map(move |index| (format!("{service}-{index}"), addr(service, index)))
        })
        .collect();
    let attempts = Attempts::watch(dial.clone(), every_process, own_metrics, calls.clone());
    let client_tls = Some(ClientTls::load(ca.clone(), None)?);
    let reach = Reach::at(
        &peer_list("users", 1, "https")
            .parse::<PeerTarget>()?
            .with_tls(client_tls.clone()),
        &peer_list("orders", REPLICAS, "https")
            .parse::<PeerTarget>()?
            .with_tls(client_tls),
    )
    .await?;
    let at = Addresses {
        users: addr("users", 0),
        catalog: (0..REPLICAS).map(|i| addr("catalog", i)).collect(),
        orders: (0..REPLICAS).map(|i| addr("orders", i)).collect(),
        gateway: addr("gateway", 0),
    };
    let (visitors, visitors_orders) = Visitors::sign_up(
        dial.clone(),
        at,
        options.visitors.max(1),
        options.seed,
        calls.clone(),
    )
    .await?;

    // The peak of the mix: everyone as fast as the shop answers.
    let crowd = Crowd::start(
        options.customers,
        options.seed,
        &reach,
        calls.clone(),
        Pace::Eager,
    )
    .await?;
    let visits = load::closed(visitors.clone(), options.visitors as u64, options.peak).await;
    let mut placed = crowd.finish().await?;
    let orders_per_second = placed.orders.len() as f64 / options.peak.as_secs_f64();
    let visits_per_second = visits.samples.len() as f64 / visits.elapsed.as_secs_f64();
    let (order_rate, visit_rate) = (
        orders_per_second * options.share,
        visits_per_second * options.share,
    );
    eprintln!(
        "soak: peak {orders_per_second:.0} orders/s with {visits_per_second:.0} visits/s; \
         holding {:.0}% of it ({order_rate:.0} orders/s, {visit_rate:.0} visits/s) for {} s",
        options.share * 100.0,
        options.duration.as_secs()
    );

    calls.enter("soak");
    let timeline = Timeline::start(
        options.every,
        processes,
        calls.clone(),
        &options.postgres_url,
    )
    .await?;
    let soak_started = Instant::now();
    let per_customer = Duration::from_secs_f64(options.customers as f64 / order_rate.max(0.1));
    let crowd = Crowd::start(
        options.customers,
        options.seed.wrapping_add(1),
        &reach,
        calls.clone(),
        Pace::Every(per_customer),
    )
    .await?;
    let progress = tokio::spawn(say_progress(options.duration, calls.clone()));
    let offered =
        load::open_with(visitors.clone(), visit_rate, options.duration, 1024, |_| {}).await;
    progress.abort();
    placed.absorb(crowd.finish().await?);
    let soak_seconds = soak_started.elapsed().as_secs_f64();
    let seen = timeline.finish().await;
    let points = seen.points;
    placed.orders.extend(visitors_orders);
    eprintln!(
        "soak: {} orders acknowledged; following each to its end",
        placed.orders.len()
    );
    let report = invariants::check(
        &placed,
        &databases,
        &Expected {
            stock: options.stock,
            order_deadline: Duration::from_secs(60),
        },
        &reach,
    )
    .await?;
    let (failed_attempts, failing_pairs) = attempts.finish().await;
    let (batches, bytes) = sink.received();

    let mut broken = Vec::new();
    for (phase, _, failed) in calls.by_phase() {
        if failed > 0 {
            broken.push(format!("{failed} calls failed during the {phase}"));
        }
    }
    for phase in PHASES {
        let failed = failed_attempts.get(phase).copied().unwrap_or(0.0);
        if failed > 0.0 {
            broken.push(format!(
                "{failed:.0} attempts failed during the {phase} (retried or not)"
            ));
        }
    }
    if offered.not_sent > 0 {
        broken.push(format!(
            "{} visits not sent: 1024 already in flight",
            offered.not_sent
        ));
    }
    let judged = options.duration >= JUDGE_DRIFT_FROM;
    let drifts = [
        (
            "RSS (MiB)",
            drift(&points, soak_seconds, |p| &p.rss_mib),
            false,
        ),
        ("open fds", drift(&points, soak_seconds, |p| &p.fds), true),
        (
            "PostgreSQL connections",
            drift(&points, soak_seconds, |p| &p.db_connections),
            true,
        ),
    ];
    let mut summary = String::new();
    let _ = writeln!(summary, "{}", placed.summary());
    let _ = writeln!(summary, "{}", calls.summary());
    let _ = writeln!(
        summary,
        "peak: {orders_per_second:.0} orders/s and {visits_per_second:.0} visits/s; soak at {:.0}%: \
         {order_rate:.0} orders/s, {visit_rate:.0} visits/s offered, {} s",
        options.share * 100.0,
        soak_seconds.round()
    );
    let soak_points: Vec<&Point> = points.iter().filter(|p| p.calls_per_second > 0.0).collect();
    let mut p99s: Vec<f64> = soak_points.iter().map(|p| p.p99_ms).collect();
    p99s.sort_by(f64::total_cmp);
    let _ = writeln!(
        summary,
        "calls/s per interval: median {:.0}; p99 per interval: median {:.1} ms, worst {:.1} ms",
        median_of(soak_points.iter().map(|p| p.calls_per_second)),
        median_of(p99s.iter().copied()),
        p99s.last().copied().unwrap_or(0.0)
    );
    let _ = writeln!(
        summary,
        "CPU per process, mean cores over the soak: {}",
        mean_cpu(&points)
            .iter()
            .map(|(name, cores)| format!("{name} {cores:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(summary, "calls by kind (the soak): count, p50, p99");
    for (kind, latencies) in &seen.by_kind {
        let _ = writeln!(
            summary,
            "  {kind:<28} {:>9} {:>8.1} ms {:>8.1} ms",
            latencies.count(),
            latencies.quantile(0.5),
            latencies.quantile(0.99)
        );
    }
    let _ = writeln!(
        summary,
        "failed attempts, retried or not: {}",
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
        let _ = writeln!(summary, "  failed attempts {pair}");
    }
    for example in calls.examples() {
        let _ = writeln!(summary, "  failed: {example}");
    }
    let _ = writeln!(
        summary,
        "traces: {batches} OTLP batches ({} KiB) received",
        bytes / 1024
    );
    let _ = writeln!(
        summary,
        "drift from the second tenth to the last{}:",
        if judged {
            ""
        } else {
            " (not judged: the run is shorter than 2 minutes)"
        }
    );
    for (what, moved, counted) in &drifts {
        for (name, second, last, change) in moved {
            let too_much = *change > DRIFT_PERCENT && (!counted || last - second > 1.0);
            let judgement = judge(name, *last, too_much);
            let _ = writeln!(
                summary,
                "  {what:<24} {name:<16} {second:>8.1} -> {last:>8.1} ({change:+.1}%){}",
                match &judgement {
                    Judgement::Flat => String::new(),
                    Judgement::Drifts => "  DRIFTS".to_owned(),
                    Judgement::NotJudged(why) => format!("  (not judged: {why})"),
                }
            );
            if judged && judgement == Judgement::Drifts {
                broken.push(format!(
                    "{what} of {name} moved {change:+.1}% ({second:.1} -> {last:.1})"
                ));
            }
        }
    }
    let _ = writeln!(summary, "{}", report.to_string().trim_end());
    for violation in &broken {
        let _ = writeln!(summary, "  VIOLATION {violation}");
    }
    let held = report.violations.is_empty() && broken.is_empty();
    let verdict = format!(
        "soak: {} in {:.0} s (seed {})",
        if held {
            "all hold".to_owned()
        } else {
            format!("{} VIOLATIONS", report.violations.len() + broken.len())
        },
        soak_seconds,
        options.seed
    );
    let _ = writeln!(summary, "{verdict}");
    println!("{summary}");
    let html = options.out.join("soak.html");
    std::fs::write(&html, plot::page("connect-shop soak", &summary, &points))?;
    let csv = options.out.join("soak.csv");
    std::fs::write(&csv, table(&points))?;
    println!(
        "soak: the plot is {}, the numbers {}",
        html.display(),
        csv.display()
    );
    drop(topology);
    drop(nats);
    Ok(held)
}

#[derive(Debug, PartialEq)]
enum Judgement {
    Flat,
    Drifts,
    NotJudged(String),
}

/// What a growth of `name`'s quantity (to `last`) says. Growth is what
/// leaks; the broker's memory is its store of events, bounded by the
/// stream's limits, not the shop's; a database's connections growing
/// toward its pools' bound (each process's pool opens connections as calls
/// need them, up to the kit's maximum) are a pool reaching its working
/// size after a burst, not a leak.
fn judge(name: &str, last: f64, grew: bool) -> Judgement {
    if !grew {
        return Judgement::Flat;
    }
    if name == NATS {
        return Judgement::NotJudged("the broker's store".to_owned());
    }
    let pools = name
        .strip_prefix("bench_")
        .map(|service| counts().of(service) as f64 * f64::from(POSTGRES_POOL_MAX));
    match pools {
        Some(bound) if last <= bound => {
            Judgement::NotJudged(format!("within its pools' bound of {bound:.0}"))
        }
        _ => Judgement::Drifts,
    }
}

/// `shop certs`: a CA and each service's certificates, naming the
/// replicas' loopback addresses too.
async fn write_certs(options: &Options) -> anyhow::Result<PathBuf> {
    let certs = options.scratch.join("certs");
    let mut command = tokio::process::Command::new(&options.shop_bin);
    command.arg("certs").arg(&certs);
    for index in 0..REPLICAS {
        command.args(["--name", &addr("catalog", index).ip().to_string()]);
    }
    let written = command
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .with_context(|| format!("running {} certs", options.shop_bin.display()))?;
    anyhow::ensure!(written.success(), "shop certs failed ({written})");
    Ok(certs)
}

/// Every half minute (or tenth of the run if shorter): how far it is.
async fn say_progress(duration: Duration, calls: Arc<Calls>) {
    let every = (duration / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let started = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        eprintln!(
            "soak: {:.0} of {} s; {}",
            started.elapsed().as_secs_f64(),
            duration.as_secs(),
            calls.summary()
        );
    }
}

/// Each process's CPU, in cores, averaged over every point.
fn mean_cpu(points: &[Point]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for point in points {
        for (name, cores) in &point.cpu_cores {
            let sum = sums.entry(name.clone()).or_default();
            *sum = (sum.0 + cores, sum.1 + 1.0);
        }
    }
    sums.into_iter()
        .map(|(name, (sum, n))| (name, sum / n))
        .collect()
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    crate::stats::median(&values)
}

/// The points as CSV: one row per look, a column per quantity and name.
fn table(points: &[Point]) -> String {
    let names = |pick: fn(&Point) -> &BTreeMap<String, f64>| {
        let mut all: Vec<String> = points
            .iter()
            .flat_map(|p| pick(p).keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    };
    let cpu = names(|p| &p.cpu_cores);
    let rss = names(|p| &p.rss_mib);
    let fds = names(|p| &p.fds);
    let dbs = names(|p| &p.db_connections);
    let mut csv = String::from("seconds,calls_per_second,failed,p99_ms");
    for name in &cpu {
        let _ = write!(csv, ",cpu_cores:{name}");
    }
    for name in &rss {
        let _ = write!(csv, ",rss_mib:{name}");
    }
    for name in &fds {
        let _ = write!(csv, ",fds:{name}");
    }
    for name in &dbs {
        let _ = write!(csv, ",db_connections:{name}");
    }
    csv.push('\n');
    for point in points {
        let _ = write!(
            csv,
            "{:.1},{:.1},{},{:.2}",
            point.at, point.calls_per_second, point.failed, point.p99_ms
        );
        for (names, values) in [
            (&cpu, &point.cpu_cores),
            (&rss, &point.rss_mib),
            (&fds, &point.fds),
            (&dbs, &point.db_connections),
        ] {
            for name in names {
                match values.get(name) {
                    Some(value) => {
                        let _ = write!(csv, ",{value:.1}");
                    }
                    None => csv.push(','),
                }
            }
        }
        csv.push('\n');
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_judged_unless_it_is_the_brokers_store_or_a_pool_within_its_bound() {
        assert_eq!(judge("orders-0", 50.0, false), Judgement::Flat);
        assert_eq!(judge("orders-0", 50.0, true), Judgement::Drifts);
        assert!(matches!(judge(NATS, 90.0, true), Judgement::NotJudged(_)));
        // One users process: 16 connections at most; two catalogs: 32.
        assert!(matches!(
            judge("bench_users", 16.0, true),
            Judgement::NotJudged(_)
        ));
        assert_eq!(judge("bench_users", 17.0, true), Judgement::Drifts);
        assert!(matches!(
            judge("bench_catalog", 32.0, true),
            Judgement::NotJudged(_)
        ));
    }
}
