//! Connect's JSON is protobuf's JSON mapping, which reads an integer field
//! written as any integral JSON number (`175.0`, `1.75e2`), as connect-go,
//! connect-es and grpc-gateway do. connectrpc-axum decodes JSON with the
//! generated (pbjson) serde code, which takes only digits for an integer
//! ("invalid type: floating point"). A Connect JSON message (a unary POST's
//! body or a GET's `message`) holding a number with a fraction or an
//! exponent is read here by the method's descriptor (prost-reflect, which
//! follows the mapping) and handed on in canonical form. Any other message
//! passes untouched: the common call costs one scan of its bytes. A message
//! the descriptor cannot read also passes untouched, for the library to
//! refuse in its own words. Compressed messages are not read here (a
//! browser does not compress what it sends).

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::body::Body;
use base64::{
    Engine,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use bytes::{Bytes, BytesMut};
use http::{Method, Request, Uri};
use http_body::{Frame, SizeHint};
use percent_encoding::percent_decode_str;
use prost_reflect::MessageDescriptor;

use super::{
    classify::{self, Call},
    drain::read_whole,
    grpc_json,
    protocol::{Framing, query_pairs},
};

/// Base64url with or without padding, as Connect GET allows.
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The request with its JSON message read as the mapping reads it: a GET's
/// now, a unary POST's body as it is read (the library reads it whole
/// anyway). Anything else as it came.
pub fn canonical(request: Request<Body>, call: &Call, max_message_bytes: usize) -> Request<Body> {
    let Some(method) = call.method.filter(|method| method.descriptor.is_some()) else {
        return request;
    };
    if request.method() == Method::GET {
        return canonical_query(request, method);
    }
    // A unary JSON body. One compressed is looked at too: the mapping
    // cannot read it, so it passes as it came.
    if call.framing != Framing::PlainJson {
        return request;
    }
    request.map(|body| {
        Body::new(CanonicalBody {
            inner: body,
            held: BytesMut::new(),
            method,
            max_message_bytes,
            state: State::Reading,
        })
    })
}

fn input(method: &classify::Method) -> Option<MessageDescriptor> {
    method.descriptor.as_ref().map(|method| method.input())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Holding what came until the message is whole.
    Reading,
    /// Larger than a message may be: passed on as it comes, for the
    /// library to refuse.
    Passing,
    Done,
}

pin_project_lite::pin_project! {
    /// A unary JSON body, handed on whole: canonical where it needs to be,
    /// else as it came (one chunk that is the whole body goes on at once).
    struct CanonicalBody {
        #[pin]
        inner: Body,
        held: BytesMut,
        method: &'static classify::Method,
        max_message_bytes: usize,
        state: State,
    }
}

impl CanonicalBody {
    fn whole(method: &classify::Method, json: Bytes) -> Bytes {
        if !needs_rewrite(&json) {
            return json;
        }
        input(method)
            .and_then(|descriptor| rewrite(&descriptor, &json))
            .map_or(json, Bytes::from)
    }
}

impl http_body::Body for CanonicalBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut this = self.project();
        loop {
            if *this.state != State::Reading {
                return this.inner.as_mut().poll_frame(cx);
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if this.held.is_empty() && read_whole(&this.inner) => {
                        *this.state = State::Done;
                        return Poll::Ready(Some(Ok(Frame::data(Self::whole(this.method, data)))));
                    }
                    Ok(data) if this.held.len() + data.len() > *this.max_message_bytes => {
                        *this.state = State::Passing;
                        this.held.extend_from_slice(&data);
                        let held = std::mem::take(this.held).freeze();
                        return Poll::Ready(Some(Ok(Frame::data(held))));
                    }
                    Ok(data) => this.held.extend_from_slice(&data),
                    // Trailers: a unary JSON body has none worth keeping.
                    Err(_) => {}
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => {
                    *this.state = State::Done;
                    if this.held.is_empty() {
                        return Poll::Ready(None);
                    }
                    let held = std::mem::take(this.held).freeze();
                    return Poll::Ready(Some(Ok(Frame::data(Self::whole(this.method, held)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // A rewritten message may be longer or shorter than it came.
        SizeHint::default()
    }
}

/// A Connect GET whose `message` needs it, with the message in canonical
/// form (plain, `base64` dropped) and the other parameters as they came.
fn canonical_query(mut request: Request<Body>, method: &classify::Method) -> Request<Body> {
    let Some(query) = request.uri().query() else {
        return request;
    };
    let Some(query) = flagged_get_message(query)
        .and_then(|json| rewrite(&input(method)?, &json))
        .and_then(|json| String::from_utf8(json).ok())
        .map(|json| with_message(query, &json))
    else {
        return request;
    };
    let mut uri = request.uri().clone().into_parts();
    if let Ok(path_and_query) = format!("{}?{query}", request.uri().path()).parse() {
        uri.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(uri) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// A GET's JSON message, decoded, when it holds a number the generated code
/// refuses. Read in place: a query without one allocates nothing.
fn flagged_get_message(query: &str) -> Option<Vec<u8>> {
    let (mut encoding, mut compression, mut base64, mut message) = (None, None, None, None);
    for (key, value) in query_pairs(query) {
        match key {
            "encoding" => encoding = Some(value),
            "compression" => compression = Some(value),
            "base64" => base64 = Some(value),
            "message" => message = Some(value),
            _ => {}
        }
    }
    let plain = compression.is_none_or(|compression| compression == "identity");
    let message = message.filter(|_| encoding == Some("json") && plain)?;
    let decoded = percent_decode_str(message);
    if base64 == Some("1") {
        let json = BASE64_URL.decode(decoded.collect::<Vec<u8>>()).ok()?;
        needs_rewrite(&json).then_some(json)
    } else {
        let flagged = may_hold_fraction_or_exponent_encoded(message.as_bytes())
            && has_fraction_or_exponent(decoded.clone());
        flagged.then(|| decoded.collect())
    }
}

/// `query` with `message` set to `json` and no `base64`.
fn with_message(query: &str, json: &str) -> String {
    let mut rebuilt = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "message" => rebuilt.append_pair(&key, json),
            "base64" => &mut rebuilt,
            _ => rebuilt.append_pair(&key, &value),
        };
    }
    rebuilt.finish()
}

/// `json` (holding a number the generated code refuses) in canonical form,
/// if the descriptor reads it; `None` to pass it as it came. Through
/// protobuf and back, as gRPC's JSON is transcoded: only such messages pay.
fn rewrite(descriptor: &MessageDescriptor, json: &[u8]) -> Option<Vec<u8>> {
    let proto = grpc_json::json_to_proto(descriptor, json).ok()?;
    grpc_json::proto_to_json(descriptor, &proto).ok()
}

/// Whether a decoded JSON message holds a number the generated code
/// refuses: the cheap look first, the whole scan only where it finds one.
fn needs_rewrite(json: &[u8]) -> bool {
    may_hold_fraction_or_exponent(json) && has_fraction_or_exponent(json.iter().copied())
}

/// A cheap first look at a message as it came (a body, or a GET's
/// percent-encoded message), so that most messages stop here: a digit
/// right before `.`, `e` or `E`. Eight bytes at a time, as one word
/// ([`digit_then_mark`]), the words overlapping by a byte so that every
/// pair of neighbours is within one; the last few bytes one at a time, a
/// table lookup each. (A table lookup a byte throughout cost more on the
/// dist build; the pairs compared as booleans ~16 instructions a byte;
/// memchr's search, restarted at every `e` of a message's names, as much.)
fn may_hold_fraction_or_exponent(raw: &[u8]) -> bool {
    let mut at = 0;
    while let Some(word) = raw.get(at..at + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        if digit_then_mark(u64::from_le_bytes(bytes)) {
            return true;
        }
        at += 7;
    }
    // The pair ending at `at` was in the last word.
    let mut digit_before = 0u8;
    let mut found = 0u8;
    for &byte in &raw[at..] {
        let class = BYTE_CLASS[usize::from(byte)];
        found |= digit_before & (class >> 1);
        digit_before = class & DIGIT;
    }
    found != 0
}

/// Whether a byte of `word` (little-endian: its first byte lowest) is a
/// digit and the next one `.`, `e` or `E`: each byte's top bit flags what
/// it is, with no carry from one byte into the next.
fn digit_then_mark(word: u64) -> bool {
    const EACH: u64 = 0x0101_0101_0101_0101;
    const TOP: u64 = 0x80 * EACH;
    let low = word & !TOP;
    // Top bit set: at least `0`, at least `:` (one past `9`), for the
    // bytes below 0x80 (a byte at or above is no digit).
    let from_zero = low + (0x80 - u64::from(b'0')) * EACH;
    let from_colon = low + (0x80 - u64::from(b':')) * EACH;
    let digits = from_zero & !from_colon & !word & TOP;
    // Top bit set where a byte is zero.
    let zero = |x: u64| !(((x & !TOP) + !TOP) | x) & TOP;
    let marks = zero(word ^ (u64::from(b'.') * EACH))
        // `e` and `E` differ in one bit: that bit set, both are `e`.
        | zero((word | (0x20 * EACH)) ^ (u64::from(b'e') * EACH));
    digits & (marks >> 8) != 0
}

const DIGIT: u8 = 1;
const FRACTION_OR_EXPONENT: u8 = 2;

/// [`DIGIT`] for `0`-`9`, [`FRACTION_OR_EXPONENT`] for `.`, `e` and `E`.
static BYTE_CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut digit = b'0';
    while digit <= b'9' {
        class[digit as usize] = DIGIT;
        digit += 1;
    }
    class[b'.' as usize] = FRACTION_OR_EXPONENT;
    class[b'e' as usize] = FRACTION_OR_EXPONENT;
    class[b'E' as usize] = FRACTION_OR_EXPONENT;
    class
};

/// The same for a GET's message, where a digit or a dot may also come
/// percent-encoded (unreserved characters, which usual clients leave as
/// they are).
fn may_hold_fraction_or_exponent_encoded(raw: &[u8]) -> bool {
    may_hold_fraction_or_exponent(raw)
        || raw.windows(3).any(|encoded| {
            matches!(
                encoded,
                [b'%', b'3', b'0'..=b'9'] | [b'%', b'2', b'e' | b'E']
            )
        })
}

/// Whether a JSON text holds a number written with a fraction or an
/// exponent (outside strings): one pass, no parse.
fn has_fraction_or_exponent(json: impl IntoIterator<Item = u8>) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut in_number = false;
    for byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                in_number = false;
            }
            b'0'..=b'9' | b'-' => in_number = true,
            b'.' | b'e' | b'E' if in_number => return true,
            _ => in_number = false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// The word-at-a-time look says what a byte-at-a-time one says, for
    /// every position of a pair in a word and across words' edges, and for
    /// the bytes a carry or a lowercase fold could mistake.
    #[test]
    fn the_first_look_by_words_sees_what_a_look_by_bytes_sees() {
        fn by_bytes(raw: &[u8]) -> bool {
            raw.windows(2)
                .any(|pair| pair[0].is_ascii_digit() && matches!(pair[1], b'.' | b'e' | b'E'))
        }
        let bytes: Vec<u8> = b"09./:eEdfD-+\"\x7f\x80\xb0\xb9\xae\xe5\xc5\x00\xff ".to_vec();
        for len in 0..24 {
            for first in 0..bytes.len() {
                for second in 0..bytes.len() {
                    for at in 0..len.max(1) {
                        let mut raw = vec![b'x'; len];
                        if at < len {
                            raw[at] = bytes[first];
                        }
                        if at + 1 < len {
                            raw[at + 1] = bytes[second];
                        }
                        assert_eq!(
                            may_hold_fraction_or_exponent(&raw),
                            by_bytes(&raw),
                            "{raw:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn numbers_with_a_fraction_or_exponent_are_found_outside_strings_only() {
        for json in [
            r#"{"a": 175.0}"#,
            r#"{"a":1e2}"#,
            r#"[-2E3]"#,
            r#"{"a":"x","b":0.5}"#,
        ] {
            assert!(may_hold_fraction_or_exponent(json.as_bytes()), "{json}");
            assert!(has_fraction_or_exponent(json.bytes()), "{json}");
        }
        for json in [
            r#"{"a": 175}"#,
            r#"{"a":"1.5","b":"2e3"}"#,
            r#"{"a":true,"b":false,"c":null}"#,
            r#"{"a\"1.5":"\\","b":-3}"#,
            r#"{"price":"12.50"}"#,
        ] {
            assert!(!has_fraction_or_exponent(json.bytes()), "{json}");
        }
        // The first look stops most messages; a string like "1.5" goes on
        // to the whole scan, which finds no number in it.
        for json in [r#"{"a": 175, "b": "hello"}"#, "%7B%22a%22%3A175%7D"] {
            assert!(!may_hold_fraction_or_exponent(json.as_bytes()), "{json}");
        }
        for encoded in ["%7B%22a%22%3A2%2E0%7D", "%7B%22a%22%3A%32.0%7D"] {
            assert!(
                may_hold_fraction_or_exponent(encoded.as_bytes()),
                "{encoded}"
            );
        }
    }

    /// `grpc.reflection.v1.ErrorResponse`: `int32 error_code`, `string error_message`.
    fn error_response() -> MessageDescriptor {
        prost_reflect::DescriptorPool::decode(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .ok()
            .and_then(|pool| pool.get_message_by_name("grpc.reflection.v1.ErrorResponse"))
            .expect("reflection's descriptors")
    }

    #[test]
    fn integral_numbers_in_any_form_are_rewritten_as_digits() {
        let descriptor = error_response();
        for json in [r#"{"errorCode": 175.0}"#, r#"{"errorCode":1.75e2}"#] {
            let rewritten = rewrite(&descriptor, json.as_bytes()).expect("rewritten");
            assert_eq!(rewritten, br#"{"errorCode":175}"#, "{json}");
        }
        // Not readable by the mapping: left for the library to refuse.
        for json in [
            r#"{"errorCode": 175.5}"#,
            r#"{"errorCode": 1e10}"#,
            r#"{"errorCode": 1.0"#,
        ] {
            assert_eq!(rewrite(&descriptor, json.as_bytes()), None, "{json}");
        }
    }

    #[test]
    fn a_get_message_is_rewritten_plain_and_the_rest_of_the_query_kept() {
        let base64 = URL_SAFE_NO_PAD.encode(r#"{"errorCode":2.0}"#);
        let query = format!("connect=v1&encoding=json&base64=1&message={base64}");
        let json = flagged_get_message(&query).expect("flagged");
        assert_eq!(json, br#"{"errorCode":2.0}"#);
        let plain = "connect=v1&encoding=json&message=%7B%22errorCode%22%3A2.0%7D";
        assert_eq!(flagged_get_message(plain).as_deref(), Some(&json[..]));
        let rewritten = rewrite(&error_response(), &json).expect("rewritten");
        assert_eq!(
            with_message(&query, std::str::from_utf8(&rewritten).expect("utf-8")),
            "connect=v1&encoding=json&message=%7B%22errorCode%22%3A2%7D"
        );
        for untouched in [
            "connect=v1&encoding=json&message=%7B%22errorCode%22%3A2%7D",
            "connect=v1&encoding=proto&message=2.0",
            "connect=v1&encoding=json&compression=gzip&message=2.0",
        ] {
            assert_eq!(flagged_get_message(untouched), None, "{untouched}");
        }
    }
}
