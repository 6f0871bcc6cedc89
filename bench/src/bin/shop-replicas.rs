//! `shop-replicas`, run by `just replicas`: the shop as replicas on one
//! PostgreSQL and one NATS JetStream, customers ordering, every replica
//! restarted in turn, one of each killed; then what must hold. See
//! `shop_bench::replicas`.

use std::time::Duration;

use clap::Parser;
use shop_bench::replicas;

#[derive(Parser, Debug)]
#[command(
    name = "shop-replicas",
    about = "Runs two replicas of catalog, orders and payments on one PostgreSQL and one NATS, \
             restarts every replica in turn and kills one of each while customers order, then \
             checks that nothing failed or was lost",
    long_about = "Starts users, the gateway and REPLICAS replicas of catalog, orders and \
                  payments (`shop serve`, each on a loopback address of its own: 127.0.0.2, \
                  127.0.0.3, ... and the same port), with every peer given as the list of its \
                  replicas. Customers place, repeat and cancel orders through every orders \
                  replica (balanced by the kit's client). After a warm-up each replica gets \
                  SIGTERM, drains, exits and starts again, one at a time; then one replica of \
                  each service is killed (SIGKILL) and started again. Checks: no customer call \
                  failed, and no attempt failed during the rolling restart (beyond \
                  --tolerate-failed-attempts), no order cancelled for want of a peer, \
                  the invariants of `just chaos`, every event relayed once, no PostgreSQL \
                  deadlock. Exits 1 if anything does not hold."
)]
struct Cli {
    #[command(flatten)]
    parts: replicas::parts::Flags,

    /// Customers placing orders at once.
    #[arg(long, default_value_t = 8)]
    customers: usize,

    /// Replicas of catalog, orders and payments.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(2..=8))]
    replicas: u64,

    /// Seconds of orders before the first restart.
    #[arg(long, default_value_t = 10)]
    warm_up_secs: u64,

    /// Seconds between one restart (or kill) and the next.
    #[arg(long, default_value_t = 2)]
    between_secs: u64,

    /// Stock each demo product starts with.
    #[arg(long, default_value_t = 100_000)]
    stock: i32,

    /// An order not charged by then is cancelled, in seconds.
    #[arg(long, default_value_t = 60)]
    order_deadline_secs: u64,

    /// How long a replica drains after SIGTERM, in ms.
    #[arg(long, default_value_t = 1000)]
    drain_ms: u64,

    /// Calls the customers must have made in each phase for the run to
    /// count (default: ten per customer).
    #[arg(long)]
    min_calls_per_phase: Option<u64>,

    /// Failed attempts (answered by a retry or not) tolerated during the
    /// rolling restart: a replica leaving must be out of every balancer
    /// before it stops answering, so none by default.
    #[arg(long, default_value_t = 0)]
    tolerate_failed_attempts: u64,
}

fn main() -> std::process::ExitCode {
    shop_bench::verdict::exit_with("shop-replicas", run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let (parts, _scratch) = cli.parts.resolve("shop-replicas")?;
    let options = replicas::Options {
        parts,
        customers: cli.customers.max(1),
        replicas: usize::try_from(cli.replicas).unwrap_or(2),
        warm_up: Duration::from_secs(cli.warm_up_secs),
        between: Duration::from_secs(cli.between_secs),
        stock: cli.stock,
        order_deadline: Duration::from_secs(cli.order_deadline_secs.max(1)),
        drain: Duration::from_millis(cli.drain_ms),
        min_calls_per_phase: cli
            .min_calls_per_phase
            .unwrap_or(10 * cli.customers.max(1) as u64),
        tolerated_failed_attempts: cli.tolerate_failed_attempts,
    };
    replicas::run(&options).await
}
