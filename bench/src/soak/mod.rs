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
//! answers); then the soak offers 80% of it (or the rates given, to offer
//! two builds the same): customers paced, visitors at a fixed rate (open
//! loop). Every so often it looks at the calls (per
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
//! With `--freeze-database`, PostgreSQL is stopped now and then while the
//! load is held ([`freezes`]): the stall of every commit at once that a
//! slow flush of the disk causes.

mod freezes;
mod pauses;
mod plot;
mod report;
mod timeline;
mod visitors;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    chaos::{
        calls::Calls,
        customers::{Crowd, Pace, Placed, Reach},
        invariants::{self, Expected},
    },
    overload::load,
    replicas::{
        attempts::Attempts,
        counts_of,
        parts::Parts,
        production::Production,
        topology::{Counts, addr},
    },
};
use timeline::{Seen, Timeline};
use visitors::{Addresses, Visitors};

/// A soak.
#[derive(Clone, Debug)]
pub struct Options {
    pub parts: Parts,
    /// How long the load is held (after the peak is measured).
    pub duration: Duration,
    /// Customers ordering over gRPC.
    pub customers: usize,
    /// Visitors signed up; as many call at once while the peak is measured.
    pub visitors: usize,
    /// How long the peak is measured.
    pub peak: Duration,
    /// The share of the peak offered (0.8)...
    pub share: f64,
    /// ...unless these (orders, visits) a second are held instead.
    pub hold: Option<(f64, f64)>,
    /// How often the timeline looks.
    pub every: Duration,
    /// PostgreSQL frozen for `.1` every `.0` while the load is held (see
    /// [`freezes`]).
    pub freeze_database: Option<(Duration, Duration)>,
    pub stock: i32,
    /// Where `soak.html` and `soak.csv` go.
    pub out: PathBuf,
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

/// The shop under soak and what watches it.
struct Shop {
    production: Production,
    reach: Reach,
    at: Addresses,
    calls: Arc<Calls>,
    attempts: Attempts,
    /// Each process's name and pid (nats-server's too).
    processes: Vec<(String, u32)>,
}

impl Shop {
    /// The production set-up with every replica ready; the customers' way
    /// in; the watch on every process's failed attempts.
    async fn start(options: &Options) -> anyhow::Result<Self> {
        // Before any client takes a metric handle: the customers' own
        // failed attempts are read from it.
        let own_metrics = shop_kit::observe::metrics::Metrics::install();
        let production = Production::start(&options.parts, counts(), options.stock).await?;
        eprintln!(
            "soak: seed {}, {} customers (gRPC) and {} visitors (Connect, gRPC-Web, REST), \
             {REPLICAS} replicas of catalog, payments, orders; PostgreSQL, {}, mutual TLS, \
             traces at 1% to {}; logs in {}",
            options.parts.seed,
            options.customers,
            options.visitors,
            production.nats.url,
            production.sink.endpoint,
            production.logs.display()
        );
        let calls = Calls::timed(&PHASES);
        let processes = production.processes();
        let attempts = Attempts::watch(
            production.dial.clone(),
            production.replicas(),
            own_metrics,
            calls.clone(),
        );
        let reach = Reach::at(&production.target("users")?, &production.target("orders")?).await?;
        let at = Addresses {
            users: addr("users", 0),
            catalog: (0..REPLICAS).map(|i| addr("catalog", i)).collect(),
            orders: (0..REPLICAS).map(|i| addr("orders", i)).collect(),
            gateway: addr("gateway", 0),
        };
        Ok(Self {
            production,
            reach,
            at,
            calls,
            attempts,
            processes,
        })
    }
}

/// Runs it; `Ok(false)` when something that must hold did not.
pub async fn run(options: &Options) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&options.out)?;
    let shop = Shop::start(options).await?;
    let (visitors, visitors_orders) = Visitors::sign_up(
        shop.production.dial.clone(),
        shop.reach.users(),
        shop.at.clone(),
        options.visitors,
        options.parts.seed,
        shop.calls.clone(),
    )
    .await?;
    let (peak, mut placed) = measure_peak(options, &shop, &visitors).await?;
    let offered = options.hold.unwrap_or((
        peak.orders_per_second * options.share,
        peak.visits_per_second * options.share,
    ));
    let held_as = held_as(options);
    eprintln!(
        "soak: peak {:.0} orders/s with {:.0} visits/s; holding {held_as} ({:.0} orders/s, \
         {:.0} visits/s) for {} s",
        peak.orders_per_second,
        peak.visits_per_second,
        offered.0,
        offered.1,
        options.duration.as_secs()
    );
    let held = hold(options, &shop, visitors, offered).await?;
    placed.absorb(held.placed);
    placed.orders.extend(visitors_orders);
    eprintln!(
        "soak: {} orders acknowledged; following each to its end",
        placed.orders.len()
    );
    let invariants = invariants::check(
        &placed,
        &shop.production.databases,
        &Expected {
            stock: options.stock,
            order_deadline: Duration::from_secs(60),
        },
        &shop.reach,
    )
    .await?;
    let (failed_attempts, failing_pairs) = shop.attempts.finish().await;
    let outcome = report::Outcome {
        seed: options.parts.seed,
        held_as,
        peak,
        offered,
        soak_seconds: held.seconds,
        judge_drift: options.duration >= JUDGE_DRIFT_FROM,
        placed: &placed,
        calls: &shop.calls,
        seen: &held.seen,
        failed_attempts: &failed_attempts,
        failing_pairs: &failing_pairs,
        traces: shop.production.sink.received(),
        not_sent: held.not_sent,
        invariants: &invariants,
    };
    let (summary, all_hold) = outcome.verdict();
    println!("{summary}");
    let html = options.out.join("soak.html");
    std::fs::write(
        &html,
        plot::page("connect-shop soak", &summary, &held.seen.points),
    )?;
    let csv = options.out.join("soak.csv");
    std::fs::write(&csv, report::table(&held.seen.points))?;
    println!(
        "soak: the plot is {}, the numbers {}",
        html.display(),
        csv.display()
    );
    Ok(all_hold)
}

/// How the held rates were chosen, for the reader.
fn held_as(options: &Options) -> String {
    match options.hold {
        Some(_) => "the rates given by --hold".to_owned(),
        None => format!("{:.0}% of it", options.share * 100.0),
    }
}

/// The peak of the mix: every customer and visitor as fast as the shop
/// answers, for `options.peak`; and the orders placed meanwhile.
async fn measure_peak(
    options: &Options,
    shop: &Shop,
    visitors: &Arc<Visitors>,
) -> anyhow::Result<(report::Peak, Placed)> {
    let crowd = Crowd::start(
        options.customers,
        options.parts.seed,
        &shop.reach,
        shop.calls.clone(),
        Pace::Eager,
    )
    .await?;
    let visits = load::closed(visitors.clone(), options.visitors as u64, options.peak).await;
    let placed = crowd.finish().await?;
    let peak = report::Peak {
        orders_per_second: placed.orders.len() as f64 / options.peak.as_secs_f64(),
        visits_per_second: visits.samples.len() as f64 / visits.elapsed.as_secs_f64(),
    };
    Ok((peak, placed))
}

/// What holding the load gave.
struct Held {
    placed: Placed,
    seen: Seen,
    seconds: f64,
    not_sent: u64,
}

/// `offered` (orders, visits a second) for `options.duration`: the
/// customers paced, the visitors at a fixed rate; the timeline meanwhile.
async fn hold(
    options: &Options,
    shop: &Shop,
    visitors: Arc<Visitors>,
    offered: (f64, f64),
) -> anyhow::Result<Held> {
    shop.calls.enter("soak");
    let timeline = Timeline::start(
        options.every,
        shop.processes.clone(),
        shop.calls.clone(),
        &options.parts.postgres_url,
    )
    .await?;
    let started = Instant::now();
    let per_customer = Duration::from_secs_f64(options.customers as f64 / offered.0.max(0.1));
    let crowd = Crowd::start(
        options.customers,
        options.parts.seed.wrapping_add(1),
        &shop.reach,
        shop.calls.clone(),
        Pace::Every(per_customer),
    )
    .await?;
    let freezes = match options.freeze_database {
        Some((every, hold)) => Some(freezes::Freezes::start(every, hold).await?),
        None => None,
    };
    let progress = tokio::spawn(say_progress(options.duration, shop.calls.clone()));
    let run = load::open_with(visitors, offered.1, options.duration, 1024, |_| {}).await;
    progress.abort();
    if let Some(freezes) = freezes {
        eprintln!("soak: {}", freezes.finish().await);
    }
    let placed = crowd.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Held {
        placed,
        seen: timeline.finish().await,
        seconds,
        not_sent: run.not_sent,
    })
}

/// `shop certs`: a CA and each service's certificates, naming the
/// replicas' loopback addresses too.
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
