//! The codecs of gRPC and gRPC-Web: refuses the ones the kit does not speak,
//! and adds JSON (`application/grpc+json`, `application/grpc-web+json`),
//! which tonic and tonic-web do not speak.
//! Each message is transcoded between JSON and proto with the services'
//! descriptors, around the proto-only stack: the request arrives at tonic as
//! `+proto`, the response leaves as `+json`.

use std::{
    io::Read,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor};
use shop_kit_wire::GRPC_ENCODING;
use tower::{Layer, Service};

use super::{broken_rules::SentJson, classify::Call, envelope, protocol::content_type};

/// Builds a descriptor pool from encoded `FileDescriptorSet`s; files that
/// several sets share are added once. Decoded by prost-reflect itself, so
/// the options' extensions (`google.api.http`) are kept: prost-types'
/// messages drop them.
pub fn descriptor_pool(sets: &[&[u8]]) -> DescriptorPool {
    let mut pool = DescriptorPool::new();
    for set in sets {
        if let Err(error) = pool.decode_file_descriptor_set(*set) {
            tracing::warn!(%error, "descriptors not usable for the gRPC JSON codec");
        }
    }
    pool
}

/// Transcodes JSON over gRPC and gRPC-Web with the called method's
/// descriptor, as the request's [`Call`] names it.
#[derive(Clone, Copy, Debug)]
pub struct GrpcJsonLayer {
    max_message_bytes: usize,
}

impl GrpcJsonLayer {
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }
}

impl<S> Layer<S> for GrpcJsonLayer {
    type Service = GrpcJson<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcJson {
            inner,
            layer: *self,
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcJson<S> {
    inner: S,
    layer: GrpcJsonLayer,
}

/// The proto content type to hand to tonic for a JSON one, if it is one.
fn proto_content_type(json_content_type: &str) -> Option<&'static str> {
    match json_content_type {
        "application/grpc+json" => Some("application/grpc+proto"),
        "application/grpc-web+json" => Some("application/grpc-web+proto"),
        _ => None,
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcJson<S>
where
    S: Service<Request<tonic::body::Body>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<tonic::codegen::StdError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let content_type = content_type(request.headers());
        if let Some(refusal) = refuse(&request, content_type.as_deref()) {
            return Box::pin(async move { Ok(refusal) });
        }
        let json = content_type
            .and_then(|ct| proto_content_type(&ct).map(|proto| (ct.into_owned(), proto)));
        let method = json.as_ref().and_then(|_| {
            let method = Call::of(&request).method?.descriptor.as_ref()?;
            Some((method.input(), method.output()))
        });
        let (Some((json_type, proto_type)), Some((input, output))) = (json, method) else {
            let future = self.inner.call(request.map(tonic::body::Body::new));
            return Box::pin(async move { Ok(future.await?.map(tonic::body::Body::new)) });
        };

        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(proto_type));
        parts.headers.remove(http::header::CONTENT_LENGTH);
        // The handler reads protobuf; its refusals name fields as JSON does.
        parts.extensions.insert(SentJson);
        let request_encoding = encoding(&parts.headers);
        let body = Transcode {
            inner: body,
            pending: BytesMut::new(),
            to: Direction::JsonToProto(input),
            gzip: request_encoding,
            max_message_bytes: self.layer.max_message_bytes,
        };
        let future = self
            .inner
            .call(Request::from_parts(parts, tonic::body::Body::new(body)));
        Box::pin(async move {
            let response = future.await?;
            let (mut parts, body) = response.into_parts();
            if let Ok(value) = HeaderValue::from_str(&json_type) {
                parts.headers.insert(CONTENT_TYPE, value);
            }
            let body = Transcode {
                inner: body,
                pending: BytesMut::new(),
                to: Direction::ProtoToJson(output),
                gzip: encoding(&parts.headers),
                max_message_bytes: usize::MAX,
            };
            Ok(Response::from_parts(parts, tonic::body::Body::new(body)))
        })
    }
}

/// The gRPC content types the kit serves: proto (tonic), JSON (this layer),
/// and gRPC-Web's base64 text form (tonic-web).
fn is_served_codec(content_type: &str) -> bool {
    matches!(
        content_type,
        "application/grpc"
            | "application/grpc+proto"
            | "application/grpc+json"
            | "application/grpc-web"
            | "application/grpc-web+proto"
            | "application/grpc-web+json"
            | "application/grpc-web-text"
            | "application/grpc-web-text+proto"
    )
}

/// gRPC is POST with a codec we speak; anything else is refused with the
/// HTTP status gRPC clients map to a code (405, 415 -> UNKNOWN), as
/// connect-go does. tonic itself would accept any verb and decode any codec
/// as proto.
fn refuse<B>(
    request: &Request<B>,
    content_type: Option<&str>,
) -> Option<Response<tonic::body::Body>> {
    let status = if request.method() != http::Method::POST {
        http::StatusCode::METHOD_NOT_ALLOWED
    } else if !content_type.is_some_and(is_served_codec) {
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE
    } else {
        return None;
    };
    let mut response = Response::new(tonic::body::Body::empty());
    *response.status_mut() = status;
    Some(response)
}

/// Whether messages flagged compressed are gzip (the one encoding the kit
/// speaks besides identity).
fn encoding(headers: &HeaderMap) -> bool {
    headers.get(&GRPC_ENCODING).is_some_and(|v| v == "gzip")
}

enum Direction {
    JsonToProto(MessageDescriptor),
    ProtoToJson(MessageDescriptor),
}

impl Direction {
    fn transcode(&self, message: &[u8]) -> Result<Vec<u8>, tonic::Status> {
        match self {
            Self::JsonToProto(descriptor) => json_to_proto(descriptor, message),
            Self::ProtoToJson(descriptor) => proto_to_json(descriptor, message),
        }
    }
}

/// A JSON message (protobuf's JSON mapping) as protobuf bytes; a caller's
/// bad JSON is invalid_argument.
pub fn json_to_proto(
    descriptor: &MessageDescriptor,
    json: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let decoded =
        DynamicMessage::deserialize_with_options(descriptor.clone(), &mut deserializer, &options)
            .map_err(|e| tonic::Status::invalid_argument(format!("unmarshal JSON: {e}")))?;
    deserializer
        .end()
        .map_err(|e| tonic::Status::invalid_argument(format!("unmarshal JSON: {e}")))?;
    Ok(decoded.encode_to_vec())
}

/// Protobuf bytes (our own answer) as JSON.
pub fn proto_to_json(
    descriptor: &MessageDescriptor,
    proto: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    DynamicMessage::decode(descriptor.clone(), proto)
        .map_err(|e| tonic::Status::internal(format!("re-encode as JSON: {e}")))
        .and_then(|decoded| {
            serde_json::to_vec(&decoded)
                .map_err(|e| tonic::Status::internal(format!("re-encode as JSON: {e}")))
        })
}

pin_project_lite::pin_project! {
    /// A body of enveloped messages, transcoded one whole envelope at a time.
    struct Transcode<B> {
        #[pin]
        inner: B,
        pending: BytesMut,
        to: Direction,
        gzip: bool,
        max_message_bytes: usize,
    }
}

impl<B> Transcode<B> {
    /// Transcodes the whole envelopes at the front of `pending`.
    fn drain(
        pending: &mut BytesMut,
        to: &Direction,
        gzip: bool,
        max_message_bytes: usize,
    ) -> Result<Bytes, tonic::Status> {
        let mut out = BytesMut::new();
        while let Some(whole) = envelope::split_whole(pending) {
            let flags = whole[0];
            let compressed = flags & envelope::COMPRESSED != 0;
            // Trailers (gRPC-Web) and messages we cannot open pass as they are;
            // tonic reports the latter precisely.
            if flags & envelope::TRAILERS != 0 || (compressed && !gzip) {
                out.extend_from_slice(&whole);
                continue;
            }
            let mut message = whole.freeze().slice(envelope::HEADER_LEN..);
            if compressed {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&message[..])
                    .take(max_message_bytes.saturating_add(1) as u64)
                    .read_to_end(&mut plain)
                    .map_err(|e| tonic::Status::internal(format!("gunzip message: {e}")))?;
                message = plain.into();
            }
            if message.len() > max_message_bytes {
                return Err(tonic::Status::resource_exhausted(format!(
                    "message larger than {max_message_bytes} bytes"
                )));
            }
            envelope::frame(0, &to.transcode(&message)?, &mut out);
        }
        Ok(out.freeze())
    }
}

impl<B> Body for Transcode<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let mut this = self.project();
        loop {
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    if this.pending.is_empty() {
                        return Poll::Ready(None);
                    }
                    // A truncated envelope: let the decoder downstream say so.
                    let rest = this.pending.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Some(Err(tonic::Status::from_error(error.into()))));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            };
            this.pending.extend_from_slice(&data);
            match Self::drain(this.pending, this.to, *this.gzip, *this.max_message_bytes) {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                Err(status) => return Poll::Ready(Some(Err(status))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health_pool() -> DescriptorPool {
        descriptor_pool(&[tonic_health::pb::FILE_DESCRIPTOR_SET])
    }

    fn envelope(flags: u8, payload: &[u8]) -> BytesMut {
        BytesMut::from(&envelope::framed(flags, payload)[..])
    }

    #[test]
    fn json_and_proto_round_trip_through_the_descriptors() {
        let pool = health_pool();
        let request = pool
            .get_message_by_name("grpc.health.v1.HealthCheckRequest")
            .expect("type");
        let mut pending = envelope(
            0,
            br#"{"service":"shop.catalog.v1.CatalogService","unknown":1}"#,
        );
        let proto = Transcode::<()>::drain(
            &mut pending,
            &Direction::JsonToProto(request.clone()),
            false,
            1024,
        )
        .expect("to proto");
        let decoded = tonic_health::pb::HealthCheckRequest::decode(&proto[5..]).expect("proto");
        assert_eq!(decoded.service, "shop.catalog.v1.CatalogService");

        let mut pending = BytesMut::from(&proto[..]);
        let json = Transcode::<()>::drain(
            &mut pending,
            &Direction::ProtoToJson(request),
            false,
            usize::MAX,
        )
        .expect("to json");
        assert_eq!(
            &json[5..],
            br#"{"service":"shop.catalog.v1.CatalogService"}"#
        );
    }

    #[test]
    fn oversize_json_is_resource_exhausted_and_bad_json_invalid_argument() {
        let pool = health_pool();
        let request = pool
            .get_message_by_name("grpc.health.v1.HealthCheckRequest")
            .expect("type");
        let to = Direction::JsonToProto(request);
        let mut big = envelope(
            0,
            format!(r#"{{"service":"{}"}}"#, "x".repeat(100)).as_bytes(),
        );
        let status = Transcode::<()>::drain(&mut big, &to, false, 50).expect_err("too big");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        let mut bad = envelope(0, b"{not json");
        let status = Transcode::<()>::drain(&mut bad, &to, false, 1024).expect_err("bad json");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn unknown_codecs_and_verbs_are_refused() {
        let request = |method: &str, content_type: &str| {
            Request::builder()
                .method(method)
                .uri("/a.B/C")
                .header(CONTENT_TYPE, content_type)
                .body(())
                .expect("request")
        };
        let refuse = |request: &Request<()>| {
            super::refuse(request, content_type(request.headers()).as_deref())
        };
        assert!(refuse(&request("POST", "application/grpc")).is_none());
        assert!(refuse(&request("POST", "application/grpc-web+json")).is_none());
        let codec = refuse(&request("POST", "application/grpc+foo")).expect("refused");
        assert_eq!(codec.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let verb = refuse(&request("GET", "application/grpc")).expect("refused");
        assert_eq!(verb.status(), http::StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn grpc_web_trailers_pass_untouched_and_partial_envelopes_wait() {
        let pool = health_pool();
        let response = pool
            .get_message_by_name("grpc.health.v1.HealthCheckResponse")
            .expect("type");
        let to = Direction::ProtoToJson(response);
        let trailers = envelope(0x80, b"grpc-status:0\r\n");
        let mut pending = trailers.clone();
        pending.extend_from_slice(&[0, 0, 0]);
        let out = Transcode::<()>::drain(&mut pending, &to, false, usize::MAX).expect("ok");
        assert_eq!(out, trailers.freeze());
        assert_eq!(
            &pending[..],
            &[0, 0, 0],
            "the partial envelope waits for its rest"
        );
    }
}
