//! What a run on replicas (`shop-replicas`, `shop-soak`) takes from the
//! machine: the shop's binary, a PostgreSQL role, nats-server, a seed, and
//! a folder for the logs; as command-line flags, and resolved.

use std::path::PathBuf;

/// The flags both binaries take.
#[derive(clap::Args, Debug)]
pub struct Flags {
    /// PostgreSQL: a role that may create databases.
    #[arg(long, env = "SHOP_BENCH_POSTGRES_URL")]
    pub postgres_url: String,

    /// The nats-server binary (JetStream).
    #[arg(long, env = "NATS_SERVER", default_value = "nats-server")]
    pub nats_server: String,

    /// Seeds the customers' choices (default: the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,

    /// The shop launcher (default: `shop` next to this binary).
    #[arg(long)]
    pub shop_bin: Option<PathBuf>,

    /// Keep the logs (and certificates) here (default: a temporary folder,
    /// removed after).
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

/// The parts, resolved.
#[derive(Clone, Debug)]
pub struct Parts {
    pub shop_bin: PathBuf,
    /// A PostgreSQL role that may create databases.
    pub postgres_url: String,
    pub nats_server: String,
    pub seed: u64,
    /// Where the services keep their logs (and NATS its store).
    pub scratch: PathBuf,
}

impl Flags {
    /// The parts, and the temporary folder (named `prefix`...) to keep
    /// until the run is over when `--keep` is not given.
    pub fn resolve(self, prefix: &str) -> anyhow::Result<(Parts, tempfile::TempDir)> {
        let scratch = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let parts = Parts {
            shop_bin: match self.shop_bin {
                Some(path) => path,
                None => std::env::current_exe()?.with_file_name("shop"),
            },
            postgres_url: self.postgres_url,
            nats_server: self.nats_server,
            seed: crate::verdict::seed_or_clock(self.seed),
            scratch: self.keep.unwrap_or_else(|| scratch.path().to_owned()),
        };
        Ok((parts, scratch))
    }
}
