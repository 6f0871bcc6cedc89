//! Each served call's context, set around its handler: its deadline (as
//! its protocol's header said, the contract's cap applied, read once when
//! the call was classified) and the caller's `authorization`. The calls the handler makes
//! through the kit's client carry them on by themselves
//! (`shop_kit_wire::context`): no deadline or token is passed by hand.

use std::task::{Context, Poll};

use http::{Request, header::AUTHORIZATION};
use shop_kit_wire::context::CallContext;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::classify::Call;

#[derive(Clone, Copy, Debug, Default)]
pub struct CallContextLayer;

impl<S> Layer<S> for CallContextLayer {
    type Service = WithCallContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithCallContext { inner }
    }
}

#[derive(Clone, Debug)]
pub struct WithCallContext<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for WithCallContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<CallContext, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let context = CallContext {
            deadline: Call::of(&request).deadline,
            authorization: request.headers().get(AUTHORIZATION).cloned(),
        };
        context.wrap(self.inner.call(request))
    }
}
