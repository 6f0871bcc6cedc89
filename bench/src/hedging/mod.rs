//! `just hedging`: what hedging and the retry budget do for the catalog's
//! reads when one of its two endpoints is slow or failing. The embedded
//! shop runs as it ships; the client under test is the kit's client stack
//! as the gateway and orders use it (each method called as the contract
//! says, or as a service config replaces it), calling GetProduct and
//! BatchGetProducts in turn at a fixed rate (open loop) through two
//! endpoints of the catalog: two proxies on their own ports in this
//! process, one healthy, one faulty (every 4th call 400 ms late, or
//! failing every other call). Each proxy counts the calls it got, so the extra calls that
//! hedges and retries made are counted, not assumed.
//!
//! The verdict ([`judge`]) reads counts, not a tail latency with a few
//! milliseconds of room: the share of calls that took as long as the slow
//! endpoint's delay, hedged against not hedged (and the unhedged case must
//! show the slow endpoint at all, or the comparison proves nothing); and
//! the retry budget under a fault the balancer cannot route around (both
//! endpoints failing every other call).

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

/// The retry budget's share (the kit's default).
const BUDGET: f64 = 0.2;

struct Case {
    name: &'static str,
    fault: Fault,
    /// Whether the other endpoint is faulty too (a fault the balancer
    /// cannot route around).
    both: bool,
    hedged: bool,
}

/// What one case gave.
#[derive(Clone, Debug, PartialEq)]
struct Measured {
    name: &'static str,
    calls: usize,
    ok: usize,
    /// Calls that took as long as the slow endpoint's delay or longer.
    slow: usize,
    p50_ms: f64,
    p99_ms: f64,
    /// Calls the endpoints got per call made, less one.
    extra: f64,
    /// Of the calls the endpoints got, the faulty one's share.
    faulty_share: f64,
}

/// The five cases, in [`run`]'s order.
struct Results<'a> {
    healthy: &'a Measured,
    slow_not_hedged: &'a Measured,
    slow_hedged: &'a Measured,
    failing_retried: &'a Measured,
    failing_hedged: &'a Measured,
    both_failing_retried: &'a Measured,
}

/// Calls the unhedged case must have seen slow, at least, for hedging's
/// effect to be judged: a quarter of every endpoint's calls are late (the
/// balancer cannot steer around a tail every endpoint has), some 100 of
/// CI's 400 (2 s at 200 calls/s).
const SLOW_CALLS_AT_LEAST: usize = 20;
/// The retry budget's floor: `tower`'s `TpsBudget` keeps 10 retries a
/// second over its 10 s window in reserve, so a peer may be sent that many
/// retries up front, beside the share.
const BUDGET_RESERVE: f64 = 10.0 * 10.0;
/// Room over the budget's exact bound, for the calls in flight as it is
/// reached: without a budget, both endpoints failing every other call
/// would be retried some 75% more, far beyond.
const BUDGET_ROOM: f64 = 0.05;
/// Hedged, at most this share of the unhedged case's slow calls may stay
/// slow.
const HEDGED_SLOW_SHARE_AT_MOST: f64 = 0.25;

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
    let case = |name, fault, both, hedged| Case {
        name,
        fault,
        both,
        hedged,
    };
    let slow = Fault::SlowEvery {
        nth: 4,
        by: options.slow_by,
    };
    let cases = [
        case(
            "both endpoints healthy, hedged (the contract)",
            Fault::None,
            false,
            true,
        ),
        case(
            "both with every 4th call 400 ms late, not hedged (retries, by service config)",
            slow,
            true,
            false,
        ),
        case(
            "both with every 4th call 400 ms late, hedged (the contract)",
            slow,
            true,
            true,
        ),
        case(
            "one failing every other call, retried (by service config)",
            Fault::FailHalf,
            false,
            false,
        ),
        case(
            "one failing every other call, hedged (the contract)",
            Fault::FailHalf,
            false,
            true,
        ),
        case(
            "both failing every other call, retried (by service config)",
            Fault::FailHalf,
            true,
            false,
        ),
    ];
    let mut results = Vec::new();
    for case in &cases {
        results.push(measure(case, catalog, options).await?);
    }
    drop(shop);
    print_table(&results);
    let [
        healthy,
        slow_not_hedged,
        slow_hedged,
        failing_retried,
        failing_hedged,
        both_failing_retried,
    ] = &results[..]
    else {
        anyhow::bail!("{} cases measured, not six", results.len());
    };
    let verdicts = judge(&Results {
        healthy,
        slow_not_hedged,
        slow_hedged,
        failing_retried,
        failing_hedged,
        both_failing_retried,
    });
    for (met, what) in &verdicts {
        println!("{} {what}", if *met { "met:" } else { "target missed:" });
    }
    Ok(verdicts.iter().all(|(met, _)| *met))
}

async fn measure(
    case: &Case,
    catalog: std::net::SocketAddr,
    options: &Options,
) -> anyhow::Result<Measured> {
    let healthy =
        Endpoint::start(catalog, if case.both { case.fault } else { Fault::None }).await?;
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
    let slow_ms = options.slow_by.as_secs_f64() * 1000.0;
    Ok(Measured {
        name: case.name,
        calls: made,
        slow: latencies.iter().filter(|ms| **ms >= slow_ms).count(),
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

fn print_table(results: &[Measured]) {
    println!();
    println!("| case | calls | ok | slow | p50 | p99 | extra calls | to the faulty endpoint |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        println!(
            "| {} | {} | {:.2}% | {} | {:.1} ms | {:.1} ms | {:+.1}% | {:.0}% |",
            m.name,
            m.calls,
            100.0 * m.ok as f64 / m.calls.max(1) as f64,
            m.slow,
            m.p50_ms,
            m.p99_ms,
            100.0 * m.extra,
            100.0 * m.faulty_share
        );
    }
}

/// Each target, met or not, said.
fn judge(results: &Results<'_>) -> Vec<(bool, String)> {
    let mut verdicts = Vec::new();
    let Results {
        healthy,
        slow_not_hedged,
        slow_hedged,
        failing_retried,
        failing_hedged,
        both_failing_retried,
    } = results;
    // The slow endpoint made the unhedged case slow: else hedging's effect
    // cannot be told from a run where nothing was slow.
    verdicts.push((
        slow_not_hedged.slow >= SLOW_CALLS_AT_LEAST,
        format!(
            "not hedged, the slow endpoint is seen: {} calls slow, at least {SLOW_CALLS_AT_LEAST}",
            slow_not_hedged.slow
        ),
    ));
    let allowed = (slow_not_hedged.slow as f64 * HEDGED_SLOW_SHARE_AT_MOST).floor() as usize;
    verdicts.push((
        slow_hedged.slow <= allowed,
        format!(
            "hedged, the slow endpoint's calls are answered by the other: {} calls slow, at most \
             {:.0}% of the {} unhedged = {allowed}",
            slow_hedged.slow,
            100.0 * HEDGED_SLOW_SHARE_AT_MOST,
            slow_not_hedged.slow
        ),
    ));
    // With both endpoints failing every other call the balancer cannot
    // route around the fault: without the budget, retries would add some
    // 75%; with it, its share and its reserve, over the calls made.
    let bound = BUDGET + BUDGET_RESERVE / both_failing_retried.calls.max(1) as f64;
    verdicts.push((
        both_failing_retried.extra <= bound + BUDGET_ROOM,
        format!(
            "{}: extra calls {:+.1}% ≤ the budget ({:.0}% of the calls + a reserve of 100 = \
             {:.1}%, + {:.0} points)",
            both_failing_retried.name,
            100.0 * both_failing_retried.extra,
            100.0 * BUDGET,
            100.0 * bound,
            100.0 * BUDGET_ROOM
        ),
    ));
    for m in [failing_retried, failing_hedged] {
        verdicts.push((
            m.ok * healthy.calls >= healthy.ok * m.calls,
            format!(
                "{}: success {:.2}% ≥ the healthy run's {:.2}%",
                m.name,
                100.0 * m.ok as f64 / m.calls.max(1) as f64,
                100.0 * healthy.ok as f64 / healthy.calls.max(1) as f64
            ),
        ));
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &'static str, calls: usize, ok: usize, slow: usize, extra: f64) -> Measured {
        Measured {
            name,
            calls,
            ok,
            slow,
            p50_ms: 1.0,
            p99_ms: 5.0,
            extra,
            faulty_share: 0.5,
        }
    }

    fn judged(
        slow_unhedged: usize,
        slow_hedged: usize,
        budget_extra: f64,
        failing_ok: usize,
    ) -> Vec<bool> {
        let healthy = case("healthy", 400, 400, 0, 0.01);
        let slow_not_hedged = case("slow, not hedged", 400, 400, slow_unhedged, 0.0);
        let slow_hedged = case("slow, hedged", 400, 400, slow_hedged, 0.08);
        let failing = case("failing", 400, failing_ok, 0, 0.03);
        let both = case("both failing", 400, 300, 0, budget_extra);
        judge(&Results {
            healthy: &healthy,
            slow_not_hedged: &slow_not_hedged,
            slow_hedged: &slow_hedged,
            failing_retried: &failing,
            failing_hedged: &failing,
            both_failing_retried: &both,
        })
        .into_iter()
        .map(|(met, _)| met)
        .collect()
    }

    #[test]
    fn hedging_that_answers_the_slow_calls_within_budget_meets_every_target() {
        assert_eq!(judged(100, 2, 0.45, 400), vec![true; 5]);
        assert_eq!(judged(20, 5, 0.45, 400), vec![true; 5], "at the least");
    }

    #[test]
    fn a_run_where_the_slow_endpoint_was_never_slow_proves_nothing() {
        let met = judged(19, 0, 0.45, 400);
        assert!(!met[0], "{met:?}");
    }

    #[test]
    fn hedging_that_leaves_the_slow_calls_slow_misses() {
        let met = judged(100, 30, 0.45, 400);
        assert_eq!(met, vec![true, false, true, true, true]);
    }

    #[test]
    fn retries_over_the_budget_miss_when_the_fault_cannot_be_avoided() {
        let met = judged(100, 2, 0.75, 400);
        assert_eq!(met, vec![true, true, false, true, true]);
    }

    #[test]
    fn failing_calls_the_healthy_run_served_miss() {
        let met = judged(100, 2, 0.45, 390);
        assert_eq!(met, vec![true, true, true, false, false]);
    }
}
