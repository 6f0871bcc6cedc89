//! A unary or server-streaming method takes exactly one request message.
//! Over the enveloped protocols (gRPC, gRPC-Web, Connect streaming) a body
//! may carry none or several; connectrpc-axum and tonic then answer
//! inconsistently (invalid_argument, internal, or silently the first
//! message). This step reads such a body (one message, within the size
//! limit), counts its envelopes and refuses anything but one with
//! `unimplemented`, as connect-go does; a body its caller broke off is a
//! call `canceled`. Client-streaming methods, Connect unary bodies (not
//! enveloped) and gRPC-Web text pass untouched.

use axum::{body::Body, response::Response};
use bytes::{Bytes, BytesMut};
use connectrpc_axum::prelude::{Code, ConnectError};
use futures::StreamExt;
use http::{Method, Request};

use super::{
    classify::Call,
    connect_errors::error_response,
    envelope::{self, Next},
    protocol::Framing,
};

/// Whether `request` (classified as `call`) must carry exactly one
/// enveloped message: a POST to a described method that does not stream
/// requests.
pub(super) fn applies_to(request: &Request<Body>, call: &Call) -> bool {
    let one_message = call
        .method
        .is_some_and(|method| method.descriptor.is_some() && !method.client_streaming);
    one_message
        && request.method() == Method::POST
        && matches!(
            call.framing,
            Framing::GrpcProto | Framing::GrpcEnvelopes | Framing::ConnectStream
        )
}

/// What the start of a body holds.
#[derive(Debug, PartialEq, Eq)]
enum Count {
    None,
    One,
    Several,
    /// Not decidable here (a truncated envelope); the decoder will say.
    Unknown,
}

fn count_envelopes(body: &[u8]) -> Count {
    let mut rest = body;
    let mut count = 0;
    loop {
        match envelope::next(rest) {
            Next::Empty => return if count == 0 { Count::None } else { Count::One },
            Next::Whole(_, after) if count == 0 => {
                count = 1;
                rest = after;
            }
            Next::Whole(..) => return Count::Several,
            // A second envelope's header is already one too many.
            Next::Partial { needed: Some(_) } if count == 1 => return Count::Several,
            Next::Partial { .. } => return Count::Unknown,
        }
    }
}

/// `request` (one [`applies_to`]) as the next step takes it: its one
/// message read (a body held up to `max_message_bytes`, plus the header of
/// a second message), or the refusal of a body with none or several, or
/// one its caller broke off.
pub(super) async fn one_message(
    request: Request<Body>,
    max_message_bytes: usize,
) -> Result<Request<Body>, Response> {
    // One message within the limit, plus the header of a second.
    let cap = max_message_bytes.saturating_add(10);
    let (parts, body) = request.into_parts();
    let mut frames = body.into_data_stream();
    let mut read = Read::default();
    let mut ended = true;
    while let Some(chunk) = frames.next().await {
        let Ok(chunk) = chunk else {
            // The caller broke off (its stream reset, as a hedge's
            // losing copy is): its call is canceled, not a failure
            // of this server's (the protocol stacks would answer
            // `internal` for the broken body).
            let error = ConnectError::new(
                Code::Canceled,
                "the caller broke off its request before its message was whole",
            );
            return Err(error_response(&parts.headers, error));
        };
        read.push(chunk);
        if read.len() > cap {
            ended = false;
            break;
        }
    }
    let read = read.into_bytes();
    let refusal = match (count_envelopes(&read), ended) {
        (Count::None, true) => Some("a request message is required"),
        (Count::Several, _) => Some("this method takes exactly one request message"),
        _ => None,
    };
    if let Some(reason) = refusal {
        let error = ConnectError::new(Code::Unimplemented, reason);
        return Err(error_response(&parts.headers, error));
    }
    let body = if ended {
        Body::from(read)
    } else {
        let head = futures::stream::once(async move { Ok::<Bytes, axum::Error>(read) });
        Body::from_stream(head.chain(frames))
    };
    Ok(Request::from_parts(parts, body))
}

/// The bytes of a body as they are read: the first chunk kept as it came
/// (most bodies are one chunk), copied only when another one follows.
#[derive(Default)]
struct Read {
    first: Bytes,
    joined: Option<BytesMut>,
}

impl Read {
    fn push(&mut self, chunk: Bytes) {
        match &mut self.joined {
            Some(joined) => joined.extend_from_slice(&chunk),
            None if self.first.is_empty() => self.first = chunk,
            None => {
                let mut joined = BytesMut::with_capacity(self.first.len() + chunk.len());
                joined.extend_from_slice(&self.first);
                joined.extend_from_slice(&chunk);
                self.joined = Some(joined);
            }
        }
    }

    fn len(&self) -> usize {
        self.joined.as_ref().map_or(self.first.len(), BytesMut::len)
    }

    fn into_bytes(self) -> Bytes {
        self.joined.map_or(self.first, BytesMut::freeze)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(payload: &[u8]) -> Vec<u8> {
        let mut framed = Vec::new();
        envelope::frame(0, payload, &mut framed);
        framed
    }

    #[test]
    fn a_body_read_in_chunks_is_joined_in_order() {
        let mut one = Read::default();
        one.push(Bytes::from_static(b"whole"));
        assert_eq!(one.len(), 5);
        assert_eq!(one.into_bytes(), "whole");

        let mut three = Read::default();
        for chunk in ["ab", "", "cd", "e"] {
            three.push(Bytes::from_static(chunk.as_bytes()));
        }
        assert_eq!(three.len(), 5);
        assert_eq!(three.into_bytes(), "abcde");
    }

    #[test]
    fn counts_whole_envelopes() {
        assert_eq!(count_envelopes(&[]), Count::None);
        assert_eq!(count_envelopes(&envelope(b"abc")), Count::One);
        assert_eq!(
            count_envelopes(&envelope(b"")),
            Count::One,
            "an empty message is a message"
        );
        let two = [envelope(b"a"), envelope(b"b")].concat();
        assert_eq!(count_envelopes(&two), Count::Several);
        let truncated = &envelope(b"abcdef")[..7];
        assert_eq!(count_envelopes(truncated), Count::Unknown);
        assert_eq!(count_envelopes(&[0, 0]), Count::Unknown);
    }
}
