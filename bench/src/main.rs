//! `shop-bench`, run by `just bench`: measures our serving stack against the
//! limit (bare axum) and the peers a user would pick instead (tonic,
//! connect-go, connect-node) with one load generator, then the launched
//! shop itself (orders end to end, the BFF, Connect GET, memory, start-up).
//! Prints tables, and writes JSON and docs/benchmarks.md.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use shop_bench::{
    app_suite, cpus::Cpus, machine, order_profiles, profile, protocol_suite, report, servers,
    servers::Stack, targets, tls_suite,
};

#[derive(Parser, Debug)]
#[command(
    name = "shop-bench",
    about = "connect-shop's benchmarks: our stack against bare axum, tonic, connect-go and \
             connect-node, then the launched shop",
    long_about = "Runs the protocol suite (a unary echo and a 10-message server stream through \
                  every stack and protocol, with h2load at each concurrency) and the app suite \
                  (the launched shop: orders end to end on SQLite and PostgreSQL, the BFF, \
                  ListProducts over Connect GET, memory and start-up time). Servers run on one \
                  core, the load on another. `just bench` builds the peers and runs everything; \
                  `just bench-smoke` checks the harness in seconds."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Both suites (the default).
    All,
    /// Only the protocol suite.
    Protocol,
    /// Only the app suite.
    App {
        /// Only orders end to end (no start-up, calls, BFF): e.g. to
        /// profile the services under that load by hand.
        #[arg(long)]
        orders_only: bool,
    },
    /// One case under load with `perf record` on the server; prints the
    /// hottest functions (needs perf, Debian's linux-perf).
    Profile {
        #[arg(long, value_enum, default_value = "kit")]
        stack: Stack,
        #[arg(long, value_enum, default_value = "connect-json")]
        protocol: targets::Protocol,
        #[arg(long, value_enum, default_value = "unary")]
        shape: targets::Shape,
        /// Connections, one request in flight each.
        #[arg(long = "connections", default_value_t = 16)]
        connections: u32,
        /// Where perf writes the profile.
        #[arg(long, default_value = "target/bench/profile.perf")]
        output: PathBuf,
    },
    /// Serve one echo server under test alone on 127.0.0.1:PORT until
    /// killed (bare, kit, tonic or connect-rust), e.g. to call or profile it
    /// by hand; the harness starts its servers the same way.
    Peer {
        #[arg(value_enum)]
        kind: servers::PeerKind,
        #[arg(long)]
        port: u16,
        /// Serve TLS with this PEM certificate (kit and tonic).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// The order path, the embedded profile (one process, SQLite, h2c) or
    /// the production profile (a process per service, PostgreSQL, NATS,
    /// mutual TLS, traces at 1%) with the embedded beside it: orders/s,
    /// CreateOrder's p50 and p99, CPU per order of each process and
    /// statements per order, the median of --repetitions rounds. Fails if
    /// any order fails.
    Orders {
        #[arg(long, value_enum, default_value = "embedded")]
        profile: shop_bench::order_profiles::Profile,
        /// Orders per round.
        #[arg(long, default_value_t = 2000)]
        orders: usize,
        /// Customers ordering at once.
        #[arg(long, default_value_t = 16)]
        customers: usize,
        /// The nats-server binary (JetStream), for the production profile.
        #[arg(long, env = "NATS_SERVER", default_value = "nats-server")]
        nats_server: String,
        /// Keep the logs (and certificates) here (default: removed after).
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Only the TLS suite: the kit's and tonic's unary echo over TLS beside
    /// the same over h2c, and what a new connection's handshake costs.
    Tls,
    /// Call the echo server at 127.0.0.1:PORT with one client (the kit's
    /// stack, or tonic's channel), N sequential calls for every N read from
    /// stdin: what a call costs the caller (`just bench-instructions
    /// caller-kit`).
    Caller {
        #[arg(value_enum)]
        kind: shop_bench::caller::CallerKind,
        #[arg(long)]
        port: u16,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// A seconds-long check that every part of the harness works (CI):
    /// short runs, one repetition, concurrency 1 and 16.
    #[arg(long, global = true)]
    smoke: bool,

    /// Measured seconds per run.
    #[arg(long, default_value_t = 3.0, global = true)]
    duration: f64,

    /// Warm-up seconds before each run.
    #[arg(long, default_value_t = 1.0, global = true)]
    warm_up: f64,

    /// Repetitions per case (reported as median and spread).
    #[arg(long, default_value_t = 3, global = true)]
    repetitions: usize,

    /// Concurrencies (connections, one request in flight each).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64", global = true)]
    concurrency: Vec<u32>,

    /// Stacks of the protocol suite.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Stack::ALL.to_vec(), global = true)]
    stacks: Vec<Stack>,

    /// Where bench/peers/build.sh put the Go and Node peers.
    #[arg(long, default_value = "bench/peers", global = true)]
    peers_dir: PathBuf,

    /// The shop launcher to benchmark (default: `shop` next to this binary).
    #[arg(long, global = true)]
    shop_bin: Option<PathBuf>,

    /// A PostgreSQL role that may create databases, for the app suite on
    /// PostgreSQL, e.g. postgres://shop_test:shop_test@127.0.0.1/postgres
    /// (default: SQLite only).
    #[arg(long, env = "SHOP_BENCH_POSTGRES_URL", global = true)]
    postgres_url: Option<String>,

    /// Write every result as JSON here.
    #[arg(long, default_value = "target/bench/results.json", global = true)]
    json: PathBuf,

    /// Also write the report as Markdown here (e.g. docs/benchmarks.md).
    #[arg(long, global = true)]
    markdown: Option<PathBuf>,
}

impl RunArgs {
    fn smoothed(mut self) -> Self {
        if self.smoke {
            self.duration = 0.3;
            self.warm_up = 0.1;
            self.repetitions = 1;
            self.concurrency = vec![1, 16];
        }
        self
    }

    fn secs(value: f64) -> Duration {
        Duration::from_secs_f64(value.max(0.001))
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shop-bench: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shop-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::All);
    if let Command::Caller { kind, port } = command {
        return shop_bench::caller::run(kind, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await;
    }
    if let Command::Peer {
        kind,
        port,
        tls_cert,
        tls_key,
    } = command
    {
        let tls = tls_cert.zip(tls_key);
        return servers::serve(kind, port, &cli.run.peers_dir, tls).await;
    }
    let args = cli.run.smoothed();
    let cpus = Cpus::detect();
    let scratch = tempfile::Builder::new().prefix("shop-bench").tempdir()?;
    if let Command::Orders {
        profile,
        orders,
        customers,
        nats_server,
        keep,
    } = command
    {
        let postgres_url = match (profile, args.postgres_url) {
            (order_profiles::Profile::Production, None) => anyhow::bail!(
                "the production profile needs PostgreSQL: --postgres-url or \
                 SHOP_BENCH_POSTGRES_URL (`just bench` starts one when run as root)"
            ),
            (_, url) => url.unwrap_or_default(),
        };
        let options = order_profiles::Options {
            profile,
            orders: if args.smoke { orders.min(200) } else { orders },
            concurrency: customers,
            rounds: args.repetitions,
            parts: shop_bench::replicas::parts::Parts {
                shop_bin: match &args.shop_bin {
                    Some(path) => path.clone(),
                    None => std::env::current_exe()?.with_file_name("shop"),
                },
                postgres_url,
                nats_server,
                seed: 0,
                scratch: keep.unwrap_or_else(|| scratch.path().to_owned()),
            },
        };
        return match order_profiles::run(&options).await? {
            true => Ok(()),
            false => anyhow::bail!("orders failed (above)"),
        };
    }
    if let Command::Profile {
        stack,
        protocol,
        shape,
        connections,
        output,
    } = command
    {
        cpus.pin_self_to_load();
        let options = profile::Options {
            stack,
            protocol,
            shape,
            concurrency: connections,
            duration: RunArgs::secs(args.duration),
            peers_dir: args.peers_dir,
            scratch: scratch.path().to_owned(),
            output,
        };
        return profile::run(&options, &cpus).await;
    }
    // Read before pinning: a pinned process sees only its own core.
    let machine = machine::Machine::read(&cpus);
    cpus.pin_self_to_load();
    let mut report = report::Report::new(machine, std::env::args().collect());

    if matches!(command, Command::All | Command::Protocol) {
        let options = protocol_suite::Options {
            stacks: args.stacks.clone(),
            concurrency: args.concurrency.clone(),
            repetitions: args.repetitions,
            warm_up: RunArgs::secs(args.warm_up),
            duration: RunArgs::secs(args.duration),
            peers_dir: args.peers_dir.clone(),
            scratch: scratch.path().to_owned(),
        };
        report.protocol = protocol_suite::run(&options, &cpus).await?;
        println!("{}", report.protocol_markdown());
    }
    if let Command::All | Command::App { .. } = command {
        let options = app_suite::Options {
            shop_bin: match &args.shop_bin {
                Some(path) => path.clone(),
                None => std::env::current_exe()?.with_file_name("shop"),
            },
            postgres_url: args.postgres_url.clone(),
            smoke: args.smoke,
            repetitions: args.repetitions,
            warm_up: RunArgs::secs(args.warm_up),
            duration: RunArgs::secs(args.duration),
            scratch: scratch.path().to_owned(),
            orders_only: matches!(command, Command::App { orders_only: true }),
        };
        report.app = Some(app_suite::run(&options, &cpus).await?);
        println!("{}", report.app_markdown());
    }

    if matches!(command, Command::All | Command::Tls) {
        let options = tls_suite::Options {
            concurrency: args.concurrency.iter().copied().max().unwrap_or(16).min(16),
            repetitions: args.repetitions,
            warm_up: RunArgs::secs(args.warm_up),
            duration: RunArgs::secs(args.duration),
            connections: if args.smoke { 50 } else { 500 },
            peers_dir: args.peers_dir.clone(),
            scratch: scratch.path().to_owned(),
        };
        report.tls = Some(tls_suite::run(&options, &cpus).await?);
        println!("{}", report.tls_markdown());
    }

    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("results: {}", args.json.display());
    if let Some(path) = &args.markdown {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, report.markdown())?;
        eprintln!("report: {}", path.display());
    }
    Ok(())
}
