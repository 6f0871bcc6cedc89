//! What the kit adds around connectrpc-axum's router, in one layer wrapped
//! once around it (not around each of its routes): a request compressed
//! with an encoding the kit does not speak is refused in Connect's words;
//! a JSON message is read as protobuf's JSON mapping reads it
//! ([`proto_json`]);
//! the handler gets a [`ResponseMetadata`] and what it sets is written into
//! the response; a Connect error the library words wrongly is corrected on
//! its way out ([`connect_errors::correct_connect_error`]). One future per
//! call instead of a layer, a boxed route and a future for each job.

use std::task::{Context, Poll};

use axum::{body::Body, response::Response};
use futures::future::BoxFuture;
use http::Request;
use tower::{Layer, Service};

use super::{
    classify::Call, connect_errors, encoding, proto_json, protocol::Framing,
    response_metadata::ResponseMetadata,
};

#[derive(Clone, Copy, Debug)]
pub struct ConnectEdgeLayer {
    max_request_bytes: usize,
}

impl ConnectEdgeLayer {
    pub fn new(max_request_bytes: usize) -> Self {
        Self { max_request_bytes }
    }
}

impl<S> Layer<S> for ConnectEdgeLayer {
    type Service = ConnectEdge<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ConnectEdge {
            inner,
            max_request_bytes: self.max_request_bytes,
        }
    }
}

/// Every request it is given speaks Connect: the dispatch sends only those.
#[derive(Clone, Debug)]
pub struct ConnectEdge<S> {
    inner: S,
    max_request_bytes: usize,
}

impl<S> Service<Request<Body>> for ConnectEdge<S>
where
    S: Service<Request<Body>, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let call = Call::of(&request);
        if let Some(refusal) = encoding::refusal(&request, &call) {
            return Box::pin(std::future::ready(Ok(refusal)));
        }
        let metadata = ResponseMetadata::attach(&mut request);
        // The answer has the request's shape: no need to read its type.
        let streaming = call.framing == Framing::ConnectStream;
        let request = proto_json::canonical(request, &call, self.max_request_bytes);
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = metadata
                .write_connect(future.await?, streaming)
                .map(Body::new);
            Ok(connect_errors::correct_connect_error(response).await)
        })
    }
}
