//! Where ended spans go: one batch queue, bounded, exported over OTLP on
//! the Tokio runtime, each service's spans under its own `service.name`
//! (the one-process shop runs five services; Jaeger and every backend
//! group spans by the resource's name, not by an attribute).
//!
//! A span is stamped with its service when it starts (from the context it
//! starts in, see `service`); the exporter groups a batch by that stamp and
//! sends each group through an OTLP exporter whose resource names that
//! service. A span that finds the queue full, or whose export failed, is
//! counted in [`super::SPANS_DROPPED`] and forgotten: a collector that is
//! down costs bounded memory, never a request.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use opentelemetry::{Context, KeyValue, trace::Span as _};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor},
};

use super::{SPANS_DROPPED, TraceError, service};

/// Spans waiting for export at most, unless OTEL_BSP_MAX_QUEUE_SIZE says.
const DEFAULT_QUEUE: usize = 2048;

/// The attribute a span's service travels in until export (then removed).
const SERVICE_STAMP: &str = "shop.service";

type MakeExporter =
    Box<dyn Fn() -> Result<opentelemetry_otlp::SpanExporter, TraceError> + Send + Sync>;

/// Stamps each span with its service, bounds the queue, counts drops.
#[derive(Debug)]
pub struct ServiceRouting {
    batch: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    room: usize,
    dropped: metrics::Counter,
}

impl ServiceRouting {
    /// `first` serves the first service seen; `make` makes one exporter
    /// per further service. Exports run on `runtime`.
    pub fn new(
        first: opentelemetry_otlp::SpanExporter,
        make: MakeExporter,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        crate::observe::telemetry::prometheus();
        let dropped = metrics::counter!(SPANS_DROPPED);
        // The batch queue's own size (it reads the same variable): spans
        // are refused before it would drop them uncounted.
        let room = std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_QUEUE);
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(room)
            .build();
        let queued = Arc::new(AtomicUsize::new(0));
        let exporter = ByService {
            runtime,
            first: Mutex::new(Some(first)),
            make,
            exporters: Mutex::default(),
            resource: Resource::builder_empty().build(),
            queued: queued.clone(),
            dropped: dropped.clone(),
            failing: AtomicBool::new(false),
        };
        Self {
            batch: BatchSpanProcessor::builder(exporter)
                .with_batch_config(config)
                .build(),
            queued,
            room,
            dropped,
        }
    }
}

impl SpanProcessor for ServiceRouting {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(name) = service::of(cx) {
            span.set_attribute(KeyValue::new(SERVICE_STAMP, name));
        }
    }

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.room {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.increment(1);
            return;
        }
        self.batch.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.batch.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.batch.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.batch.set_resource(resource);
    }
}

/// One OTLP exporter per service, each with its own resource.
struct ByService {
    runtime: tokio::runtime::Handle,
    first: Mutex<Option<opentelemetry_otlp::SpanExporter>>,
    make: MakeExporter,
    exporters: Mutex<HashMap<String, Arc<opentelemetry_otlp::SpanExporter>>>,
    /// The provider's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
    resource: Resource,
    queued: Arc<AtomicUsize>,
    dropped: metrics::Counter,
    /// Whether the last export failed.
    failing: AtomicBool,
}

impl std::fmt::Debug for ByService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByService").finish_non_exhaustive()
    }
}

impl ByService {
    /// The exporter of `service` (`None`: the resource's own name).
    fn exporter(
        &self,
        service: Option<&str>,
    ) -> Result<Arc<opentelemetry_otlp::SpanExporter>, TraceError> {
        let key = service.unwrap_or_default();
        let mut exporters = self
            .exporters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = exporters.get(key) {
            return Ok(found.clone());
        }
        let taken = self
            .first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut made = match taken {
            Some(first) => first,
            // Its client is made on the runtime it will run on (this is
            // the batch processor's thread).
            None => {
                let _on_runtime = self.runtime.enter();
                (self.make)()?
            }
        };
        let mut resource = Resource::builder_empty().with_attributes(
            self.resource
                .iter()
                .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
        );
        if let Some(name) = service {
            resource = resource.with_service_name(name.to_owned());
        }
        made.set_resource(&resource.build());
        let made = Arc::new(made);
        exporters.insert(key.to_owned(), made.clone());
        Ok(made)
    }
}

/// Takes the service stamp off a span.
fn unstamp(span: &mut SpanData) -> Option<String> {
    let at = span
        .attributes
        .iter()
        .position(|kv| kv.key.as_str() == SERVICE_STAMP)?;
    Some(span.attributes.swap_remove(at).value.as_str().into_owned())
}

impl SpanExporter for ByService {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        let mut groups: HashMap<Option<String>, Vec<SpanData>> = HashMap::new();
        for mut span in batch {
            groups.entry(unstamp(&mut span)).or_default().push(span);
        }
        let mut failed = 0;
        let mut last_error = None;
        for (service, spans) in groups {
            let count = spans.len() as u64;
            let exported = match self.exporter(service.as_deref()) {
                // The exporter's client lives on the Tokio runtime; the
                // batch processor's thread only waits for it.
                Ok(exporter) => self
                    .runtime
                    .spawn(async move { exporter.export(spans).await })
                    .await
                    .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(e.to_string()))),
                Err(error) => Err(OTelSdkError::InternalFailure(error.to_string())),
            };
            if let Err(error) = exported {
                failed += count;
                last_error = Some(error);
            }
        }
        if failed > 0 {
            self.dropped.increment(failed);
        }
        // Said once when export starts failing and once when it works
        // again, not per batch.
        let failing = last_error.is_some();
        if self.failing.swap(failing, Ordering::Relaxed) != failing {
            match &last_error {
                Some(error) => {
                    tracing::warn!(%error, "traces: the collector does not take spans; dropping them (shop_trace_spans_dropped_total)")
                }
                None => tracing::info!("traces: the collector takes spans again"),
            }
        }
        last_error.map_or(Ok(()), Err)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let exporters = self
            .exporters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for exporter in exporters.values() {
            exporter.shutdown_with_timeout(timeout)?;
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_is_taken_off_before_export() {
        let mut span = SpanData {
            span_context: opentelemetry::trace::SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Server,
            name: "x".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: vec![
                KeyValue::new("rpc.method", "a.B/C"),
                KeyValue::new(SERVICE_STAMP, "catalog"),
            ],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: Default::default(),
        };
        assert_eq!(unstamp(&mut span).as_deref(), Some("catalog"));
        assert_eq!(span.attributes.len(), 1);
        assert_eq!(unstamp(&mut span), None);
    }
}
