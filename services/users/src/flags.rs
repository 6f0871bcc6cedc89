//! The users service as the launcher starts it: its own flags, and its
//! [`Config`] made from them and what the launcher found
//! (`shop_kit::deploy`).

use std::path::PathBuf;

use clap::Args;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use shop_kit::{
    app::BoxError,
    deploy::{DemoAccount, Deployable, Given, NoDatabase, Shared, Try},
};

use crate::{
    Config, DEMO_EMAIL, DEMO_PASSWORD, passwords::HashingConfig, throttle::ThrottleConfig,
};

/// How the service's seed says it made the demo account.
pub(crate) const DEMO_SEEDED: &str = "demo account";

/// What the banner adds when demo data is on but no demo account is made.
const NO_DEMO_ACCOUNT_HERE: &str =
    " (only the whole shop on a loopback --host gets one; --demo-account asks for it)";

/// The users service's own flags.
#[derive(Args, Clone, Debug)]
pub struct Flags {
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

/// Why the users service could not be configured.
#[derive(Debug, thiserror::Error)]
enum FlagsError {
    #[error("cannot read the signing key {path}")]
    SigningKey {
        path: String,
        source: std::io::Error,
    },
}

impl Flags {
    /// The signing key as given, by file or as text.
    fn signing_key(&self) -> Result<Option<SecretSlice<u8>>, FlagsError> {
        Ok(match (&self.signing_key_file, &self.signing_key) {
            (Some(file), _) => Some(
                std::fs::read(file)
                    .map_err(|source| FlagsError::SigningKey {
                        path: file.display().to_string(),
                        source,
                    })?
                    .into(),
            ),
            (None, Some(pem)) => Some(pem.expose_secret().as_bytes().to_vec().into()),
            (None, None) => None,
        })
    }
}

impl Deployable for Config {
    const ABOUT: &'static str = "Accounts, sign-in, access and service tokens.";
    const SHARES: &'static [Shared] = &[Shared::ServiceSecret, Shared::DemoData];
    type Flags = Flags;

    /// The demo account is made when asked for, or for the whole shop on
    /// a host only this machine reaches; never with demo data off.
    fn configure(flags: Flags, given: Given) -> Result<Self, BoxError> {
        let demo_account = given.demo_data && (flags.demo_account || given.whole_shop_on_loopback);
        Ok(Self {
            database_url: given.database_url.ok_or(NoDatabase)?,
            demo_data: demo_account,
            demo_note: (given.demo_data && !demo_account).then_some(NO_DEMO_ACCOUNT_HERE),
            service_secret: given.service_secret,
            service_secret_previous: flags.service_secret_previous.clone().unwrap_or_default(),
            signing_key: flags.signing_key()?,
            hashing: HashingConfig {
                password_hashing_mib: flags.password_hashing_mib,
                password_hashing_wait_ms: flags.password_hashing_wait_ms,
            },
            throttle: ThrottleConfig {
                sign_in_ip_burst: flags.sign_in_ip_burst,
                sign_in_ip_per_minute: flags.sign_in_ip_per_minute,
                sign_in_failures: flags.sign_in_failures,
                sign_in_lockout_secs: flags.sign_in_lockout_secs,
            },
        })
    }

    /// Logging in as the demo account, when it was made.
    fn tries(seeded: &str) -> Vec<Try> {
        Self::demo_account(seeded)
            .map(|demo| Try::Post {
                method: "shop.users.v1.UserService/LogIn",
                body: format!(
                    r#"{{"email": "{}", "password": "{}"}}"#,
                    demo.email, demo.password
                ),
            })
            .into_iter()
            .collect()
    }

    fn demo_account(seeded: &str) -> Option<DemoAccount> {
        seeded.starts_with(DEMO_SEEDED).then_some(DemoAccount {
            email: DEMO_EMAIL,
            password: DEMO_PASSWORD,
        })
    }
}
