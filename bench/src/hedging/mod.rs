//! `just hedging`: what hedging and the retry budget do for the catalog's
//! reads when one of its two endpoints is slow or failing. The embedded
//! shop runs as it ships; the client under test is the kit's client stack
//! as the gateway and orders use it (each method called as the contract
//! says, or as a service config replaces it), calling GetProduct and
//! BatchGetProducts in turn at a fixed rate (open loop) through two
//! endpoints of the catalog: two proxies on their own ports in this
//! process, one healthy, one faulty (400 ms slower, or failing every other
//! call). Each proxy counts the calls it got, so the extra calls that
//! hedges and retries made are counted, not assumed.

mod endpoint;

use std::{path::PathBuf, sync::Arc, time::Duration};

use shop_kit::client::{Calls, Peer, PeerPolicy, PeerTarget};
use shop_proto::shop::catalog::v1::{
    BatchGetProductsRequest, GetProductRequest, catalog_service_client::CatalogServiceClient,
};

use crate::{
    app_suite::shop::{Shop, addr},
    chaos::customers::PRODUCTS,
    overload::load::{self, Call, Outcome},
    stats::percentile,
};
use endpoint::{Endpoint, Fault};

pub struct Options {
    pub shop_bin: PathBuf,
    /// Each case's length.
    pub seconds: u64,
    /// Calls started a second.
    pub rate: f64,
    /// How much slower the slow endpoint answers.
    pub slow_by: Duration,
    pub scratch: PathBuf,
}

/// The service config that takes hedging away from the two reads (retries
/// instead, as before hedging was declared): the run to compare with.
const NOT_HEDGED: &str = r#"{"methodConfig": [{
    "name": [{"service": "shop.catalog.v1.CatalogService", "method": "GetProduct"},
             {"service": "shop.catalog.v1.CatalogService", "method": "BatchGetProducts"}],
    "timeout": "5s",
    "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "1s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]}
}]}"#;

/// The hedging delay the contract declares for the catalog's reads.
const HEDGING_DELAY: Duration = Duration::from_millis(50);
/// The retry budget's share (the kit's default).
const BUDGET: f64 = 0.2;

struct Case {
    name: &'static str,
    fault: Fault,
    hedged: bool,
}

/// What one case gave.
struct Measured {
    name: &'static str,
    calls: usize,
    ok: usize,
    p50_ms: f64,
    p99_ms: f64,
    /// Calls the endpoints got per call made, less one.
    extra: f64,
    /// Of the calls the endpoints got, the faulty one's share.
    faulty_share: f64,
}

/// GetProduct and BatchGetProducts in turn, through the peer.
struct Reads {
    peer: Peer,
}

impl Call for Reads {
    async fn call(&self, n: u64) -> Outcome {
        let client = CatalogServiceClient::new(self.peer.clone());
        let id = PRODUCTS[n as usize % PRODUCTS.len()].to_owned();
        if n.is_multiple_of(2) {
            Outcome::of(&client.clone().get_product(GetProductRequest { id }).await)
        } else {
            Outcome::of(
                &client
                    .clone()
                    .batch_get_products(BatchGetProductsRequest {
                        product_ids: vec![id],
                    })
                    .await,
            )
        }
    }
}

/// Runs every case; whether every target was met.
pub async fn run(options: &Options) -> anyhow::Result<bool> {
    let (shop, _) = Shop::embedded_under_load(
        &options.shop_bin,
        &options.scratch,
        &[],
        &format!(
            "hedging ({} s per case at {} calls/s)",
            options.seconds, options.rate
        ),
    )
    .await?;
    let catalog = addr("catalog").parse()?;
    let cases = [
        Case {
            name: "both endpoints healthy, hedged (the contract)",
            fault: Fault::None,
            hedged: true,
        },
        Case {
            name: "one 400 ms slower, not hedged (retries, by service config)",
            fault: Fault::Slow(options.slow_by),
            hedged: false,
        },
        Case {
            name: "one 400 ms slower, hedged (the contract)",
            fault: Fault::Slow(options.slow_by),
            hedged: true,
        },
        Case {
            name: "one failing every other call, retried (by service config)",
            fault: Fault::FailHalf,
            hedged: false,
        },
        Case {
            name: "one failing every other call, hedged (the contract)",
            fault: Fault::FailHalf,
            hedged: true,
        },
    ];
    let mut results = Vec::new();
    for case in &cases {
        results.push(measure(case, catalog, options).await?);
    }
    drop(shop);
    Ok(report(&results, options))
}

async fn measure(
    case: &Case,
    catalog: std::net::SocketAddr,
    options: &Options,
) -> anyhow::Result<Measured> {
    let healthy = Endpoint::start(catalog, Fault::None).await?;
    let faulty = Endpoint::start(catalog, case.fault).await?;
    let calls = if case.hedged {
        shop_proto::calls(None)?
    } else {
        Calls::configured(shop_proto::FILE_DESCRIPTOR_SET, NOT_HEDGED)?
    };
    let target: PeerTarget = format!("http://{},http://{}", healthy.addr, faulty.addr).parse()?;
    let peer = Peer::connect(
        "catalog",
        &target,
        PeerPolicy {
            calls,
            max_in_flight: 4096,
            ..PeerPolicy::default()
        },
    )
    .await?;
    let started = std::time::Instant::now();
    while peer
        .endpoints()
        .iter()
        .any(|(_, health, _)| *health != "serving")
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "the endpoints did not serve within 10 s: {:?}",
            peer.endpoints()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = load::open(
        Arc::new(Reads { peer }),
        options.rate,
        Duration::from_secs(options.seconds),
        10_000,
    )
    .await;
    let mut latencies: Vec<f64> = run
        .samples
        .iter()
        .map(|s| s.latency.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let made = run.samples.len();
    let got = healthy.calls() + faulty.calls();
    Ok(Measured {
        name: case.name,
        calls: made,
        ok: run
            .samples
            .iter()
            .filter(|s| s.outcome == Outcome::Ok)
            .count(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        extra: got as f64 / made.max(1) as f64 - 1.0,
        faulty_share: faulty.calls() as f64 / got.max(1) as f64,
    })
}

/// Prints the table and the targets; whether every target was met.
fn report(results: &[Measured], options: &Options) -> bool {
    println!();
    println!("| case | calls | ok | p50 | p99 | extra calls | to the faulty endpoint |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for m in results {
        println!(
            "| {} | {} | {:.2}% | {:.1} ms | {:.1} ms | {:+.1}% | {:.0}% |",
            m.name,
            m.calls,
            100.0 * m.ok as f64 / m.calls.max(1) as f64,
            m.p50_ms,
            m.p99_ms,
            100.0 * m.extra,
            100.0 * m.faulty_share
        );
    }
    let [healthy, _, slow_hedged, fail_retried, fail_hedged] = results else {
        return false;
    };
    let mut met = true;
    let bound = 2.0 * healthy.p99_ms + HEDGING_DELAY.as_secs_f64() * 1000.0;
    let mut check = |ok: bool, what: String| {
        println!("{} {what}", if ok { "met:" } else { "target missed:" });
        met &= ok;
    };
    check(
        slow_hedged.p99_ms <= bound,
        format!(
            "hedged p99 with a slow endpoint {:.1} ms ≤ 2 × {:.1} ms + {} ms = {bound:.1} ms",
            slow_hedged.p99_ms,
            healthy.p99_ms,
            HEDGING_DELAY.as_millis()
        ),
    );
    // The budget's floor (10 a second) counts beside its share.
    let floor = 10.0 / options.rate;
    for m in [fail_retried, fail_hedged] {
        check(
            m.extra <= BUDGET + floor,
            format!(
                "{}: extra calls {:+.1}% ≤ the budget ({:.0}% + 10/s = {:.1}%)",
                m.name,
                100.0 * m.extra,
                100.0 * BUDGET,
                100.0 * (BUDGET + floor)
            ),
        );
        check(
            m.ok * healthy.calls >= healthy.ok * m.calls,
            format!(
                "{}: success {:.2}% ≥ the healthy run's {:.2}%",
                m.name,
                100.0 * m.ok as f64 / m.calls.max(1) as f64,
                100.0 * healthy.ok as f64 / healthy.calls.max(1) as f64
            ),
        );
    }
    met
}
