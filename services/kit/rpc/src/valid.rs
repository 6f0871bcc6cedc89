//! Handlers that cannot see an unchecked request. A handler takes its
//! request as [`Valid<T>`]: the message, once it has kept every rule of
//! the contract (`buf.validate`). The generated route builders
//! (`*ServiceRoutes`, made by `shop-kit-build` from the descriptors) take
//! only such handlers and put [`validated`] in front of each, so a broken
//! rule is refused with `invalid_argument` before any handler code runs,
//! on every protocol, and there is no call for a handler to forget. (Who
//! may call and how often were checked before, by the server, for every
//! call: `policy::admit`.) A method whose caller proves itself with the
//! shop's shared secret in its request (`shop_secret`) has it compared
//! here too, first: the secret is in the message, read only now.
//!
//! A client-streaming or bidirectional method's handler takes its
//! requests as a [`ValidStream<T>`] instead: each message is checked as it
//! arrives, and the first that breaks a rule ends the stream with that
//! refusal.
//!
//! ```ignore
//! async fn get_product(
//!     State(state): State<AppState>,
//!     Valid(request): Valid<pb::GetProductRequest>,
//! ) -> Result<ConnectResponse<pb::GetProductResponse>, ConnectError> { ... }
//! ```

use std::{
    convert::Infallible,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
};

use axum::extract::FromRequestParts;
use connectrpc_axum::prelude::{ConnectError, ConnectRequest, ConnectResponse, Streaming};
use http::request::Parts;

use shop_kit_auth::{CallerRefused, CertifiedService, SharedSecret};

use super::{
    broken_rules::{RequestRules, Rules},
    classify::Call,
    grpc_edge,
    valid_stream::ValidStream,
};

/// A method of a generated builder (`<Service>Routes`) whose handler is
/// given: `build` wants every method so.
#[derive(Clone, Copy, Debug)]
pub struct Given;

/// A method of a generated builder whose handler is not given yet.
#[derive(Clone, Copy, Debug)]
pub struct Missing;

/// A request message that keeps every rule of its contract.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Valid<T>(pub T);

/// A rejection of an extractor a handler takes, as the Connect error the
/// library answers with on every protocol.
#[diagnostic::on_unimplemented(
    message = "a handler's extractor refuses with `{Self}`, which is no Connect error",
    label = "an extractor the kit does not take",
    note = "a handler's extractors refuse with a `ConnectError` (the kit's do: `State`, `Caller`, `Customer`, `ServiceCaller`, `CertifiedService`, ...); its request is `Valid<T>`, never axum's `Query`, `Json` or `Form`"
)]
pub trait IntoRefusal {
    fn into_refusal(self) -> ConnectError;
}

impl IntoRefusal for ConnectError {
    fn into_refusal(self) -> ConnectError {
        self
    }
}

impl IntoRefusal for Infallible {
    fn into_refusal(self) -> ConnectError {
        match self {}
    }
}

/// A handler of one RPC: its extractors (none to four), then its request
/// `In`, last (`Valid<Req>`, or `ValidStream<Req>` for a stream of them),
/// answering `Out` (a message, or a `StreamBody` of them).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler of this RPC",
    label = "not a handler taking `{In}`",
    note = "a handler is an async fn taking up to four extractors that refuse with a `ConnectError` (`State`, `Caller`, `Customer`, `ServiceCaller`, `CertifiedService`, ...; not axum's `Query`, `Json` or `Form`), then the request as `{In}`, last, and answering `Result<ConnectResponse<{Out}>, ConnectError>`"
)]
pub trait ValidHandler<Args, S, In, Out>: Clone + Send + Sync + Sized + 'static {
    /// Its extractors, as one.
    type Extracted: Send + Sync + 'static;
    type Future: Future<Output = Result<ConnectResponse<Out>, ConnectError>> + Send + 'static;

    #[doc(hidden)]
    fn extract(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self::Extracted, ConnectError>> + Send;

    #[doc(hidden)]
    fn call(&self, extracted: Self::Extracted, request: In) -> Self::Future;
}

impl<F, Fut, S, In, Out> ValidHandler<(In,), S, In, Out> for F
where
    F: Fn(In) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<ConnectResponse<Out>, ConnectError>> + Send + 'static,
    S: Send + Sync,
{
    type Extracted = ();
    type Future = Fut;

    async fn extract(_parts: &mut Parts, _state: &S) -> Result<(), ConnectError> {
        Ok(())
    }

    fn call(&self, (): (), request: In) -> Fut {
        self(request)
    }
}

macro_rules! valid_handler {
    ($($extractor:ident),+) => {
        impl<F, Fut, S, In, Out, $($extractor,)+>
            ValidHandler<($($extractor,)+ In,), S, In, Out> for F
        where
            F: Fn($($extractor,)+ In) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Result<ConnectResponse<Out>, ConnectError>> + Send + 'static,
            S: Send + Sync,
            $($extractor: FromRequestParts<S> + Send + Sync + 'static,
              <$extractor as FromRequestParts<S>>::Rejection: IntoRefusal,)+
        {
            type Extracted = ($($extractor,)+);
            type Future = Fut;

            async fn extract(parts: &mut Parts, state: &S) -> Result<Self::Extracted, ConnectError> {
                Ok(($($extractor::from_request_parts(parts, state)
                    .await
                    .map_err(IntoRefusal::into_refusal)?,)+))
            }

            #[allow(non_snake_case)]
            fn call(&self, ($($extractor,)+): Self::Extracted, request: In) -> Fut {
                self($($extractor,)+ request)
            }
        }
    };
}

valid_handler!(E1);
valid_handler!(E1, E2);
valid_handler!(E1, E2, E3);
valid_handler!(E1, E2, E3, E4);

/// What a handler takes before its request, extracted once, and how the
/// caller names fields (for the refusal of a broken rule): the one
/// extractor the library hands to a [`validated`] handler. Its refusal is
/// a Connect error, which the library answers in the caller's protocol.
#[doc(hidden)]
pub struct Prepared<H, Args, S, In, Out>
where
    H: ValidHandler<Args, S, In, Out>,
{
    extracted: H::Extracted,
    rules: RequestRules,
    /// The secret to compare with the request's, for a method whose caller
    /// proves itself with it and showed no certificate.
    secret: Option<SharedSecret>,
    handler: PhantomData<Marker<Args, S, In, Out>>,
}

/// The types a [`Prepared`] is for, owned by none of it.
type Marker<Args, S, In, Out> = fn() -> (Args, S, In, Out);

impl<H, Args, S, In, Out> FromRequestParts<S> for Prepared<H, Args, S, In, Out>
where
    H: ValidHandler<Args, S, In, Out>,
    S: Send + Sync,
{
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ConnectError> {
        grpc_edge::restore_headers(parts);
        let call = parts.extensions.get::<Call>();
        let rules = RequestRules::of(parts, call);
        let secret = secret_to_check(parts, call);
        let extracted = H::extract(parts, state).await?;
        Ok(Self {
            extracted,
            rules,
            secret,
            handler: PhantomData,
        })
    }
}

/// `handler` as the library takes it: one extractor, then the decoded
/// request, checked before the handler is called. A broken rule is
/// answered `invalid_argument` (see [`RequestRules`]) and the handler never
/// runs. Used by the generated route builders.
#[allow(
    clippy::type_complexity,
    reason = "the library takes the handler as a function of these types; naming it is the point"
)]
pub fn validated<H, Args, S, Req, Out>(
    handler: H,
) -> impl Fn(Prepared<H, Args, S, Valid<Req>, Out>, ConnectRequest<Req>) -> Checked<H::Future>
+ Clone
+ Send
+ Sync
+ 'static
where
    H: ValidHandler<Args, S, Valid<Req>, Out>,
    Req: Rules,
{
    move |prepared, ConnectRequest(request)| {
        if let Some(secret) = &prepared.secret {
            let shown = request.shop_secret().ok_or(CallerRefused::WrongSecret);
            if let Err(refused) = shown.and_then(|shown| secret.check(shown)) {
                return Checked::Refused {
                    refusal: Some(refused.into()),
                };
            }
        }
        match request.broken() {
            None => Checked::Running {
                future: handler.call(prepared.extracted, Valid(request)),
            },
            Some(broken) => Checked::Refused {
                refusal: Some(prepared.rules.refusal(&broken)),
            },
        }
    }
}

/// `handler` of a client-streaming or bidirectional method as the library
/// takes it: one extractor, then the stream of decoded requests, each
/// checked as it arrives ([`ValidStream`]). A caller that would prove
/// itself with the shop's shared secret is refused here: the secret rides
/// in a message, and a stream has no one message to read it from before
/// the handler runs (such a caller shows a certificate instead; the
/// generated builders refuse such a contract at build). Used by the
/// generated route builders.
#[allow(
    clippy::type_complexity,
    reason = "the library takes the handler as a function of these types; naming it is the point"
)]
pub fn validated_stream<H, Args, S, Req, Out>(
    handler: H,
) -> impl Fn(
    Prepared<H, Args, S, ValidStream<Req>, Out>,
    ConnectRequest<Streaming<Req>>,
) -> Checked<H::Future>
+ Clone
+ Send
+ Sync
+ 'static
where
    H: ValidHandler<Args, S, ValidStream<Req>, Out>,
    Req: Rules,
{
    move |prepared, ConnectRequest(requests)| {
        if prepared.secret.is_some() {
            return Checked::Refused {
                refusal: Some(CallerRefused::NoCertificate.into()),
            };
        }
        Checked::Running {
            future: handler.call(
                prepared.extracted,
                ValidStream::new(requests, prepared.rules),
            ),
        }
    }
}

/// The shared secret a call of a `shop_secret` method must show in its
/// request: the server's (none set: every secret is refused), unless the
/// caller showed a certificate of the shop's CA instead (which
/// `policy::admit` checked and left in the extensions).
fn secret_to_check(parts: &Parts, call: Option<&Call>) -> Option<SharedSecret> {
    let secret = call
        .and_then(|call| call.method)
        .and_then(|method| method.shared_secret.as_ref())?;
    let certified = matches!(
        parts.extensions.get::<CertifiedService>(),
        Some(CertifiedService(Some(_)))
    );
    (!certified).then(|| secret.clone())
}

pin_project_lite::pin_project! {
    /// A handler's answer, or the refusal of its request.
    #[project = CheckedProjection]
    pub enum Checked<F> {
        Running { #[pin] future: F },
        Refused { refusal: Option<ConnectError> },
    }
}

impl<F, T> Future for Checked<F>
where
    F: Future<Output = Result<T, ConnectError>>,
{
    type Output = Result<T, ConnectError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CheckedProjection::Running { future } => future.poll(cx),
            CheckedProjection::Refused { refusal } => match refusal.take() {
                Some(refusal) => Poll::Ready(Err(refusal)),
                None => Poll::Pending,
            },
        }
    }
}
