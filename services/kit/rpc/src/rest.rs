//! REST calls served by the Connect handlers: a request the classifier
//! found on a `google.api.http` route is turned into the Connect JSON call
//! of the route's RPC (the path's fields, the query's and the body, by
//! http.proto's rules) and sent through the same Connect stack; its answer
//! comes back as the message (or its `response_body` field), a Connect
//! error as it is (JSON in Connect's shape, under the HTTP status
//! grpc-gateway and Envoy give the code), a server stream as Server-Sent
//! Events.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use connectrpc_axum::prelude::{Code, ConnectError};
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value};
use tower::{Service, ServiceExt};

use super::{
    classify::{Call, RestCall},
    envelope,
    heartbeat::Heartbeat,
    protocol::{Framing, Protocol},
    sse,
};
use shop_kit_rest::{Binding, FieldError, NotUtf8, RestBody, RestRoute, bind_query, fields};

/// Why a REST request cannot become its RPC's request.
#[derive(Debug, thiserror::Error)]
enum TranscodeError {
    #[error("path: {0}")]
    Path(#[from] NotUtf8),
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("the body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("this route takes no body")]
    BodyNotTaken,
    #[error("this route takes every field in its body: no query parameters")]
    QueryNotTaken,
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body could not be read: {0}")]
    Unreadable(axum::BoxError),
    #[error("REST bodies are taken uncompressed, not {0:?}")]
    Compressed(String),
}

impl From<TranscodeError> for ConnectError {
    fn from(error: TranscodeError) -> Self {
        let code = match &error {
            TranscodeError::TooLarge { .. } => Code::ResourceExhausted,
            TranscodeError::Compressed(_) => Code::Unimplemented,
            _ => Code::InvalidArgument,
        };
        ConnectError::new(code, error.to_string())
    }
}

/// The REST front of a server's Connect stack.
#[derive(Clone, Debug)]
pub struct Transcode<C> {
    connect: C,
    max_request_bytes: usize,
}

impl<C> Transcode<C> {
    pub fn new(connect: C, max_request_bytes: usize) -> Self {
        Self {
            connect,
            max_request_bytes,
        }
    }
}

impl<C, CB> Service<Request<Body>> for Transcode<C>
where
    C: Service<Request<Body>, Response = Response<CB>, Error = Infallible> + Clone + Send + 'static,
    C::Future: Send + 'static,
    CB: http_body::Body<Data = Bytes> + Send + 'static,
    CB::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let connect = self.connect.clone();
        let limit = self.max_request_bytes;
        let heartbeat = Call::of(&request)
            .method
            .and_then(|method| method.heartbeat.as_ref())
            .map(Heartbeat::json_payload);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let Some(rest) = parts.extensions.remove::<RestCall>() else {
                return Ok(ConnectError::new(Code::NotFound, "no REST route").into_response());
            };
            let route = rest.route;
            let message = match message(route, rest.bindings, &parts, body, limit).await {
                Ok(message) => message,
                Err(error) => return Ok(ConnectError::from(error).into_response()),
            };
            let request = connect_request(parts, route, message);
            let answer = connect.oneshot(request).await?.map(Body::new);
            Ok(if route.server_streaming {
                sse::events(answer, heartbeat).await
            } else {
                unary_answer(route, answer).await
            })
        })
    }
}

/// The RPC's request message, in its JSON form, from the path's fields,
/// the query's and the body.
async fn message(
    route: &RestRoute,
    bindings: Result<Vec<Binding>, NotUtf8>,
    parts: &http::request::Parts,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, TranscodeError> {
    if let Some(encoding) = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .filter(|encoding| *encoding != "identity")
    {
        return Err(TranscodeError::Compressed(
            String::from_utf8_lossy(encoding.as_bytes()).into_owned(),
        ));
    }
    let body = read(body, limit).await?;
    let mut json = match &route.body {
        RestBody::None if body.is_empty() => Map::new(),
        RestBody::None => return Err(TranscodeError::BodyNotTaken),
        RestBody::Whole if body.is_empty() => Map::new(),
        RestBody::Whole => match serde_json::from_slice(&body)? {
            Value::Object(fields) => fields,
            _ => return Err(TranscodeError::NotAnObject),
        },
        RestBody::Field(name) => {
            let mut json = Map::new();
            if !body.is_empty() {
                let key = route
                    .input
                    .get_field_by_name(name)
                    .map_or_else(|| name.clone(), |field| field.json_name().to_owned());
                json.insert(key, serde_json::from_slice(&body)?);
            }
            json
        }
    };
    for binding in bindings? {
        fields::set(
            &route.input,
            &mut json,
            &binding.field.join("."),
            &binding.value,
        )?;
    }
    match (
        parts.uri.query().filter(|query| !query.is_empty()),
        &route.body,
    ) {
        (None, _) => {}
        (Some(_), RestBody::Whole) => return Err(TranscodeError::QueryNotTaken),
        (Some(query), _) => bind_query(&route.input, &mut json, query)?,
    }
    Ok(serde_json::to_vec(&Value::Object(json))?)
}

/// The whole body, at most `limit` bytes.
async fn read(body: Body, limit: usize) -> Result<Bytes, TranscodeError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(TranscodeError::TooLarge { limit }),
        Err(error) => Err(TranscodeError::Unreadable(error)),
    }
}

/// The Connect call of the route's RPC: a POST of its JSON message (one
/// enveloped message for a server stream), with the caller's headers
/// (authorization, deadlines, request id) and its call recorded as Connect.
fn connect_request(
    mut parts: http::request::Parts,
    route: &'static RestRoute,
    message: Vec<u8>,
) -> Request<Body> {
    let (content_type, body, framing) = if route.server_streaming {
        (
            "application/connect+json",
            envelope::framed(0, &message),
            Framing::ConnectStream,
        )
    } else {
        ("application/json", Bytes::from(message), Framing::PlainJson)
    };
    parts.method = Method::POST;
    // `/package.Service/Method` of names the descriptors hold: identifier
    // characters only, always a valid URI.
    parts.uri = http::Uri::from_static(route.rpc.as_str());
    let headers = &mut parts.headers;
    for name in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONTENT_ENCODING,
    ] {
        headers.remove(name);
    }
    if route.server_streaming || route.response_body.is_some() {
        // Events and a field of the answer are written from its bytes.
        headers.remove(header::ACCEPT_ENCODING);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        http::HeaderName::from_static("connect-protocol-version"),
        HeaderValue::from_static("1"),
    );
    if let Some(call) = parts.extensions.get_mut::<Call>() {
        call.protocol = Protocol::Connect;
        call.framing = framing;
    }
    Request::from_parts(parts, Body::from(body))
}

/// A unary answer: the message as it is, or its `response_body` field; an
/// error as Connect wrote it.
async fn unary_answer(route: &RestRoute, answer: Response) -> Response {
    let Some(field) = &route.response_body else {
        return answer;
    };
    if answer.status() != http::StatusCode::OK {
        return answer;
    }
    let (mut parts, body) = answer.into_parts();
    let field_json = match body.collect().await {
        Ok(collected) => serde_json::from_slice::<Map<String, Value>>(&collected.to_bytes())
            .ok()
            .map(|mut message| message.remove(field).unwrap_or(Value::Null)),
        Err(_) => None,
    };
    let Some(bytes) = field_json.and_then(|value| serde_json::to_vec(&value).ok()) else {
        return ConnectError::new(Code::Internal, "the answer could not be read").into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;
    use shop_kit_rest::RestPath;

    /// A route to grpc.health.v1.Health/Check (one string field,
    /// `service`) with the given path and body rule.
    fn route(path: &str, body: RestBody) -> &'static RestRoute {
        let input = DescriptorPool::decode(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .expect("descriptors")
            .get_message_by_name("grpc.health.v1.HealthCheckRequest")
            .expect("HealthCheckRequest");
        Box::leak(Box::new(RestRoute {
            method: Method::POST,
            path: RestPath::parse(path).expect("template"),
            rpc: "/grpc.health.v1.Health/Check".to_owned(),
            body,
            response_body: None,
            input,
            server_streaming: false,
        }))
    }

    async fn built(
        route: &RestRoute,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Value, TranscodeError> {
        let bindings = route
            .path
            .bind(uri.split('?').next().unwrap_or_default())
            .expect("utf-8")
            .expect("matches");
        let mut request = Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (parts, ()) = request.body(()).expect("request").into_parts();
        let json = message(route, Ok(bindings), &parts, Body::from(body.to_owned()), 64).await?;
        Ok(serde_json::from_slice(&json).expect("json"))
    }

    #[tokio::test]
    async fn each_body_form_sets_the_message_as_http_proto_says() {
        let whole = route("/v1/checks", RestBody::Whole);
        assert_eq!(
            built(whole, "/v1/checks", &[], r#"{"service": "a"}"#)
                .await
                .expect("whole"),
            serde_json::json!({"service": "a"})
        );
        assert_eq!(
            built(whole, "/v1/checks", &[], "").await.expect("empty"),
            serde_json::json!({})
        );
        assert!(matches!(
            built(whole, "/v1/checks?service=a", &[], "{}").await,
            Err(TranscodeError::QueryNotTaken)
        ));
        assert!(matches!(
            built(whole, "/v1/checks", &[], "[]").await,
            Err(TranscodeError::NotAnObject)
        ));

        let field = route("/v1/checks", RestBody::Field("service".to_owned()));
        assert_eq!(
            built(field, "/v1/checks", &[], r#""b""#)
                .await
                .expect("field"),
            serde_json::json!({"service": "b"})
        );

        let none = route("/v1/checks/{service}", RestBody::None);
        assert_eq!(
            built(none, "/v1/checks/c%20d", &[], "")
                .await
                .expect("path"),
            serde_json::json!({"service": "c d"})
        );
        assert!(matches!(
            built(none, "/v1/checks/c", &[], "{}").await,
            Err(TranscodeError::BodyNotTaken)
        ));
        // The path and the query name the same field: refused, not merged.
        assert!(matches!(
            built(none, "/v1/checks/c?service=d", &[], "").await,
            Err(TranscodeError::Field(FieldError::Repeated { .. }))
        ));
    }

    #[tokio::test]
    async fn bodies_are_bounded_and_taken_uncompressed() {
        let whole = route("/v1/checks", RestBody::Whole);
        let long = format!(r#"{{"service": "{}"}}"#, "x".repeat(100));
        assert!(matches!(
            built(whole, "/v1/checks", &[], &long).await,
            Err(TranscodeError::TooLarge { limit: 64 })
        ));
        let refused = built(whole, "/v1/checks", &[("content-encoding", "gzip")], "{}")
            .await
            .expect_err("compressed");
        assert_eq!(ConnectError::from(refused).code(), Code::Unimplemented);
    }
}
