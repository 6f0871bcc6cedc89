//! Work a call hands to another task, carrying the call with it: the
//! caller's deadline and credentials (`shop_kit_wire::context`), its span
//! and trace, and its service. The calls made there are the call's own, as
//! if made in the handler: bounded by what is left of its deadline, with
//! its caller's token where the peer takes it, in its trace.
//!
//! `tokio::spawn`, `spawn_blocking` and `JoinSet::spawn` carry none of it
//! (a task-local stays with its task), so service code may not call them
//! (clippy's `disallowed-methods`, `services/clippy.toml`): use [`spawn`],
//! [`spawn_blocking`], or `join_set.spawn(task::carried(work))` (allowed
//! there with that reason). Background work that outlives the call (a saga
//! the call started) is [`crate::Shutdown::spawn`]'s: on purpose, it has no
//! caller and no deadline but its own.
//!
//! ```ignore
//! let stock = shop_kit::task::spawn(async move { catalog.stock_of(&ids).await });
//! let me = users.get_me().await?; // the caller's token, on both
//! let stock = stock.await??;
//! ```

use std::future::Future;

use shop_kit_observe::traces;
use shop_kit_wire::context::CallContext;
use tokio::task::JoinHandle;

/// `work`, carrying the current call (its context, trace, span and
/// service) into whichever task polls it.
pub fn carried<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let context = CallContext::current();
    let work = traces::carried(work);
    async move {
        match context {
            Some(context) => context.scope(work).await,
            None => work.await,
        }
    }
}

/// Spawns `work` as `tokio::spawn` does, carrying the current call into it
/// (see the module).
#[allow(
    clippy::disallowed_methods,
    reason = "the one spawn of service code: it carries the call's context"
)]
pub fn spawn<F>(work: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(carried(work))
}

/// Runs `work`, which blocks, as `tokio::task::spawn_blocking` does,
/// carrying the current call into its thread.
#[allow(
    clippy::disallowed_methods,
    reason = "the one blocking spawn of service code: it carries the call's context"
)]
pub fn spawn_blocking<F, R>(work: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let context = CallContext::current();
    let work = traces::carried_blocking(work);
    tokio::task::spawn_blocking(move || match context {
        Some(context) => context.sync_scope(work),
        None => work(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;
    use tokio::time::Instant;

    use super::*;

    fn a_call() -> CallContext {
        CallContext {
            deadline: Some(Instant::now() + Duration::from_secs(3)),
            authorization: Some(HeaderValue::from_static("Bearer t0ken")),
        }
    }

    fn seen() -> (Option<Instant>, Option<HeaderValue>) {
        (CallContext::deadline(), CallContext::authorization())
    }

    #[tokio::test]
    async fn spawned_work_keeps_the_calls_deadline_and_credentials() {
        let call = a_call();
        let expected = (call.deadline, call.authorization.clone());
        let (spawned, blocking, in_a_set) = call
            .scope(async {
                let spawned = spawn(async { seen() });
                let blocking = spawn_blocking(seen);
                let mut set = tokio::task::JoinSet::new();
                #[allow(clippy::disallowed_methods, reason = "the carried way, tested")]
                set.spawn(carried(async { seen() }));
                (
                    spawned.await.expect("spawned"),
                    blocking.await.expect("blocking"),
                    set.join_next().await.expect("one").expect("joined"),
                )
            })
            .await;
        assert_eq!(spawned, expected);
        assert_eq!(blocking, expected);
        assert_eq!(in_a_set, expected);
    }

    #[tokio::test]
    async fn outside_a_call_spawned_work_has_no_context() {
        assert_eq!(
            spawn(async { seen() }).await.expect("spawned"),
            (None, None)
        );
    }
}
