//! What the soak watches over time, one point every so often: the calls
//! made (per second, failed) and their p99 since the last point; each
//! process's resident memory and open file descriptors (its sockets to
//! PostgreSQL aside: those are its pool's, judged as connections); each
//! database's connections (PostgreSQL's `pg_stat_activity`); and whether
//! the machine itself held everything up ([`super::pauses`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::ConnectionTrait;

use super::pauses::{self, Pauses};
use crate::{
    app_suite::shop::{cpu_ms_of_stat, kib_field, proc_file},
    chaos::calls::Calls,
    stats::{median, percentile},
};

/// One look.
#[derive(Clone, Debug, Default)]
pub struct Point {
    /// Seconds since the soak began.
    pub at: f64,
    pub calls_per_second: f64,
    pub failed: u64,
    /// Of the calls that ended since the last point; 0 when none did.
    pub p99_ms: f64,
    /// CPU used since the last point, in cores (1.0: one core all the
    /// time), by process.
    pub cpu_cores: BTreeMap<String, f64>,
    /// By process.
    pub rss_mib: BTreeMap<String, f64>,
    /// By process, its sockets to PostgreSQL aside.
    pub fds: BTreeMap<String, f64>,
    /// By database.
    pub db_connections: BTreeMap<String, f64>,
    /// The longest a plain thread of the load generator woke late in the
    /// interval (ms): the machine's own stalls.
    pub machine_late_ms: f64,
    /// The share of the interval in which some task waited for a CPU
    /// (0 to 1; 0 where the kernel does not say).
    pub cpu_waited: f64,
}

/// Latencies of one kind of call over the whole run, in buckets 2% wide
/// (memory bounded however long it runs).
#[derive(Debug, Default)]
pub struct Latencies {
    buckets: BTreeMap<u32, u64>,
    count: u64,
}

const BUCKET_RATIO: f64 = 1.02;

impl Latencies {
    fn add(&mut self, ms: f32) {
        let bucket = (f64::from(ms).max(0.001) * 1000.0).ln() / BUCKET_RATIO.ln();
        *self.buckets.entry(bucket.max(0.0) as u32).or_default() += 1;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile in ms, within 2%.
    pub fn quantile(&self, q: f64) -> f64 {
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return BUCKET_RATIO.powf(f64::from(*bucket) + 0.5) / 1000.0;
            }
        }
        0.0
    }
}

/// What the timeline saw: its points, and each kind of call's latencies.
pub struct Seen {
    pub points: Vec<Point>,
    pub by_kind: BTreeMap<&'static str, Latencies>,
}

/// Looks every `every` until finished.
pub struct Timeline {
    points: Arc<Mutex<Vec<Point>>>,
    by_kind: Arc<Mutex<BTreeMap<&'static str, Latencies>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Timeline {
    /// Watches `processes` ((name, pid)), the calls counted in `calls`, and
    /// the connections to the databases named `bench_*` of `postgres_url`.
    pub async fn start(
        every: Duration,
        processes: Vec<(String, u32)>,
        calls: Arc<Calls>,
        postgres_url: &str,
    ) -> anyhow::Result<Self> {
        let db = sea_orm::Database::connect(postgres_url).await?;
        let postgres_port = port_of(postgres_url);
        let points: Arc<Mutex<Vec<Point>>> = Arc::default();
        let by_kind: Arc<Mutex<BTreeMap<&'static str, Latencies>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let pauses = Pauses::watch()?;
        let task = tokio::spawn({
            let (points, by_kind, stop) = (points.clone(), by_kind.clone(), stop.clone());
            async move {
                let began = Instant::now();
                let mut last = (began, made(&calls));
                let mut last_waited = pauses::cpu_waited_us();
                let cpu_ms = |pid| cpu_ms_of_stat(&proc_file(pid, "stat")?);
                let mut last_cpu = each(&processes, cpu_ms);
                calls.take_latencies();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(every).await;
                    let now = (Instant::now(), made(&calls));
                    let seconds = now.0.duration_since(last.0).as_secs_f64().max(1e-3);
                    let ended = calls.take_latencies();
                    {
                        let mut by_kind = by_kind.lock().unwrap_or_else(PoisonError::into_inner);
                        for (kind, ms) in &ended {
                            by_kind.entry(kind).or_default().add(*ms);
                        }
                    }
                    let mut latencies: Vec<f64> =
                        ended.into_iter().map(|(_, ms)| f64::from(ms)).collect();
                    latencies.sort_by(f64::total_cmp);
                    let cpu = each(&processes, cpu_ms);
                    let cpu_cores = cpu
                        .iter()
                        .filter_map(|(name, ms)| {
                            let before = last_cpu.get(name)?;
                            Some((name.clone(), (ms - before) / 1000.0 / seconds))
                        })
                        .collect();
                    last_cpu = cpu;
                    let waited = pauses::cpu_waited_us();
                    let cpu_waited = match (last_waited, waited) {
                        (Some(before), Some(now)) => {
                            (now.saturating_sub(before) as f64 / 1e6 / seconds).min(1.0)
                        }
                        _ => 0.0,
                    };
                    last_waited = waited;
                    let point = Point {
                        at: began.elapsed().as_secs_f64(),
                        cpu_cores,
                        calls_per_second: (now.1.0 - last.1.0) as f64 / seconds,
                        failed: now.1.1 - last.1.1,
                        p99_ms: if latencies.is_empty() {
                            0.0
                        } else {
                            percentile(&latencies, 0.99)
                        },
                        rss_mib: each(&processes, |pid| {
                            let kib = kib_field(&proc_file(pid, "status")?, "VmRSS:")?;
                            Some(kib as f64 / 1024.0)
                        }),
                        fds: {
                            let pools = sockets_to(postgres_port);
                            each(&processes, |pid| fds_besides(pid, &pools))
                        },
                        db_connections: connections(&db).await.unwrap_or_default(),
                        machine_late_ms: pauses.take_longest_ms(),
                        cpu_waited,
                    };
                    last = now;
                    points
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(point);
                }
                let _ = db.close().await;
            }
        });
        Ok(Self {
            points,
            by_kind,
            stop,
            task,
        })
    }

    /// Stops looking: every point, and the latencies by kind.
    pub async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        Seen {
            points: std::mem::take(
                &mut *self.points.lock().unwrap_or_else(PoisonError::into_inner),
            ),
            by_kind: std::mem::take(
                &mut *self.by_kind.lock().unwrap_or_else(PoisonError::into_inner),
            ),
        }
    }
}

/// (calls made, failed) so far.
fn made(calls: &Calls) -> (u64, u64) {
    calls
        .by_phase()
        .iter()
        .fold((0, 0), |(m, f), (_, made, failed)| (m + made, f + failed))
}

fn each(processes: &[(String, u32)], read: impl Fn(u32) -> Option<f64>) -> BTreeMap<String, f64> {
    processes
        .iter()
        .filter_map(|(name, pid)| Some((name.clone(), read(*pid)?)))
        .collect()
}

/// The port of a PostgreSQL URL (`postgres://user@host:port/db`), 5432
/// when it names none.
fn port_of(url: &str) -> u16 {
    let authority = url.split("://").nth(1).unwrap_or(url);
    let host = authority.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    host.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(5432)
}

/// This machine's TCP sockets whose far end is `port` (by inode), as
/// `/proc/net/tcp` and `tcp6` list them. Sockets no process holds any
/// more (TIME_WAIT, inode 0) are left out.
fn sockets_to(port: u16) -> BTreeSet<u64> {
    let far_end = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let remote = fields.get(2)?;
                    remote
                        .ends_with(&far_end)
                        .then(|| fields.get(9)?.parse().ok())?
                })
                .filter(|&inode: &u64| inode != 0)
                .collect::<Vec<u64>>()
        })
        .collect()
}

/// `pid`'s open file descriptors, but for the sockets in `aside`.
fn fds_besides(pid: u32, aside: &BTreeSet<u64>) -> Option<f64> {
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let targets = open
        .filter_map(Result::ok)
        .map(|fd| std::fs::read_link(fd.path()).ok());
    Some(counted_besides(targets, aside) as f64)
}

/// How many of the fds whose links are `targets` (none: gone meanwhile,
/// counted) are not sockets in `aside`.
fn counted_besides(
    targets: impl Iterator<Item = Option<std::path::PathBuf>>,
    aside: &BTreeSet<u64>,
) -> usize {
    targets
        .filter(|target| {
            let inode = target
                .as_ref()
                .and_then(|t| t.to_str())
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            !inode.is_some_and(|inode| aside.contains(&inode))
        })
        .count()
}

/// Connections to each of the run's databases now.
async fn connections(db: &sea_orm::DatabaseConnection) -> anyhow::Result<BTreeMap<String, f64>> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT datname, COUNT(*)::BIGINT AS n FROM pg_stat_activity \
             WHERE datname LIKE 'bench\\_%' GROUP BY datname"
                .to_owned(),
        ))
        .await?;
    let mut by_database = BTreeMap::new();
    for row in rows {
        let name: String = row.try_get("", "datname")?;
        let n: i64 = row.try_get("", "n")?;
        by_database.insert(name, n as f64);
    }
    Ok(by_database)
}

/// How a quantity moved between the second tenth of the run (after the
/// warm-up) and the last tenth: (name, median then, median at the end,
/// change in percent). Medians, since a sample lands on whatever work is
/// in flight at that instant (a password hash holds 19 MiB while it runs).
pub fn drift(
    points: &[Point],
    duration: f64,
    pick: impl Fn(&Point) -> &BTreeMap<String, f64>,
) -> Vec<(String, f64, f64, f64)> {
    let median_within = |from: f64, to: f64, name: &str| {
        let values: Vec<f64> = points
            .iter()
            .filter(|p| p.at >= from && p.at <= to)
            .filter_map(|p| pick(p).get(name).copied())
            .collect();
        (!values.is_empty()).then(|| median(&values))
    };
    let names: BTreeSet<&String> = points.iter().flat_map(|p| pick(p).keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let second = median_within(duration * 0.1, duration * 0.2, name)?;
            let last = median_within(duration * 0.9, duration * 1.01, name)?;
            let change = if second > 0.0 {
                (last - second) / second * 100.0
            } else {
                0.0
            };
            Some((name.clone(), second, last, change))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss(at: f64, mib: f64) -> Point {
        Point {
            at,
            rss_mib: [("users-0".to_owned(), mib)].into(),
            ..Point::default()
        }
    }

    #[test]
    fn the_port_of_a_postgres_url_is_its_own_or_5432() {
        assert_eq!(
            port_of("postgres://u:p@127.0.0.1:5433/db?sslmode=disable"),
            5433
        );
        assert_eq!(port_of("postgres://u:p%40x@localhost/db"), 5432);
        assert_eq!(port_of("postgres://[::1]:6543/db"), 6543);
    }

    /// The inode of the socket behind `fd` of this process.
    fn inode(fd: &impl std::os::fd::AsRawFd) -> u64 {
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("fd");
        let target = target.to_str().expect("text");
        target["socket:[".len()..target.len() - 1]
            .parse()
            .expect("inode")
    }

    #[test]
    fn the_sockets_to_the_database_are_found_by_its_port_and_not_counted() {
        let database = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = database.local_addr().expect("addr").port();
        let pool: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        let accepted: Vec<_> = (0..3)
            .map(|_| database.accept().expect("accept").0)
            .collect();
        // A connection the pool closed first: its end lingers in TIME_WAIT,
        // held by no process (inode 0).
        let closed = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (far, _) = database.accept().expect("accept");
        drop(closed);
        drop(far);

        let aside = sockets_to(port);
        let pool_inodes: BTreeSet<u64> = pool.iter().map(inode).collect();
        // The pool's ends, not the database's (they listen on the port).
        assert_eq!(aside, pool_inodes);

        let links = pool
            .iter()
            .map(inode)
            .chain(accepted.iter().map(inode))
            .map(|inode| Some(format!("socket:[{inode}]").into()))
            .chain([Some("/dev/null".into()), Some("pipe:[7]".into()), None]);
        // The 3 accepted sockets, /dev/null, the pipe and the one gone.
        assert_eq!(counted_besides(links, &aside), 6);
    }

    #[test]
    fn latencies_are_kept_in_buckets_within_two_percent() {
        let mut latencies = Latencies::default();
        for ms in 1..=1000 {
            latencies.add(ms as f32);
        }
        assert_eq!(latencies.count(), 1000);
        for (q, expected) in [(0.5, 500.0), (0.99, 990.0), (1.0, 1000.0)] {
            let found = latencies.quantile(q);
            assert!((found / expected - 1.0).abs() < 0.02, "q{q}: {found}");
        }
    }

    #[test]
    fn drift_compares_the_second_tenth_with_the_last_by_median() {
        // 100 s: the warm-up climbs, then a hash now and then (+19 MiB)
        // over a flat floor; the end is as the second tenth was.
        let points: Vec<Point> = (0..100)
            .map(|second| {
                let at = f64::from(second);
                let mib = if second < 10 {
                    50.0 + at
                } else if second % 7 == 0 {
                    119.0
                } else {
                    100.0
                };
                rss(at, mib)
            })
            .collect();
        let moved = drift(&points, 100.0, |p| &p.rss_mib);
        assert_eq!(moved, vec![("users-0".to_owned(), 100.0, 100.0, 0.0)]);

        let leaking: Vec<Point> = (0..100)
            .map(|second| rss(f64::from(second), 100.0 + f64::from(second) / 10.0))
            .collect();
        let (_, second, last, change) = drift(&leaking, 100.0, |p| &p.rss_mib)[0].clone();
        assert!(
            last > second && change > 5.0,
            "{second} -> {last}: {change}"
        );
    }
}
