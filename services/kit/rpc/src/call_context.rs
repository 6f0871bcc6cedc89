//! Each served call's context, set around its handler: its deadline (as
//! its protocol's header said, the contract's cap applied, read once when
//! the call was classified) and the caller's `authorization`. The calls the
//! handler makes through the kit's client carry them on by themselves
//! (`shop_kit_wire::context`): no deadline or token is passed by hand. A
//! streaming response's body is polled in it too (a server stream's
//! messages are made as the body is polled, after the handler returned),
//! so the calls made inside a stream carry them as well.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{body::Body, response::Response};
use bytes::Bytes;
use http::HeaderValue;
use http_body::{Frame, SizeHint};
use shop_kit_wire::context::CallContext;
use tokio::task::futures::TaskLocalFuture;

use super::classify::Call;

/// `answer`, the work of the call classified as `call` (its request's
/// `authorization` given), run in the call's context.
pub(super) fn in_context<F: Future<Output = Response>>(
    call: &Call,
    authorization: Option<HeaderValue>,
    answer: F,
) -> InContext<F> {
    let context = CallContext {
        deadline: call.deadline,
        authorization,
    };
    InContext {
        // A unary answer is whole when the handler returns: only a
        // stream's body is made later.
        streaming: call.method.is_some_and(|method| method.streaming),
        future: context.wrap(answer),
    }
}

pin_project_lite::pin_project! {
    /// The handler's answer, in the call's context; a stream's body in it
    /// too.
    pub struct InContext<F> {
        #[pin]
        future: TaskLocalFuture<CallContext, F>,
        streaming: bool,
    }
}

impl<F> Future for InContext<F>
where
    F: Future<Output = Response>,
{
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let answer = std::task::ready!(this.future.as_mut().poll(cx));
        if !*this.streaming {
            return Poll::Ready(answer);
        }
        // The context the handler ran in, for its stream's body.
        let context = this.future.take_value().unwrap_or_default();
        Poll::Ready(answer.map(|body| Body::new(Scoped { body, context })))
    }
}

pin_project_lite::pin_project! {
    /// A response body polled in its call's context.
    struct Scoped {
        #[pin]
        body: Body,
        context: CallContext,
    }
}

impl http_body::Body for Scoped {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let body = this.body;
        this.context.clone().sync_scope(|| body.poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
