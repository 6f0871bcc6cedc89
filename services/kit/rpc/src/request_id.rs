//! `x-request-id`: a client's own id is kept (and echoed) only if it is
//! short and made of safe characters; any other is dropped, so a fresh one
//! is made. A caller cannot make the shop echo or log a 64 KiB header.

#[cfg(any(test, feature = "fuzzing"))]
use http::Request;
use http::{HeaderMap, HeaderValue};

use super::protocol::X_REQUEST_ID as HEADER;

/// The longest client request id kept.
pub const MAX_LEN: usize = 64;

/// Whether `id` is a request id worth keeping: 1 to 64 characters of
/// letters, digits and `-_.:`.
pub fn is_safe(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Removes an unsafe `x-request-id` (and all but the first of several).
#[cfg(any(test, feature = "fuzzing"))]
pub fn drop_unsafe<B>(mut request: Request<B>) -> Request<B> {
    drop_unsafe_in(request.headers_mut());
    request
}

/// As [`drop_unsafe`], in a request's `headers`: the id kept, if any.
pub fn drop_unsafe_in(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let kept = {
        let mut values = headers.get_all(HEADER).iter();
        match (values.next(), values.next()) {
            // None to drop: most requests.
            (None, _) => return None,
            (Some(first), None) => Some(first).filter(|id| is_safe(id.as_bytes())).cloned(),
            (Some(_), Some(_)) => None,
        }
    };
    if kept.is_none() {
        headers.remove(HEADER);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(ids: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        for id in ids {
            request
                .headers_mut()
                .append(HEADER, id.parse().expect("header value"));
        }
        request
    }

    #[test]
    fn short_safe_ids_are_kept_others_dropped() {
        let kept = drop_unsafe(with_id(&["req-42_a.b:c"]));
        assert_eq!(kept.headers()[HEADER], "req-42_a.b:c");
        let long = "x".repeat(65);
        for bad in [
            &[long.as_str()][..],
            &["a b"],
            &["<script>"],
            &["a", "b"],
            &[""],
        ] {
            let request = drop_unsafe(with_id(bad));
            assert!(request.headers().get(HEADER).is_none(), "{bad:?}");
        }
    }
}
