//! An endpoint as the balancer sees it: a `tower::Service` that is ready
//! only while the endpoint serves and its breaker admits a call (so the
//! balancer never picks it otherwise), loaded by its calls in flight (and
//! avoided for a moment after it refused one unprocessed).

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

use super::{
    breaker::Admission,
    channel::{Channel, ChannelFuture},
    endpoint::{Copies, Endpoint, Health},
    status::BoxError,
};

/// An endpoint as the balancer calls it (a `tower::Service` over the
/// request, its body read whole): ready while it serves and its breaker admits a call,
/// its load its calls in flight.
pub(super) struct EndpointService {
    endpoint: Arc<Endpoint>,
    channel: Channel,
    /// Wakes the balancer when the open breaker may let a probe through.
    cooldown: Option<Pin<Box<Sleep>>>,
    /// The half-open breaker's one probe, taken by a `poll_ready` the
    /// balancer has not called yet (it may poll again before it does).
    probe: bool,
}

impl EndpointService {
    pub(super) fn new(endpoint: Arc<Endpoint>) -> Self {
        let channel = Channel::new(endpoint.connect.connection(), endpoint.addr());
        Self {
            endpoint,
            channel,
            cooldown: None,
            probe: false,
        }
    }
}

impl tower::load::Load for EndpointService {
    type Metric = usize;

    fn load(&self) -> usize {
        self.endpoint.load()
    }
}

impl tower::Service<http::Request<Bytes>> for EndpointService {
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = ChannelFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.endpoint.ready.register(cx.waker());
        if self.endpoint.stop.is_cancelled() || self.endpoint.health() != Health::Serving {
            return Poll::Pending;
        }
        if !self.probe {
            match self.endpoint.breaker.admission(Instant::now()) {
                Admission::Closed => {}
                Admission::Probe => self.probe = true,
                Admission::Until(until) => {
                    let cooldown = self
                        .cooldown
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
                    cooldown.as_mut().reset(until);
                    if cooldown.as_mut().poll(cx).is_ready() {
                        // Cooled down meanwhile: ask again.
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
            }
        }
        self.channel.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Bytes>) -> ChannelFuture {
        self.probe = false;
        if let Some(copies) = request.extensions().get::<Arc<Copies>>() {
            copies.went_to(&self.endpoint);
        }
        let outcome = self.endpoint.start_call();
        let request = request.map(|bytes| tonic::body::Body::new(http_body_util::Full::new(bytes)));
        self.channel.call(request, outcome)
    }
}
