//! What a soak says at the end: its figures as text (printed, and at the
//! top of the plot), each quantity's drift judged, and the verdict; the
//! timeline as CSV.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
};

use shop_kit::db::POSTGRES_POOL_MAX;

use super::{
    DRIFT_PERCENT, NATS, PHASES, counts,
    timeline::{Point, Seen, drift},
};
use crate::chaos::{calls::Calls, customers::Placed, invariants};

/// The slowest intervals shown with the machine's state then.
const SLOWEST_SHOWN: usize = 8;

/// The peak of the mix, as measured before the soak.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    pub orders_per_second: f64,
    pub visits_per_second: f64,
}

/// Everything a soak saw.
pub struct Outcome<'a> {
    pub seed: u64,
    /// How the held rates were chosen: "80% of it", or given.
    pub held_as: String,
    pub peak: Peak,
    /// (orders, visits) a second offered during the soak.
    pub offered: (f64, f64),
    pub soak_seconds: f64,
    /// Whether the run is long enough for drift to be judged.
    pub judge_drift: bool,
    pub placed: &'a Placed,
    pub calls: &'a Calls,
    pub seen: &'a Seen,
    /// Failed attempts by phase, and the pairs that had any.
    pub failed_attempts: &'a HashMap<&'static str, f64>,
    pub failing_pairs: &'a [String],
    /// (batches, bytes) of traces received.
    pub traces: (u64, u64),
    /// Visits the generator could not send (1024 in flight already).
    pub not_sent: u64,
    pub invariants: &'a invariants::Report,
}

impl Outcome<'_> {
    /// The figures, each violation, the verdict; and whether all held.
    pub fn verdict(&self) -> (String, bool) {
        let mut summary = self.figures();
        let mut broken = self.failures();
        self.drifts(&mut summary, &mut broken);
        let _ = writeln!(summary, "{}", self.invariants.to_string().trim_end());
        for violation in &broken {
            let _ = writeln!(summary, "  VIOLATION {violation}");
        }
        let violations = self.invariants.violations.len() + broken.len();
        let held = violations == 0;
        let _ = writeln!(
            summary,
            "soak: {} in {:.0} s (seed {})",
            if held {
                "all hold".to_owned()
            } else {
                format!("{violations} VIOLATIONS")
            },
            self.soak_seconds,
            self.seed
        );
        (summary, held)
    }

    /// Calls and attempts that failed, and visits never sent.
    fn failures(&self) -> Vec<String> {
        failures(&self.calls.by_phase(), self.failed_attempts, self.not_sent)
    }

    /// What was offered and done: calls, their latency by kind, CPU,
    /// failed attempts, traces.
    fn figures(&self) -> String {
        let points = &self.seen.points;
        let mut summary = String::new();
        let _ = writeln!(summary, "{}", self.placed.summary());
        let _ = writeln!(summary, "{}", self.calls.summary());
        let _ = writeln!(
            summary,
            "peak: {:.0} orders/s and {:.0} visits/s; soak at {}: \
             {:.0} orders/s, {:.0} visits/s offered, {} s",
            self.peak.orders_per_second,
            self.peak.visits_per_second,
            self.held_as,
            self.offered.0,
            self.offered.1,
            self.soak_seconds.round()
        );
        let busy: Vec<&Point> = points.iter().filter(|p| p.calls_per_second > 0.0).collect();
        let mut p99s: Vec<f64> = busy.iter().map(|p| p.p99_ms).collect();
        p99s.sort_by(f64::total_cmp);
        let _ = writeln!(
            summary,
            "calls/s per interval: median {:.0}; p99 per interval: median {:.1} ms, worst {:.1} ms",
            median_of(busy.iter().map(|p| p.calls_per_second)),
            median_of(p99s.iter().copied()),
            p99s.last().copied().unwrap_or(0.0)
        );
        let _ = writeln!(
            summary,
            "the machine: a sleeping thread of the generator woke up to {:.0} ms late \
             (median interval {:.1} ms); some task waited for a CPU {:.0}% of the time \
             (median interval)",
            busy.iter().map(|p| p.machine_late_ms).fold(0.0, f64::max),
            median_of(busy.iter().map(|p| p.machine_late_ms)),
            median_of(busy.iter().map(|p| p.cpu_waited)) * 100.0
        );
        let mut slowest = busy.clone();
        slowest.sort_by(|a, b| b.p99_ms.total_cmp(&a.p99_ms));
        let _ = writeln!(
            summary,
            "the slowest intervals (p99), and the machine then:"
        );
        for point in slowest.iter().take(SLOWEST_SHOWN) {
            let _ = writeln!(
                summary,
                "  at {:>5.0} s: p99 {:>6.0} ms, {} failed; the generator's thread {:.0} ms late, \
                 some task waiting for a CPU {:.0}% of it",
                point.at,
                point.p99_ms,
                point.failed,
                point.machine_late_ms,
                point.cpu_waited * 100.0
            );
        }
        let _ = writeln!(
            summary,
            "CPU per process, mean cores over the soak: {}",
            mean_cpu(points)
                .iter()
                .map(|(name, cores)| format!("{name} {cores:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(summary, "calls by kind (the soak): count, p50, p99");
        for (kind, latencies) in &self.seen.by_kind {
            let _ = writeln!(
                summary,
                "  {kind:<28} {:>9} {:>8.1} ms {:>8.1} ms",
                latencies.count(),
                latencies.quantile(0.5),
                latencies.quantile(0.99)
            );
        }
        let _ = writeln!(
            summary,
            "failed attempts, retried or not: {}",
            PHASES
                .iter()
                .map(|phase| format!(
                    "{phase} {:.0}",
                    self.failed_attempts.get(phase).copied().unwrap_or(0.0)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for pair in self.failing_pairs {
            let _ = writeln!(summary, "  failed attempts {pair}");
        }
        for kind in self.calls.failed_by_kind() {
            let _ = writeln!(summary, "  failed calls {kind}");
        }
        for example in self.calls.examples() {
            let _ = writeln!(summary, "  failed: {example}");
        }
        let (batches, bytes) = self.traces;
        let _ = writeln!(
            summary,
            "traces: {batches} OTLP batches ({} KiB) received",
            bytes / 1024
        );
        summary
    }

    /// Each quantity's move from the second tenth to the last, said in
    /// `summary`; a drift judged is added to `broken`.
    fn drifts(&self, summary: &mut String, broken: &mut Vec<String>) {
        let points = &self.seen.points;
        let moved = [
            (
                "RSS (MiB)",
                drift(points, self.soak_seconds, |p| &p.rss_mib),
                false,
            ),
            (
                "open fds (PostgreSQL's aside)",
                drift(points, self.soak_seconds, |p| &p.fds),
                true,
            ),
            (
                "PostgreSQL connections",
                drift(points, self.soak_seconds, |p| &p.db_connections),
                true,
            ),
        ];
        let _ = writeln!(
            summary,
            "drift from the second tenth to the last{}:",
            if self.judge_drift {
                ""
            } else {
                " (not judged: the run is shorter than 2 minutes)"
            }
        );
        for (what, each, counted) in &moved {
            for (name, second, last, change) in each {
                let too_much = *change > DRIFT_PERCENT && (!counted || last - second > 1.0);
                let judgement = judge(name, *last, too_much);
                let _ = writeln!(
                    summary,
                    "  {what:<30} {name:<16} {second:>8.1} -> {last:>8.1} ({change:+.1}%){}",
                    match &judgement {
                        Judgement::Flat => String::new(),
                        Judgement::Drifts => "  DRIFTS".to_owned(),
                        Judgement::NotJudged(why) => format!("  (not judged: {why})"),
                    }
                );
                if self.judge_drift && judgement == Judgement::Drifts {
                    broken.push(format!(
                        "{what} of {name} moved {change:+.1}% ({second:.1} -> {last:.1})"
                    ));
                }
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Judgement {
    Flat,
    Drifts,
    NotJudged(String),
}

/// What a growth of `name`'s quantity (to `last`) says. Growth is what
/// leaks; the broker's memory is its store of events, bounded by the
/// stream's limits, not the shop's; a database's connections growing
/// toward its pools' bound (each process's pool opens connections as calls
/// need them, up to the kit's maximum) are a pool reaching its working
/// size after a burst, not a leak.
/// Calls that failed (`by_phase`: each phase's name, calls made and
/// failed), attempts that failed (retried or not), and visits never sent:
/// each a violation.
fn failures(
    by_phase: &[(&'static str, u64, u64)],
    failed_attempts: &HashMap<&'static str, f64>,
    not_sent: u64,
) -> Vec<String> {
    let mut broken = Vec::new();
    for (phase, _, failed) in by_phase {
        if *failed > 0 {
            broken.push(format!("{failed} calls failed during the {phase}"));
        }
    }
    for phase in PHASES {
        let failed = failed_attempts.get(phase).copied().unwrap_or(0.0);
        if failed > 0.0 {
            broken.push(format!(
                "{failed:.0} attempts failed during the {phase} (retried or not)"
            ));
        }
    }
    if not_sent > 0 {
        broken.push(format!(
            "{not_sent} visits not sent: 1024 already in flight"
        ));
    }
    broken
}

fn judge(name: &str, last: f64, grew: bool) -> Judgement {
    if !grew {
        return Judgement::Flat;
    }
    if name == NATS {
        return Judgement::NotJudged("the broker's store".to_owned());
    }
    let pools = name
        .strip_prefix("bench_")
        .map(|service| counts().of(service) as f64 * f64::from(POSTGRES_POOL_MAX));
    match pools {
        Some(bound) if last <= bound => {
            Judgement::NotJudged(format!("within its pools' bound of {bound:.0}"))
        }
        _ => Judgement::Drifts,
    }
}

/// Each process's CPU, in cores, averaged over every point.
fn mean_cpu(points: &[Point]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for point in points {
        for (name, cores) in &point.cpu_cores {
            let sum = sums.entry(name.clone()).or_default();
            *sum = (sum.0 + cores, sum.1 + 1.0);
        }
    }
    sums.into_iter()
        .map(|(name, (sum, n))| (name, sum / n))
        .collect()
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    crate::stats::median(&values)
}

/// The points as CSV: one row per look, a column per quantity and name.
pub fn table(points: &[Point]) -> String {
    let names = |pick: fn(&Point) -> &BTreeMap<String, f64>| {
        let mut all: Vec<String> = points
            .iter()
            .flat_map(|p| pick(p).keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    };
    let cpu = names(|p| &p.cpu_cores);
    let rss = names(|p| &p.rss_mib);
    let fds = names(|p| &p.fds);
    let dbs = names(|p| &p.db_connections);
    let mut csv = String::from("seconds,calls_per_second,failed,p99_ms,machine_late_ms,cpu_waited");
    for name in &cpu {
        let _ = write!(csv, ",cpu_cores:{name}");
    }
    for name in &rss {
        let _ = write!(csv, ",rss_mib:{name}");
    }
    for name in &fds {
        let _ = write!(csv, ",fds:{name}");
    }
    for name in &dbs {
        let _ = write!(csv, ",db_connections:{name}");
    }
    csv.push('\n');
    for point in points {
        let _ = write!(
            csv,
            "{:.1},{:.1},{},{:.2},{:.1},{:.3}",
            point.at,
            point.calls_per_second,
            point.failed,
            point.p99_ms,
            point.machine_late_ms,
            point.cpu_waited
        );
        for (names, values) in [
            (&cpu, &point.cpu_cores),
            (&rss, &point.rss_mib),
            (&fds, &point.fds),
            (&dbs, &point.db_connections),
        ] {
            for name in names {
                match values.get(name) {
                    Some(value) => {
                        let _ = write!(csv, ",{value:.1}");
                    }
                    None => csv.push(','),
                }
            }
        }
        csv.push('\n');
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soak_without_a_failed_call_attempt_or_unsent_visit_has_no_failures() {
        let by_phase: Vec<_> = PHASES.iter().map(|phase| (*phase, 1000, 0)).collect();
        let attempts = PHASES.iter().map(|phase| (*phase, 0.0)).collect();
        assert_eq!(failures(&by_phase, &attempts, 0), Vec::<String>::new());
    }

    #[test]
    fn a_failed_call_a_failed_attempt_and_an_unsent_visit_each_fail_the_soak() {
        let phase = PHASES[PHASES.len() - 1];
        let by_phase = vec![(phase, 1000, 2)];
        let attempts = [(phase, 1.0)].into_iter().collect();
        let broken = failures(&by_phase, &attempts, 3);
        assert_eq!(
            broken,
            vec![
                format!("2 calls failed during the {phase}"),
                format!("1 attempts failed during the {phase} (retried or not)"),
                "3 visits not sent: 1024 already in flight".to_owned(),
            ]
        );
    }

    #[test]
    fn growth_is_judged_unless_it_is_the_brokers_store_or_a_pool_within_its_bound() {
        assert_eq!(judge("orders-0", 50.0, false), Judgement::Flat);
        assert_eq!(judge("orders-0", 50.0, true), Judgement::Drifts);
        assert!(matches!(judge(NATS, 90.0, true), Judgement::NotJudged(_)));
        // One users process: 16 connections at most; two catalogs: 32.
        assert!(matches!(
            judge("bench_users", 16.0, true),
            Judgement::NotJudged(_)
        ));
        assert_eq!(judge("bench_users", 17.0, true), Judgement::Drifts);
        assert!(matches!(
            judge("bench_catalog", 32.0, true),
            Judgement::NotJudged(_)
        ));
    }
}
