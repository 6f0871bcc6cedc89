//! Which of the three RPC protocols a request speaks, and which RPC it names.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue, Method, header::CONTENT_TYPE};

pub use shop_kit_wire::{GRPC_MESSAGE, GRPC_STATUS, GRPC_TIMEOUT};

/// Made once: a lookup by a `&str` parses the name again each time.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// A Connect stream's compression (a unary call's is `content-encoding`).
pub const CONNECT_CONTENT_ENCODING: HeaderName =
    HeaderName::from_static("connect-content-encoding");

/// The wire protocol of one RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Connect,
    Grpc,
    GrpcWeb,
    /// A REST route a `google.api.http` rule declares: never read from a
    /// content type, only found by the request's method and path.
    Rest,
}

impl Protocol {
    /// Classifies a request by its content type; everything that is not gRPC
    /// or gRPC-Web is handled (and, if malformed, refused) as Connect.
    pub fn of(headers: &HeaderMap) -> Self {
        Framing::of(headers).0
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpcweb",
            Self::Rest => "rest",
        }
    }
}

/// The content type without parameters, lower-cased: borrowed from the
/// header (no allocation) unless the client sent capitals.
pub fn content_type(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    essence(headers.get(CONTENT_TYPE)?)
}

/// As [`content_type`], of the header's `value`.
fn essence(value: &HeaderValue) -> Option<Cow<'_, str>> {
    let value = value.to_str().ok()?;
    // Byte-wise (the value is visible ASCII): on every call's path, and
    // `split` and `trim` by characters cost several times more.
    let essence = match value.bytes().position(|b| b == b';') {
        Some(end) => &value[..end],
        None => value,
    }
    .trim_ascii();
    Some(if essence.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(essence.to_ascii_lowercase())
    } else {
        Cow::Borrowed(essence)
    })
}

/// How a request's body is framed, read from its content type with the
/// protocol (one parse for both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No content type.
    Unsaid,
    /// Not an RPC's content type at all (`text/plain`, `application/xml`).
    Plain,
    /// One JSON message, not enveloped (Connect unary, `application/json`).
    PlainJson,
    /// One proto message, not enveloped (Connect unary, `application/proto`).
    PlainProto,
    /// Connect streaming envelopes (`application/connect+...`).
    ConnectStream,
    /// gRPC envelopes of proto (`application/grpc`, `application/grpc+proto`):
    /// what tonic takes as it is.
    GrpcProto,
    /// Other gRPC envelopes: another codec (JSON, which the kit
    /// transcodes), or binary gRPC-Web.
    GrpcEnvelopes,
    /// gRPC-Web text: base64 of envelopes.
    GrpcWebText,
}

impl Framing {
    /// The protocol and framing `headers` say.
    pub fn of(headers: &HeaderMap) -> (Protocol, Self) {
        Self::of_content_type(headers.get(CONTENT_TYPE))
    }

    /// As [`Self::of`], of the `content-type` header's value (`None`: it
    /// has none).
    pub fn of_content_type(value: Option<&HeaderValue>) -> (Protocol, Self) {
        let Some(value) = value else {
            return (Protocol::Connect, Self::Unsaid);
        };
        // The content types clients send, as they send them, compared as
        // bytes: on every call's path, where reading the value as text and
        // looking for capitals cost more than the rest of the
        // classification. Most come without parameters: compared whole
        // first, before any search for a `;`.
        let sent = value.as_bytes();
        let essence = match usual(sent) {
            Some(usual) => return usual,
            None => match sent.iter().position(|&b| b == b';') {
                // Parameters that are not text make the whole value no
                // content type, as the text reading has it.
                Some(end) if value.to_str().is_ok() => &sent[..end],
                _ => return Self::of_text(value),
            },
        };
        usual(essence).unwrap_or_else(|| Self::of_text(value))
    }
}

/// The protocol and framing of the usual content types, as sent.
fn usual(essence: &[u8]) -> Option<(Protocol, Framing)> {
    Some(match essence {
        b"application/proto" => (Protocol::Connect, Framing::PlainProto),
        b"application/json" => (Protocol::Connect, Framing::PlainJson),
        b"application/grpc" | b"application/grpc+proto" => (Protocol::Grpc, Framing::GrpcProto),
        _ => return None,
    })
}

impl Framing {
    /// As [`Self::of`], for any content type: read as text, trimmed, in
    /// any case.
    fn of_text(value: &HeaderValue) -> (Protocol, Self) {
        let Some(ct) = essence(value) else {
            return (Protocol::Connect, Self::Unsaid);
        };
        if ct.starts_with("application/grpc-web-text") {
            (Protocol::GrpcWeb, Self::GrpcWebText)
        } else if ct.starts_with("application/grpc-web") {
            (Protocol::GrpcWeb, Self::GrpcEnvelopes)
        } else if ct == "application/grpc" || ct == "application/grpc+proto" {
            (Protocol::Grpc, Self::GrpcProto)
        } else if ct.starts_with("application/grpc") {
            (Protocol::Grpc, Self::GrpcEnvelopes)
        } else if ct.starts_with("application/connect+") {
            (Protocol::Connect, Self::ConnectStream)
        } else if ct == "application/json" {
            (Protocol::Connect, Self::PlainJson)
        } else if ct == "application/proto" {
            (Protocol::Connect, Self::PlainProto)
        } else {
            (Protocol::Connect, Self::Plain)
        }
    }
}

/// Whether a Connect request is a streaming one (`application/connect+...`).
pub fn is_connect_streaming(headers: &HeaderMap) -> bool {
    Framing::of(headers).1 == Framing::ConnectStream
}

/// `/package.Service/Method`, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcName {
    pub service: String,
    pub method: String,
}

impl RpcName {
    /// Parses an RPC path; `None` for anything else (health probes, metrics,
    /// static files).
    pub fn from_path(path: &str) -> Option<Self> {
        let rest = path.strip_prefix('/')?;
        let (service, method) = rest.split_once('/')?;
        let is_word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        (service.contains('.') && is_word(service) && is_word(method) && !method.contains('.'))
            .then(|| Self {
                service: service.to_owned(),
                method: method.to_owned(),
            })
    }
}

/// Whether this HTTP method can carry an RPC (POST, or GET for Connect).
pub fn is_rpc_method(method: &Method) -> bool {
    method == Method::POST || method == Method::GET
}

/// The `key=value` pairs of a Connect GET's query, as they are written (no
/// percent-decoding; a pair without `=` has an empty value). The
/// separators are found with memchr: `str::split('&')` searched for each
/// as a char, and a byte loop walked the message's bytes one at a time
/// (a GET's query was split three times a call: some 3k instructions).
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = Some(query);
    std::iter::from_fn(move || {
        let remaining = rest?;
        // '&' and '=' are ASCII: the slices end on char boundaries.
        let (pair, after) = match memchr::memchr(b'&', remaining.as_bytes()) {
            Some(at) => (&remaining[..at], Some(&remaining[at + 1..])),
            None => (remaining, None),
        };
        rest = after;
        Some(match memchr::memchr(b'=', pair.as_bytes()) {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, ""),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_that_are_not_text_are_read_as_the_text_reading_reads_them() {
        // Found by the classifier's fuzz target: the byte comparison took
        // this for gRPC while `content_type` saw no content type at all.
        let sent = HeaderValue::from_bytes(b"application/grpc;\xfd\xfd$\xa4 x").expect("a value");
        assert_eq!(
            Framing::of_content_type(Some(&sent)),
            (Protocol::Connect, Framing::Unsaid)
        );
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, sent);
        assert_eq!(content_type(&headers), None);
        let text = HeaderValue::from_static("application/grpc; charset=utf-8");
        assert_eq!(
            Framing::of_content_type(Some(&text)),
            (Protocol::Grpc, Framing::GrpcProto)
        );
    }

    #[test]
    fn a_query_is_split_into_its_pairs_as_written() {
        let pairs: Vec<_> =
            query_pairs("connect=v1&encoding=json&message=%7B%7D&base64&x=a=b&").collect();
        assert_eq!(
            pairs,
            [
                ("connect", "v1"),
                ("encoding", "json"),
                ("message", "%7B%7D"),
                ("base64", ""),
                ("x", "a=b"),
                ("", ""),
            ]
        );
        assert_eq!(query_pairs("").collect::<Vec<_>>(), [("", "")]);
        assert_eq!(
            query_pairs("é=ü&ö").collect::<Vec<_>>(),
            [("é", "ü"), ("ö", "")]
        );
    }

    #[test]
    fn classifies_by_content_type() {
        let mut h = HeaderMap::new();
        assert_eq!(Protocol::of(&h), Protocol::Connect);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert_eq!(Framing::of(&h), (Protocol::Grpc, Framing::GrpcProto));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+json; charset=utf-8"),
        );
        assert_eq!(Framing::of(&h), (Protocol::Grpc, Framing::GrpcEnvelopes));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc-web+proto"),
        );
        assert_eq!(Framing::of(&h), (Protocol::GrpcWeb, Framing::GrpcEnvelopes));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc-web-text"),
        );
        assert_eq!(Protocol::of(&h), Protocol::GrpcWeb);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/connect+json; charset=utf-8"),
        );
        assert_eq!(Protocol::of(&h), Protocol::Connect);
        assert!(is_connect_streaming(&h));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(Framing::of(&h), (Protocol::Connect, Framing::PlainJson));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/proto"));
        assert_eq!(Framing::of(&h), (Protocol::Connect, Framing::PlainProto));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        assert_eq!(Framing::of(&h), (Protocol::Connect, Framing::Plain));
    }

    #[test]
    fn the_usual_content_types_read_as_any_other_does() {
        for value in [
            "application/proto",
            "application/json",
            "application/json; charset=utf-8",
            "application/grpc",
            "application/grpc+proto",
            "application/grpc;foo=bar",
            "APPLICATION/PROTO",
            "application/json ; charset=utf-8",
            " application/grpc",
            "application/grpc+json",
            "application/connect+proto",
            "text/plain",
        ] {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            let text = Framing::of_text(&h[CONTENT_TYPE]);
            assert_eq!(Framing::of(&h), text, "{value:?}");
        }
    }

    #[test]
    fn the_content_type_is_borrowed_unless_it_must_be_lowered() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(matches!(
            content_type(&h),
            Some(Cow::Borrowed("application/json"))
        ));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("Application/GRPC"));
        assert_eq!(content_type(&h).as_deref(), Some("application/grpc"));
        assert_eq!(Protocol::of(&h), Protocol::Grpc);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("\t application/proto ;charset=x"),
        );
        assert_eq!(content_type(&h).as_deref(), Some("application/proto"));
        h.insert(CONTENT_TYPE, HeaderValue::from_static(";"));
        assert_eq!(content_type(&h).as_deref(), Some(""));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_bytes(b"application/json\xe9").expect("a value"),
        );
        assert_eq!(content_type(&h), None, "not visible ASCII");
    }

    #[test]
    fn parses_rpc_paths_only() {
        let name = RpcName::from_path("/shop.catalog.v1.CatalogService/GetProduct");
        assert_eq!(
            name,
            Some(RpcName {
                service: "shop.catalog.v1.CatalogService".into(),
                method: "GetProduct".into()
            })
        );
        assert_eq!(RpcName::from_path("/healthz"), None);
        assert_eq!(RpcName::from_path("/metrics"), None);
        assert_eq!(RpcName::from_path("/assets/app.js"), None);
        assert_eq!(RpcName::from_path("/a.B/C/D"), None);
    }
}
