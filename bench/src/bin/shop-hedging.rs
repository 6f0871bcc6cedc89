//! `shop-hedging`, run by `just hedging`: the catalog's reads through two
//! endpoints, one slow or failing, hedged and not. See
//! `shop_bench::hedging`.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use shop_bench::hedging;

#[derive(Parser, Debug)]
#[command(
    name = "shop-hedging",
    about = "Measures hedging and the retry budget with one of two catalog endpoints slow or failing",
    long_about = "Starts the embedded shop (SQLite), then for each case puts two proxies in front \
                  of its catalog (one healthy, one answering every 4th call 400 ms late or failing \
                  every other call; then both failing every other call) and calls GetProduct and BatchGetProducts in turn at a fixed rate through \
                  the kit's client stack, each method called as the contract says (hedged) or as a \
                  service config replaces it (retried). Prints a table (success, p50/p99, extra \
                  calls the endpoints got, the faulty endpoint's share) and the targets of \
                  docs/measuring.md. Exits 1 when a target is missed (with --strict) or the run \
                  failed."
)]
struct Cli {
    /// Seconds of each case.
    #[arg(long, default_value_t = 10)]
    seconds: u64,

    /// Calls started a second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,

    /// Milliseconds the slow endpoint adds to every 4th call.
    #[arg(long, default_value_t = 400)]
    slow_ms: u64,

    /// Exit 1 when a target is missed.
    #[arg(long)]
    strict: bool,

    /// The shop launcher (default: `shop` next to this binary).
    #[arg(long)]
    shop_bin: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    shop_bench::verdict::exit_with("shop-hedging", run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    if !(cli.rate.is_finite() && cli.rate >= 1.0) {
        anyhow::bail!("--rate: calls a second, at least 1");
    }
    let scratch = tempfile::Builder::new().prefix("shop-hedging").tempdir()?;
    let options = hedging::Options {
        shop_bin: match cli.shop_bin {
            Some(path) => path,
            None => std::env::current_exe()?.with_file_name("shop"),
        },
        seconds: cli.seconds.max(1),
        rate: cli.rate,
        slow_by: Duration::from_millis(cli.slow_ms),
        scratch: scratch.path().to_owned(),
    };
    let met = hedging::run(&options).await?;
    Ok(met || !cli.strict)
}
