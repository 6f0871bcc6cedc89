//! What a listener serves: one service, cloned for each request. The kit's
//! assembled stack is one already (`RpcServer::into_app`), so it is served
//! as it is, with no router in front that would only pass every request
//! to its fallback; a plain axum `Router` is served the same way.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{Router, body::Body, response::Response};
use http::Request;
use tower::{Service, util::BoxCloneSyncService};

/// A service a listener serves.
#[derive(Clone)]
pub struct App(BoxCloneSyncService<Request<Body>, Response, Infallible>);

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
        Self(BoxCloneSyncService::new(service))
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
    type Future = <BoxCloneSyncService<Request<Body>, Response, Infallible> as Service<
        Request<Body>,
    >>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        self.0.call(request)
    }
}
