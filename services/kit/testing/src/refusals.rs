//! One request sent over every protocol a service speaks, and the refusal
//! each answered, read the way a client of that protocol reads it: a
//! Connect error body (JSON, with base64 details), or `grpc-status` and
//! `grpc-status-details-bin` (headers, trailers, or gRPC-Web's trailer
//! frame).

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use prost::Message;
use tonic_types::StatusExt as _;

/// How one protocol answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `connect+json`, `connect+proto`, `grpc`, `grpc+json` or `grpc-web`.
    pub protocol: &'static str,
    /// The Connect name of the code (`invalid_argument`), `ok` if none.
    pub code: String,
    /// The `google.rpc.BadRequest` field violations, as `field` paths.
    pub fields: Vec<String>,
    /// Their reasons, in the same order.
    pub reasons: Vec<String>,
}

/// Whether the protocol carries JSON (its refusals name fields as JSON does).
pub fn sends_json(protocol: &str) -> bool {
    protocol.ends_with("+json")
}

/// Sends `request` to `path` (`/package.Service/Method`) of the service at
/// `base` (`http://127.0.0.1:port`) over Connect with JSON and with
/// protobuf, gRPC with protobuf and with JSON, and gRPC-Web, with a bearer
/// `token` if given, and returns what each answered.
pub async fn on_every_protocol<T: Message + serde::Serialize>(
    base: &str,
    path: &str,
    token: Option<&str>,
    request: &T,
) -> Vec<Refusal> {
    let url = format!("{base}{path}");
    let json = serde_json::to_vec(request).expect("JSON");
    let proto = request.encode_to_vec();
    vec![
        connect(
            &url,
            token,
            "connect+json",
            "application/json",
            json.clone(),
        )
        .await,
        connect(
            &url,
            token,
            "connect+proto",
            "application/proto",
            proto.clone(),
        )
        .await,
        grpc(&url, token, "grpc", "application/grpc", &proto).await,
        grpc(&url, token, "grpc+json", "application/grpc+json", &json).await,
        grpc_web(&url, token, &proto).await,
    ]
}

async fn connect(
    url: &str,
    token: Option<&str>,
    protocol: &'static str,
    content_type: &str,
    body: Vec<u8>,
) -> Refusal {
    let mut call = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        call = call.bearer_auth(token);
    }
    let response = call.send().await.expect("a Connect call");
    if response.status().is_success() {
        return refusal(protocol, "ok".to_owned(), None);
    }
    let error: serde_json::Value = response.json().await.expect("a Connect error body");
    let bad_request = error["details"].as_array().and_then(|details| {
        let detail = details
            .iter()
            .find(|detail| detail["type"] == "google.rpc.BadRequest")?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(detail["value"].as_str()?.trim_end_matches('='))
            .ok()?;
        tonic_types::pb::BadRequest::decode(bytes.as_slice()).ok()
    });
    let code = error["code"].as_str().unwrap_or("unknown").to_owned();
    refusal(
        protocol,
        code,
        bad_request.map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.reason))
                .collect()
        }),
    )
}

fn envelope(payload: &[u8]) -> Bytes {
    let length = u32::try_from(payload.len()).expect("a small message");
    let mut framed = Vec::with_capacity(5 + payload.len());
    framed.push(0);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(payload);
    Bytes::from(framed)
}

fn with_token(mut request: http::request::Builder, token: Option<&str>) -> http::request::Builder {
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request
}

async fn grpc(
    url: &str,
    token: Option<&str>,
    protocol: &'static str,
    content_type: &str,
    message: &[u8],
) -> Refusal {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let request = with_token(
        http::Request::post(url)
            .header("te", "trailers")
            .header("content-type", content_type),
        token,
    )
    .body(Full::new(envelope(message)))
    .expect("a gRPC request");
    let response = client.request(request).await.expect("a gRPC call");
    let (parts, body) = response.into_parts();
    let trailers = body
        .collect()
        .await
        .expect("the gRPC body")
        .trailers()
        .cloned();
    let status = tonic::Status::from_header_map(&parts.headers)
        .or_else(|| trailers.as_ref().and_then(tonic::Status::from_header_map));
    grpc_refusal(protocol, status)
}

async fn grpc_web(url: &str, token: Option<&str>, message: &[u8]) -> Refusal {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/grpc-web+proto")
        .body(envelope(message));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("a gRPC-Web call");
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("the gRPC-Web body");
    let status = tonic::Status::from_header_map(&headers).or_else(|| {
        // The trailers frame (flag 0x80): "name: value\r\n" lines.
        let mut at = 0;
        while at + 5 <= body.len() {
            let length =
                u32::from_be_bytes([body[at + 1], body[at + 2], body[at + 3], body[at + 4]]);
            let end = at + 5 + usize::try_from(length).ok()?;
            if body[at] & 0x80 != 0 {
                let mut trailers = http::HeaderMap::new();
                for line in String::from_utf8_lossy(body.get(at + 5..end)?).split("\r\n") {
                    if let Some((name, value)) = line.split_once(':') {
                        trailers.insert(
                            http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                            http::HeaderValue::from_str(value.trim()).ok()?,
                        );
                    }
                }
                return tonic::Status::from_header_map(&trailers);
            }
            at = end;
        }
        None
    });
    grpc_refusal("grpc-web", status)
}

fn grpc_refusal(protocol: &'static str, status: Option<tonic::Status>) -> Refusal {
    let Some(status) = status else {
        return refusal(protocol, "no grpc-status".to_owned(), None);
    };
    let code = connectrpc_axum::prelude::ConnectError::from(status.clone())
        .code()
        .as_str()
        .to_owned();
    let violations = status.get_details_bad_request().map(|bad| {
        bad.field_violations
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect()
    });
    refusal(protocol, code, violations)
}

fn refusal(
    protocol: &'static str,
    code: String,
    violations: Option<Vec<(String, String)>>,
) -> Refusal {
    let (fields, reasons) = violations.unwrap_or_default().into_iter().unzip();
    Refusal {
        protocol,
        code,
        fields,
        reasons,
    }
}

/// Asserts that every protocol refuses `request` with `invalid_argument`
/// and a `google.rpc.BadRequest` naming exactly `fields` (in any order),
/// each given as (proto name, JSON name): the JSON name to JSON callers,
/// the proto name to binary ones.
pub async fn assert_bad_request<T: Message + serde::Serialize>(
    base: &str,
    path: &str,
    token: Option<&str>,
    request: &T,
    fields: &[(&str, &str)],
) {
    for answer in on_every_protocol(base, path, token, request).await {
        let mut expected: Vec<&str> = fields
            .iter()
            .map(|(proto, json)| {
                if sends_json(answer.protocol) {
                    *json
                } else {
                    *proto
                }
            })
            .collect();
        expected.sort_unstable();
        let mut named: Vec<&str> = answer.fields.iter().map(String::as_str).collect();
        named.sort_unstable();
        assert_eq!(
            (answer.code.as_str(), named),
            ("invalid_argument", expected),
            "{path} over {}: {answer:?}",
            answer.protocol
        );
    }
}
