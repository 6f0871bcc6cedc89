//! What the numbers were measured on, for the report.

use serde::Serialize;

use crate::cpus::Cpus;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub pinning: String,
    pub commit: String,
    pub date: String,
    /// Versions of the tools involved (h2load, go, node, rustc).
    pub tools: Vec<(String, String)>,
}

impl Machine {
    pub fn read(cpus: &Cpus) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Self {
            cpu: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
                .unwrap_or_else(|| "unknown".to_owned()),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|v| v.trim().to_owned())
                .unwrap_or_default(),
            pinning: cpus.describe(),
            commit: first_line("git", &["rev-parse", "--short", "HEAD"]),
            date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            tools: [
                ("h2load", "h2load", &["--version"][..]),
                ("go", "go", &["version"][..]),
                ("node", "node", &["--version"][..]),
                ("rustc", "rustc", &["--version"][..]),
            ]
            .into_iter()
            .map(|(name, program, args)| (name.to_owned(), first_line(program, args)))
            .collect(),
        }
    }
}

fn first_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "not found".to_owned())
}
