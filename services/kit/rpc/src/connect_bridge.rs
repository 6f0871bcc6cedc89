//! Connect for services that only tonic serves (grpc.health.v1, reflection):
//! a Connect call on their paths is replayed as gRPC through the server's
//! own gRPC stack (JSON included, via the JSON codec layer) and the answer
//! translated back: the message and status for unary calls, the envelopes
//! plus an end-of-stream message for streams. gRPC and gRPC-Web calls on
//! those paths pass straight through.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use connectrpc_axum::prelude::{Code, ConnectError};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header::CONTENT_TYPE};
use http_body::Frame;
use http_body_util::BodyExt;
use shop_kit_wire::GRPC_ENCODING;
use tower::{Service, ServiceExt};

use super::{
    connect_errors::{code_name, grpc_message},
    deadline::{BadTimeout, CONNECT_TIMEOUT_MS, grpc_timeout_value, parse_connect_timeout},
    envelope,
    protocol::{CONNECT_CONTENT_ENCODING, Protocol, content_type, is_connect_streaming},
};

/// Bridges Connect to the gRPC service `grpc`.
#[derive(Clone, Debug)]
pub struct ConnectBridge<G> {
    grpc: G,
    max_message_bytes: usize,
}

impl<G> ConnectBridge<G> {
    pub fn new(grpc: G, max_message_bytes: usize) -> Self {
        Self {
            grpc,
            max_message_bytes,
        }
    }
}

impl<G, B> Service<Request<Body>> for ConnectBridge<G>
where
    G: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    G::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let grpc = self.grpc.clone();
        let max = self.max_message_bytes;
        Box::pin(async move {
            if Protocol::of(request.headers()) != Protocol::Connect {
                let response = grpc.oneshot(request).await?;
                return Ok(response.map(Body::new));
            }
            let streaming = is_connect_streaming(request.headers());
            let json = content_type(request.headers()).is_some_and(|ct| ct.ends_with("json"));
            let request = match to_grpc(request, streaming, json, max).await {
                Ok(request) => request,
                Err(error) => return Ok(error.into_response()),
            };
            let response = grpc.oneshot(request).await?;
            Ok(if streaming {
                stream_from_grpc(response, json)
            } else {
                unary_from_grpc(response, json).await
            })
        })
    }
}

fn grpc_content_type(json: bool) -> HeaderValue {
    HeaderValue::from_static(if json {
        "application/grpc+json"
    } else {
        "application/grpc+proto"
    })
}

async fn to_grpc(
    request: Request<Body>,
    streaming: bool,
    json: bool,
    max: usize,
) -> Result<Request<Body>, ConnectError> {
    let (mut parts, body) = request.into_parts();
    if parts.method != http::Method::POST {
        return Err(ConnectError::new(
            Code::Unimplemented,
            "this method answers POST only",
        ));
    }
    // The replayed call stays in the process, where gRPC's trailers exist
    // whatever HTTP version the client used (tonic-web refuses gRPC on 1.1).
    parts.version = http::Version::HTTP_2;
    parts.headers.insert(CONTENT_TYPE, grpc_content_type(json));
    parts
        .headers
        .insert(http::header::TE, HeaderValue::from_static("trailers"));
    parts.headers.remove(http::header::CONTENT_LENGTH);
    // Checked like the shop's own services do (connectrpc-axum): a bad
    // value is invalid_argument, a good one becomes the gRPC deadline.
    if let Some(value) = parts.headers.remove(&CONNECT_TIMEOUT_MS) {
        let timeout = value
            .to_str()
            .map_err(|_| BadTimeout)
            .and_then(parse_connect_timeout)
            .map_err(|e| ConnectError::new(Code::InvalidArgument, e.to_string()))?;
        parts
            .headers
            .insert("grpc-timeout", grpc_timeout_value(timeout));
    }
    if streaming {
        // Connect streaming envelopes are gRPC envelopes.
        if let Some(encoding) = parts.headers.remove(CONNECT_CONTENT_ENCODING) {
            parts.headers.insert(GRPC_ENCODING, encoding);
        }
        return Ok(Request::from_parts(parts, body));
    }
    if parts
        .headers
        .remove(http::header::CONTENT_ENCODING)
        .is_some_and(|e| e != "identity")
    {
        return Err(ConnectError::new(
            Code::Unimplemented,
            "send uncompressed requests to this service",
        ));
    }
    let message = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|_| {
            ConnectError::new(
                Code::ResourceExhausted,
                format!("request larger than {max} bytes"),
            )
        })?
        .to_bytes();
    let framed = envelope::framed(0, &message);
    Ok(Request::from_parts(parts, Body::from(framed)))
}

/// The status a gRPC answer ended with, from its trailers (or headers).
fn grpc_outcome(headers: &HeaderMap) -> Option<(i32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = grpc_message(headers).unwrap_or_default();
    Some((code, message))
}

fn connect_error(code: i32, message: String) -> ConnectError {
    let code = code_name(code).parse().unwrap_or(Code::Unknown);
    ConnectError::new(code, message)
}

async fn unary_from_grpc<B>(response: Response<B>, json: bool) -> Response
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (parts, body) = response.into_parts();
    let collected = match body.collect().await {
        Ok(collected) => collected,
        Err(error) => return ConnectError::new(Code::Internal, error.to_string()).into_response(),
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let outcome = grpc_outcome(&trailers).or_else(|| grpc_outcome(&parts.headers));
    match outcome {
        Some((0, _)) => {
            let data = collected.to_bytes();
            let message = data
                .get(5..)
                .map(Bytes::copy_from_slice)
                .unwrap_or_default();
            let mut response = Response::new(Body::from(message));
            let ct = if json {
                "application/json"
            } else {
                "application/proto"
            };
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            response
        }
        Some((code, message)) => connect_error(code, message).into_response(),
        None if parts.status == StatusCode::NOT_FOUND => {
            ConnectError::new(Code::Unimplemented, "no such method").into_response()
        }
        None => ConnectError::new(Code::Unknown, "the call ended without a status").into_response(),
    }
}

fn end_stream_frame(outcome: Option<(i32, String)>) -> Bytes {
    let end = match outcome {
        Some((0, _)) => serde_json::json!({}),
        Some((code, message)) => {
            serde_json::json!({"error": {"code": code_name(code), "message": message}})
        }
        None => {
            serde_json::json!({"error": {"code": "unknown", "message": "the stream ended without a status"}})
        }
    };
    envelope::framed(envelope::END_STREAM, end.to_string().as_bytes())
}

fn stream_from_grpc<B>(response: Response<B>, json: bool) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display + Send + Sync + 'static,
{
    let (mut parts, body) = response.into_parts();
    let trailers_only = grpc_outcome(&parts.headers);
    parts.status = StatusCode::OK;
    let ct = if json {
        "application/connect+json"
    } else {
        "application/connect+proto"
    };
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Some(encoding) = parts.headers.remove(GRPC_ENCODING) {
        parts.headers.insert("connect-content-encoding", encoding);
    }
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        parts.headers.remove(name);
    }
    let body = match trailers_only {
        Some(outcome) => Body::from(end_stream_frame(Some(outcome))),
        None => Body::new(EndStreamBody {
            inner: Box::pin(body),
            ended: false,
        }),
    };
    Response::from_parts(parts, body)
}

/// gRPC frames in, Connect frames out: data passes, trailers become the
/// end-of-stream message.
struct EndStreamBody<B> {
    inner: Pin<Box<B>>,
    ended: bool,
}

impl<B> http_body::Body for EndStreamBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Err(frame) => {
                    self.ended = true;
                    let outcome = frame.trailers_ref().and_then(grpc_outcome);
                    Poll::Ready(Some(Ok(Frame::data(end_stream_frame(outcome)))))
                }
            },
            Poll::Ready(Some(Err(error))) => {
                self.ended = true;
                let outcome = Some((13, error.to_string()));
                Poll::Ready(Some(Ok(Frame::data(end_stream_frame(outcome)))))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(Ok(Frame::data(end_stream_frame(None)))))
            }
        }
    }
}
