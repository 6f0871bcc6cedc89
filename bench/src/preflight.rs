//! Before a server is loaded, one request per protocol and shape checks
//! that it answers correctly (status, every message, the final status), so
//! a fast error can never pass for a fast answer: h2load itself only sees
//! HTTP statuses, and gRPC errors travel in trailers.

use std::net::SocketAddr;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::Message;

use crate::{
    echo,
    pb::{EchoResponse, TicksResponse},
    targets::{self, HttpRequest, Protocol, Shape},
};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// An HTTP/2 (prior knowledge) client for the checks.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Sends `request` to `addr` and checks the answer is what `protocol` and
/// `shape` promise.
pub async fn check(
    client: &HttpClient,
    addr: SocketAddr,
    protocol: Protocol,
    shape: Shape,
    request: &HttpRequest,
) -> anyhow::Result<()> {
    let mut builder = Request::builder()
        .method(if request.body.is_some() {
            Method::POST
        } else {
            Method::GET
        })
        .uri(format!("http://{addr}{}", request.path_and_query));
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
    let response = client
        .request(builder.body(body)?)
        .await
        .context("sending")?;
    let status = response.status();
    let headers = response.headers().clone();
    let collected = response
        .into_body()
        .collect()
        .await
        .context("reading the body")?;
    let trailers = collected.trailers().cloned();
    let body = collected.to_bytes();
    ensure!(
        status == http::StatusCode::OK,
        "HTTP {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));

    let messages: Vec<&[u8]> = match protocol {
        Protocol::ConnectJson | Protocol::ConnectProto | Protocol::ConnectGet
            if shape == Shape::Unary =>
        {
            vec![&body]
        }
        Protocol::ConnectJson | Protocol::ConnectProto | Protocol::ConnectGet => {
            let frames = targets::envelopes(&body).context("malformed envelopes")?;
            let (end, data) = frames.split_last().context("no end-of-stream message")?;
            ensure!(
                end.0 & 2 == 2,
                "the stream did not end with an end-of-stream message"
            );
            let end: serde_json::Value = serde_json::from_slice(end.1)?;
            ensure!(end.get("error").is_none(), "the stream ended with {end}");
            data.iter().map(|(_, payload)| *payload).collect()
        }
        Protocol::Grpc => {
            let status = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-status"))
                .or_else(|| headers.get("grpc-status"))
                .and_then(|v| v.to_str().ok())
                .context("no grpc-status")?;
            ensure!(status == "0", "grpc-status {status}");
            let frames = targets::envelopes(&body).context("malformed gRPC frames")?;
            frames.into_iter().map(|(_, payload)| payload).collect()
        }
        Protocol::GrpcWeb => {
            let frames = targets::envelopes(&body).context("malformed gRPC-Web frames")?;
            let (trailer, data) = frames.split_last().context("no trailers frame")?;
            ensure!(
                trailer.0 & 0x80 == 0x80,
                "the last gRPC-Web frame is not the trailers"
            );
            let trailer = String::from_utf8_lossy(trailer.1).to_ascii_lowercase();
            ensure!(
                trailer
                    .lines()
                    .any(|l| l.replace(' ', "") == "grpc-status:0"),
                "gRPC-Web trailers: {trailer}"
            );
            data.iter().map(|(_, payload)| *payload).collect()
        }
    };
    ensure!(
        messages.len() == shape.messages(),
        "{} messages, expected {}",
        messages.len(),
        shape.messages()
    );
    for message in messages {
        check_message(shape, json, message)?;
    }
    Ok(())
}

fn check_message(shape: Shape, json: bool, bytes: &[u8]) -> anyhow::Result<()> {
    match shape {
        Shape::Unary => {
            let response: EchoResponse = decode(json, bytes)?;
            ensure!(
                response == echo::echo(echo::echo_request()),
                "echoed {response:?}"
            );
        }
        Shape::ServerStream => {
            let response: TicksResponse = decode(json, bytes)?;
            if response.message != echo::ticks_request().message {
                bail!("tick carried {response:?}");
            }
        }
    }
    Ok(())
}

fn decode<M: Message + Default + serde::de::DeserializeOwned>(
    json: bool,
    bytes: &[u8],
) -> anyhow::Result<M> {
    Ok(if json {
        serde_json::from_slice(bytes)?
    } else {
        M::decode(bytes)?
    })
}
