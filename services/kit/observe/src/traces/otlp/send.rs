//! Sends an encoded `ExportTraceServiceRequest` to the collector, over
//! OTLP/gRPC (tonic) or OTLP/HTTP (`application/x-protobuf`), with the
//! headers and timeout the standard variables give
//! (`OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `OTEL_EXPORTER_OTLP_(TRACES_)
//! TIMEOUT`), and reads back how many spans the collector rejected.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::{HeaderMap, HeaderName, HeaderValue, uri::PathAndQuery};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::traces::OtlpProtocol;

/// The gRPC method of OTLP trace export.
const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// How long an export may take unless OTEL_EXPORTER_OTLP_TIMEOUT says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response body read (it only says what was rejected).
const RESPONSE_LIMIT: usize = 64 * 1024;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(
        "{0}: not a collector's address; give http://host:port (the collector is reached without TLS: run it beside the service)"
    )]
    Endpoint(String),
    #[error("the collector did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the collector refused the spans: {0}")]
    Grpc(#[from] tonic::Status),
    #[error("the collector answered HTTP {0}")]
    HttpStatus(http::StatusCode),
    #[error("the collector's connection failed: {0}")]
    Http(String),
}

/// Where and how spans are sent.
pub(crate) struct Sender {
    transport: Transport,
    headers: HeaderMap,
    timeout: Duration,
}

enum Transport {
    Grpc(tonic::transport::Channel),
    Http {
        /// Boxed: the client is most of the sender's size.
        client: Box<Client<HttpConnector, Full<Bytes>>>,
        uri: http::Uri,
    },
}

impl Sender {
    /// A sender to `endpoint` (the traces URL itself: `/v1/traces` for
    /// HTTP is already on it). Call inside the Tokio runtime.
    pub(crate) fn new(endpoint: &str, protocol: OtlpProtocol) -> Result<Self, SendError> {
        let bad = || SendError::Endpoint(endpoint.to_owned());
        let uri: http::Uri = endpoint.parse().map_err(|_| bad())?;
        if !matches!(uri.scheme_str(), Some("http")) || uri.host().is_none() {
            return Err(bad());
        }
        let timeout = timeout();
        let transport = match protocol {
            OtlpProtocol::Grpc => {
                Transport::Grpc(tonic::transport::Endpoint::from(uri).connect_lazy())
            }
            OtlpProtocol::HttpProtobuf => Transport::Http {
                client: Box::new(Client::builder(TokioExecutor::new()).build_http()),
                uri,
            },
        };
        Ok(Self {
            transport,
            headers: headers(),
            timeout,
        })
    }

    /// Sends one request; the number of spans the collector rejected.
    pub(crate) async fn send(&self, request: Vec<u8>) -> Result<u64, SendError> {
        let answered = tokio::time::timeout(self.timeout, self.exchange(request.into()))
            .await
            .map_err(|_| SendError::Timeout(self.timeout))??;
        Ok(answered
            .partial_success
            .map_or(0, |partial| partial.rejected_spans.max(0) as u64))
    }

    async fn exchange(&self, request: Bytes) -> Result<ExportResponse, SendError> {
        match &self.transport {
            Transport::Grpc(channel) => {
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready()
                    .await
                    .map_err(|error| SendError::Http(error.to_string()))?;
                let mut call = tonic::Request::new(request);
                for (name, value) in &self.headers {
                    if let Ok(key) = tonic::metadata::MetadataKey::from_bytes(name.as_ref())
                        && let Ok(value) =
                            tonic::metadata::MetadataValue::try_from(value.as_bytes())
                    {
                        call.metadata_mut().insert(key, value);
                    }
                }
                let answer = grpc
                    .unary(call, PathAndQuery::from_static(EXPORT), Raw)
                    .await?;
                Ok(answer.into_inner())
            }
            Transport::Http { client, uri } => {
                let mut post = http::Request::post(uri.clone())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(Full::new(request))
                    .map_err(|error| SendError::Http(error.to_string()))?;
                post.headers_mut().extend(self.headers.clone());
                let answer = client
                    .request(post)
                    .await
                    .map_err(|error| SendError::Http(error.to_string()))?;
                if !answer.status().is_success() {
                    return Err(SendError::HttpStatus(answer.status()));
                }
                let body = Limited::new(answer.into_body(), RESPONSE_LIMIT)
                    .collect()
                    .await
                    .map_err(|error| SendError::Http(error.to_string()))?
                    .to_bytes();
                // An answer that is not the message rejected nothing we know of.
                Ok(ExportResponse::decode(body).unwrap_or_default())
            }
        }
    }
}

/// The export timeout: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else 10 s.
fn timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.trim().parse::<u64>().ok())
    .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

/// The headers sent with every export: `OTEL_EXPORTER_OTLP_HEADERS`, then
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` over them.
fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        if let Ok(list) = std::env::var(name) {
            for (key, value) in parse_headers(&list) {
                headers.insert(key, value);
            }
        }
    }
    headers
}

/// `key1=value1,key2=value2` (values percent-decoded, as the specification
/// says); a pair that is no valid header is skipped.
fn parse_headers(list: &str) -> Vec<(HeaderName, HeaderValue)> {
    list.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .ok()?;
            Some((
                HeaderName::try_from(key.trim()).ok()?,
                HeaderValue::try_from(value.as_ref()).ok()?,
            ))
        })
        .collect()
}

/// `ExportTraceServiceResponse`: only what says spans were rejected.
#[derive(Clone, PartialEq, prost::Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_spans: i64,
}

/// The gRPC codec of an already encoded request and the response message.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = ExportResponse;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = ExportResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportResponse>, tonic::Status> {
        let body = src.copy_to_bytes(src.remaining());
        Ok(Some(ExportResponse::decode(body).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_pairs_with_decoded_values() {
        let parsed = parse_headers("api-key=secret%20one, x-tenant = shop ,broken,bad name=1");
        let parsed: Vec<(String, String)> = parsed
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        assert_eq!(
            parsed,
            [
                ("api-key".to_owned(), "secret one".to_owned()),
                ("x-tenant".to_owned(), "shop".to_owned())
            ]
        );
    }

    #[test]
    fn only_http_addresses_are_collectors() {
        for bad in ["127.0.0.1:4317", "https://collector:4317", "not a url"] {
            assert!(
                matches!(
                    Sender::new(bad, OtlpProtocol::Grpc),
                    Err(SendError::Endpoint(_))
                ),
                "{bad}"
            );
        }
    }
}
