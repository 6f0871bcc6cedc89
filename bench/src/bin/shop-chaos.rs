//! `shop-chaos`, run by `just chaos`: the shop as a process per service,
//! customers placing orders, a nemesis killing and pausing services, then
//! the invariants. See `shop_bench::chaos`.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use shop_bench::chaos::{self, Fault};

/// The services the nemesis may strike.
const SERVICES: [&str; 4] = ["users", "catalog", "orders", "payments"];

#[derive(Parser, Debug)]
#[command(
    name = "shop-chaos",
    about = "Places orders while services are killed (-9) and paused (SIGSTOP), then checks \
             that nothing was lost",
    long_about = "Starts the shop as one process per service (`shop serve`), sets customers \
                  to place, repeat and cancel orders over gRPC (retrying with the same \
                  idempotency key until answered), and lets a nemesis kill and pause random \
                  services for a bounded time. Then it follows every order to its end and \
                  checks, from the services' own databases and APIs: every acknowledged order \
                  final, one order per key, stock conserved per product with no reservation \
                  left held, every confirmed order charged once for its total and every \
                  cancelled one netting zero, every event published, the history in \
                  agreement. Exits 1 on any violation."
)]
struct Cli {
    /// Seeds the customers' choices and the nemesis' schedule (default: the
    /// clock; printed, to run the same schedule again).
    #[arg(long)]
    seed: Option<u64>,

    /// Seconds of orders under fire.
    #[arg(long, default_value_t = 120)]
    duration: u64,

    /// Customers placing orders at once.
    #[arg(long, default_value_t = 8)]
    customers: usize,

    /// What the nemesis does.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Fault::Kill, Fault::Pause])]
    faults: Vec<Fault>,

    /// The services it strikes (users, catalog, orders, payments).
    #[arg(long, value_delimiter = ',', default_value = "catalog,orders,payments")]
    services: Vec<String>,

    /// The longest a service stays killed or paused, in ms.
    #[arg(long, default_value_t = 3000)]
    longest_fault_ms: u64,

    /// Stock each demo product starts with.
    #[arg(long, default_value_t = 400)]
    stock: i32,

    /// An order not charged by then is cancelled, in seconds.
    #[arg(long, default_value_t = 30)]
    order_deadline_secs: u64,

    /// Run on PostgreSQL: a role that may create databases (default: SQLite).
    #[arg(long, env = "SHOP_BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,

    /// The shop launcher (default: `shop` next to this binary).
    #[arg(long)]
    shop_bin: Option<PathBuf>,

    /// Keep the services' data and logs here (default: a temporary folder,
    /// removed after).
    #[arg(long)]
    keep: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    shop_bench::verdict::exit_with("shop-chaos", run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let targets = cli
        .services
        .iter()
        .map(|name| {
            SERVICES
                .iter()
                .find(|service| **service == name)
                .copied()
                .ok_or_else(|| {
                    anyhow::anyhow!("--services: no service {name:?} (one of {SERVICES:?})")
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let seed = shop_bench::verdict::seed_or_clock(cli.seed);
    let scratch = tempfile::Builder::new().prefix("shop-chaos").tempdir()?;
    let scratch_path = match &cli.keep {
        Some(dir) => dir.clone(),
        None => scratch.path().to_owned(),
    };
    let options = chaos::Options {
        shop_bin: match cli.shop_bin {
            Some(path) => path,
            None => std::env::current_exe()?.with_file_name("shop"),
        },
        seed,
        duration: Duration::from_secs(cli.duration),
        customers: cli.customers.max(1),
        faults: cli.faults,
        targets,
        longest_fault: Duration::from_millis(cli.longest_fault_ms.max(1)),
        stock: cli.stock,
        order_deadline: Duration::from_secs(cli.order_deadline_secs.max(1)),
        postgres_url: cli.postgres_url,
        scratch: scratch_path,
    };
    chaos::run(&options).await
}
