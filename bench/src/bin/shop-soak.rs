//! `shop-soak`, run by `just soak`: the replicas' production set-up (mutual
//! TLS, PostgreSQL, NATS, traces at 1%) held at 80% of its measured peak
//! by gRPC, Connect, gRPC-Web and REST clients for a long time; then what
//! drifted and what must hold. See `shop_bench::soak`.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use shop_bench::soak;

#[derive(Parser, Debug)]
#[command(
    name = "shop-soak",
    about = "Holds the shop's production set-up (two replicas of catalog, orders and payments; \
             PostgreSQL, NATS, mutual TLS, traces at 1%) at 80% of its measured peak for \
             DURATION (or at the rates given by --hold), then says what drifted and checks that \
             nothing failed or was lost",
    long_about = "Starts users, the gateway and two replicas of catalog, orders and payments \
                  (`shop serve`, as `just replicas` does) with mutual TLS between them (`shop \
                  certs`), TLS to the clients and traces sampled at 1% to an OTLP receiver \
                  that counts and discards them. Measures the peak of a mix of clients (gRPC \
                  customers ordering, repeating and cancelling; Connect, gRPC-Web and REST \
                  visitors browsing, opening the web home, watching their order, signing in), \
                  then offers SHARE of it (or the rates of --hold) for DURATION, looking at \
                  calls/s, p99, every process's RSS and open fds and every database's \
                  connections as it goes. \
                  Exits 1 if a call or an attempt failed, if memory, fds or connections moved \
                  more than 5% from the second tenth of the run to the last (medians, growth \
                  only, runs of 2 minutes or more; nats-server's memory and connections \
                  within their pools' bound are shown, not judged), or if an invariant of `just chaos` broke. Writes soak.html \
                  (the plot) and soak.csv into --out."
)]
struct Cli {
    /// How long the load is held: 90s, 10m, 4h (a number alone is seconds).
    /// The clients renew their 15-minute sessions as an app does.
    #[arg(default_value = "10m", value_parser = duration)]
    duration: Duration,

    #[command(flatten)]
    parts: shop_bench::replicas::parts::Flags,

    /// Customers ordering over gRPC.
    #[arg(long, default_value_t = 16)]
    customers: usize,

    /// Visitors browsing over Connect, gRPC-Web and REST (as many call at
    /// once while the peak is measured).
    #[arg(long, default_value_t = 16)]
    visitors: usize,

    /// Seconds the peak is measured.
    #[arg(long, default_value_t = 10)]
    peak_secs: u64,

    /// The share of the peak held, from 0.05 to 1.
    #[arg(long, default_value_t = 0.8)]
    share: f64,

    /// Hold these rates instead of a share of the peak: ORDERS,VISITS a
    /// second (e.g. 91,343), to offer a build what an earlier run offered
    /// another (a peak measured over seconds varies from run to run).
    #[arg(long, value_name = "ORDERS,VISITS", value_parser = rates, conflicts_with = "share")]
    hold: Option<(f64, f64)>,

    /// Freeze the whole database now and then while the load is held:
    /// EVERY,FOR (e.g. 10s,450ms) stops every PostgreSQL process on this
    /// machine for FOR every EVERY (SIGSTOP, then SIGCONT; as root), as a
    /// slow flush of the disk stalls every commit at once.
    #[arg(long, value_name = "EVERY,FOR", value_parser = freezes)]
    freeze_database: Option<(Duration, Duration)>,

    /// How often to look at the calls, memory, fds and connections, in
    /// seconds.
    #[arg(long, default_value_t = 1)]
    every_secs: u64,

    /// Stock each demo product starts with.
    #[arg(long, default_value_t = 100_000_000)]
    stock: i32,

    /// Where soak.html and soak.csv go.
    #[arg(long, default_value = "target/soak")]
    out: PathBuf,
}

/// "90s", "10m", "4h", "600".
fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number and s, m or h, e.g. 10m"))?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(format!("{text:?}: the unit is s, m or h, e.g. 10m")),
    };
    if seconds == 0 {
        return Err("the soak needs a duration above zero".to_owned());
    }
    Ok(Duration::from_secs(seconds))
}

/// "91,343": orders and visits a second, each above zero.
fn rates(text: &str) -> Result<(f64, f64), String> {
    let expected = || format!("{text:?}: expected ORDERS,VISITS a second, e.g. 91,343");
    let (orders, visits) = text.split_once(',').ok_or_else(expected)?;
    let rate = |part: &str| {
        part.trim()
            .parse::<f64>()
            .ok()
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .ok_or_else(expected)
    };
    Ok((rate(orders)?, rate(visits)?))
}

/// "10s,450ms": how often and how long, FOR shorter than EVERY.
fn freezes(text: &str) -> Result<(Duration, Duration), String> {
    let expected = || format!("{text:?}: expected EVERY,FOR, e.g. 10s,450ms");
    let (every, hold) = text.split_once(',').ok_or_else(expected)?;
    let span = |part: &str| {
        let part = part.trim();
        let (number, millis) = match part.strip_suffix("ms") {
            Some(number) => (number, 1),
            None => (part.strip_suffix('s')?, 1000),
        };
        let number: u64 = number.parse().ok().filter(|number| *number > 0)?;
        Some(Duration::from_millis(number.checked_mul(millis)?))
    };
    let (every, hold) = (
        span(every).ok_or_else(expected)?,
        span(hold).ok_or_else(expected)?,
    );
    if hold >= every {
        return Err(format!(
            "{text:?}: the freeze must be shorter than the time between"
        ));
    }
    Ok((every, hold))
}

fn main() -> std::process::ExitCode {
    shop_bench::verdict::exit_with("shop-soak", run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    anyhow::ensure!(
        (0.05..=1.0).contains(&cli.share),
        "--share {} is outside 0.05-1",
        cli.share
    );
    let peak = Duration::from_secs(cli.peak_secs.max(1));
    let (parts, _scratch) = cli.parts.resolve("shop-soak")?;
    let options = soak::Options {
        parts,
        duration: cli.duration,
        customers: cli.customers.max(1),
        visitors: cli.visitors.max(1),
        peak,
        share: cli.share,
        hold: cli.hold,
        every: Duration::from_secs(cli.every_secs.max(1)),
        freeze_database: cli.freeze_database,
        stock: cli.stock,
        out: cli.out,
    };
    soak::run(&options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("4h"), Ok(Duration::from_secs(14_400)));
        assert_eq!(duration("600"), Ok(Duration::from_secs(600)));
        assert!(duration("10d").is_err());
        assert!(duration("m").is_err());
        assert!(duration("0s").is_err());
    }

    #[test]
    fn freezes_are_how_often_and_how_long() {
        let ms = Duration::from_millis;
        assert_eq!(freezes("10s,450ms"), Ok((ms(10_000), ms(450))));
        assert_eq!(freezes("20s, 1s"), Ok((ms(20_000), ms(1000))));
        for wrong in [
            "10s", "10s,10s", "1s,2s", "10,450", "10s,0ms", "10m,1s", "s,ms",
        ] {
            assert!(freezes(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn held_rates_are_two_positive_numbers() {
        assert_eq!(rates("91,343"), Ok((91.0, 343.0)));
        assert_eq!(rates("91.5, 343"), Ok((91.5, 343.0)));
        for wrong in [
            "91", "91,", ",343", "0,343", "91,-1", "a,b", "91,343,1", "inf,1",
        ] {
            assert!(rates(wrong).is_err(), "{wrong}");
        }
    }
}
