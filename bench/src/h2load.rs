//! Drives load with h2load (nghttp2's HTTP/2 benchmarking tool, Debian's
//! nghttp2-client): `-c N` connections with one stream each, a warm-up,
//! then a timed run. Throughput is h2load's; latency percentiles come from
//! its per-request log.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use crate::{cpus::Cpus, stats, targets::HttpRequest};

/// How hard and how long to push.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Load {
    pub concurrency: u32,
    #[serde(with = "secs")]
    pub warm_up: Duration,
    #[serde(with = "secs")]
    pub duration: Duration,
}

/// One timed run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sample {
    pub requests_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub requests: u64,
}

/// Repetitions of one case summed up: medians, and how far req/s spread.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Medians {
    pub requests_per_sec: f64,
    /// (max - min) / median of requests/s over the repetitions, in %.
    pub spread_percent: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Medians {
    pub fn of(samples: &[Sample]) -> Self {
        let of = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
        Self {
            requests_per_sec: stats::median(&of(|s| s.requests_per_sec)),
            spread_percent: stats::spread_percent(&of(|s| s.requests_per_sec)),
            p50_us: stats::median(&of(|s| s.p50_us)),
            p99_us: stats::median(&of(|s| s.p99_us)),
        }
    }
}

/// Checks h2load is installed.
pub fn check_installed() -> anyhow::Result<()> {
    let found = std::process::Command::new("h2load")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    ensure!(
        found,
        "h2load is not installed: `apt-get install nghttp2-client` (bench/run.sh does it as root)"
    );
    Ok(())
}

/// Loads `url` + `request` for `load`, on the load core; `scratch` holds the
/// body and log files.
pub async fn run(
    base_url: &str,
    request: &HttpRequest,
    load: Load,
    cpus: &Cpus,
    scratch: &Path,
) -> anyhow::Result<Sample> {
    let log = scratch.join("h2load.log");
    let mut args: Vec<String> = vec![
        "-t1".into(),
        format!("-c{}", load.concurrency),
        "-m1".into(),
        format!("-D{}", secs_arg(load.duration)),
        format!("--warm-up-time={}", secs_arg(load.warm_up)),
        format!("--log-file={}", log.display()),
    ];
    if let Some(body) = &request.body {
        let path = scratch.join("h2load.body");
        std::fs::write(&path, body)?;
        args.push(format!("-d{}", path.display()));
    }
    for (name, value) in &request.headers {
        args.push(format!("-H{name}: {value}"));
    }
    args.push(format!("{base_url}{}", request.path_and_query));
    let _ = std::fs::remove_file(&log);
    let output = cpus
        .load_command("h2load".as_ref(), &args)
        .output()
        .await
        .context("running h2load")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "h2load failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let summary = Summary::parse(&stdout)?;
    ensure!(
        summary.failed == 0 && summary.non_2xx == 0 && summary.succeeded > 0,
        "h2load saw failures: {stdout}"
    );
    let mut latencies = read_latencies(&log)?;
    ensure!(!latencies.is_empty(), "h2load logged no requests");
    latencies.sort_by(f64::total_cmp);
    Ok(Sample {
        requests_per_sec: summary.requests_per_sec,
        p50_us: stats::percentile(&latencies, 0.50),
        p99_us: stats::percentile(&latencies, 0.99),
        requests: summary.succeeded,
    })
}

fn secs_arg(duration: Duration) -> String {
    format!("{}ms", duration.as_millis().max(1))
}

/// What h2load's summary says.
#[derive(Debug, PartialEq)]
struct Summary {
    requests_per_sec: f64,
    succeeded: u64,
    failed: u64,
    non_2xx: u64,
}

impl Summary {
    fn parse(stdout: &str) -> anyhow::Result<Self> {
        let line = |prefix: &str| {
            stdout
                .lines()
                .find(|l| l.starts_with(prefix))
                .with_context(|| format!("no `{prefix}` line in h2load's output: {stdout}"))
        };
        // finished in 3.00s, 12345.67 req/s, 1.23MB/s
        let finished = line("finished in")?;
        let requests_per_sec = finished
            .split(", ")
            .find_map(|part| part.strip_suffix(" req/s"))
            .and_then(|n| n.parse().ok())
            .context("no req/s")?;
        // requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed, 0 errored, 0 timeout
        let requests = line("requests:")?;
        let count = |what: &str| -> anyhow::Result<u64> {
            requests
                .split(", ")
                .find_map(|part| part.trim_start_matches("requests: ").strip_suffix(what))
                .and_then(|n| n.trim().parse().ok())
                .with_context(|| format!("no `{what}` count in {requests}"))
        };
        // status codes: 10 2xx, 0 3xx, 0 4xx, 0 5xx
        let codes = line("status codes:")?;
        let non_2xx = codes
            .trim_start_matches("status codes: ")
            .split(", ")
            .filter(|part| !part.ends_with("2xx"))
            .filter_map(|part| part.split(' ').next()?.parse::<u64>().ok())
            .sum();
        Ok(Self {
            requests_per_sec,
            succeeded: count(" succeeded")?,
            failed: count(" failed")? + count(" errored")? + count(" timeout")?,
            non_2xx,
        })
    }
}

/// The third column of h2load's log: microseconds until the end of each
/// response.
fn read_latencies(log: &Path) -> anyhow::Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.trim().parse().ok())
        .collect())
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        duration: &std::time::Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
starting benchmark...
finished in 3.00s, 21534.33 req/s, 1.64MB/s
requests: 64603 total, 64619 started, 64603 done, 64603 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 64603 2xx, 0 3xx, 0 4xx, 0 5xx
";

    #[test]
    fn reads_throughput_and_counts() {
        assert_eq!(
            Summary::parse(OUTPUT).expect("parses"),
            Summary {
                requests_per_sec: 21534.33,
                succeeded: 64603,
                failed: 0,
                non_2xx: 0,
            }
        );
    }

    #[test]
    fn counts_errors_as_failures() {
        let output = OUTPUT
            .replace("0 failed, 0 errored", "2 failed, 3 errored")
            .replace("0 4xx", "7 4xx");
        let summary = Summary::parse(&output).expect("parses");
        assert_eq!((summary.failed, summary.non_2xx), (5, 7));
    }

    #[test]
    fn output_without_a_summary_is_an_error() {
        assert!(Summary::parse("connect failed").is_err());
    }
}
