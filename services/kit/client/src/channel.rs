//! The connection each attempt of a call goes out on: the endpoint's, with
//! every RPC sent through it timed by code (`rpc_client_call_duration_
//! seconds`), made a client span (traces on) whose context goes out in the
//! request's headers, and its outcome recorded on the endpoint (breaker,
//! health, calls in flight) once its code is known. Being the only way the
//! stack reaches an endpoint, no call can forget any of it.

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, OnceLock, RwLock},
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body as _, Frame, SizeHint};
use metrics::Histogram;
use opentelemetry::trace::FutureExt as _;
use shop_kit_wire::{Deadline, GRPC_ACCEPT_ENCODING, GRPC_TIMEOUT};
use tonic::Code;
use tower::Service;

use super::{
    calls::MethodCalls,
    connection::Connection,
    deadline::Unsent,
    endpoint::Outcome,
    one_answer::{self, Envelopes},
    status::{self, BoxError},
};
use shop_kit_observe::{
    metrics::kept,
    traces::{self, RpcTrace},
};

/// The connection to one endpoint of a peer, as its
/// [`super::endpoint_service::EndpointService`] sends each call through it.
pub(super) struct Channel {
    inner: Connection,
    addr: SocketAddr,
}

impl Channel {
    pub(super) fn new(inner: Connection, addr: SocketAddr) -> Self {
        Self { inner, addr }
    }
}

type Request = http::Request<tonic::body::Body>;
type Response = http::Response<tonic::body::Body>;

/// Seconds per call this process makes, by the callee's service, method
/// and code (`rpc.client.call.duration`).
pub const CLIENT_CALL_DURATION: &str = "rpc_client_call_duration_seconds";

/// gRPC's codes, 0 (`ok`) to 16 (`unauthenticated`).
const CODES: usize = 17;

/// One method's histograms by code, looked up once each.
#[derive(Debug)]
struct MethodSeries {
    service: String,
    method: String,
    /// By code (its number), each made at its first call.
    by_code: [OnceLock<Histogram>; CODES],
}

impl MethodSeries {
    /// The series of `path` (`/package.Service/Method`): only paths the
    /// shop's own code calls, so they are bounded.
    fn of(path: &str) -> Arc<Self> {
        type Kept = RwLock<HashMap<String, Arc<MethodSeries>, foldhash::fast::RandomState>>;
        static SERIES: OnceLock<Kept> = OnceLock::new();
        kept(SERIES.get_or_init(RwLock::default), path, || {
            let (service, method) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or((path, ""));
            Arc::new(Self {
                service: service.to_owned(),
                method: method.to_owned(),
                by_code: std::array::from_fn(|_| OnceLock::new()),
            })
        })
    }

    fn duration(&self, code: Code) -> &Histogram {
        // `Code` has exactly these 17 values (tonic reads any other number
        // as `unknown`).
        self.by_code[code as usize].get_or_init(|| {
            metrics::histogram!(CLIENT_CALL_DURATION,
                "service" => self.service.clone(), "method" => self.method.clone(),
                "code" => code_name(code))
        })
    }
}

/// One call under way: timed (an RPC's), its span (if traced) ended with
/// its code, and its outcome recorded on its endpoint, once.
struct ClientCall {
    /// `None`: no RPC (a plain GET, a JWK set).
    series: Option<Arc<MethodSeries>>,
    started: Instant,
    /// `None`: traces off, or a trace nobody keeps.
    trace: Option<RpcTrace>,
    outcome: Outcome,
    deadline: Option<tokio::time::Instant>,
}

impl ClientCall {
    fn finish(self, code: Code) {
        if let Some(series) = &self.series {
            series
                .duration(code)
                .record(self.started.elapsed().as_secs_f64());
        }
        if let Some(trace) = &self.trace {
            trace.end_called(code_name(code));
        }
        self.outcome.end(code);
    }

    /// Dropped before its code was known.
    fn abandon(self) {
        let late = self
            .deadline
            .is_some_and(|deadline| tokio::time::Instant::now() >= deadline);
        self.finish(if late {
            Code::DeadlineExceeded
        } else {
            Code::Cancelled
        });
    }
}

fn code_name(code: Code) -> &'static str {
    shop_kit_wire::code_name(code as i32)
}

/// A call's answer: its head, the call finished with its code if the head
/// says it, else when its body's trailers do.
pub(super) type ChannelFuture = BoxFuture<'static, Result<Response, BoxError>>;

impl Channel {
    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    pub(super) fn call(&mut self, mut request: Request, outcome: Outcome) -> ChannelFuture {
        let deadline = request.extensions().get::<Deadline>().copied();
        // What is left of the call's deadline, as this attempt leaves (if
        // one was chosen: see `deadline`).
        if let Some(deadline) = deadline
            && request.extensions().get::<Unsent>().is_none()
        {
            request
                .headers_mut()
                .insert(GRPC_TIMEOUT, deadline.grpc_timeout());
        }
        let deadline = deadline.map(|deadline| deadline.0);
        // RPCs are POSTs; a plain GET through the channel (a JWK set) is no RPC.
        let rpc = request.method() == http::Method::POST;
        let one_answer = rpc && MethodCalls::of_request(&request).one_answer;
        let offered = request.headers().get(GRPC_ACCEPT_ENCODING).cloned();
        let series = rpc.then(|| MethodSeries::of(request.uri().path()));
        let trace = if rpc && traces::enabled() {
            let path = request.uri().path().to_owned();
            traces::client_trace(&path, self.addr, request.headers_mut())
        } else {
            None
        };
        let sent = {
            let _in_trace = trace.as_ref().map(RpcTrace::enter);
            self.inner.call(request)
        };
        let call = ClientCall {
            series,
            started: Instant::now(),
            trace: trace.clone(),
            outcome,
            deadline,
        };
        let answered = async move {
            let response = match sent.await {
                Ok(response) => response,
                Err(error) => {
                    call.finish(Code::Unavailable);
                    return Err(error);
                }
            };
            let (mut parts, body) = response.into_parts();
            if rpc {
                if let Some(refused) = status::unreadable_encoding(&parts.headers, offered.as_ref())
                {
                    call.finish(refused.code());
                    return Ok(status::answer(refused));
                }
                // A head with a body to come is no trailers-only answer:
                // a status in it is not the call's (gRPC's rule).
                if parts.status == http::StatusCode::OK && !body.is_end_stream() {
                    for name in status::STATUS_HEADERS {
                        parts.headers.remove(name);
                    }
                }
            }
            // A failure with no message has its status in the headers.
            if let Some(code) = status::head_code(parts.status, &parts.headers) {
                if code == Code::Ok && one_answer {
                    let broken = one_answer::broken("no message");
                    call.finish(broken.code());
                    return Ok(status::answer(broken));
                }
                if code == Code::ResourceExhausted && status::refused_unprocessed(&parts.headers) {
                    call.outcome.refused_unprocessed();
                }
                call.finish(code);
                return Ok(Response::from_parts(parts, body));
            }
            let body = CallBody {
                inner: body,
                call: Some(call),
                envelopes: one_answer.then(Envelopes::default),
                cut: None,
                ended: false,
            };
            Ok(Response::from_parts(parts, tonic::body::Body::new(body)))
        };
        match trace {
            Some(trace) => Box::pin(answered.with_context(trace.context())),
            None => Box::pin(answered),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that finishes its call with the code of its
    /// trailers (or `canceled` if dropped before them); for a method of
    /// one answer, cut at a second message (see `one_answer`).
    struct CallBody {
        #[pin]
        inner: tonic::body::Body,
        call: Option<ClientCall>,
        // The messages passed, for a method of one answer.
        envelopes: Option<Envelopes>,
        // The trailers that end an answer cut short, still to give.
        cut: Option<http::HeaderMap>,
        ended: bool,
    }

    impl PinnedDrop for CallBody {
        fn drop(this: Pin<&mut Self>) {
            if let Some(call) = this.project().call.take() {
                call.abandon();
            }
        }
    }
}

impl http_body::Body for CallBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        let polled = if let Some(trailers) = this.cut.take() {
            Poll::Ready(Some(Ok(Frame::trailers(trailers))))
        } else if *this.ended {
            Poll::Ready(None)
        } else {
            let polled = this.inner.as_mut().poll_frame(cx);
            match this.envelopes.as_mut() {
                Some(envelopes) => counted(polled, envelopes, this.cut, this.ended),
                None => polled,
            }
        };
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(status::trailers_code),
            // Ended without trailers: a plain HTTP answer's end (no RPC),
            // or a stream cut short.
            Poll::Ready(None) => Some(if this.call.as_ref().is_some_and(|c| c.series.is_none()) {
                Code::Ok
            } else {
                Code::Unknown
            }),
            Poll::Ready(Some(Err(_))) => Some(Code::Unavailable),
            Poll::Pending => None,
        };
        // The call is taken only once the code is known.
        if let Some(code) = code
            && let Some(call) = this.call.take()
        {
            call.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.cut.is_none() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `polled`, from the body of a method of one answer: cut where a second
/// message begins (its bytes before given, `cut` the trailers that end it),
/// and an `ok` end after no message made `unimplemented`.
fn counted(
    polled: Poll<Option<Result<Frame<Bytes>, tonic::Status>>>,
    envelopes: &mut Envelopes,
    cut: &mut Option<http::HeaderMap>,
    ended: &mut bool,
) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
    let Poll::Ready(Some(Ok(frame))) = polled else {
        return polled;
    };
    let frame = match frame.into_data() {
        Ok(data) => {
            let Some(at) = envelopes.pass(&data) else {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            };
            *ended = true;
            let trailers = status::trailers(&one_answer::broken("more than one message"));
            if at == 0 {
                Frame::trailers(trailers)
            } else {
                *cut = Some(trailers);
                Frame::data(data.slice(..at))
            }
        }
        Err(frame) => match frame.into_trailers() {
            Ok(trailers)
                if envelopes.count() == 0 && status::trailers_code(&trailers) == Code::Ok =>
            {
                *ended = true;
                Frame::trailers(status::trailers(&one_answer::broken("no message")))
            }
            Ok(trailers) => Frame::trailers(trailers),
            Err(frame) => frame,
        },
    };
    Poll::Ready(Some(Ok(frame)))
}
