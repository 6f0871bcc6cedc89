//! A Connect server stream (JSON envelopes) as Server-Sent Events, for REST
//! callers: each message one `data:` event, a failure one `event: error`
//! whose data is the Connect error (`{"code": ..., "message": ...}`). A
//! stream that fails before its first message (not signed in, no such
//! order) is refused as a unary call is: the error under its HTTP status.
//! A heartbeat (see `heartbeat`) is a comment line, which every SSE client
//! skips. Each event is one frame of the body (what observe reads the code
//! from).

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use bytes::{Bytes, BytesMut};
use connectrpc_axum::prelude::{Code, ConnectError};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::envelope;

/// What the first line of an error event is.
pub(super) const ERROR_EVENT: &[u8] = b"event: error\n";

/// An SSE comment: the heartbeat of a quiet stream.
pub(super) const HEARTBEAT_COMMENT: &[u8] = b": heartbeat\n\n";

/// The Connect streaming `answer` as events; its messages equal to
/// `heartbeat` (JSON) as comments.
pub async fn events(answer: Response, heartbeat: Option<&'static [u8]>) -> Response {
    if answer.status() != StatusCode::OK {
        return answer;
    }
    let (mut parts, mut body) = answer.into_parts();
    let mut pending = BytesMut::new();
    let first = next_envelope(&mut body, &mut pending).await;
    if let Some(first) = &first
        && first[0] & envelope::END_STREAM != 0
        && let Some(error) = stream_error(&first[envelope::HEADER_LEN..])
    {
        return refusal(&error);
    }
    for name in [header::CONTENT_LENGTH, header::CONTENT_ENCODING] {
        parts.headers.remove(name);
    }
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let stream = async_stream::stream! {
        let mut next = first;
        while let Some(found) = next {
            let (flags, payload) = (found[0], &found[envelope::HEADER_LEN..]);
            if flags & envelope::END_STREAM != 0 {
                if let Some(error) = stream_error(payload) {
                    yield Ok::<_, axum::Error>(error_event(&error));
                }
                return;
            }
            if flags & envelope::COMPRESSED != 0 {
                // Never asked for (the transcoder sends no
                // connect-accept-encoding): a broken stream.
                let error = serde_json::json!({"code": "internal", "message": "a compressed message"});
                yield Ok(error_event(&error));
                return;
            }
            if heartbeat == Some(payload) {
                yield Ok(Bytes::from_static(HEARTBEAT_COMMENT));
            } else {
                yield Ok(data_event(payload));
            }
            next = next_envelope(&mut body, &mut pending).await;
        }
        // The stream ended without its end message: cut short.
        let error = serde_json::json!({"code": "unavailable", "message": "the stream was cut short"});
        yield Ok(error_event(&error));
    };
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The next whole envelope of `body` (header and payload), `None` once the
/// body ends or fails.
async fn next_envelope(body: &mut Body, pending: &mut BytesMut) -> Option<BytesMut> {
    loop {
        if let Some(found) = envelope::split_whole(pending) {
            return Some(found);
        }
        match body.frame().await? {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    pending.extend_from_slice(&data);
                }
            }
            Err(_) => return None,
        }
    }
}

/// The error an end-of-stream message carries, if any.
fn stream_error(end: &[u8]) -> Option<Value> {
    let mut end: serde_json::Map<String, Value> = serde_json::from_slice(end).ok()?;
    end.remove("error")
}

/// One message's event: a `data:` line for each line of its JSON (one, as
/// Connect writes JSON).
fn data_event(json: &[u8]) -> Bytes {
    let mut event = BytesMut::with_capacity(json.len() + 8);
    for line in json.split(|byte| *byte == b'\n') {
        event.extend_from_slice(b"data: ");
        event.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        event.extend_from_slice(b"\n");
    }
    event.extend_from_slice(b"\n");
    event.freeze()
}

fn error_event(error: &Value) -> Bytes {
    let mut event = BytesMut::from(ERROR_EVENT);
    event.extend_from_slice(&data_event(error.to_string().as_bytes()));
    event.freeze()
}

/// A stream's error before its first message, answered as a unary call's:
/// the HTTP status Connect gives the code, the error as JSON.
fn refusal(error: &Value) -> Response {
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .and_then(|code| code.parse::<Code>().ok())
        .unwrap_or(Code::Unknown);
    let status = ConnectError::from_code(code).into_response().status();
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_answer(envelopes: &[(u8, &str)]) -> Response {
        let mut body = BytesMut::new();
        for (flags, json) in envelopes {
            envelope::frame(*flags, json.as_bytes(), &mut body);
        }
        Response::builder()
            .header(header::CONTENT_TYPE, "application/connect+json")
            .body(Body::from(body.freeze()))
            .expect("response")
    }

    async fn text(response: Response) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn messages_are_data_events_and_a_late_error_an_error_event() {
        let answer = events(
            stream_answer(&[
                (0, r#"{"status":"PENDING"}"#),
                (0, r#"{"heartbeat":{}}"#),
                (0, r#"{"status":"PAID"}"#),
                (
                    envelope::END_STREAM,
                    r#"{"error":{"code":"unavailable","message":"gone"}}"#,
                ),
            ]),
            Some(br#"{"heartbeat":{}}"#),
        )
        .await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(
            text(answer).await,
            "data: {\"status\":\"PENDING\"}\n\n\
             : heartbeat\n\n\
             data: {\"status\":\"PAID\"}\n\n\
             event: error\ndata: {\"code\":\"unavailable\",\"message\":\"gone\"}\n\n"
        );
    }

    #[tokio::test]
    async fn a_stream_that_ends_well_ends_the_events() {
        let answer = events(
            stream_answer(&[
                (0, r#"{"n":1}"#),
                (envelope::END_STREAM, r#"{"metadata":{}}"#),
            ]),
            None,
        )
        .await;
        assert_eq!(text(answer).await, "data: {\"n\":1}\n\n");
    }

    #[tokio::test]
    async fn an_error_before_any_message_is_refused_with_its_status() {
        let answer = events(
            stream_answer(&[(
                envelope::END_STREAM,
                r#"{"error":{"code":"unauthenticated","message":"sign in"}}"#,
            )]),
            None,
        )
        .await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            text(answer).await,
            r#"{"code":"unauthenticated","message":"sign in"}"#
        );
    }

    #[tokio::test]
    async fn a_stream_cut_short_says_so() {
        let answer = events(stream_answer(&[(0, r#"{"n":1}"#)]), None).await;
        assert_eq!(
            text(answer).await,
            "data: {\"n\":1}\n\n\
             event: error\ndata: {\"code\":\"unavailable\",\"message\":\"the stream was cut short\"}\n\n"
        );
    }

    #[test]
    fn a_message_over_lines_is_one_event_of_many_data_lines() {
        assert_eq!(
            &data_event(b"{\n\"n\": 1\r\n}")[..],
            b"data: {\ndata: \"n\": 1\ndata: }\n\n"
        );
    }
}
