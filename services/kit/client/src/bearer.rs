//! A service calling as itself: its bearer token on every call, as a layer
//! (`Peer::with_credentials`); or as its caller: the `authorization` the
//! call being served came with (`Peer::as_the_caller`, the gateway's). The
//! token is had within the call's deadline;
//! a call whose token cannot be had is not sent, and says so
//! ([`super::lacked_credentials`]): the service that issues tokens is the
//! one in trouble, not the peer.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{BoxFuture, Either};
use http::HeaderValue;
use shop_kit_wire::context::CallContext;
use tokio::time::Instant;
use tonic::Status;
use tower::{Layer, Service, ServiceExt};

use super::{
    Deadline,
    status::{BoxError, Response, answer, no_credentials},
};

/// Where a service's bearer token comes from (e.g. a token service that
/// issues and renews it).
pub trait Credentials: Send + Sync + 'static {
    /// The token to call with, had by `deadline`.
    fn bearer(&self, deadline: Instant) -> BoxFuture<'_, Result<Arc<str>, Status>>;

    /// The token, if one is at hand now without waiting (most calls: it
    /// is renewed only now and then); `None` asks [`Self::bearer`].
    fn current(&self) -> Option<Arc<str>> {
        None
    }
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
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, BoxError>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The usual case waits for nothing: the call carries a token (a
        // caller's, passed on), or the service's is at hand.
        if request.headers().contains_key(http::header::AUTHORIZATION) {
            return Either::Left(self.inner.call(request));
        }
        if let Some(token) = self.credentials.current() {
            return match bearer(&token) {
                Some(value) => {
                    request
                        .headers_mut()
                        .insert(http::header::AUTHORIZATION, value);
                    Either::Left(self.inner.call(request))
                }
                None => Either::Right(Box::pin(async { Ok(unusable()) })),
            };
        }
        // Else had first (within the deadline), with the stack made ready.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let credentials = self.credentials.clone();
        Either::Right(Box::pin(async move {
            let deadline = request
                .extensions()
                .get::<Deadline>()
                .map_or_else(Instant::now, |deadline| deadline.0);
            let token = match credentials.bearer(deadline).await {
                Ok(token) => token,
                Err(why) => return Ok(answer(no_credentials(&why))),
            };
            match bearer(&token) {
                Some(value) => {
                    request
                        .headers_mut()
                        .insert(http::header::AUTHORIZATION, value);
                    inner.oneshot(request).await
                }
                None => Ok(unusable()),
            }
        }))
    }
}

/// The `authorization` header of `token`, if it can be one.
fn bearer(token: &str) -> Option<HeaderValue> {
    HeaderValue::try_from(format!("Bearer {token}")).ok()
}

/// The answer to a call whose token cannot be a header.
fn unusable() -> Response {
    answer(no_credentials(&Status::internal(
        "the bearer token is no header value",
    )))
}

/// Puts the `authorization` of the call being served (its context) on every
/// call that carries none: the peer is called as that caller, anonymous
/// when it was.
#[derive(Clone, Copy, Debug)]
pub(super) struct CallersAuthorizationLayer;

impl<S> Layer<S> for CallersAuthorizationLayer {
    type Service = AsTheCaller<S>;

    fn layer(&self, inner: S) -> AsTheCaller<S> {
        AsTheCaller { inner }
    }
}

#[derive(Clone, Debug)]
pub(super) struct AsTheCaller<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for AsTheCaller<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !request.headers().contains_key(http::header::AUTHORIZATION)
            && let Some(authorization) = CallContext::authorization()
        {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, authorization);
        }
        self.inner.call(request)
    }
}
