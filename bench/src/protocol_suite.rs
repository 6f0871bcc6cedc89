//! The protocol suite: every stack, every protocol it speaks, unary and
//! server stream, at each concurrency; repetitions run in rounds over all
//! cases so drift on the machine hits every server alike.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use anyhow::Context;
use serde::Serialize;

use crate::{
    cpus::Cpus,
    h2load::{self, Load, Medians, Sample},
    preflight,
    servers::{Server, Stack},
    targets::{self, Protocol, Shape},
};

/// First port of the servers under test (one each, upwards).
const FIRST_PORT: u16 = 19180;

#[derive(Clone, Debug)]
pub struct Options {
    pub stacks: Vec<Stack>,
    pub concurrency: Vec<u32>,
    pub repetitions: usize,
    pub warm_up: Duration,
    pub duration: Duration,
    pub peers_dir: PathBuf,
    pub scratch: PathBuf,
}

/// One line of the tables: medians over the repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub stack: Stack,
    pub protocol: Protocol,
    pub shape: Shape,
    pub concurrency: u32,
    #[serde(flatten)]
    pub medians: Medians,
    /// Against bare axum doing the same encoding (req/s: higher is better;
    /// latencies: lower is better).
    pub vs_limit: Option<Ratios>,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ratios {
    pub requests_per_sec: f64,
    pub p50: f64,
    pub p99: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Case {
    stack: Stack,
    protocol: Protocol,
    shape: Shape,
}

pub async fn run(options: &Options, cpus: &Cpus) -> anyhow::Result<Vec<Row>> {
    h2load::check_installed()?;
    let mut servers = Vec::new();
    for (port, stack) in (FIRST_PORT..).zip(&options.stacks) {
        let log = options
            .scratch
            .join(format!("{stack:?}.log").to_lowercase());
        servers.push(Server::start(*stack, port, &options.peers_dir, cpus, &log).await?);
    }

    let client = preflight::client();
    let mut cases = Vec::new();
    for server in &servers {
        for shape in Shape::ALL {
            for protocol in server.stack.protocols() {
                let Some(request) = targets::request(*protocol, shape) else {
                    continue;
                };
                preflight::check(&client, server.addr, *protocol, shape, &request)
                    .await
                    .with_context(|| {
                        format!(
                            "{} {} {}: wrong answer",
                            server.stack.name(),
                            protocol.name(),
                            shape.name()
                        )
                    })?;
                cases.push((
                    Case {
                        stack: server.stack,
                        protocol: *protocol,
                        shape,
                    },
                    server.addr,
                    request,
                ));
            }
        }
    }
    eprintln!(
        "protocol suite: {} cases x {} concurrencies x {} repetitions, {:?} each after {:?} warm-up",
        cases.len(),
        options.concurrency.len(),
        options.repetitions,
        options.duration,
        options.warm_up
    );

    let mut samples: HashMap<(Case, u32), Vec<Sample>> = HashMap::new();
    for round in 1..=options.repetitions {
        for (case, addr, request) in &cases {
            for &concurrency in &options.concurrency {
                let load = Load {
                    concurrency,
                    warm_up: options.warm_up,
                    duration: options.duration,
                };
                let sample = h2load::run(
                    &format!("http://{addr}"),
                    request,
                    load,
                    cpus,
                    &options.scratch,
                )
                .await
                .with_context(|| {
                    format!(
                        "{} {} {} c={concurrency}",
                        case.stack.name(),
                        case.protocol.name(),
                        case.shape.name()
                    )
                })?;
                eprintln!(
                    "  round {round}/{}  {:<13} {:<13} {:<6} c={concurrency:<3} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs",
                    options.repetitions,
                    case.stack.name(),
                    case.protocol.name(),
                    if case.shape == Shape::Unary {
                        "unary"
                    } else {
                        "stream"
                    },
                    sample.requests_per_sec,
                    sample.p50_us,
                    sample.p99_us
                );
                samples
                    .entry((*case, concurrency))
                    .or_default()
                    .push(sample);
            }
        }
    }
    drop(servers);
    Ok(rows(
        &cases.iter().map(|(case, ..)| *case).collect::<Vec<_>>(),
        &options.concurrency,
        samples,
    ))
}

fn rows(
    cases: &[Case],
    concurrencies: &[u32],
    mut samples: HashMap<(Case, u32), Vec<Sample>>,
) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for case in cases {
        for &concurrency in concurrencies {
            let samples = samples.remove(&(*case, concurrency)).unwrap_or_default();
            rows.push(Row {
                stack: case.stack,
                protocol: case.protocol,
                shape: case.shape,
                concurrency,
                medians: Medians::of(&samples),
                vs_limit: None,
                samples,
            });
        }
    }
    let limits: HashMap<(Protocol, Shape, u32), Medians> = rows
        .iter()
        .filter(|row| row.stack == Stack::Bare)
        .map(|row| ((row.protocol, row.shape, row.concurrency), row.medians))
        .collect();
    for row in &mut rows {
        if let Some(limit) = limits.get(&(row.protocol.limit(), row.shape, row.concurrency)) {
            let ours = row.medians;
            row.vs_limit = Some(Ratios {
                requests_per_sec: ours.requests_per_sec / limit.requests_per_sec,
                p50: ours.p50_us / limit.p50_us,
                p99: ours.p99_us / limit.p99_us,
            });
        }
    }
    rows
}
