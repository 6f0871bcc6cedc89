//! The dashboard answers loopback only: a request must name a loopback
//! host (`Host`), and, if it comes from a page, the dashboard's own origin
//! exactly (`http://` and that host, port included). A page on another site
//! cannot read it through DNS rebinding (its `Host` is the attacker's
//! name), nor can a page of another local server (`http://localhost:3000`)
//! make the explorer call as a customer. No page may frame it
//! (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), so no click on a
//! framed explorer is ever tricked.

use axum::{
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Whether `authority` (`host[:port]`) names this machine's loopback.
fn loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

pub async fn loopback_only(request: Request, next: Next) -> Response {
    let mut response = match refusal(&request) {
        Some(refusal) => (StatusCode::FORBIDDEN, refusal).into_response(),
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Why `request` is refused, if it is.
fn refusal(request: &Request) -> Option<&'static str> {
    let header_text = |name| {
        request
            .headers()
            .get(name)
            .map(|value: &header::HeaderValue| value.to_str().unwrap_or("?"))
    };
    let host = header_text(header::HOST).or_else(|| request.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(loopback) {
        return Some(
            "the dashboard answers only requests to its loopback address (127.0.0.1 or localhost)\n",
        );
    }
    if let Some(origin) = header_text(header::ORIGIN)
        && !same_origin(origin, host.unwrap_or_default())
    {
        return Some("the dashboard takes calls from its own page only\n");
    }
    None
}

/// Whether `origin` is the dashboard's own: `http://` and the host it was
/// asked as (the page and its calls share it, port included).
fn same_origin(origin: &str, host: &str) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::{loopback, same_origin};

    #[test]
    fn only_its_own_origin_may_call() {
        assert!(same_origin("http://127.0.0.1:8079", "127.0.0.1:8079"));
        assert!(same_origin("http://localhost:8079", "localhost:8079"));
        for other in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://localhost:8079",
            "https://127.0.0.1:8079",
            "null",
            "http://127.0.0.1:8079.evil.example",
        ] {
            assert!(!same_origin(other, "127.0.0.1:8079"), "{other}");
        }
    }

    #[test]
    fn only_loopback_names_pass() {
        for ok in [
            "127.0.0.1:8079",
            "localhost:8079",
            "[::1]:8079",
            "localhost",
        ] {
            assert!(loopback(ok), "{ok}");
        }
        for refused in [
            "evil.example:8079",
            "127.0.0.1.evil.example",
            "10.0.0.1:8079",
            "",
            "[::2]:1",
        ] {
            assert!(!loopback(refused), "{refused}");
        }
    }
}
