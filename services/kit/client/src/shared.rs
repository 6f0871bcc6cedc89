//! The balancer, shared by every clone of a peer: a call takes it in turn
//! (a fair lock), waits there while no endpoint is ready, and sends; its
//! answer is awaited without it. At most the bulkhead's calls in flight
//! ever wait here, and a call given up (its deadline) leaves its place.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use tokio::sync::Mutex;
use tower::{Service, ServiceExt};

pub(super) struct Shared<S> {
    inner: Arc<Mutex<S>>,
}

impl<S> Shared<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner: Arc::new(Mutex::new(inner)),
        }
    }
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S, R> Service<R> for Shared<S>
where
    S: Service<R> + Send + 'static,
    S::Future: Send,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    /// Readiness is the balancer's, waited for in turn by each call.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let sent = {
                let mut balancer = inner.lock().await;
                balancer.ready().await?.call(request)
            };
            sent.await
        })
    }
}
