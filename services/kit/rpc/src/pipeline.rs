//! The kit's steps around every request, as one service: each step a plain
//! function or value reading the call as it was classified once, with no
//! layer of its own (a layer each cost every call a clone of the stack
//! below it, a future moved through it and a lookup of the call in the
//! request's extensions). In order (docs/kit.md, "One pipeline per call"):
//!
//! ```text
//!  the token verifier -> unsafe request ids dropped -> classify once
//!  (protocol, method or REST route, deadline: a `Call`) -> CORS (a
//!  browser's only) -> observe (metrics, log line, span) -> the service's
//!  wraps, if any -> one message for unary methods -> admission (no such
//!  method; who may call, how often, whether there is room) -> the call's
//!  context (deadline, caller's token) -> dispatch to a protocol's stack
//! ```
//!
//! and the request id back on the response, whatever answered.

use std::{
    convert::Infallible,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use axum::{Router, body::Body, response::Response};
use futures::future::{BoxFuture, FutureExt as _};
use http::{HeaderValue, Request, header::AUTHORIZATION};
use shop_kit_auth::TokenVerifier;
use tower::{Service, ServiceExt};

use shop_kit_observe::traces::serving_as;

use opentelemetry::trace::TraceContextExt as _;

use super::{
    admission::{Admission, Admitted, Pass, answered_ok},
    app::{Serve, holding},
    arrival::{Arrival, InFlight},
    call_context::{InContext, in_context},
    classify::{Call, Methods},
    cors::Browsers,
    dispatch::Route,
    head::Head,
    observe::Observed,
    protocol::{Protocol, X_REQUEST_ID},
    request_id, single_message,
};

/// Every request's steps, from the token verifier to the dispatch. What
/// can be decided at once is, when the request comes; it waits only where
/// it must (its body read, a place in the queue, its stack's answer), in a
/// future no bigger than that wait (one `async` block around the steps
/// cost more than the layers it replaced: a larger future, moved more).
pub(super) struct Pipeline(Arc<Steps>);

struct Steps {
    /// The service every request is served as, for traces.
    scope: Option<&'static str>,
    verifier: Option<TokenVerifier>,
    methods: &'static Methods,
    browsers: Browsers,
    /// The service's own wraps (pages, rate limits) around the calls'
    /// steps, when it has any.
    wrapped: Option<Router>,
    calls: Calls,
}

impl Pipeline {
    /// `wraps` (the service's own, outermost last) go between observe and
    /// the calls' steps.
    pub(super) fn new(
        scope: Option<&'static str>,
        verifier: Option<TokenVerifier>,
        methods: &'static Methods,
        browsers: Browsers,
        wraps: Vec<Box<dyn FnOnce(Router) -> Router + Send>>,
        calls: Calls,
    ) -> Self {
        let wrapped = (!wraps.is_empty()).then(|| {
            wraps.into_iter().fold(
                Router::new().fallback_service(calls.clone()),
                |router, wrap| wrap(router),
            )
        });
        Self(Arc::new(Steps {
            scope,
            verifier,
            methods,
            browsers,
            wrapped,
            calls,
        }))
    }
}

/// Served by reference (no clone of the pipeline per request), as the
/// service the scope names when there is one.
impl Serve for Pipeline {
    fn serve(
        &self,
        request: Request<Body>,
        arrival: Option<Arrival>,
    ) -> BoxFuture<'static, Result<Response, Infallible>> {
        let answer = || match arrival {
            Some(Arrival { client, in_flight }) => {
                let mut answer = self.0.answer(request, Some(client));
                answer.in_flight = Some(in_flight);
                answer
            }
            None => self.0.answer(request, None),
        };
        match self.0.scope {
            Some(service) => Box::pin(serving_as(service, answer)),
            None => Box::pin(answer()),
        }
    }
}

impl Steps {
    /// The steps every request passes first, then the rest (`client`: who
    /// sent it, when its connection said).
    fn answer(self: &Arc<Self>, mut request: Request<Body>, client: Option<IpAddr>) -> Answer {
        if let Some(verifier) = &self.verifier {
            request.extensions_mut().insert(verifier.clone());
        }
        let head = Head::of(request.headers());
        // The client's id comes back on the response (a failed call without
        // one gets one made up, see observe).
        let request_id = request_id::kept(request.headers_mut(), &head);
        let call = self.methods.classify(&mut request, &head);
        let mut answer = if head.origin {
            Answer::of(Work::Waiting {
                future: self.browsers.answer(
                    Observing {
                        steps: self.clone(),
                        call,
                        request_id: request_id.clone(),
                        client,
                    },
                    request,
                ),
            })
        } else {
            self.observed(request, call, request_id.as_ref(), client)
        };
        answer.request_id = request_id;
        answer
    }

    /// The call observed from here to its response's end.
    fn observed(
        &self,
        request: Request<Body>,
        call: Call,
        request_id: Option<&HeaderValue>,
        client: Option<IpAddr>,
    ) -> Answer {
        let Some(observed) = Observed::begin(&request, &call, request_id, client) else {
            return Answer::of(self.after_observe(request, call));
        };
        // Its work runs in the call's trace, when it is traced: each time
        // its answer is polled (where the handler runs), and what is done
        // now if the trace is kept (one nobody keeps has no span for the
        // steps' own lines to join, only a context to pass on).
        let work = {
            let _in_trace = observed
                .trace_context()
                .filter(|cx| cx.span().span_context().is_sampled())
                .map(opentelemetry::Context::attach);
            self.after_observe(request, call)
        };
        Answer {
            work,
            observed: Some(observed),
            request_id: None,
            in_flight: None,
        }
    }

    fn after_observe(&self, request: Request<Body>, call: Call) -> Work {
        match &self.wrapped {
            Some(wrapped) => Work::Waiting {
                future: Box::pin(
                    wrapped
                        .clone()
                        .oneshot(request)
                        .map(|Ok(response)| response),
                ),
            },
            None => self.calls.0.start(request, call),
        }
    }
}

/// A browser's request, on from CORS, as it was classified.
struct Observing {
    steps: Arc<Steps>,
    call: Call,
    request_id: Option<HeaderValue>,
    client: Option<IpAddr>,
}

impl Service<Request<Body>> for Observing {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Answer {
        self.steps
            .observed(request, self.call, self.request_id.as_ref(), self.client)
    }
}

/// The steps of the calls, from one message to the dispatch; a service of
/// its own for the service's wraps to fall back to.
#[derive(Clone)]
pub(super) struct Calls(Arc<CallSteps>);

struct CallSteps {
    max_request_bytes: usize,
    admission: Admission,
    dispatch: Box<dyn Route>,
}

impl Calls {
    pub(super) fn new(
        max_request_bytes: usize,
        admission: Admission,
        dispatch: impl Route + 'static,
    ) -> Self {
        Self(Arc::new(CallSteps {
            max_request_bytes,
            admission,
            dispatch: Box::new(dispatch),
        }))
    }
}

impl CallSteps {
    fn start(self: &Arc<Self>, request: Request<Body>, call: Call) -> Work {
        if !single_message::applies_to(&request, &call) {
            return self.admit(request, call);
        }
        // Read whole first: a slow sender holds no place.
        let steps = self.clone();
        Work::Waiting {
            future: Box::pin(async move {
                match single_message::one_message(request, steps.max_request_bytes).await {
                    Ok(request) => steps.admit(request, call).await,
                    Err(refusal) => refusal,
                }
            }),
        }
    }

    /// Who may call and how often, then whether there is room.
    fn admit(self: &Arc<Self>, request: Request<Body>, call: Call) -> Work {
        match self.admission.admit(request, &call) {
            Admitted::Refused(refusal) => Work::Ready {
                response: Some(refusal),
            },
            Admitted::Through(request) => Work::Served {
                served: self.serve(request, &call, None),
            },
            Admitted::Now(request, pass) => Work::Served {
                served: self.serve(request, &call, Some(pass)),
            },
            Admitted::Queued(request, ticket) => {
                let steps = self.clone();
                Work::Waiting {
                    future: Box::pin(async move {
                        match ticket.wait().await {
                            Ok(pass) => steps.serve(request, &call, Some(pass)).await,
                            Err((why, load)) => {
                                steps.admission.refuse(request.headers(), why, load)
                            }
                        }
                    }),
                }
            }
        }
    }

    /// The call dispatched in its context: the calls a handler makes carry
    /// its deadline and its caller's token on by themselves.
    fn serve(&self, request: Request<Body>, call: &Call, pass: Option<Pass>) -> Served {
        let authorization = call
            .authorization
            .then(|| request.headers().get(AUTHORIZATION).cloned())
            .flatten();
        Served {
            answer: in_context(call, authorization, self.dispatch.route(request, call)),
            pass,
            grpc: matches!(call.protocol, Protocol::Grpc | Protocol::GrpcWeb),
        }
    }
}

impl Service<Request<Body>> for Calls {
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::Map<Work, fn(Response) -> Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = Call::of(&request);
        self.0.start(request, call).map(Ok)
    }
}

pin_project_lite::pin_project! {
    /// A call's work from the calls' steps on.
    #[project = WorkProjection]
    pub(super) enum Work {
        /// Answered already (refused).
        Ready { response: Option<Response> },
        /// At its stack.
        Served { #[pin] served: Served },
        /// Waiting for something first (its body, a place, the service's
        /// wraps, CORS).
        Waiting { future: BoxFuture<'static, Response> },
    }
}

impl Future for Work {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.project() {
            WorkProjection::Ready { response } => Poll::Ready(response.take().unwrap_or_default()),
            WorkProjection::Served { served } => served.poll(cx),
            WorkProjection::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

pin_project_lite::pin_project! {
    /// A call at its stack, in its context, holding its place until the
    /// answer's head.
    pub(super) struct Served {
        #[pin]
        answer: InContext<BoxFuture<'static, Response>>,
        pass: Option<Pass>,
        grpc: bool,
    }
}

impl Future for Served {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = self.project();
        let answer = ready!(this.answer.poll(cx));
        if let Some(pass) = this.pass.take() {
            pass.finish(answered_ok(&answer, *this.grpc));
        }
        Poll::Ready(answer)
    }
}

pin_project_lite::pin_project! {
    /// A request's answer: its work, observed (in its trace, when it is
    /// traced), with the request's id.
    pub(super) struct Answer {
        #[pin]
        work: Work,
        observed: Option<Observed>,
        request_id: Option<HeaderValue>,
        // The listener's count of the connection's requests, held by the
        // body (the observed one's own, when there is one).
        in_flight: Option<InFlight>,
    }
}

impl Answer {
    fn of(work: Work) -> Self {
        Self {
            work,
            observed: None,
            request_id: None,
            in_flight: None,
        }
    }
}

impl Future for Answer {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = {
            let _in_trace = this
                .observed
                .as_ref()
                .and_then(Observed::trace_context)
                .map(opentelemetry::Context::attach);
            ready!(this.work.poll(cx))
        };
        let in_flight = this.in_flight.take();
        let mut response = match this.observed.take() {
            Some(observed) => observed.answered(response, in_flight),
            None => holding(response, in_flight),
        };
        if let Some(id) = this.request_id.take() {
            response.headers_mut().entry(X_REQUEST_ID).or_insert(id);
        }
        Poll::Ready(Ok(response))
    }
}
