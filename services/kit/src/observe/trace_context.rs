//! W3C trace context (`traceparent`): taken from the request when a caller
//! sends a valid one, started afresh otherwise, and carried on with the work
//! the request causes (downstream calls, the events it publishes).

use std::convert::Infallible;

use axum::{extract::FromRequestParts, http::request::Parts};

pub const HEADER: &str = "traceparent";

/// A `traceparent` value: `00-<trace id>-<parent span id>-<flags>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent(String);

fn random_hex(bytes: usize) -> String {
    let mut hex = String::with_capacity(bytes * 2);
    while hex.len() < bytes * 2 {
        hex.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    hex.truncate(bytes * 2);
    hex
}

impl TraceParent {
    /// A new trace.
    pub fn root() -> Self {
        Self(format!("00-{}-{}-01", random_hex(16), random_hex(8)))
    }

    /// `value` if it is a well-formed version-00 traceparent.
    pub fn parse(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.trim().split('-').collect();
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        match parts.as_slice() {
            [version, trace, span, flags]
                if *version == "00"
                    && hex(trace, 32)
                    && hex(span, 16)
                    && hex(flags, 2)
                    && trace.bytes().any(|b| b != b'0')
                    && span.bytes().any(|b| b != b'0') =>
            {
                Some(Self(value.trim().to_owned()))
            }
            _ => None,
        }
    }

    /// The same trace, as seen by a call this one makes: a new span id.
    pub fn child(&self) -> Self {
        let trace = self.0.get(3..35).unwrap_or_default();
        Self(format!("00-{trace}-{}-01", random_hex(8)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The request's trace context, or a new trace when it has none.
impl<S: Send + Sync> FromRequestParts<S> for TraceParent {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or_else(Self::root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_parents_are_kept_and_children_share_the_trace() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::parse(value).expect("valid");
        assert_eq!(parent.as_str(), value);
        let child = parent.child();
        assert!(
            child
                .as_str()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
        assert_ne!(child, parent);
        assert!(TraceParent::parse(child.as_str()).is_some());
    }

    #[test]
    fn malformed_parents_are_refused() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
        assert!(TraceParent::parse(TraceParent::root().as_str()).is_some());
    }
}
