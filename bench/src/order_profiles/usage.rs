//! What the order path costs the machine: each process's CPU time
//! (PostgreSQL's summed over its server processes), and the statements
//! each database ran as `pg_stat_statements` counts them (BEGIN and COMMIT
//! included).

use anyhow::Context;

use crate::app_suite::shop::{clock_ticks_per_sec, cpu_ms_of_stat, proc_file};

/// The name PostgreSQL's CPU is reported under.
pub const POSTGRESQL: &str = "postgresql";

/// CPU time so far (user + system, ms) of each of `processes`.
pub fn cpu_ms(processes: &[(String, u32)]) -> Vec<(String, f64)> {
    processes
        .iter()
        .filter_map(|(name, pid)| Some((name.clone(), cpu_ms_of_stat(&proc_file(*pid, "stat")?)?)))
        .collect()
}

/// PostgreSQL's CPU time so far (ms): every server process's own, and
/// what the postmaster's children that have exited used (so a backend
/// that ends between two readings is not lost).
pub fn postgresql_cpu_ms() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if proc_file(pid, "comm").is_none_or(|comm| comm.trim() != "postgres") {
            continue;
        }
        let Some(stat) = proc_file(pid, "stat") else {
            continue;
        };
        total += cpu_ms_of_stat(&stat).unwrap_or(0.0);
        let parent_is_postgres = parent(&stat)
            .and_then(|ppid| proc_file(ppid, "comm"))
            .is_some_and(|comm| comm.trim() == "postgres");
        if !parent_is_postgres {
            total += reaped_children_ms(&stat).unwrap_or(0.0);
        }
    }
    total
}

/// Field 4 of `/proc/<pid>/stat`: the parent's pid.
fn parent(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Fields 16 and 17 (cutime, cstime): the CPU of its children that have
/// exited and been waited for, in ms.
fn reaped_children_ms(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let cutime: f64 = fields.get(13)?.parse().ok()?;
    let cstime: f64 = fields.get(14)?.parse().ok()?;
    Some((cutime + cstime) * 1000.0 / clock_ticks_per_sec())
}

/// Statements each `bench_*` database has run so far, by service, as
/// `pg_stat_statements` counts them; `None` (and why) when the extension
/// is not loaded.
pub async fn statements(admin_url: &str) -> Result<Vec<(String, f64)>, String> {
    let sql = "SELECT substr(d.datname, 7), sum(s.calls) FROM pg_stat_statements s \
               JOIN pg_database d ON d.oid = s.dbid WHERE d.datname LIKE 'bench\\_%' GROUP BY 1";
    let out = tokio::process::Command::new("psql")
        .args([admin_url, "-tAF", "\t", "-c", sql])
        .output()
        .await
        .context("running psql")
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "pg_stat_statements: {} (tests/postgres/setup.sh loads it)",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (service, calls) = line.split_once('\t')?;
            Some((service.to_owned(), calls.trim().parse().ok()?))
        })
        .collect())
}
