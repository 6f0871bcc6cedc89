//! The dashboard answers loopback only: a request must name a loopback
//! host (`Host`), and, if it comes from a page, a loopback origin. A page
//! on another site cannot read it through DNS rebinding (its `Host` is the
//! attacker's name) nor make the explorer call as a customer.

use axum::{
    extract::Request,
    http::{StatusCode, header},
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
    if let Some(refusal) = refusal(&request) {
        return (StatusCode::FORBIDDEN, refusal).into_response();
    }
    next.run(request).await
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
    if let Some(origin) = header_text(header::ORIGIN) {
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if !authority.is_some_and(loopback) {
            return Some("the dashboard takes no calls from other sites\n");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::loopback;

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
