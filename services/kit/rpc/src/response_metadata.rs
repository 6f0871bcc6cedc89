//! Response headers and trailers set by a handler, delivered the way each
//! protocol carries them. connectrpc-axum's `ConnectResponse` carries only
//! the message, so a handler takes a [`ResponseMetadata`] extractor, sets
//! what it wants, and the gRPC or the Connect edge writes it out. It is made when a handler first asks for it, in a slot
//! around the handler (a task-local): a call whose handler sets nothing
//! pays for no allocation, no extension and no rewrite of its answer.
//!
//! - Connect unary: headers, and trailers as `trailer-<name>` headers;
//! - Connect streaming: headers, and trailers in the end-of-stream message;
//! - gRPC (and gRPC-Web, which is translated from it): headers, and
//!   trailers in the trailers (in the headers of a trailers-only answer).

use std::{
    cell::RefCell,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, ready},
};

use axum::extract::FromRequestParts;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Response, request::Parts};
use http_body::{Body, Frame, SizeHint};
use tokio::task::futures::TaskLocalFuture;

use super::envelope;

#[derive(Debug, Default)]
struct Metadata {
    headers: HeaderMap,
    trailers: HeaderMap,
}

/// The headers and trailers a handler adds to its response.
#[derive(Clone, Debug, Default)]
pub struct ResponseMetadata(Arc<Mutex<Metadata>>);

tokio::task_local! {
    /// The metadata of the call being answered: made when its handler
    /// first asks for it (most never do, and pay nothing for it).
    static SLOT: RefCell<Option<ResponseMetadata>>;
}

impl ResponseMetadata {
    fn lock(&self) -> MutexGuard<'_, Metadata> {
        // A panic while holding this lock cannot leave it inconsistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn append_header(&self, name: HeaderName, value: HeaderValue) {
        self.lock().headers.append(name, value);
    }

    pub fn append_trailer(&self, name: HeaderName, value: HeaderValue) {
        self.lock().trailers.append(name, value);
    }

    fn take_headers(&self) -> HeaderMap {
        std::mem::take(&mut self.lock().headers)
    }

    fn take_trailers(&self) -> HeaderMap {
        std::mem::take(&mut self.lock().trailers)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ResponseMetadata {
    type Rejection = Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        // Outside a call the kit answers, what is set goes nowhere.
        Ok(SLOT
            .try_with(|slot| {
                slot.borrow_mut()
                    .get_or_insert_with(ResponseMetadata::default)
                    .clone()
            })
            .unwrap_or_default())
    }
}

pin_project_lite::pin_project! {
    /// A handler's answer, with the metadata it set, if it asked for any.
    pub(super) struct Collected<F> {
        #[pin]
        answer: TaskLocalFuture<RefCell<Option<ResponseMetadata>>, F>,
    }
}

impl<F: Future> Future for Collected<F> {
    type Output = (F::Output, Option<ResponseMetadata>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut answer = self.project().answer;
        let output = ready!(answer.as_mut().poll(cx));
        let metadata = answer.take_value().and_then(RefCell::into_inner);
        Poll::Ready((output, metadata))
    }
}

impl ResponseMetadata {
    /// `answer` (a handler's, to come) with a slot for the metadata its
    /// handler may ask for, given back with the answer.
    pub(super) fn collected<F: Future>(answer: F) -> Collected<F> {
        Collected {
            answer: SLOT.scope(RefCell::new(None), answer),
        }
    }

    /// Writes what the handler set into a Connect `response` (the Connect
    /// edge's): the headers now, the trailers where its shape carries them,
    /// the request having said that shape: `streaming` (in the
    /// end-of-stream message; a length the library declared for a client
    /// stream's one answer no longer holds) or unary (`trailer-` headers,
    /// the body handed on as it is).
    pub(super) fn write_connect<B>(
        self,
        mut response: Response<B>,
        streaming: bool,
    ) -> Response<axum::body::Body>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let headers = response.headers_mut();
        if streaming {
            append_all(headers, self.take_headers(), None);
            headers.remove(http::header::CONTENT_LENGTH);
            return response.map(|inner| {
                axum::body::Body::new(EndStreamBody {
                    inner,
                    metadata: self,
                    pending: BytesMut::new(),
                })
            });
        }
        let Metadata {
            headers: added,
            trailers,
        } = std::mem::take(&mut *self.lock());
        append_all(headers, added, None);
        append_all(headers, trailers, Some("trailer-"));
        response.map(axum::body::Body::new)
    }

    /// Writes what the handler set into the `headers` of a gRPC answer
    /// (tonic's, at the gRPC edge), and its trailers too if the answer is
    /// trailers-only (they travel in its headers then): whether trailers
    /// are still to write ([`Self::append_trailers_to`] the answer's).
    pub(super) fn write_grpc_headers(&self, headers: &mut HeaderMap) -> bool {
        append_all(headers, self.take_headers(), None);
        if headers.contains_key(super::protocol::GRPC_STATUS) {
            append_all(headers, self.take_trailers(), None);
            return false;
        }
        true
    }

    /// Adds the handler's trailers to a gRPC answer's `trailers`.
    pub(super) fn append_trailers_to(&self, trailers: &mut HeaderMap) {
        append_all(trailers, self.take_trailers(), None);
    }
}

fn append_all(target: &mut HeaderMap, source: HeaderMap, prefix: Option<&str>) {
    // What most handlers set: nothing.
    if source.is_empty() {
        return;
    }
    let mut current: Option<HeaderName> = None;
    for (name, value) in source {
        if let Some(name) = name {
            current = Some(match prefix {
                Some(prefix) => match HeaderName::try_from(format!("{prefix}{name}")) {
                    Ok(prefixed) => prefixed,
                    Err(_) => continue,
                },
                None => name,
            });
        }
        if let Some(name) = &current {
            target.append(name.clone(), value);
        }
    }
}

pin_project_lite::pin_project! {
    /// A Connect stream's answer, the handler's trailers written into its
    /// end-of-stream message.
    struct EndStreamBody<B> {
        #[pin]
        inner: B,
        metadata: ResponseMetadata,
        // The bytes of the current envelope, until it is whole.
        pending: BytesMut,
    }
}

impl<B: Body<Data = Bytes>> Body for EndStreamBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        loop {
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) if !this.pending.is_empty() => {
                    // A truncated envelope: pass it on as it came.
                    let rest = this.pending.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                other => return other,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            this.pending.extend_from_slice(&data);
            let ready = complete_envelopes(this.pending, this.metadata);
            if !ready.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(ready))));
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

/// Splits the whole envelopes off `pending`, adding the trailers to the
/// end-of-stream message's `metadata`.
fn complete_envelopes(pending: &mut BytesMut, metadata: &ResponseMetadata) -> Bytes {
    let mut out = BytesMut::new();
    while let Some(whole) = envelope::split_whole(pending) {
        let is_plain_end_stream = whole[0] == envelope::END_STREAM;
        if !is_plain_end_stream {
            out.extend_from_slice(&whole);
            continue;
        }
        let trailers = metadata.take_trailers();
        if trailers.is_empty() {
            out.extend_from_slice(&whole);
            continue;
        }
        let mut end: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&whole[envelope::HEADER_LEN..]).unwrap_or_default();
        let entry = end
            .entry("metadata")
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let serde_json::Value::Object(fields) = entry {
            for (name, value) in &trailers {
                let values = fields
                    .entry(name.as_str().to_owned())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let (serde_json::Value::Array(values), Ok(value)) = (values, value.to_str()) {
                    values.push(serde_json::Value::String(value.to_owned()));
                }
            }
        }
        let payload =
            serde_json::to_vec(&end).unwrap_or_else(|_| whole[envelope::HEADER_LEN..].to_vec());
        envelope::frame(envelope::END_STREAM, &payload, &mut out);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc_edge;
    use http::Request;

    fn end_stream(json: &str) -> BytesMut {
        BytesMut::from(&envelope::framed(envelope::END_STREAM, json.as_bytes())[..])
    }

    #[tokio::test]
    async fn a_connect_stream_answer_loses_a_declared_length_its_trailers_would_break() {
        use http_body_util::BodyExt;

        let metadata = ResponseMetadata::default();
        metadata.append_trailer(
            HeaderName::from_static("x-custom-trailer"),
            HeaderValue::from_static("yes"),
        );
        let body = [
            envelope::framed(0, b"{}"),
            envelope::framed(envelope::END_STREAM, b"{}"),
        ]
        .concat();
        let declared = body.len();
        let answer = Response::builder()
            .header("content-type", "application/connect+json")
            .header("content-length", declared)
            .body(http_body_util::Full::new(Bytes::from(body)))
            .expect("response");
        let written = metadata.write_connect(answer, true);
        assert!(written.headers().get("content-length").is_none());
        let sent = written
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(
            sent.len() > declared,
            "the trailers joined the end of stream"
        );
    }

    #[test]
    fn trailers_join_the_end_of_stream_message() {
        let metadata = ResponseMetadata::default();
        metadata.append_trailer(
            HeaderName::from_static("x-count"),
            HeaderValue::from_static("3"),
        );
        let mut pending = BytesMut::from(&[0, 0, 0, 0, 2, b'{', b'}'][..]);
        pending.extend_from_slice(&end_stream(r#"{"error":{"code":"internal"}}"#));
        let out = complete_envelopes(&mut pending, &metadata);
        assert!(pending.is_empty());
        assert_eq!(
            &out[..7],
            &[0, 0, 0, 0, 2, b'{', b'}'],
            "data passes untouched"
        );
        let end: serde_json::Value = serde_json::from_slice(&out[12..]).expect("json");
        assert_eq!(end["metadata"]["x-count"], serde_json::json!(["3"]));
        assert_eq!(end["error"]["code"], "internal");
    }

    #[test]
    fn a_split_envelope_waits_for_its_end() {
        let metadata = ResponseMetadata::default();
        let frame = end_stream("{}");
        let mut pending = BytesMut::from(&frame[..4]);
        assert!(complete_envelopes(&mut pending, &metadata).is_empty());
        pending.extend_from_slice(&frame[4..]);
        assert_eq!(complete_envelopes(&mut pending, &metadata), frame.freeze());
    }

    #[test]
    fn repeated_values_all_arrive() {
        let mut source = HeaderMap::new();
        for value in ["foo", "bar", "baz"] {
            source.append("x-custom", HeaderValue::from_static(value));
        }
        let mut target = HeaderMap::new();
        append_all(&mut target, source, None);
        let values: Vec<_> = target.get_all("x-custom").iter().collect();
        assert_eq!(values, ["foo", "bar", "baz"]);
    }

    #[test]
    fn unary_trailers_become_prefixed_headers() {
        let mut trailers = HeaderMap::new();
        trailers.append("x-a", HeaderValue::from_static("1"));
        trailers.append("x-a", HeaderValue::from_static("2"));
        let mut headers = HeaderMap::new();
        append_all(&mut headers, trailers, Some("trailer-"));
        let values: Vec<_> = headers.get_all("trailer-x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    /// What the tests' handlers set: header `x-h: 1`, trailer `x-t: 2`,
    /// through the extractor.
    async fn fill(request: Request<()>) {
        let (mut parts, ()) = request.into_parts();
        let Ok(metadata) = ResponseMetadata::from_request_parts(&mut parts, &()).await;
        metadata.append_header(
            HeaderName::from_static("x-h"),
            HeaderValue::from_static("1"),
        );
        metadata.append_trailer(
            HeaderName::from_static("x-t"),
            HeaderValue::from_static("2"),
        );
    }

    /// A handler that [`fill`]s the metadata and answers with
    /// `content_type` and `frames`, written as `GrpcEdge` (gRPC) or
    /// `ConnectEdge` (Connect) write it.
    async fn answer(
        content_type: &'static str,
        frames: Vec<Frame<Bytes>>,
    ) -> (http::response::Parts, Vec<Frame<Bytes>>) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let frames = Arc::new(Mutex::new(Some(frames)));
        let handler = tower::service_fn(move |request: Request<()>| {
            let frames = frames.lock().expect("lock").take().expect("called once");
            async move {
                fill(request).await;
                let body = http_body_util::StreamBody::new(futures::stream::iter(
                    frames.into_iter().map(Ok::<_, Infallible>),
                ));
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", content_type)
                        .body(body)
                        .expect("response"),
                )
            }
        });
        let request = Request::new(());
        let response = if content_type.starts_with("application/grpc") {
            // The gRPC side writes it as `GrpcEdge` does.
            let (answer, metadata) = ResponseMetadata::collected(handler.oneshot(request)).await;
            let answer = answer.expect("call").map(axum::body::Body::new);
            grpc_edge::corrected(answer, metadata, None).map(axum::body::Body::new)
        } else {
            // The Connect side writes it as `ConnectEdge` does.
            let streaming = content_type.starts_with("application/connect+");
            let (answer, metadata) = ResponseMetadata::collected(handler.oneshot(request)).await;
            metadata
                .expect("the handler asked for it")
                .write_connect(answer.expect("call"), streaming)
        };
        let (parts, mut body) = response.into_parts();
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.expect("frame"));
        }
        (parts, frames)
    }

    #[tokio::test]
    async fn connect_unary_gets_headers_and_prefixed_trailers() {
        let (parts, _) = answer(
            "application/json",
            vec![Frame::data(Bytes::from_static(b"{}"))],
        )
        .await;
        assert_eq!(parts.headers["x-h"], "1");
        assert_eq!(parts.headers["trailer-x-t"], "2");
    }

    #[tokio::test]
    async fn grpc_trailers_join_the_trailers_frame() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let (parts, frames) = answer(
            "application/grpc",
            vec![
                Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0])),
                Frame::trailers(trailers),
            ],
        )
        .await;
        assert_eq!(parts.headers["x-h"], "1");
        let trailers = frames
            .last()
            .and_then(Frame::trailers_ref)
            .expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["x-t"], "2");
    }

    #[tokio::test]
    async fn a_grpc_trailers_only_answer_carries_the_trailers_in_its_headers() {
        use tower::ServiceExt;
        let handler = tower::service_fn(|request: Request<()>| async move {
            fill(request).await;
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "5")
                    .body(http_body_util::Empty::<Bytes>::new())
                    .expect("response"),
            )
        });
        let (answer, metadata) =
            ResponseMetadata::collected(handler.oneshot(Request::new(()))).await;
        let answer = answer.expect("call").map(axum::body::Body::new);
        let response = grpc_edge::corrected(answer, metadata, None);
        assert_eq!(response.headers()["grpc-status"], "5");
        assert_eq!(response.headers()["x-h"], "1");
        assert_eq!(response.headers()["x-t"], "2");
    }

    #[tokio::test]
    async fn connect_stream_trailers_join_the_end_message() {
        let (_, frames) = answer(
            "application/connect+json",
            vec![Frame::data(end_stream("{}").freeze())],
        )
        .await;
        let data: Vec<u8> = frames
            .iter()
            .filter_map(Frame::data_ref)
            .flat_map(|d| d.to_vec())
            .collect();
        let end: serde_json::Value = serde_json::from_slice(&data[5..]).expect("json");
        assert_eq!(end["metadata"]["x-t"], serde_json::json!(["2"]));
    }
}
