//! `ConformanceService` as the suite's docs/testing_servers.md describes it:
//! echo what was received (headers, timeout, messages, GET query) and answer
//! as the request's response definition says.

use std::time::Duration;

use crate::any::Any;
use connectrpc_axum::prelude::*;
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use prost::{Message, Name};
use shop_kit::{ResponseMetadata, Valid, ValidStream, rpc::deadline::parse_grpc_timeout};

use crate::conformance::{
    self as pb,
    conformance_payload::{ConnectGetInfo, RequestInfo},
};

type Reply<T> = Result<ConnectResponse<T>, ConnectError>;
type Replies<T> =
    Reply<StreamBody<std::pin::Pin<Box<dyn Stream<Item = Result<T, ConnectError>> + Send>>>>;

/// The conformance service, through the route builder shop-kit-build
/// generates for it as for every shop service: every request checked
/// (`Valid<T>`, `ValidStream<T>`), Connect GET for IdempotentUnary (its
/// contract marks it NO_SIDE_EFFECTS), the kit's compression and limits on
/// gRPC.
pub fn conformance_service() -> shop_kit::RpcService {
    pb::ConformanceServiceRoutes::new()
        .unary(unary)
        .idempotent_unary(idempotent_unary)
        .unimplemented(unimplemented)
        .client_stream(client_stream)
        .server_stream(server_stream)
        .bidi_stream(bidi_stream)
        .build(())
}

fn any<M: Message + Name>(message: &M) -> Any {
    Any::pack(message)
}

/// The timeout the caller asked for, in milliseconds.
fn timeout_ms(headers: &HeaderMap) -> Option<i64> {
    if let Some(ms) = headers
        .get("connect-timeout-ms")
        .and_then(|v| v.to_str().ok())
    {
        return ms.parse().ok();
    }
    let grpc = headers.get("grpc-timeout")?.to_str().ok()?;
    parse_grpc_timeout(grpc).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn request_info(headers: &HeaderMap, requests: Vec<Any>) -> RequestInfo {
    RequestInfo {
        request_headers: to_headers(headers),
        timeout_ms: timeout_ms(headers),
        requests,
        connect_get_info: None,
    }
}

fn to_headers(headers: &HeaderMap) -> Vec<pb::Header> {
    headers
        .keys()
        .map(|name| pb::Header {
            name: name.as_str().to_owned(),
            value: headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect(),
        })
        .collect()
}

fn set_metadata(metadata: &ResponseMetadata, headers: &[pb::Header], trailers: &[pb::Header]) {
    let pairs = |list: &[pb::Header]| {
        list.iter()
            .flat_map(|h| h.value.iter().map(move |v| (h.name.clone(), v.clone())))
            .filter_map(|(n, v)| {
                Some((
                    HeaderName::try_from(n).ok()?,
                    HeaderValue::try_from(v).ok()?,
                ))
            })
            .collect::<Vec<_>>()
    };
    for (name, value) in pairs(headers) {
        metadata.append_header(name, value);
    }
    for (name, value) in pairs(trailers) {
        metadata.append_trailer(name, value);
    }
}

fn to_error(error: &pb::Error, info: Option<&RequestInfo>) -> ConnectError {
    let code = connectrpc_axum::message::error::code_from_tonic(tonic::Code::from_i32(error.code));
    let mut connect = match &error.message {
        Some(message) => ConnectError::new(code, message.clone()),
        None => ConnectError::from_code(code),
    };
    for detail in &error.details {
        let type_name = detail.type_url.rsplit('/').next().unwrap_or_default();
        connect = connect.add_detail(type_name, detail.value.to_vec());
    }
    if let Some(info) = info {
        connect = connect.add_detail(RequestInfo::full_name(), info.encode_to_vec());
    }
    connect
}

async fn delay(ms: u32) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
    }
}

/// Answers a unary-style call (Unary, IdempotentUnary, ClientStream).
async fn answer_once(
    metadata: &ResponseMetadata,
    definition: Option<pb::UnaryResponseDefinition>,
    info: RequestInfo,
) -> Result<pb::ConformancePayload, ConnectError> {
    let Some(definition) = definition else {
        return Ok(pb::ConformancePayload {
            data: Default::default(),
            request_info: Some(info),
        });
    };
    set_metadata(
        metadata,
        &definition.response_headers,
        &definition.response_trailers,
    );
    delay(definition.response_delay_ms).await;
    match definition.response {
        Some(pb::unary_response_definition::Response::Error(error)) => {
            Err(to_error(&error, Some(&info)))
        }
        Some(pb::unary_response_definition::Response::ResponseData(data)) => {
            Ok(pb::ConformancePayload {
                data,
                request_info: Some(info),
            })
        }
        None => Ok(pb::ConformancePayload {
            data: Default::default(),
            request_info: Some(info),
        }),
    }
}

async fn unary(
    headers: HeaderMap,
    metadata: ResponseMetadata,
    Valid(request): Valid<pb::UnaryRequest>,
) -> Reply<pb::UnaryResponse> {
    let info = request_info(&headers, vec![any(&request)]);
    let payload = answer_once(&metadata, request.response_definition, info).await?;
    Ok(ConnectResponse::new(pb::UnaryResponse {
        payload: Some(payload),
    }))
}

async fn idempotent_unary(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    metadata: ResponseMetadata,
    Valid(request): Valid<pb::IdempotentUnaryRequest>,
) -> Reply<pb::IdempotentUnaryResponse> {
    let mut info = request_info(&headers, vec![any(&request)]);
    if method == Method::GET {
        info.connect_get_info = Some(ConnectGetInfo {
            query_params: query_params(uri.query().unwrap_or_default()),
        });
    }
    let payload = answer_once(&metadata, request.response_definition, info).await?;
    Ok(ConnectResponse::new(pb::IdempotentUnaryResponse {
        payload: Some(payload),
    }))
}

fn query_params(query: &str) -> Vec<pb::Header> {
    let mut params: Vec<pb::Header> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match params.iter_mut().find(|p| p.name == name) {
            Some(param) => param.value.push(value.to_owned()),
            None => params.push(pb::Header {
                name: name.to_owned(),
                value: vec![value.to_owned()],
            }),
        }
    }
    params
}

async fn unimplemented(
    Valid(_request): Valid<pb::UnimplementedRequest>,
) -> Reply<pb::UnimplementedResponse> {
    Err(ConnectError::new(
        Code::Unimplemented,
        "connectrpc.conformance.v1.ConformanceService.Unimplemented is not implemented",
    ))
}

async fn client_stream(
    headers: HeaderMap,
    metadata: ResponseMetadata,
    mut requests: ValidStream<pb::ClientStreamRequest>,
) -> Reply<pb::ClientStreamResponse> {
    let mut received = Vec::new();
    let mut definition = None;
    while let Some(request) = requests.next().await {
        let request = request?;
        if received.is_empty() {
            definition = request.response_definition.clone();
        }
        received.push(any(&request));
    }
    let info = request_info(&headers, received);
    let payload = answer_once(&metadata, definition, info).await?;
    Ok(ConnectResponse::new(pb::ClientStreamResponse {
        payload: Some(payload),
    }))
}

async fn server_stream(
    headers: HeaderMap,
    metadata: ResponseMetadata,
    Valid(request): Valid<pb::ServerStreamRequest>,
) -> Replies<pb::ServerStreamResponse> {
    let info = request_info(&headers, vec![any(&request)]);
    let definition = request.response_definition.unwrap_or_default();
    set_metadata(
        &metadata,
        &definition.response_headers,
        &definition.response_trailers,
    );
    let stream = async_stream::stream! {
        let mut info = Some(info);
        let mut sent = 0usize;
        for data in definition.response_data {
            delay(definition.response_delay_ms).await;
            sent += 1;
            yield Ok(pb::ServerStreamResponse {
                payload: Some(pb::ConformancePayload { data, request_info: info.take() }),
            });
        }
        if let Some(error) = definition.error {
            // Request info rides in the error only when no message carried it.
            yield Err(to_error(&error, if sent == 0 { info.as_ref() } else { None }));
        }
    };
    Ok(ConnectResponse::new(StreamBody::new(Box::pin(stream))))
}

async fn bidi_stream(
    headers: HeaderMap,
    metadata: ResponseMetadata,
    mut requests: ValidStream<pb::BidiStreamRequest>,
) -> Replies<pb::BidiStreamResponse> {
    // The first message carries the response definition, whose headers
    // must be set before the response starts.
    let first = match requests.next().await {
        Some(first) => Some(first?),
        None => None,
    };
    let definition = first
        .as_ref()
        .and_then(|f| f.response_definition.clone())
        .unwrap_or_default();
    let full_duplex = first.as_ref().is_some_and(|f| f.full_duplex);
    set_metadata(
        &metadata,
        &definition.response_headers,
        &definition.response_trailers,
    );

    let stream = async_stream::stream! {
        let mut pending: Vec<Any> = first.iter().map(any).collect();
        let mut sent = 0usize;
        let mut info_sent = false;
        loop {
            if full_duplex && !pending.is_empty() {
                // Answer each request as it arrives, while data is left.
                let Some(data) = definition.response_data.get(sent).cloned() else { break };
                delay(definition.response_delay_ms).await;
                let info = if info_sent {
                    RequestInfo { requests: std::mem::take(&mut pending), ..Default::default() }
                } else {
                    info_sent = true;
                    request_info(&headers, std::mem::take(&mut pending))
                };
                sent += 1;
                yield Ok(pb::BidiStreamResponse {
                    payload: Some(pb::ConformancePayload { data, request_info: Some(info) }),
                });
            }
            match requests.next().await {
                Some(Ok(request)) => pending.push(any(&request)),
                Some(Err(error)) => { yield Err(error); return; }
                None => break,
            }
        }
        let mut info = (!info_sent).then(|| request_info(&headers, std::mem::take(&mut pending)));
        for data in definition.response_data.iter().skip(sent).cloned() {
            delay(definition.response_delay_ms).await;
            sent += 1;
            yield Ok(pb::BidiStreamResponse {
                payload: Some(pb::ConformancePayload { data, request_info: info.take() }),
            });
        }
        if let Some(error) = &definition.error {
            yield Err(to_error(error, if sent == 0 { info.as_ref() } else { None }));
        }
    };
    Ok(ConnectResponse::new(StreamBody::new(Box::pin(stream))))
}
