//! The users service's own flags.

use std::path::PathBuf;

use clap::Args;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use shop_users::{passwords::HashingConfig, throttle::ThrottleConfig};

use super::common::{DemoData, ServiceSecret, UsersDatabase, port};

#[derive(Args, Clone, Debug)]
pub struct UsersArgs {
    /// Port of the users service.
    #[arg(id = "users_port", long = "users-port", value_name = "PORT", env = "USERS_PORT", default_value_t = port::USERS)]
    pub port: u16,

    #[command(flatten)]
    pub database: UsersDatabase,

    /// Create the demo account (a known email and password) even where it
    /// is not created by default: by default only the whole shop started
    /// on a loopback --host gets it, never `shop serve` nor a shop others
    /// can reach.
    #[arg(long, env = "SHOP_DEMO_ACCOUNT", value_parser = clap::builder::BoolishValueParser::new())]
    pub demo_account: bool,

    /// A file with the Ed25519 key (PKCS#8, PEM or DER) the users service
    /// signs access tokens with, e.g. from `openssl genpkey -algorithm
    /// ed25519` (default: a key created in and kept by the users database).
    #[arg(long, env = "SHOP_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,

    /// The same key as PEM text (e.g. from a secret store), instead of a file.
    #[arg(
        long,
        env = "SHOP_SIGNING_KEY",
        hide_env_values = true,
        conflicts_with = "signing_key_file"
    )]
    pub signing_key: Option<SecretString>,

    /// Another value of the services' shared secret (--service-secret)
    /// accepted for service tokens while it is rotated, never sent: in a
    /// rotation's first step the new value, in its second the old one
    /// (docs/tls.md). Unset: none.
    #[arg(
        long,
        value_name = "SECRET",
        env = "SHOP_SERVICE_SECRET_PREVIOUS",
        hide_env_values = true
    )]
    pub service_secret_previous: Option<SecretString>,

    /// Memory password hashing may use at once, in MiB (each argon2id hash
    /// takes ~20 MiB, so 256 allows 12 at once, and never more than the
    /// cores); each slot keeps its memory for the next hash.
    #[arg(long, env = "SHOP_PASSWORD_HASHING_MIB", default_value_t = HashingConfig::default().password_hashing_mib)]
    pub password_hashing_mib: usize,

    /// How long a sign-in or log-in waits for a free hashing slot before it
    /// is refused with resource_exhausted, in milliseconds.
    #[arg(long, env = "SHOP_PASSWORD_HASHING_WAIT_MS", default_value_t = HashingConfig::default().password_hashing_wait_ms)]
    pub password_hashing_wait_ms: u64,

    /// LogIn, SignUp and Refresh calls one client IP may make at once
    /// before it is slowed to --sign-in-ip-per-minute.
    #[arg(long, env = "SHOP_SIGN_IN_IP_BURST", default_value_t = ThrottleConfig::default().sign_in_ip_burst)]
    pub sign_in_ip_burst: u32,

    /// LogIn, SignUp and Refresh calls per minute one client IP may sustain.
    #[arg(long, env = "SHOP_SIGN_IN_IP_PER_MINUTE", default_value_t = ThrottleConfig::default().sign_in_ip_per_minute)]
    pub sign_in_ip_per_minute: u32,

    /// Failed log-ins per email before that email is refused until its
    /// window (--sign-in-lockout-secs) ends.
    #[arg(long, env = "SHOP_SIGN_IN_FAILURES", default_value_t = ThrottleConfig::default().sign_in_failures)]
    pub sign_in_failures: u32,

    /// The window failed log-ins are counted in, in seconds.
    #[arg(long, env = "SHOP_SIGN_IN_LOCKOUT_SECS", default_value_t = ThrottleConfig::default().sign_in_lockout_secs)]
    pub sign_in_lockout_secs: u64,
}

impl UsersArgs {
    /// Whether the demo account is created: asked for, or the whole shop
    /// on a host only this machine reaches.
    pub fn demo_account(&self, demo: &DemoData, whole_shop_on_loopback: bool) -> bool {
        !demo.off && (self.demo_account || whole_shop_on_loopback)
    }

    pub fn config(
        &self,
        database: shop_kit::db::DatabaseUrl,
        secret: &ServiceSecret,
        demo_data: bool,
    ) -> anyhow::Result<shop_users::Config> {
        let signing_key = match (&self.signing_key_file, &self.signing_key) {
            (Some(file), _) => Some(std::fs::read(file).map_err(|e| {
                anyhow::anyhow!("cannot read the signing key {}: {e}", file.display())
            })?),
            (None, Some(pem)) => Some(pem.expose_secret().as_bytes().to_vec()),
            (None, None) => None,
        };
        Ok(shop_users::Config {
            database_url: database,
            demo_data,
            service_secret: secret.secret.clone().unwrap_or_default(),
            service_secret_previous: self.service_secret_previous.clone().unwrap_or_default(),
            signing_key: signing_key.map(SecretSlice::from),
            hashing: HashingConfig {
                password_hashing_mib: self.password_hashing_mib,
                password_hashing_wait_ms: self.password_hashing_wait_ms,
            },
            throttle: ThrottleConfig {
                sign_in_ip_burst: self.sign_in_ip_burst,
                sign_in_ip_per_minute: self.sign_in_ip_per_minute,
                sign_in_failures: self.sign_in_failures,
                sign_in_lockout_secs: self.sign_in_lockout_secs,
            },
        })
    }
}
