//! Keeps the server and the load generator on separate cores (taskset),
//! so neither steals the other's CPU and runs compare fairly.

use std::ffi::OsStr;

use tokio::process::Command;

/// Which cores the servers and the load get; no pinning on a single core or
/// without `taskset`.
#[derive(Clone, Debug)]
pub struct Cpus {
    pinned: Option<(usize, usize)>,
}

impl Cpus {
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let taskset = std::process::Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success());
        Self {
            pinned: (cores >= 2 && taskset).then_some((0, cores - 1)),
        }
    }

    /// No pinning at all: servers and load share every core (a chaos run
    /// measures nothing).
    pub fn unpinned() -> Self {
        Self { pinned: None }
    }

    /// "server on core 0, load on core 1", for the report.
    pub fn describe(&self) -> String {
        match self.pinned {
            Some((server, load)) => {
                format!("server on core {server}, load generator on core {load} (taskset)")
            }
            None => "not pinned (one core, or no taskset)".to_owned(),
        }
    }

    /// Moves this process (the app suite's own client) to the load core.
    pub fn pin_self_to_load(&self) {
        if let Some((_, load)) = self.pinned {
            let _ = std::process::Command::new("taskset")
                .args([
                    "-a",
                    "-p",
                    "-c",
                    &load.to_string(),
                    &std::process::id().to_string(),
                ])
                .output();
        }
    }

    pub fn server_command(&self, program: &OsStr, args: &[impl AsRef<OsStr>]) -> Command {
        self.pinned_command(self.pinned.map(|(server, _)| server), program, args)
    }

    pub fn load_command(&self, program: &OsStr, args: &[impl AsRef<OsStr>]) -> Command {
        self.pinned_command(self.pinned.map(|(_, load)| load), program, args)
    }

    fn pinned_command(
        &self,
        core: Option<usize>,
        program: &OsStr,
        args: &[impl AsRef<OsStr>],
    ) -> Command {
        match core {
            Some(core) => {
                let mut command = Command::new("taskset");
                command
                    .arg("-c")
                    .arg(core.to_string())
                    .arg(program)
                    .args(args);
                command
            }
            None => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
        }
    }
}
