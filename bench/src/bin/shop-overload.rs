//! `shop-overload`, run by `just overload`: the embedded shop offered 1x,
//! 2x and 4x its peak at a fixed rate. See `shop_bench::overload`.

use std::path::PathBuf;

use clap::Parser;
use shop_bench::overload::{self, Scenario};

#[derive(Parser, Debug)]
#[command(
    name = "shop-overload",
    about = "Offers the embedded shop more than it can do and says what came of it",
    long_about = "Starts the embedded shop (SQLite; one core, the load on another when there \
                  are two), measures each scenario's peak with 16 callers back to back, then \
                  starts calls at a fixed rate of each level times that peak (open loop: the \
                  offered load does not fall when the shop slows). Prints a table per scenario \
                  (goodput, p50/p99 of the calls served, refusals and how fast they came, RSS) \
                  and the targets missed, then follows every order acknowledged to its end and \
                  checks the chaos run's invariants. Exits 1 when a call failed otherwise than \
                  refused or an invariant broke (with --strict, also when a target was missed)."
)]
struct Cli {
    /// Seconds of each level (and of the peak).
    #[arg(long, default_value_t = 10)]
    seconds: u64,

    /// Multiples of the peak offered, in turn.
    #[arg(long, value_delimiter = ',', default_values_t = [1.0, 2.0, 4.0])]
    levels: Vec<f64>,

    /// What is offered.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Scenario::CreateOrder, Scenario::GetProduct, Scenario::Home])]
    scenarios: Vec<Scenario>,

    /// Customers signed in (the calls go to each in turn).
    #[arg(long, default_value_t = 64)]
    customers: usize,

    /// The shop's --max-calls-in-flight (0 turns admission control off:
    /// the run to compare with).
    #[arg(long)]
    max_calls_in_flight: Option<usize>,

    /// Exit 1 when a target is missed too.
    #[arg(long)]
    strict: bool,

    /// The shop launcher (default: `shop` next to this binary).
    #[arg(long)]
    shop_bin: Option<PathBuf>,

    /// Keep the shop's data and logs here (default: a temporary folder,
    /// removed after).
    #[arg(long)]
    keep: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    shop_bench::verdict::exit_with("shop-overload", run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    if cli
        .levels
        .iter()
        .any(|level| !level.is_finite() || *level <= 0.0)
    {
        anyhow::bail!("--levels: each a positive multiple of the peak, e.g. 1,2,4");
    }
    let scratch = tempfile::Builder::new().prefix("shop-overload").tempdir()?;
    let options = overload::Options {
        shop_bin: match cli.shop_bin {
            Some(path) => path,
            None => std::env::current_exe()?.with_file_name("shop"),
        },
        seconds: cli.seconds.max(1),
        levels: cli.levels,
        scenarios: cli.scenarios,
        customers: cli.customers.max(1),
        max_calls_in_flight: cli.max_calls_in_flight,
        scratch: cli.keep.unwrap_or_else(|| scratch.path().to_owned()),
    };
    overload::run(&options, cli.strict).await
}
