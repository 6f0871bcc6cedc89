//! The requests of a client-streaming or bidirectional call, each checked
//! against the contract's rules as it arrives: what such a method's handler
//! takes in place of `Valid<T>`. A message that breaks a rule is not handed
//! over; the stream yields its refusal (`invalid_argument`, the fields
//! named as the caller names them) and ends, so a handler that returns
//! the first error it reads answers the caller with it. A message that
//! failed to decode, or a caller that went away, ends it the same way with
//! the library's error.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use connectrpc_axum::prelude::{ConnectError, Streaming};
use futures::Stream;

use super::broken_rules::{RequestRules, Rules};

/// A stream of request messages, each one keeping every rule of its
/// contract (see the module).
pub struct ValidStream<T> {
    requests: Streaming<T>,
    rules: RequestRules,
    ended: bool,
}

impl<T> ValidStream<T> {
    pub(crate) fn new(requests: Streaming<T>, rules: RequestRules) -> Self {
        Self {
            requests,
            rules,
            ended: false,
        }
    }
}

impl<T> std::fmt::Debug for ValidStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<T: Rules> Stream for ValidStream<T> {
    type Item = Result<T, ConnectError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let next = ready!(Pin::new(&mut self.requests).poll_next(cx));
        let checked = match next {
            Some(Ok(request)) => match request.broken() {
                None => return Poll::Ready(Some(Ok(request))),
                Some(broken) => Some(Err(self.rules.refusal(&broken))),
            },
            other => other,
        };
        self.ended = true;
        Poll::Ready(checked)
    }
}

#[cfg(test)]
mod tests {
    use connectrpc_axum::prelude::Code;
    use futures::StreamExt as _;
    use prost_protovalidate::{ValidationError, Violation};

    use super::*;

    /// A request whose rule is "not negative".
    #[derive(Debug, PartialEq)]
    struct Count(i32);

    impl Rules for Count {
        fn broken(&self) -> Option<ValidationError> {
            (self.0 < 0).then(|| {
                ValidationError::new(vec![Violation::new(
                    "count",
                    "int32.gte",
                    "value must be greater than or equal to 0",
                )])
            })
        }
    }

    fn stream(items: Vec<Result<Count, ConnectError>>) -> ValidStream<Count> {
        ValidStream::new(
            Streaming::new(Box::pin(futures::stream::iter(items))),
            RequestRules::new(true),
        )
    }

    #[tokio::test]
    async fn messages_that_keep_the_rules_pass_as_they_came() {
        let seen: Vec<_> = stream(vec![Ok(Count(1)), Ok(Count(2))]).collect().await;
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].as_ref().ok(), Some(&Count(1)));
        assert_eq!(seen[1].as_ref().ok(), Some(&Count(2)));
    }

    #[tokio::test]
    async fn the_first_broken_message_is_refused_and_ends_the_stream() {
        let seen: Vec<_> = stream(vec![Ok(Count(1)), Ok(Count(-1)), Ok(Count(3))])
            .collect()
            .await;
        assert_eq!(seen.len(), 2, "nothing after the refusal: {seen:?}");
        let refusal = seen[1].as_ref().expect_err("refused");
        assert_eq!(refusal.code(), Code::InvalidArgument);
        assert!(
            refusal.message().is_some_and(|m| m.starts_with("count:")),
            "{refusal:?}"
        );
    }

    #[tokio::test]
    async fn a_transport_error_ends_the_stream_too() {
        let seen: Vec<_> = stream(vec![
            Err(ConnectError::new(Code::Canceled, "gone")),
            Ok(Count(1)),
        ])
        .collect()
        .await;
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].as_ref().expect_err("error").code(), Code::Canceled);
    }
}
