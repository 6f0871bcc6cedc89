//! A call that may be sent again on `unavailable` (its method's
//! retryPolicy names it) is answered whole before the retry policy looks
//! at it: its message and trailers are read here. A connection that breaks
//! after the answer began (a replica killed between sending its head and
//! its end) is then what it is, the connection broken under the call, and
//! the call is sent again as it would be had it broken a moment earlier,
//! instead of failing in the middle of the caller's read. Only a method
//! that answers with one message is read whole: a stream is its caller's
//! to read as it comes.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tonic::{Code, Status};
use tower::Service;

use super::{
    calls::MethodCalls,
    status::{BoxError, Response, answer, head_code},
};

/// The largest answer read whole: tonic's default largest message, and
/// its envelope. A larger one is refused, as tonic's decoder would.
const MOST_ANSWER_BYTES: usize = 4 * 1024 * 1024 + 5;

type Request = http::Request<Bytes>;

#[derive(Clone)]
pub(super) struct ReadWhole<S> {
    inner: S,
}

impl<S> ReadWhole<S> {
    pub(super) fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> Service<Request> for ReadWhole<S>
where
    S: Service<Request, Response = Response, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, BoxError>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let whole = MethodCalls::of_request(&request).read_whole();
        let answered = self.inner.call(request);
        if !whole {
            return Either::Left(answered);
        }
        Either::Right(Box::pin(async move { read_whole(answered.await?).await }))
    }
}

/// `response` with its body read to the end: an error reading it is the
/// call's (the connection broke), except an answer too large to take.
async fn read_whole(response: Response) -> Result<Response, BoxError> {
    if head_code(response.status(), response.headers()).is_some() {
        // Trailers-only: whole already.
        return Ok(response);
    }
    let (head, body) = response.into_parts();
    match Limited::new(body, MOST_ANSWER_BYTES).collect().await {
        Ok(whole) => Ok(Response::from_parts(head, tonic::body::Body::new(whole))),
        Err(error) if error.is::<LengthLimitError>() => Ok(answer(Status::new(
            Code::OutOfRange,
            format!("the answer is larger than {MOST_ANSWER_BYTES} bytes"),
        ))),
        Err(error) => Err(error),
    }
}
