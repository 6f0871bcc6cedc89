//! The HTTP settings every service shares, readable from flags and env.

use std::time::Duration;

/// The default request size limit: 4 MiB, as gRPC and connect-go default to.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Serving settings common to every service.
#[derive(Clone, Debug, clap::Args)]
pub struct HttpConfig {
    /// Browser origins allowed to call the services directly (CORS), comma
    /// separated; `*` allows any origin.
    #[arg(
        long,
        env = "SHOP_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8080,http://127.0.0.1:8080,http://localhost:5173"
    )]
    pub cors_origins: Vec<String>,

    /// Largest accepted request message in bytes (after decompression for
    /// gRPC, on the wire for Connect); larger ones get resource_exhausted.
    #[arg(long, env = "SHOP_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,

    /// How long in-flight requests may run after SIGTERM/Ctrl-C before the
    /// listener is closed anyway, in seconds.
    #[arg(long, env = "SHOP_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

impl HttpConfig {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_origins: vec!["*".to_owned()],
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            shutdown_grace_secs: 10,
        }
    }
}
