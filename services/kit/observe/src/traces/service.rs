//! Which service a span belongs to. In the one-process shop five services
//! share one tracer, so the service is told apart by where the work runs:
//! a task-local set around each service's requests (by [`serving_as`],
//! which the kit's pipeline serves every request in) and its background
//! work (spawned through `Shutdown`, which carries it on), and a value in
//! the span's context, which every descendant span inherits, whichever task
//! polls it.

use std::future::Future;

use opentelemetry::Context;

tokio::task_local! {
    static SERVICE: Option<&'static str>;
}

/// A service's name in a span's context.
#[derive(Clone, Copy, Debug)]
struct ServiceName(&'static str);

/// The service the current task works for, if it was told.
fn current_service() -> Option<&'static str> {
    SERVICE.try_with(|service| *service).ok().flatten()
}

/// Runs `work` as `service`'s: the spans it starts are that service's.
pub fn in_service<F: Future>(service: &'static str, work: F) -> impl Future<Output = F::Output> {
    SERVICE.scope(Some(service), work)
}

/// Starts the work `start` makes as `service`'s, and runs it so: what is
/// done at once (a server's steps before its first wait, which start the
/// call's span) and the work's future.
pub fn serving_as<F: Future>(
    service: &'static str,
    start: impl FnOnce() -> F,
) -> tokio::task::futures::TaskLocalFuture<Option<&'static str>, F> {
    let work = SERVICE.sync_scope(Some(service), start);
    SERVICE.scope(Some(service), work)
}

/// Runs `work` as the current task's service (for work it spawns).
pub fn with_current_service<F: Future>(work: F) -> impl Future<Output = F::Output> {
    SERVICE.scope(current_service(), work)
}

/// `work` carrying into another task what the current one's traces are
/// made of: its service, its trace (OpenTelemetry's context, as an RPC's
/// work has it attached) and its `tracing` span, so what the work logs and
/// the calls it makes are the current work's.
pub fn carried<F: Future>(work: F) -> impl Future<Output = F::Output> {
    use opentelemetry::trace::FutureExt as _;
    use tracing::Instrument as _;
    with_current_service(
        work.instrument(tracing::Span::current())
            .with_context(Context::current()),
    )
}

/// `work`, which blocks, carrying what [`carried`] carries into the thread
/// that runs it.
pub fn carried_blocking<R>(work: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let service = current_service();
    let cx = Context::current();
    let span = tracing::Span::current();
    move || {
        let _cx = cx.attach();
        let _entered = span.enter();
        SERVICE.sync_scope(service, work)
    }
}

/// `cx` marked with the current task's service, so every span under it is
/// that service's.
pub(super) fn mark(cx: Context) -> Context {
    match current_service() {
        Some(service) => cx.with_value(ServiceName(service)),
        None => cx,
    }
}

/// The attribute a span's service travels in until export (then removed).
pub(super) const SERVICE_STAMP: &str = "shop.service";

/// The service of a span starting under `cx`.
pub(super) fn of(cx: &Context) -> Option<&'static str> {
    cx.get::<ServiceName>()
        .map(|name| name.0)
        .or_else(current_service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_service_is_known_where_its_work_starts_and_in_its_future() {
        // What a server's steps see when a request comes, and when its
        // answer is polled: both inside the scope, even from another's.
        let serve = || {
            serving_as("catalog", || {
                let at_start = current_service();
                async move { (at_start, current_service()) }
            })
        };
        let seen = in_service("orders", async { serve().await }).await;
        assert_eq!(seen, (Some("catalog"), Some("catalog")));
    }

    #[tokio::test]
    async fn a_service_is_known_inside_its_scope_and_in_what_it_hands_on() {
        assert_eq!(current_service(), None);
        in_service("catalog", async {
            assert_eq!(current_service(), Some("catalog"));
            let spawned = tokio::spawn(with_current_service(async { current_service() }));
            assert_eq!(spawned.await.ok().flatten(), Some("catalog"));
            let marked = mark(Context::new());
            assert_eq!(
                tokio::spawn(async move { of(&marked) })
                    .await
                    .ok()
                    .flatten(),
                Some("catalog"),
                "a context carries its service into any task"
            );
        })
        .await;
    }
}
