//! What the server's steps read of every request's headers, found in one
//! pass over its names when the request comes: its content type (the
//! protocol and framing), its timeouts, its request id, whether a browser
//! sent it, whether it carries a token and whether it says its body is
//! compressed. A hashed lookup cost ~100 instructions each, six a call; a
//! request has a few names, and most differ from these in length.

use http::{HeaderMap, HeaderValue};

/// The headers of a request the server's steps read (see the module).
#[derive(Debug, Default)]
pub(crate) struct Head {
    pub content_type: Option<HeaderValue>,
    pub grpc_timeout: Option<HeaderValue>,
    pub connect_timeout: Option<HeaderValue>,
    /// Its first `x-request-id`, and how many it has.
    pub request_id: Option<HeaderValue>,
    pub request_ids: usize,
    /// An `origin`: a browser's request.
    pub origin: bool,
    /// An `authorization`: a token to check and to pass on.
    pub authorization: bool,
    /// A `content-encoding` or `connect-content-encoding`.
    pub encoded: bool,
}

impl Head {
    /// Reads `headers` (the first value of each, as a lookup would).
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut head = Self::default();
        for (name, value) in headers {
            match name.as_str() {
                "content-type" => first(&mut head.content_type, value),
                "grpc-timeout" => first(&mut head.grpc_timeout, value),
                "connect-timeout-ms" => first(&mut head.connect_timeout, value),
                "x-request-id" => {
                    first(&mut head.request_id, value);
                    head.request_ids += 1;
                }
                "origin" => head.origin = true,
                "authorization" => head.authorization = true,
                "content-encoding" | "connect-content-encoding" => head.encoded = true,
                _ => {}
            }
        }
        head
    }
}

fn first(kept: &mut Option<HeaderValue>, value: &HeaderValue) {
    if kept.is_none() {
        *kept = Some(value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_lookups_would() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("Content-Type", "application/json"),
            ("content-type", "application/proto"),
            ("x-request-id", "a"),
            ("x-request-id", "b"),
            ("connect-timeout-ms", "500"),
            ("origin", "https://shop.example"),
            ("authorization", "Bearer t"),
            ("connect-content-encoding", "gzip"),
            ("user-agent", "test"),
        ] {
            headers.append(
                http::HeaderName::try_from(name).expect("name"),
                HeaderValue::from_static(value),
            );
        }
        let head = Head::of(&headers);
        assert_eq!(head.content_type.as_ref(), headers.get("content-type"));
        assert_eq!(head.request_id.as_ref(), headers.get("x-request-id"));
        assert_eq!(head.request_ids, 2);
        assert_eq!(
            head.connect_timeout.as_ref(),
            headers.get("connect-timeout-ms")
        );
        assert!(head.grpc_timeout.is_none());
        assert!(head.origin && head.authorization && head.encoded);

        let bare = Head::of(&HeaderMap::new());
        assert!(bare.content_type.is_none() && bare.request_ids == 0);
        assert!(!bare.origin && !bare.authorization && !bare.encoded);
    }
}
