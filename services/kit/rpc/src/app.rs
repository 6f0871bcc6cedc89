//! What a listener serves: one service, called by reference. The kit's
//! assembled pipeline is one already (`RpcServer::into_app`), served as it
//! is: no clone of it per request, no router in front that would only pass
//! every request to its fallback. A plain axum `Router` (or any tower
//! service) is served by a clone per request, as tower has it.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{Router, body::Body, response::Response};
use futures::future::BoxFuture;
use http::Request;
use http_body_util::BodyExt as _;
use tower::{Service, ServiceExt};

use super::arrival::{Arrival, InFlight};

/// A service a listener serves.
#[derive(Clone)]
pub struct App(Arc<dyn Serve>);

/// Answers a request by reference.
pub(crate) trait Serve: Send + Sync + 'static {
    /// The answer to `request`, which came as `arrival` says (`None`: from
    /// no connection of the listener's); its body holds the arrival's count
    /// of the connection's requests in flight until it is sent or dropped.
    fn serve(
        &self,
        request: Request<Body>,
        arrival: Option<Arrival>,
    ) -> BoxFuture<'static, Result<Response, Infallible>>;
}

/// `response`, its body holding `in_flight` until it is sent or dropped
/// (for an answer that has no body of the kit's own to hold it).
pub(crate) fn holding(response: Response, in_flight: Option<InFlight>) -> Response {
    let Some(in_flight) = in_flight else {
        return response;
    };
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _held = &in_flight;
            frame
        }))
    })
}

/// A tower service, cloned for each request.
struct Cloned<S>(S);

impl<S> Serve for Cloned<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    fn serve(
        &self,
        request: Request<Body>,
        arrival: Option<Arrival>,
    ) -> BoxFuture<'static, Result<Response, Infallible>> {
        let answer = self.0.clone().oneshot(request);
        let in_flight = arrival.map(|arrival| arrival.in_flight);
        Box::pin(async move {
            let Ok(response) = answer.await;
            Ok(holding(response, in_flight))
        })
    }
}

impl App {
    pub fn new<S>(service: S) -> Self
    where
        S: Service<Request<Body>, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self(Arc::new(Cloned(service)))
    }

    /// An app that answers by reference.
    pub(crate) fn serving(serve: impl Serve) -> Self {
        Self(Arc::new(serve))
    }

    /// The answer to `request`, which came as `arrival` says.
    pub(crate) fn serve(
        &self,
        request: Request<Body>,
        arrival: Option<Arrival>,
    ) -> BoxFuture<'static, Result<Response, Infallible>> {
        self.0.serve(request, arrival)
    }
}

impl From<Router> for App {
    fn from(router: Router) -> Self {
        Self::new(router)
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("App")
    }
}

impl Service<Request<Body>> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        self.0.serve(request, None)
    }
}
