//! What a call carries to the calls it makes, by itself: the time left of
//! the caller's deadline and the caller's credentials, as Go's `context`
//! and gRPC's deadline propagation carry them. The server sets it around
//! each handler (`shop_kit_rpc`); the kit's client reads it for every call
//! made while the handler runs: no deadline or token is passed by hand, and
//! a call made with none left is refused before it is sent. Work a call
//! hands to another task carries it there when spawned with the kit's
//! `shop_kit::task`; background work that outlives the call (a saga's
//! step, `Shutdown::spawn`) runs in a context of its own
//! ([`CallContext::scope`]).
//! The trace's context rides beside it, in OpenTelemetry's.

use http::HeaderValue;
use tokio::time::Instant;

tokio::task_local! {
    static CURRENT: CallContext;
}

/// The context of the call being served (or the work being done).
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    /// By when it must be answered; `None`: no deadline.
    pub deadline: Option<Instant>,
    /// The caller's `authorization` header as it came, for the calls made
    /// on its behalf (the peers a process calls as its caller: the
    /// gateway's).
    pub authorization: Option<HeaderValue>,
}

impl CallContext {
    /// A context with `deadline` and no caller's token (background work).
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            authorization: None,
        }
    }

    /// The current context with its deadline at most `most` from now (as
    /// Go's `context.WithTimeout`): for a call that must not wait for the
    /// whole of its caller's time.
    pub fn at_most(most: std::time::Duration) -> Self {
        let cap = Instant::now() + most;
        let current = Self::current().unwrap_or_default();
        Self {
            deadline: Some(current.deadline.map_or(cap, |at| at.min(cap))),
            ..current
        }
    }

    /// The context of the call being served here, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Self::clone).ok()
    }

    /// The current call's deadline, if it has one.
    pub fn deadline() -> Option<Instant> {
        CURRENT.try_with(|context| context.deadline).ok().flatten()
    }

    /// The current caller's `authorization` header, if it sent one.
    pub fn authorization() -> Option<HeaderValue> {
        CURRENT
            .try_with(|context| context.authorization.clone())
            .ok()
            .flatten()
    }

    /// Runs `work` in this context: every call it makes through the kit's
    /// client is bounded by this deadline (or its method's, the sooner).
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }

    /// Runs `work`, which does not wait, in this context (a blocking
    /// task's, or one poll of a response body's).
    pub fn sync_scope<R>(self, work: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, work)
    }

    /// `work` to run in this context, as a future (for layers that name
    /// its type).
    pub fn wrap<F: Future>(self, work: F) -> tokio::task::futures::TaskLocalFuture<Self, F> {
        CURRENT.scope(self, work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_context_is_read_inside_its_scope_only() {
        assert!(CallContext::current().is_none());
        let at = Instant::now() + std::time::Duration::from_secs(3);
        let context = CallContext {
            deadline: Some(at),
            authorization: Some(HeaderValue::from_static("Bearer t0ken")),
        };
        let seen = context
            .scope(async { (CallContext::deadline(), CallContext::authorization()) })
            .await;
        assert_eq!(
            seen,
            (Some(at), Some(HeaderValue::from_static("Bearer t0ken")))
        );
        assert_eq!(CallContext::deadline(), None);
    }

    #[tokio::test]
    async fn a_deadline_is_cut_shorter_never_longer() {
        let soon = Instant::now() + std::time::Duration::from_secs(1);
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let cut = CallContext::until(later)
            .scope(async { CallContext::at_most(std::time::Duration::from_secs(2)).deadline })
            .await
            .expect("a deadline");
        assert!(cut < later);
        let kept = CallContext::until(soon)
            .scope(async { CallContext::at_most(std::time::Duration::from_secs(2)).deadline })
            .await;
        assert_eq!(kept, Some(soon));
    }

    #[tokio::test]
    async fn background_work_carries_its_own_deadline() {
        let at = Instant::now() + std::time::Duration::from_secs(60);
        let seen = CallContext::until(at)
            .scope(async { (CallContext::deadline(), CallContext::authorization()) })
            .await;
        assert_eq!(seen, (Some(at), None));
    }
}
