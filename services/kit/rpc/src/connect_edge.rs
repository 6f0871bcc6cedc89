//! What the kit adds around connectrpc-axum's router, wrapped once around
//! it (not around each of its routes), which the dispatch calls with the
//! call it classified: a request compressed
//! with an encoding the kit does not speak is refused in Connect's words;
//! a JSON message is read as protobuf's JSON mapping reads it
//! ([`proto_json`]);
//! the handler gets a [`ResponseMetadata`] and what it sets is written into
//! the response; a Connect error the library words wrongly is corrected on
//! its way out ([`connect_errors::correct_connect_error`]); a quiet server
//! stream gets its heartbeats ([`stream_heartbeats`]) and its messages go
//! to HTTP/2 in batches ([`Batched`]). One future per call
//! instead of a layer, a boxed route and a future for each job.

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, response::Response};
use futures::future::{BoxFuture, FutureExt as _, Map};
use http::Request;
use tower::Service;

use super::{
    batched_frames::Batched,
    classify::Call,
    connect_errors, encoding, proto_json,
    protocol::Framing,
    response_metadata::ResponseMetadata,
    stream_heartbeats::{self, Stack},
};

/// The library's router with the kit's Connect work around it. Every
/// request it is given speaks Connect: the dispatch sends only those.
#[derive(Clone, Debug)]
pub struct ConnectEdge {
    router: Router,
    max_request_bytes: usize,
    /// How often a quiet server stream gets its heartbeat.
    heartbeat_every: Duration,
}

impl ConnectEdge {
    /// Around `router`, the library's (its handlers made routes already).
    pub fn new(router: Router, max_request_bytes: usize, heartbeat_every: Duration) -> Self {
        Self {
            router,
            max_request_bytes,
            heartbeat_every,
        }
    }

    /// The answer to `request`, classified as `call`.
    pub fn serve(&self, request: Request<Body>, call: &Call) -> BoxFuture<'static, Response> {
        // A POST says its compression in a header the classification saw,
        // a GET in its query.
        if (call.encoded || request.method() == http::Method::GET)
            && let Some(refusal) = encoding::refusal(&request, call)
        {
            return Box::pin(std::future::ready(refusal));
        }
        let beat = stream_heartbeats::beat_of(call, &request, Stack::Connect, self.heartbeat_every);
        // The answer has the request's shape: no need to read its type.
        let streaming = call.framing == Framing::ConnectStream;
        let request = proto_json::canonical(request, call, self.max_request_bytes);
        // A router is always ready, and its clone is a reference's.
        let answer = ResponseMetadata::collected(self.router.clone().call(request));
        Box::pin(async move {
            let (Ok(response), metadata) = answer.await;
            let response = match metadata {
                Some(metadata) => metadata.write_connect(response, streaming),
                None => response,
            };
            // An error's correction reads its body: its future, boxed, is
            // made only for one (the answer's own future stays small).
            let response = if connect_errors::is_json_error(&response) {
                Box::pin(connect_errors::correct_connect_error(response)).await
            } else {
                response
            };
            if streaming {
                stream_heartbeats::with_beat(response.map(Batched::new), beat)
            } else {
                stream_heartbeats::with_beat(response, beat)
            }
        })
    }
}

/// For what reaches the Connect stack as a service (REST calls, unknown
/// paths by their content type).
impl Service<Request<Body>> for ConnectEdge {
    type Response = Response;
    type Error = Infallible;
    type Future = Map<BoxFuture<'static, Response>, fn(Response) -> Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = Call::of(&request);
        self.serve(request, &call).map(Ok)
    }
}
