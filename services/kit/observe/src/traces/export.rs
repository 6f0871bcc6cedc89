//! Where ended spans go: one batch queue, bounded, exported over OTLP on
//! the Tokio runtime, each service's spans under its own `service.name`
//! (the one-process shop runs five services; Jaeger and every backend
//! group spans by the resource's name, not by an attribute).
//!
//! A span is stamped with its service when it starts (from the context it
//! starts in, see `service`); the exporter takes the stamp off and sends
//! each service's spans as a resource of their own, all in one request. A
//! span that finds the queue full, or whose export failed or was rejected,
//! is counted in [`super::SPANS_DROPPED`] and forgotten: a collector that
//! is down costs bounded memory, never a request.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use opentelemetry::{Context, KeyValue, Value, trace::Span as _};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor},
};

use crate::metrics::Metrics;

use super::{
    SPANS_DROPPED,
    otlp::{ResourceGroup, Sender, export_request},
    service::{self, SERVICE_STAMP},
};

/// Spans waiting for export at most, unless OTEL_BSP_MAX_QUEUE_SIZE says.
const DEFAULT_QUEUE: usize = 2048;

/// Bounds the export queue, counts drops, sends each service's spans
/// under its own resource.
#[derive(Debug)]
pub struct ServiceRouting {
    batch: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    room: usize,
    dropped: metrics::Counter,
}

impl ServiceRouting {
    /// Spans are sent by `sender`, on `runtime`; drops are counted in
    /// `metrics`.
    pub fn new(sender: Sender, runtime: tokio::runtime::Handle, metrics: &Metrics) -> Self {
        let dropped = metrics.counter(SPANS_DROPPED);
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
            sender: Arc::new(sender),
            resources: Mutex::default(),
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

/// The provider's one span processor: stamps each span with its service as
/// it starts, then hands each ended span to the exporter and to the
/// dashboard's ring, whichever run. One processor, not one per job: the
/// SDK gives every processor its own copy of each span once there are two
/// or more (a stamp processor beside the exporter cost every traced call
/// ~2.5k instructions in copies and drops); here a span is copied only when
/// both take it.
#[derive(Debug)]
pub(super) struct Stamped {
    pub exporter: Option<ServiceRouting>,
    pub kept: Option<super::kept::Keeping>,
}

impl SpanProcessor for Stamped {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(name) = service::of(cx) {
            span.set_attribute(KeyValue::new(SERVICE_STAMP, name));
        }
    }

    fn on_end(&self, span: SpanData) {
        match (&self.exporter, &self.kept) {
            (Some(exporter), Some(kept)) => {
                kept.keep(&span);
                exporter.on_end(span);
            }
            (Some(exporter), None) => exporter.on_end(span),
            (None, Some(kept)) => kept.on_end(span),
            (None, None) => {}
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter
            .as_ref()
            .map_or(Ok(()), SpanProcessor::force_flush)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter
            .as_ref()
            .map_or(Ok(()), |exporter| exporter.shutdown_with_timeout(timeout))
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(exporter) = &mut self.exporter {
            exporter.set_resource(resource);
        }
    }
}

impl SpanProcessor for ServiceRouting {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

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

/// Sends each service's spans under its own resource.
struct ByService {
    runtime: tokio::runtime::Handle,
    /// Lives on the runtime (its connection does).
    sender: Arc<Sender>,
    /// Each service's resource: the provider's, named for the service.
    resources: Mutex<HashMap<String, Resource>>,
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
    /// The resource of `service` (`None`: the provider's own).
    fn resource(&self, service: Option<&str>) -> Resource {
        let Some(name) = service else {
            return self.resource.clone();
        };
        let mut resources = self
            .resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = resources.get(name) {
            return found.clone();
        }
        let made = Resource::builder_empty()
            .with_attributes(
                self.resource
                    .iter()
                    .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
            )
            .with_service_name(name.to_owned())
            .build();
        resources.insert(name.to_owned(), made.clone());
        made
    }

    /// The request of a batch: its spans grouped by their service stamps
    /// (taken off), each group under its service's resource.
    fn request(&self, batch: &mut [SpanData]) -> Vec<u8> {
        let stamps: Vec<Option<Value>> = batch.iter_mut().map(unstamp).collect();
        let mut groups: Vec<(Option<&Value>, Vec<&SpanData>)> = Vec::new();
        for (span, stamp) in batch.iter().zip(&stamps) {
            match groups
                .iter_mut()
                .find(|(service, _)| *service == stamp.as_ref())
            {
                Some((_, spans)) => spans.push(span),
                None => groups.push((stamp.as_ref(), vec![span])),
            }
        }
        let resources: Vec<Resource> = groups
            .iter()
            .map(|(service, _)| self.resource(service.map(|name| name.as_str()).as_deref()))
            .collect();
        let groups: Vec<ResourceGroup<'_>> = groups
            .into_iter()
            .zip(&resources)
            .map(|((_, spans), resource)| ResourceGroup { resource, spans })
            .collect();
        export_request(&groups)
    }
}

/// Takes the service stamp off a span.
fn unstamp(span: &mut SpanData) -> Option<Value> {
    let at = span
        .attributes
        .iter()
        .position(|kv| kv.key.as_str() == SERVICE_STAMP)?;
    Some(span.attributes.swap_remove(at).value)
}

impl SpanExporter for ByService {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        let count = batch.len() as u64;
        let request = self.request(&mut batch);
        drop(batch);
        let sender = self.sender.clone();
        // The sender's connection lives on the Tokio runtime; the batch
        // processor's thread only waits for it.
        let sent = self
            .runtime
            .spawn(async move { sender.send(request).await })
            .await;
        let failed = match sent {
            Ok(Ok(0)) => None,
            Ok(Ok(rejected)) => {
                self.dropped.increment(rejected);
                None
            }
            Ok(Err(error)) => Some(error.to_string()),
            Err(error) => Some(error.to_string()),
        };
        if failed.is_some() {
            self.dropped.increment(count);
        }
        // Said once when export starts failing and once when it works
        // again, not per batch.
        if self.failing.swap(failed.is_some(), Ordering::Relaxed) != failed.is_some() {
            match &failed {
                Some(error) => {
                    tracing::warn!(%error, "traces: the collector does not take spans; dropping them (shop_trace_spans_dropped_total)")
                }
                None => tracing::info!("traces: the collector takes spans again"),
            }
        }
        failed.map_or(Ok(()), |error| Err(OTelSdkError::InternalFailure(error)))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
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
        assert_eq!(
            unstamp(&mut span).map(|stamp| stamp.as_str().into_owned()),
            Some("catalog".to_owned())
        );
        assert_eq!(span.attributes.len(), 1);
        assert_eq!(unstamp(&mut span), None);
    }
}
