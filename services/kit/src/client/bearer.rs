//! A service calling as itself: its bearer token on every call, as a layer
//! (`Peer::with_credentials`). The token is had within the call's deadline;
//! a call whose token cannot be had is not sent, and says so
//! ([`super::lacked_credentials`]): the service that issues tokens is the
//! one in trouble, not the peer.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use http::HeaderValue;
use tokio::time::Instant;
use tonic::Status;
use tower::{Layer, Service, ServiceExt};

use super::{
    deadline::Deadline,
    status::{BoxError, Response, answer, no_credentials},
};

/// Where a service's bearer token comes from (e.g. a token service that
/// issues and renews it).
pub trait Credentials: Send + Sync + 'static {
    /// The token to call with, had by `deadline`.
    fn bearer(&self, deadline: Instant) -> BoxFuture<'_, Result<Arc<str>, Status>>;
}

/// Puts `credentials`' token on every call that carries none.
#[derive(Clone)]
pub(super) struct CredentialsLayer {
    pub(super) credentials: Arc<dyn Credentials>,
}

impl<S> Layer<S> for CredentialsLayer {
    type Service = WithCredentials<S>;

    fn layer(&self, inner: S) -> WithCredentials<S> {
        WithCredentials {
            inner,
            credentials: self.credentials.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct WithCredentials<S> {
    inner: S,
    credentials: Arc<dyn Credentials>,
}

impl<S, B> Service<http::Request<B>> for WithCredentials<S>
where
    S: Service<http::Request<B>, Response = Response, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The inner stack is made ready once the token is at hand.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        let credentials = self.credentials.clone();
        Box::pin(async move {
            if !request.headers().contains_key(http::header::AUTHORIZATION) {
                let deadline = request
                    .extensions()
                    .get::<Deadline>()
                    .map_or_else(Instant::now, |deadline| deadline.0);
                let token = match credentials.bearer(deadline).await {
                    Ok(token) => token,
                    Err(why) => return Ok(answer(no_credentials(&why))),
                };
                match HeaderValue::try_from(format!("Bearer {token}")) {
                    Ok(value) => {
                        request
                            .headers_mut()
                            .insert(http::header::AUTHORIZATION, value);
                    }
                    Err(_) => {
                        return Ok(answer(no_credentials(&Status::internal(
                            "the bearer token is no header value",
                        ))));
                    }
                }
                // What is left of the deadline, for the call itself.
                if let Some(deadline) = request.extensions().get::<Deadline>().copied() {
                    request
                        .headers_mut()
                        .insert("grpc-timeout", deadline.header());
                }
            }
            inner.oneshot(request).await
        })
    }
}
