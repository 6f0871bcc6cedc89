//! The limit: plain axum routes doing the same decode/echo/encode work as
//! the RPC stacks, with no protocol machinery beyond what the bytes need
//! (Connect's unary JSON/proto, GET query and stream envelopes by hand).
//! Nothing generic can be faster on axum, so every other server is
//! reported as a ratio to this one.

use axum::{
    Router,
    body::{Body, Bytes},
    extract::RawQuery,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine;
use prost::Message;

use crate::{
    echo::{self, ECHO_PATH, TICKS_PATH},
    pb::{EchoRequest, TicksRequest},
    targets,
};

pub fn router() -> Router {
    Router::new()
        .route(ECHO_PATH, post(echo_post).get(echo_get))
        .route(TICKS_PATH, post(ticks))
}

#[derive(Clone, Copy, PartialEq)]
enum Codec {
    Json,
    Proto,
}

impl Codec {
    fn of(headers: &HeaderMap) -> Option<Self> {
        match headers.get(header::CONTENT_TYPE)?.as_bytes() {
            b"application/json" | b"application/connect+json" => Some(Self::Json),
            b"application/proto" | b"application/connect+proto" => Some(Self::Proto),
            _ => None,
        }
    }

    fn decode<M: Message + Default + serde::de::DeserializeOwned>(self, bytes: &[u8]) -> Option<M> {
        match self {
            Self::Json => serde_json::from_slice(bytes).ok(),
            Self::Proto => M::decode(bytes).ok(),
        }
    }

    fn encode<M: Message + serde::Serialize>(self, message: &M) -> Vec<u8> {
        match self {
            Self::Json => serde_json::to_vec(message).unwrap_or_default(),
            Self::Proto => message.encode_to_vec(),
        }
    }

    fn unary_content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Proto => "application/proto",
        }
    }
}

fn bad_request() -> Response {
    StatusCode::BAD_REQUEST.into_response()
}

async fn echo_post(headers: HeaderMap, body: Bytes) -> Response {
    let Some(codec) = Codec::of(&headers) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    reply(codec, codec.decode::<EchoRequest>(&body))
}

/// Connect GET: `?encoding=..&message=..[&base64=1]`.
async fn echo_get(RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let mut codec = None;
    let mut message = None;
    let mut base64 = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "encoding" if value == "json" => codec = Some(Codec::Json),
            "encoding" if value == "proto" => codec = Some(Codec::Proto),
            "message" => message = Some(value.into_owned()),
            "base64" => base64 = value == "1",
            _ => {}
        }
    }
    let (Some(codec), Some(message)) = (codec, message) else {
        return bad_request();
    };
    let bytes = if base64 {
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(message.trim_end_matches('='))
        {
            Ok(bytes) => bytes,
            Err(_) => return bad_request(),
        }
    } else {
        message.into_bytes()
    };
    reply(codec, codec.decode::<EchoRequest>(&bytes))
}

fn reply(codec: Codec, request: Option<EchoRequest>) -> Response {
    let Some(request) = request else {
        return bad_request();
    };
    (
        [(header::CONTENT_TYPE, codec.unary_content_type())],
        codec.encode(&echo::echo(request)),
    )
        .into_response()
}

/// A Connect server stream: enveloped messages, then the end-of-stream
/// envelope.
async fn ticks(headers: HeaderMap, body: Bytes) -> Response {
    let Some(codec) = Codec::of(&headers) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    let Some(payload) = body.get(5..) else {
        return bad_request();
    };
    let Some(ticks) = codec
        .decode::<TicksRequest>(payload)
        .and_then(|request| echo::ticks(request).ok())
    else {
        return bad_request();
    };
    let frames = ticks
        .map(move |tick| Bytes::from(targets::frame(0, &codec.encode(&tick))))
        .chain(std::iter::once(Bytes::from(targets::frame(2, b"{}"))))
        .map(Ok::<_, std::convert::Infallible>);
    let content_type = match codec {
        Codec::Json => "application/connect+json",
        Codec::Proto => "application/connect+proto",
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(futures::stream::iter(frames)),
    )
        .into_response()
}
