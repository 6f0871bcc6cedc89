//! The exact HTTP request each protocol sends for each call shape: the same
//! bytes go to every server, through h2load and through the preflight check.

use base64::Engine;
use prost::Message;
use serde::Serialize;

use crate::echo::{self, ECHO_PATH, TICKS_PATH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    ConnectJson,
    ConnectProto,
    ConnectGet,
    Grpc,
    GrpcWeb,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::ConnectJson => "Connect JSON",
            Protocol::ConnectProto => "Connect proto",
            Protocol::ConnectGet => "Connect GET",
            Protocol::Grpc => "gRPC",
            Protocol::GrpcWeb => "gRPC-Web",
        }
    }

    /// The bare-axum protocol doing the same encoding work: the limit this
    /// protocol is compared with.
    pub fn limit(self) -> Protocol {
        match self {
            Protocol::ConnectJson | Protocol::ConnectGet => self,
            Protocol::ConnectProto | Protocol::Grpc | Protocol::GrpcWeb => Protocol::ConnectProto,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Echo: one message each way.
    Unary,
    /// Ticks: one message in, ten small ones back.
    ServerStream,
}

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::Unary, Shape::ServerStream];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Unary => "unary echo",
            Shape::ServerStream => "server stream (10 messages)",
        }
    }

    /// How many response messages a correct answer carries.
    pub fn messages(self) -> usize {
        match self {
            Shape::Unary => 1,
            Shape::ServerStream => usize::try_from(echo::ticks_request().count).unwrap_or(0),
        }
    }
}

/// One HTTP/2 request: GET when `body` is `None`.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// The request `protocol` sends for `shape`; `None` where the protocol has
/// no such call (Connect GET is for unary, idempotent methods only).
pub fn request(protocol: Protocol, shape: Shape) -> Option<HttpRequest> {
    let (path, proto, json) = match shape {
        Shape::Unary => {
            let request = echo::echo_request();
            (ECHO_PATH, request.encode_to_vec(), to_json(&request))
        }
        Shape::ServerStream => {
            let request = echo::ticks_request();
            (TICKS_PATH, request.encode_to_vec(), to_json(&request))
        }
    };
    let post = |headers: Vec<(String, String)>, body: Vec<u8>| HttpRequest {
        path_and_query: path.to_owned(),
        headers,
        body: Some(body),
    };
    Some(match (protocol, shape) {
        (Protocol::ConnectJson, Shape::Unary) => post(connect_headers("application/json"), json),
        (Protocol::ConnectProto, Shape::Unary) => post(connect_headers("application/proto"), proto),
        (Protocol::ConnectJson, Shape::ServerStream) => {
            post(connect_headers("application/connect+json"), envelope(&json))
        }
        (Protocol::ConnectProto, Shape::ServerStream) => post(
            connect_headers("application/connect+proto"),
            envelope(&proto),
        ),
        (Protocol::ConnectGet, Shape::Unary) => HttpRequest {
            path_and_query: format!(
                "{path}?connect=v1&encoding=proto&base64=1&message={}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&proto)
            ),
            headers: Vec::new(),
            body: None,
        },
        (Protocol::ConnectGet, Shape::ServerStream) => return None,
        (Protocol::Grpc, _) => post(
            headers(&[("content-type", "application/grpc"), ("te", "trailers")]),
            envelope(&proto),
        ),
        (Protocol::GrpcWeb, _) => post(
            headers(&[
                ("content-type", "application/grpc-web+proto"),
                ("x-grpc-web", "1"),
            ]),
            envelope(&proto),
        ),
    })
}

fn connect_headers(content_type: &str) -> Vec<(String, String)> {
    headers(&[
        ("content-type", content_type),
        ("connect-protocol-version", "1"),
    ])
}

pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// A Connect GET of `path` with `message` as JSON, plus `headers`.
pub fn connect_get_json(
    path: &str,
    message: &serde_json::Value,
    headers: Vec<(String, String)>,
) -> HttpRequest {
    let message: String = form_urlencoded::byte_serialize(message.to_string().as_bytes()).collect();
    HttpRequest {
        path_and_query: format!("{path}?connect=v1&encoding=json&message={message}"),
        headers,
        body: None,
    }
}

fn to_json<M: Serialize>(message: &M) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

/// A message in the 5-byte envelope of Connect streams, gRPC and gRPC-Web.
pub fn envelope(payload: &[u8]) -> Vec<u8> {
    frame(0, payload)
}

/// An envelope with `flags` (e.g. 2: Connect's end-of-stream message).
pub fn frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(flags);
    frame.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    frame.extend_from_slice(payload);
    frame
}

/// Splits a body into its envelopes: (flags, payload).
pub fn envelopes(mut body: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        let header = body.get(..5)?;
        let length = usize::try_from(u32::from_be_bytes([
            header[1], header[2], header[3], header[4],
        ]))
        .ok()?;
        let payload = body.get(5..5 + length)?;
        frames.push((header[0], payload));
        body = &body[5 + length..];
    }
    Some(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_has_a_unary_request_and_get_has_no_stream() {
        for protocol in [
            Protocol::ConnectJson,
            Protocol::ConnectProto,
            Protocol::ConnectGet,
            Protocol::Grpc,
            Protocol::GrpcWeb,
        ] {
            assert!(request(protocol, Shape::Unary).is_some());
        }
        assert!(request(Protocol::ConnectGet, Shape::ServerStream).is_none());
    }

    #[test]
    fn envelopes_round_trip_and_reject_truncation() {
        let mut body = envelope(b"abc");
        body.extend(envelope(b""));
        let frames = envelopes(&body).expect("well formed");
        assert_eq!(frames, vec![(0, &b"abc"[..]), (0, &b""[..])]);
        assert!(envelopes(&body[..4]).is_none());
    }
}
