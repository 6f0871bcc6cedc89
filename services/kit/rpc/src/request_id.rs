//! `x-request-id`: a client's own id is kept (and echoed) only if it is
//! short and made of safe characters; any other is dropped, so a fresh one
//! is made. A caller cannot make the shop echo or log a 64 KiB header.

#[cfg(any(test, feature = "fuzzing"))]
use http::Request;
use http::{HeaderMap, HeaderValue};

use super::{head::Head, protocol::X_REQUEST_ID as HEADER};

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
#[cfg(any(test, feature = "fuzzing"))]
pub fn drop_unsafe_in(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let head = Head::of(headers);
    kept(headers, &head)
}

/// The request id of a request with `headers`, read as `head`: its one
/// safe id, kept; any other removed.
pub(crate) fn kept(headers: &mut HeaderMap, head: &Head) -> Option<HeaderValue> {
    match (&head.request_id, head.request_ids) {
        // None to drop: most requests.
        (None, _) => None,
        (Some(id), 1) if is_safe(id.as_bytes()) => Some(id.clone()),
        _ => {
            headers.remove(HEADER);
            None
        }
    }
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
