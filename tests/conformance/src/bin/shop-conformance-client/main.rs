//! The Connect conformance client: the official runner (client mode)
//! writes what to call on stdin, a size-delimited `ClientCompatRequest`
//! each; this program makes each call through the kit's own client stack,
//! `shop_kit::client::Peer` (balancing, retry budget, hedging, breaker,
//! deadlines), exactly as the shop's services call each other, and writes
//! what came back on stdout as a `ClientCompatResponse`. Calls run side by
//! side; at the end of stdin it waits for them and exits.
//!
//! `--force retries` or `--force hedging` turns the resilience layers on
//! for every method, whatever the contract says; the stack still sends a
//! call again only where the contract lets it, which for the suite's
//! methods is nowhere, unless `--repeatable` marks them so. At the end it says on
//! stderr how many calls, retries and hedges were made.

mod call;
mod peers;
mod report;

use std::sync::Arc;

use shop_conformance::{conformance as pb, frames};
use tokio::sync::{Semaphore, mpsc};

/// Calls in flight at once.
const SIDE_BY_SIDE: usize = 32;

const HELP: &str = "\
shop-conformance-client: the kit's client under the Connect conformance runner

Reads ClientCompatRequest messages on stdin, makes each call through
shop_kit::client::Peer, writes ClientCompatResponse messages on stdout.
Run it with the runner: `just conformance-client`.

Options:
  --force retries|hedging  retries (or hedging) on for every method
  --repeatable             take every method of the suite's contract as safe
                           to send again (it only echoes), so that they act
  -h, --help               this text
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut forcing = peers::Forcing::Nothing;
    let mut repeatable = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            "--force" => {
                forcing = match args.next().as_deref() {
                    Some("retries") => peers::Forcing::Retries,
                    Some("hedging") => peers::Forcing::Hedging,
                    other => {
                        return Err(format!("--force retries|hedging, not {other:?}").into());
                    }
                };
            }
            "--repeatable" => repeatable = true,
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    // Logs go to stderr (stdout is the runner's).
    let metrics = shop_kit::observe::metrics::Metrics::install();
    let _logs = shop_kit::observe::telemetry::init_tracing(
        &Default::default(),
        &Default::default(),
        &metrics,
    )?;
    let peers = Arc::new(peers::Peers::new(forcing, repeatable)?);
    tokio::runtime::Runtime::new()?.block_on(run(peers))?;
    let made = metrics.render();
    let sum = |name: &str| -> f64 {
        made.lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    eprintln!(
        "shop-conformance-client: {} calls, {} retries, {} hedges",
        sum("shop_downstream_calls_total"),
        sum("shop_downstream_retries_total"),
        sum("shop_downstream_hedges_total"),
    );
    Ok(())
}

async fn run(peers: Arc<peers::Peers>) -> Result<(), Box<dyn std::error::Error>> {
    let (asked, mut requests) = mpsc::channel::<pb::ClientCompatRequest>(SIDE_BY_SIDE);
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut stdin = std::io::stdin().lock();
        while let Some(request) = frames::read(&mut stdin)? {
            if asked.blocking_send(request).is_err() {
                break;
            }
        }
        Ok(())
    });
    let (answered, mut answers) = mpsc::channel::<pb::ClientCompatResponse>(SIDE_BY_SIDE);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        while let Some(answer) = answers.blocking_recv() {
            frames::write(&answer, &mut stdout)?;
        }
        Ok(())
    });
    let room = Arc::new(Semaphore::new(SIDE_BY_SIDE));
    let mut calls = tokio::task::JoinSet::new();
    while let Some(request) = requests.recv().await {
        let turn = room.clone().acquire_owned().await?;
        let (peers, answered) = (peers.clone(), answered.clone());
        calls.spawn(async move {
            let answer = call::make(&peers, request).await;
            drop(turn);
            // The writer only stops when stdout breaks; its error says why.
            let _ = answered.send(answer).await;
        });
        while let Some(done) = calls.try_join_next() {
            done?;
        }
    }
    while let Some(done) = calls.join_next().await {
        done?;
    }
    drop(answered);
    reader.await??;
    writer.await??;
    Ok(())
}
