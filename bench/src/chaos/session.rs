//! A customer's session with the shop, as a client app keeps one: the
//! access token, renewed with the refresh token (`Refresh`) shortly before
//! it expires (the shop's last 15 minutes), or by signing in again
//! (`LogIn`) when the refresh fails for good (its refresh token spent by
//! an answer that was lost). Runs longer than a token's life (`just soak`)
//! need it; a renewal that fails while the token held is still valid is
//! tried again a few seconds later.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use shop_kit::client::{CallExt as _, Peer, Renewable};
use shop_proto::shop::users::v1::{
    LogInRequest, RefreshRequest, Session as Issued, user_service_client::UserServiceClient,
};
use tokio::sync::Mutex;
use tonic::{Code, Request, Status};

use super::calls::Calls;

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(120);
/// After a renewal fails, the token held is used this long before the
/// next try (while it is valid).
const RENEW_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// A session; clones share it (one renewal at a time).
#[derive(Clone, Debug)]
pub struct Session {
    held: Arc<Mutex<Renewable<Tokens>>>,
    renewal: Option<Arc<Renewal>>,
}

/// What the users service issued: the token to call with, and the one
/// that renews it.
#[derive(Debug)]
struct Tokens {
    access: Arc<str>,
    refresh: String,
}

impl Tokens {
    fn held(issued: Issued) -> Renewable<Tokens> {
        let expires_in = issued.expires_in.map_or(0, |d| d.seconds);
        let tokens = Tokens {
            access: issued.access_token.into(),
            refresh: issued.refresh_token,
        };
        Renewable::issued(tokens, expires_in, RENEW_BEFORE)
    }
}

/// How a session is renewed: at the users service, as whom, its calls
/// counted with the customers'.
#[derive(Debug)]
struct Renewal {
    users: Peer,
    email: String,
    password: String,
    calls: Arc<Calls>,
}

impl Session {
    /// A session that is never renewed (runs shorter than a token's life).
    pub fn fixed(access: &str) -> Self {
        let tokens = Tokens {
            access: access.into(),
            refresh: String::new(),
        };
        let year = Duration::from_secs(365 * 24 * 3600);
        Self {
            held: Arc::new(Mutex::new(Renewable::valid_for(
                tokens,
                year,
                Duration::ZERO,
            ))),
            renewal: None,
        }
    }

    /// `issued` to `email`, renewed at `users` while it is used.
    pub fn renewed(
        issued: Issued,
        users: Peer,
        email: String,
        password: String,
        calls: Arc<Calls>,
    ) -> Self {
        Self {
            held: Arc::new(Mutex::new(Tokens::held(issued))),
            renewal: Some(Arc::new(Renewal {
                users,
                email,
                password,
                calls,
            })),
        }
    }

    /// `message` as a request carrying the access token of now (see
    /// [`Session::token`]).
    pub async fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        Ok(Request::new(message).bearer(&self.token().await?))
    }

    /// The access token to send now: the one held, or a new one when it
    /// is due; the status of the renewal when no valid token could be had.
    pub async fn token(&self) -> Result<Arc<str>, Status> {
        let mut held = self.held.lock().await;
        if let Some(tokens) = held.fresh() {
            return Ok(tokens.access.clone());
        }
        let Some(renewal) = self.renewal.as_ref() else {
            return Ok(held.value().access.clone());
        };
        match renewal.renew(&held.value().refresh).await {
            Ok(issued) => {
                *held = Tokens::held(issued);
                Ok(held.value().access.clone())
            }
            Err(status) => match held.renewal_failed(RENEW_AGAIN_AFTER) {
                Some(tokens) => Ok(tokens.access.clone()),
                None => Err(status),
            },
        }
    }
}

impl Renewal {
    /// A new session: refreshed, or signed in again when the refresh token
    /// is refused (spent); each call counted.
    async fn renew(&self, refresh_token: &str) -> Result<Issued, Status> {
        let users = UserServiceClient::new(self.users.clone());
        let sent = Instant::now();
        let refreshed = users
            .clone()
            .refresh(Request::new(RefreshRequest {
                refresh_token: refresh_token.to_owned(),
            }))
            .await
            .map(|answer| answer.into_inner().session);
        self.calls
            .count_timed("Refresh", &refreshed, sent.elapsed());
        match refreshed {
            Ok(Some(issued)) => return Ok(issued),
            Ok(None) => return Err(Status::internal("Refresh answered no session")),
            Err(status) if status.code() != Code::Unauthenticated => return Err(status),
            Err(_) => {}
        }
        let sent = Instant::now();
        let signed_in = users
            .clone()
            .log_in(Request::new(LogInRequest {
                email: self.email.clone(),
                password: self.password.clone(),
            }))
            .await
            .map(|answer| answer.into_inner().session);
        self.calls.count_timed("LogIn", &signed_in, sent.elapsed());
        signed_in?.ok_or_else(|| Status::internal("LogIn answered no session"))
    }
}
