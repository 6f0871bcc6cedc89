//! `shop`: starts the whole shop (every service in one process, each on its
//! own port with its own database), or one service with `shop serve NAME`.

mod banner;
mod calling;
mod certs;
mod cli;
mod dashboard;
mod launch;
mod migrate;
mod plan;
mod policy;
mod registered;
mod registry;
mod service_tls;

use std::{net::SocketAddr, process::ExitCode};

use shop_kit::{
    Shutdown,
    observe::{metrics::Metrics, telemetry, traces},
};

use crate::cli::{Cli, Command};

/// mimalloc instead of glibc's malloc: glibc keeps the large blocks a burst
/// of password hashes frees (19 MiB each, in per-thread arenas) resident
/// for good; mimalloc returns them to the system (see the hardening tests).
/// Built without transparent huge pages (Cargo.toml says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shop: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The process's metrics, before anything takes a metric handle (the
    // trace exporter counts the spans it drops).
    let metrics = Metrics::install();
    // The dashboard's traces and log lines are kept from the first.
    let keeping = dashboard::Keeping::wanted(&cli.kit.dashboard, cli.runs_whole_shop());
    let mut log_config: telemetry::LogConfig = (&cli.kit.logs).into();
    let mut trace_config: traces::TraceConfig = (&cli.kit.traces).into();
    if let Some(keeping) = &keeping {
        log_config.keep = Some(keeping.logs.clone());
        trace_config.keep = Some(keeping.traces.clone());
    }
    // Traces are exported on the runtime: set up inside it.
    let logs = {
        let _inside = runtime.enter();
        telemetry::init_tracing(&log_config, &trace_config, &metrics)
    };
    let _logs = match logs {
        Ok(logs) => logs,
        Err(error) => {
            eprintln!("shop: traces: {error}");
            return ExitCode::FAILURE;
        }
    };
    report(runtime.block_on(run(cli, metrics, keeping)))
}

fn report(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shop: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    cli: Cli,
    metrics: Metrics,
    keeping: Option<dashboard::Keeping>,
) -> anyhow::Result<()> {
    let Cli {
        command,
        kit,
        services,
    } = cli;
    let whole_shop = match command {
        None | Some(Command::Run) => true,
        Some(Command::Serve) => false,
        Some(Command::Migrate(migrate)) => {
            return migrate::run(&migrate, &services, &kit.data_dir).await;
        }
        Some(Command::Certs(certs)) => return certs::write(&certs),
        Some(Command::Policy(table)) => return policy::run(&table),
    };
    let starts = plan::plan(&services, &kit)?;
    let process = kit.process_http();
    let shutdown = Shutdown::on_signals(process.drain());
    let mut running = Vec::new();
    for start in starts {
        running.push(plan::start(start, &shutdown, &metrics).await?);
    }
    let process_metrics = match process.metrics_port {
        Some(port) => {
            let addr = SocketAddr::new(kit.host, port);
            Some(launch::metrics(addr, &process, &shutdown, metrics.clone()).await?)
        }
        None => None,
    };
    // A service alone waits for peers in other processes, which may come
    // later: its /readyz says when it is ready. The whole shop's services
    // wait only for each other.
    if whole_shop {
        launch::until_ready(&running, launch::READY_PATIENCE).await?;
    }
    let calling = calling::Calling::new(&kit);
    let dashboard = match keeping {
        Some(keeping) => {
            keeping
                .start(&running, &calling, metrics, &shutdown)
                .await?
        }
        None => dashboard::Shown::Off,
    };
    banner::print(&running, process_metrics.as_ref(), &dashboard, &calling);
    for service in running {
        service.task.await??;
    }
    if let Some(metrics) = process_metrics {
        metrics.task.await??;
    }
    tracing::info!("shop stopped");
    Ok(())
}
