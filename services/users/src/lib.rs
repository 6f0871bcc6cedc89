//! The users service: accounts (argon2id passwords, case-insensitive unique
//! emails) and sessions (Ed25519-signed access JWTs, single-use refresh
//! tokens), served as `shop.users.v1.UserService`. Its public keys are at
//! `GET /.well-known/jwks.json` for every other service to verify tokens.

pub mod api;
pub mod domain;
pub mod error;
pub mod flags;
pub mod passwords;
pub mod store;
pub mod throttle;
pub mod tokens;

/// Its schema, as `shop migrate users` and its start apply it.
pub use shop_migrations::users as migration;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use shop_kit::{
    Readiness, RpcServer,
    app::{Context, Service, StartFailure},
    auth::{JWKS_PATH, SharedSecret},
    db::DatabaseUrl,
    rpc::rate_class::RateClass,
};
use shop_proto::shop::users::v1::Session;

pub use error::UsersError;

/// How a caller showed it is one of the shop's services (the kit checked
/// either before the method ran: the contract's `shop_secret` caller).
#[derive(Clone, Copy, Debug)]
pub enum ServiceProof<'a> {
    /// Its client certificate (mutual TLS) names this service.
    Certificate(&'a str),
    /// It knows the services' shared secret (no certificate shown).
    SharedSecret,
}

use crate::{
    domain::{Email, NewUser, User},
    passwords::{HashingConfig, Passwords},
    store::Store,
    throttle::{SignInThrottle, ThrottleConfig},
    tokens::{REFRESH_TOKEN_SECS, TokenIssuer},
};

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn now_i64() -> i64 {
    i64::try_from(now_secs()).unwrap_or(i64::MAX)
}

/// Accounts and sessions.
#[derive(Clone, Debug)]
pub struct Accounts {
    store: Store,
    issuer: TokenIssuer,
    passwords: Passwords,
    throttle: SignInThrottle,
}

impl Accounts {
    /// Connects and applies the migrations; signs with `signing_key`
    /// (PKCS#8 DER) when given, else with the key kept in the database
    /// (created on first use).
    pub async fn open(database_url: &str, signing_key: Option<&[u8]>) -> Result<Self, UsersError> {
        let db = shop_kit::db::connect("users", database_url).await?;
        // The signing key is made under the migrations lock: replicas
        // started together on a new database make one, not one each.
        let (_, lock) =
            shop_migrations::up_holding::<shop_migrations::users::Migrator>(&db, "users")
                .await
                .map_err(shop_kit::db::StorageError::migrate)?;
        let store = Store::new(db);
        let issuer = match signing_key {
            Some(der) => TokenIssuer::from_pkcs8(tokens::key_id(der)?, der)?,
            None => {
                let (kid, der) = store
                    .signing_key(TokenIssuer::generate_key, now_i64())
                    .await?;
                TokenIssuer::from_pkcs8(kid, &der)?
            }
        };
        lock.release().await;
        Ok(Self {
            store,
            issuer,
            passwords: Passwords::new(&HashingConfig::default()),
            throttle: SignInThrottle::new(ThrottleConfig::default()),
        })
    }

    /// Bounds password hashing and throttles sign-in attempts as configured.
    pub fn with_limits(mut self, hashing: &HashingConfig, throttle: &ThrottleConfig) -> Self {
        self.passwords = Passwords::new(hashing);
        self.throttle = SignInThrottle::new(throttle.clone());
        self
    }

    /// The limiter of the contract's `sign-in` rate class: per client IP.
    pub fn sign_in_class(&self) -> Arc<dyn RateClass> {
        Arc::new(self.throttle.clone())
    }

    /// An access token for the shop's service `name`, if `proof` shows the
    /// caller is that service. Returns the token and its lifetime.
    pub fn issue_service_token(
        &self,
        name: &str,
        proof: ServiceProof<'_>,
    ) -> Result<(String, Duration), UsersError> {
        let name = domain::service_name(name)?;
        if let ServiceProof::Certificate(certified) = proof
            && certified != name
        {
            return Err(UsersError::CertifiedAsAnother {
                certified: certified.to_owned(),
                asked: name.to_owned(),
            });
        }
        let subject = format!("{}{name}", shop_kit::auth::SERVICE_SUBJECT_PREFIX);
        let token = self.issuer.access_token(&subject, now_secs())?;
        Ok((token, Duration::from_secs(tokens::ACCESS_TOKEN_SECS)))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    pub async fn sign_up(
        &self,
        email: &str,
        password: String,
        display_name: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(User, Session), UsersError> {
        let new = NewUser {
            email: Email::parse(email)?,
            display_name: domain::display_name(display_name)?,
        };
        domain::check_password(&password)?;
        let hash = self.passwords.hash(password, deadline).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let user = self.store.insert_user(&id, &new, hash, now_i64()).await?;
        let session = self.session(&user.id).await?;
        Ok((user, session))
    }

    /// Logs in; after a few failures for one email, that email is refused
    /// for a while, whether or not it has an account.
    pub async fn log_in(
        &self,
        email: &str,
        password: String,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(User, Session), UsersError> {
        let email = Email::parse(email).map_err(|_| UsersError::WrongCredentials)?;
        self.throttle
            .may_try(email.as_str())
            .map_err(|t| UsersError::Throttled {
                retry_after: t.retry_after,
            })?;
        let found = self.store.find_by_email(email.as_str()).await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let matches = self.passwords.verify(password, hash, deadline).await?;
        let Some(user) = user.filter(|_| matches) else {
            self.throttle.failed(email.as_str());
            return Err(UsersError::WrongCredentials);
        };
        self.throttle.succeeded(email.as_str());
        let session = self.session(&user.id).await?;
        Ok((user, session))
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, UsersError> {
        let hash = tokens::secret_hash(refresh_token);
        let user_id = self
            .store
            .spend_refresh_token(&hash, now_i64())
            .await?
            .ok_or(UsersError::InvalidRefreshToken)?;
        self.session(&user_id).await
    }

    async fn session(&self, user_id: &str) -> Result<Session, UsersError> {
        let now = now_secs();
        let access_token = self.issuer.access_token(user_id, now)?;
        let (refresh_token, hash) = tokens::new_refresh_token();
        self.store
            .save_refresh_token(hash, user_id, now_i64() + REFRESH_TOKEN_SECS)
            .await?;
        Ok(Session {
            access_token,
            expires_in: Some(api::duration(Duration::from_secs(
                tokens::ACCESS_TOKEN_SECS,
            ))),
            refresh_token,
        })
    }
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub accounts: Accounts,
}

/// The users service as it is started (by the launcher, `shop serve users`
/// and the tests alike, through [`shop_kit::app::Launch`]).
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    /// Create the demo account in an empty database.
    pub demo_data: bool,
    /// What the banner adds when no demo account is made (where one is).
    pub demo_note: Option<&'static str>,
    /// The secret the shop's services share to get service tokens; empty
    /// disables service tokens. Never printed.
    pub service_secret: SecretString,
    /// Another value accepted for it while it is rotated (empty: none).
    pub service_secret_previous: SecretString,
    /// The key access tokens are signed with (PKCS#8, PEM or DER), for
    /// deployments that keep it out of the database; `None` keeps it in the
    /// database, created on first start.
    pub signing_key: Option<secrecy::SecretSlice<u8>>,
    pub hashing: HashingConfig,
    pub throttle: ThrottleConfig,
}

impl Config {
    /// A users service on `database_url`, with the default limits, no
    /// demo account, no service tokens, its signing key in the database.
    pub fn new(database_url: DatabaseUrl) -> Self {
        Self {
            database_url,
            demo_data: false,
            demo_note: None,
            service_secret: SecretString::default(),
            service_secret_previous: SecretString::default(),
            signing_key: None,
            hashing: HashingConfig::default(),
            throttle: ThrottleConfig::default(),
        }
    }
}

/// The demo account the banner prints.
pub const DEMO_EMAIL: &str = "demo@connect-shop.dev";
pub const DEMO_PASSWORD: &str = "demo-password-1";

impl Service for Config {
    const NAME: &'static str = "users";
    type Handle = Accounts;

    /// Also loads (or creates) the signing key.
    async fn open(&self, _: &Context) -> Result<Accounts, StartFailure> {
        let signing_key = self
            .signing_key
            .as_ref()
            .map(|key| tokens::pkcs8_der(key.expose_secret()))
            .transpose()
            .map_err(StartFailure::config)?;
        Ok(
            Accounts::open(self.database_url.expose(), signing_key.as_deref())
                .await
                .map_err(|e| StartFailure::database(&self.database_url, e))?
                .with_limits(&self.hashing, &self.throttle),
        )
    }

    async fn seed(&self, accounts: &Accounts) -> Result<String, StartFailure> {
        if !self.demo_data {
            return Ok(format!("no demo account{}", self.demo_note.unwrap_or("")));
        }
        match accounts
            .sign_up(DEMO_EMAIL, DEMO_PASSWORD.to_owned(), "Demo Shopper", None)
            .await
        {
            Ok(_) | Err(UsersError::EmailTaken) => Ok(format!(
                "{} {DEMO_EMAIL} / {DEMO_PASSWORD}",
                flags::DEMO_SEEDED
            )),
            Err(error) => Err(StartFailure::database(&self.database_url, error)),
        }
    }

    /// UserService on all three protocols (GetMe and GetPublicKeys also on
    /// GET), the internal ServiceTokenService beside it, and the JWK set
    /// every other service verifies tokens with.
    async fn server(
        &self,
        accounts: Accounts,
        context: &Context,
    ) -> Result<RpcServer, StartFailure> {
        let readiness = Readiness::when(shop_kit::db::ready_check(
            accounts.store().connection().clone(),
        ));
        let verifier = accounts.issuer().verifier().map_err(StartFailure::config)?;
        let jwks = accounts.issuer().jwks_json().to_owned();
        let sign_in = accounts.sign_in_class();
        let state = AppState { accounts };
        let jwks_route = get(move || {
            let jwks = jwks.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "application/jwk-set+json")],
                    jwks,
                )
            }
        });
        Ok(RpcServer::new(context.http.clone(), readiness)
            .serve(api::user_service(state.clone()))
            .serve(api::service_token_service(state))
            .verify_tokens(verifier)
            // Checked by the kit for IssueServiceToken (its `shop_secret`
            // caller); empty, only a client certificate gets a token.
            .shared_secret(SharedSecret::new(
                self.service_secret.expose_secret(),
                self.service_secret_previous.expose_secret(),
            ))
            .rate_class(throttle::SIGN_IN, sign_in)
            .http_route(JWKS_PATH, jwks_route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_the_config_shows_no_secret() {
        let config = Config {
            service_secret: "hunter2-service-secret".into(),
            signing_key: Some(b"private key bytes".to_vec().into()),
            ..Config::new("postgres://shop:hunter2-db@db/users".into())
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("postgres://shop:***@db/users"),
            "{printed}"
        );
        assert!(!printed.contains("112, 114, 105"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }
}
