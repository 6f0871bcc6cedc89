//! `shop-bench profile`: one case of the protocol suite under load while
//! `perf record` samples the server, then the hottest functions (self time,
//! then inclusive time of our layers). How the closing notes' profiles were
//! made; open the file with `perf report -i <file>` for the call graphs.

use std::{path::PathBuf, process::Stdio, time::Duration};

use anyhow::{Context, bail, ensure};
use tokio::process::Command;

use crate::{
    cpus::Cpus,
    h2load::{self, Load},
    preflight,
    servers::{Server, Stack},
    targets::{self, Protocol, Shape},
};

const PORT: u16 = 19170;

#[derive(Clone, Debug)]
pub struct Options {
    pub stack: Stack,
    pub protocol: Protocol,
    pub shape: Shape,
    pub concurrency: u32,
    pub duration: Duration,
    pub peers_dir: PathBuf,
    pub scratch: PathBuf,
    pub output: PathBuf,
}

pub async fn run(options: &Options, cpus: &Cpus) -> anyhow::Result<()> {
    h2load::check_installed()?;
    let perf = std::process::Command::new("perf").arg("--version").output();
    ensure!(
        perf.is_ok_and(|out| out.status.success()),
        "perf is not installed (Debian: linux-perf)"
    );
    let Some(request) = targets::request(options.protocol, options.shape) else {
        bail!(
            "{} has no {}",
            options.protocol.name(),
            options.shape.name()
        );
    };
    ensure!(
        options.stack.protocols().contains(&options.protocol),
        "{} does not speak {}",
        options.stack.name(),
        options.protocol.name()
    );
    let log = options.scratch.join("profiled.log");
    let server = Server::start(options.stack, PORT, &options.peers_dir, cpus, &log).await?;
    preflight::check(
        &preflight::client(),
        server.addr,
        options.protocol,
        options.shape,
        &request,
    )
    .await?;
    let pid = server.pid().context("the server has no pid")?;
    if let Some(dir) = options.output.parent() {
        std::fs::create_dir_all(dir)?;
    }

    let warm_up = Duration::from_secs(1);
    let load = Load {
        concurrency: options.concurrency,
        warm_up,
        duration: options.duration + Duration::from_millis(500),
    };
    let base = format!("http://{}", server.addr);
    let record = async {
        tokio::time::sleep(warm_up).await;
        Command::new("perf")
            .args([
                "record",
                "-F",
                "999",
                "--call-graph",
                "dwarf,16384",
                "-p",
                &pid.to_string(),
                "-o",
            ])
            .arg(&options.output)
            .args(["--", "sleep", &options.duration.as_secs_f64().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
    };
    let (sample, recorded) = tokio::join!(
        h2load::run(&base, &request, load, cpus, &options.scratch),
        record
    );
    let sample = sample?;
    ensure!(recorded?.success(), "perf record failed");
    println!(
        "{} {} {} c={}: {:.0} req/s, p50 {:.0} µs, p99 {:.0} µs (under perf)\n",
        options.stack.name(),
        options.protocol.name(),
        options.shape.name(),
        options.concurrency,
        sample.requests_per_sec,
        sample.p50_us,
        sample.p99_us
    );
    for (title, args, only_layers) in [
        (
            "self time",
            &["--no-children", "--sort", "dso,sym", "--percent-limit", "1"][..],
            false,
        ),
        (
            "inclusive time of the layers (ours and the crates under them)",
            &["--children", "--sort", "sym", "--percent-limit", "0.5"][..],
            true,
        ),
    ] {
        let out = Command::new("perf")
            .args(["report", "--stdio", "-g", "none", "-i"])
            .arg(&options.output)
            .args(args)
            .output()
            .await?;
        let text = String::from_utf8_lossy(&out.stdout);
        println!("== {title}");
        let lines = text
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .filter(|l| !only_layers || is_layer(l));
        for line in lines.take(40) {
            println!("{}", line.chars().take(180).collect::<String>());
        }
        println!();
    }
    println!("profile: {} (perf report -i {0})", options.output.display());
    Ok(())
}

/// Whether a `perf report` line is a service or layer's own call (rather
/// than the generic future plumbing around it).
fn is_layer(line: &str) -> bool {
    const LAYERS: [&str; 9] = [
        "shop_kit",
        "connectrpc_axum",
        "tower_http",
        "tonic",
        "tonic_web",
        "tracing_",
        "metrics",
        "axum::routing",
        "serde_json",
    ];
    line.split_once("[.] ").is_some_and(|(_, symbol)| {
        let symbol = symbol.trim_start_matches('<');
        LAYERS.iter().any(|layer| symbol.starts_with(layer))
    })
}
