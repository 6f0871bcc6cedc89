//! Reports an oversize gRPC request as RESOURCE_EXHAUSTED, as the gRPC
//! spec and connect-go do. tonic enforces `max_decoding_message_size` but
//! answers OUT_OF_RANGE; its refusal comes back trailers-only (the request
//! is decoded before the handler runs), so rewriting the header status is
//! enough.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

/// The start of tonic's message for a request over the size limit.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

fn is_tonic_too_large<B>(response: &Response<B>) -> bool {
    let headers = response.headers();
    headers
        .get("grpc-status")
        .is_some_and(|s| s == OUT_OF_RANGE)
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| percent_decoded_prefix(m).starts_with(TONIC_TOO_LARGE))
}

/// grpc-message is percent-encoded; tonic encodes spaces as %20.
fn percent_decoded_prefix(message: &str) -> String {
    message.replace("%20", " ").replace("%2C", ",")
}

#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcLimitStatusLayer;

impl<S> Layer<S> for GrpcLimitStatusLayer {
    type Service = GrpcLimitStatus<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcLimitStatus { inner }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcLimitStatus<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcLimitStatus<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            if is_tonic_too_large(&response) {
                response
                    .headers_mut()
                    .insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tonics_size_refusal_is_rewritten() {
        let too_large = tonic::Status::out_of_range(format!(
            "{TONIC_TOO_LARGE}: found 5242885 bytes, the limit is: 4194304 bytes"
        ))
        .into_http::<()>();
        assert!(is_tonic_too_large(&too_large));
        let a_handlers_own = tonic::Status::out_of_range("page 9 of 3").into_http::<()>();
        assert!(!is_tonic_too_large(&a_handlers_own));
    }
}
