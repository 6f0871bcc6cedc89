//! Ended spans as the bytes of an OTLP `ExportTraceServiceRequest`,
//! written straight from the SDK's span data.
//!
//! The OTLP exporter of `opentelemetry-otlp` first converts every span into
//! `opentelemetry-proto`'s message structs (a `String` or `Vec` for every
//! id, name, key and value), encodes those, then frees them: ~10k
//! instructions a span, more than the rest of tracing a call. Writing the
//! wire format from borrowed data allocates nothing per span. The tests
//! decode what is written here with `opentelemetry-proto` and compare it
//! with that crate's own conversion of the same spans.

use opentelemetry::{
    Array, InstrumentationScope, KeyValue, Value,
    trace::{SpanKind, Status},
};
use opentelemetry_sdk::{Resource, trace::SpanData};
use prost::encoding::WireType;

/// The spans of one resource (one service).
pub(crate) struct ResourceGroup<'a> {
    pub resource: &'a Resource,
    pub spans: Vec<&'a SpanData>,
}

/// What a span takes on the wire, at most, as the shop's spans go (a dozen
/// short attributes): the buffer is sized for it. A request that needs
/// more grows its buffer, a copy of what is written so far; measuring
/// every field first to size it exactly cost as much as writing it (2.3k
/// instructions a span).
const SPAN_BYTES: usize = 512;

/// The request exporting every group, each under its resource, written in
/// one pass into a buffer sized for it ([`SPAN_BYTES`]).
pub(crate) fn export_request(groups: &[ResourceGroup<'_>]) -> Vec<u8> {
    let scopes: Vec<Vec<ScopeSpans<'_>>> =
        groups.iter().map(|group| scopes(&group.spans)).collect();
    let messages: Vec<ResourceSpans<'_>> = groups
        .iter()
        .zip(&scopes)
        .map(|(group, scopes)| ResourceSpans {
            resource: group.resource,
            scopes,
        })
        .collect();
    let spans: usize = groups.iter().map(|group| group.spans.len()).sum();
    let mut buf = Vec::with_capacity(SPAN_BYTES * spans + 256 * groups.len());
    for message in &messages {
        message_field(1, message, &mut buf);
    }
    buf
}

/// `value` as a varint, a byte pushed at a time (prost's `encode_varint`
/// writes each byte through `BufMut::put_slice`: a call and a copy per
/// byte, the largest part of encoding a span).
#[inline]
fn encode_varint(value: u64, buf: &mut Vec<u8>) {
    varint_bytes(value, |byte| buf.push(byte));
}

/// The bytes of `value` as a varint, least significant group first, each
/// handed to `put`.
#[inline]
fn varint_bytes(mut value: u64, mut put: impl FnMut(u8)) {
    while value >= 0x80 {
        put((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    put(value as u8);
}

/// A field's key: its tag and wire type, as a varint.
#[inline]
fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

/// A group's spans by instrumentation scope, in the order they came.
fn scopes<'a>(spans: &[&'a SpanData]) -> Vec<ScopeSpans<'a>> {
    let mut scopes: Vec<ScopeSpans<'a>> = Vec::new();
    for &span in spans {
        match scopes
            .iter_mut()
            .find(|scope| *scope.scope == span.instrumentation_scope)
        {
            Some(scope) => scope.spans.push(span),
            None => scopes.push(ScopeSpans {
                scope: &span.instrumentation_scope,
                spans: vec![span],
            }),
        }
    }
    scopes
}

/// A protobuf message written from borrowed data.
trait Message {
    fn encode(&self, buf: &mut Vec<u8>);
}

/// `message` as field `tag`: written first, its length put before it
/// after. Asking each message its length before writing it would measure
/// every leaf again at each level above it (the lengths were a third of
/// encoding a span). Most messages here are shorter than 128 bytes, whose
/// length takes the one byte kept for it; a longer one's moves its bytes
/// along by the one to three bytes more its length takes.
fn message_field(tag: u32, message: &impl Message, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    let at = buf.len();
    buf.push(0);
    message.encode(buf);
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
        return;
    }
    let mut prefix = [0u8; 10];
    let mut n = 0;
    varint_bytes(len as u64, |byte| {
        prefix[n] = byte;
        n += 1;
    });
    buf.splice(at..=at, prefix[..n].iter().copied());
}

fn bytes_field(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    if !bytes.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(bytes.len() as u64, buf);
        buf.extend_from_slice(bytes);
    }
}

fn varint_field(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

fn fixed64_field(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32_field(tag: u32, value: u32, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn attributes_field<'a>(
    tag: u32,
    attributes: impl Iterator<Item = Attribute<'a>>,
    buf: &mut Vec<u8>,
) {
    for attribute in attributes {
        message_field(tag, &attribute, buf);
    }
}

/// Nanoseconds since the Unix epoch (0 before it, as OTLP has it).
fn nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// OTLP's span flags: the trace flags, and whether the parent is remote.
fn span_flags(trace_flags: u8, parent_is_remote: bool) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    u32::from(trace_flags) | HAS_IS_REMOTE | if parent_is_remote { IS_REMOTE } else { 0 }
}

struct ResourceSpans<'a> {
    resource: &'a Resource,
    scopes: &'a [ScopeSpans<'a>],
}

impl Message for ResourceSpans<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        message_field(1, &ResourceAttributes(self.resource), buf);
        for scope in self.scopes {
            message_field(2, scope, buf);
        }
        bytes_field(
            3,
            self.resource.schema_url().unwrap_or_default().as_bytes(),
            buf,
        );
    }
}

/// `opentelemetry.proto.resource.v1.Resource`.
struct ResourceAttributes<'a>(&'a Resource);

impl ResourceAttributes<'_> {
    fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.0
            .iter()
            .map(|(key, value)| Attribute(key.as_str(), value))
    }
}

impl Message for ResourceAttributes<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        attributes_field(1, self.attributes(), buf);
    }
}

struct ScopeSpans<'a> {
    scope: &'a InstrumentationScope,
    spans: Vec<&'a SpanData>,
}

impl Message for ScopeSpans<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        message_field(1, &Scope(self.scope), buf);
        for span in &self.spans {
            message_field(2, &Span(span), buf);
        }
        bytes_field(
            3,
            self.scope.schema_url().unwrap_or_default().as_bytes(),
            buf,
        );
    }
}

/// `opentelemetry.proto.common.v1.InstrumentationScope`.
struct Scope<'a>(&'a InstrumentationScope);

impl Scope<'_> {
    fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.0.attributes().map(Attribute::of)
    }
}

impl Message for Scope<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        bytes_field(1, self.0.name().as_bytes(), buf);
        bytes_field(2, self.0.version().unwrap_or_default().as_bytes(), buf);
        attributes_field(3, self.attributes(), buf);
    }
}

/// `opentelemetry.proto.trace.v1.Span`.
struct Span<'a>(&'a SpanData);

impl Span<'_> {
    fn parent_span_id(&self) -> [u8; 8] {
        self.0.parent_span_id.to_bytes()
    }

    fn kind(&self) -> u64 {
        match self.0.span_kind {
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }

    fn flags(&self) -> u32 {
        span_flags(
            self.0.span_context.trace_flags().to_u8(),
            self.0.parent_span_is_remote,
        )
    }

    fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.0.attributes.iter().map(Attribute::of)
    }
}

/// A parent id of zeros is no parent: the field is left out.
fn parent_bytes(id: &[u8; 8]) -> &[u8] {
    if id == &[0; 8] { &[] } else { id }
}

impl Message for Span<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        let data = self.0;
        let context = &data.span_context;
        let trace_state = context.trace_state().header();
        bytes_field(1, &context.trace_id().to_bytes(), buf);
        bytes_field(2, &context.span_id().to_bytes(), buf);
        bytes_field(3, trace_state.as_bytes(), buf);
        bytes_field(4, parent_bytes(&self.parent_span_id()), buf);
        fixed32_field(16, self.flags(), buf);
        bytes_field(5, data.name.as_bytes(), buf);
        varint_field(6, self.kind(), buf);
        fixed64_field(7, nanos(data.start_time), buf);
        fixed64_field(8, nanos(data.end_time), buf);
        attributes_field(9, self.attributes(), buf);
        varint_field(10, u64::from(data.dropped_attributes_count), buf);
        for event in data.events.iter() {
            message_field(11, &Event(event), buf);
        }
        varint_field(12, u64::from(data.events.dropped_count), buf);
        for link in data.links.iter() {
            message_field(13, &Link(link), buf);
        }
        varint_field(14, u64::from(data.links.dropped_count), buf);
        message_field(15, &SpanStatus(&data.status), buf);
    }
}

/// `opentelemetry.proto.trace.v1.Span.Event`.
struct Event<'a>(&'a opentelemetry::trace::Event);

impl Message for Event<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        let event = self.0;
        fixed64_field(1, nanos(event.timestamp), buf);
        bytes_field(2, event.name.as_bytes(), buf);
        attributes_field(3, event.attributes.iter().map(Attribute::of), buf);
        varint_field(4, u64::from(event.dropped_attributes_count), buf);
    }
}

/// `opentelemetry.proto.trace.v1.Span.Link`.
struct Link<'a>(&'a opentelemetry::trace::Link);

impl Link<'_> {
    fn flags(&self) -> u32 {
        let context = &self.0.span_context;
        span_flags(context.trace_flags().to_u8(), context.is_remote())
    }
}

impl Message for Link<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        let link = self.0;
        let context = &link.span_context;
        bytes_field(1, &context.trace_id().to_bytes(), buf);
        bytes_field(2, &context.span_id().to_bytes(), buf);
        bytes_field(3, context.trace_state().header().as_bytes(), buf);
        attributes_field(4, link.attributes.iter().map(Attribute::of), buf);
        varint_field(5, u64::from(link.dropped_attributes_count), buf);
        fixed32_field(6, self.flags(), buf);
    }
}

/// `opentelemetry.proto.trace.v1.Status`.
struct SpanStatus<'a>(&'a Status);

impl SpanStatus<'_> {
    fn message(&self) -> &str {
        match self.0 {
            Status::Error { description } => description,
            Status::Unset | Status::Ok => "",
        }
    }

    fn code(&self) -> u64 {
        match self.0 {
            Status::Unset => 0,
            Status::Ok => 1,
            Status::Error { .. } => 2,
        }
    }
}

impl Message for SpanStatus<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        bytes_field(2, self.message().as_bytes(), buf);
        varint_field(3, self.code(), buf);
    }
}

/// `opentelemetry.proto.common.v1.KeyValue`.
struct Attribute<'a>(&'a str, &'a Value);

impl<'a> Attribute<'a> {
    fn of(kv: &'a KeyValue) -> Self {
        Self(kv.key.as_str(), &kv.value)
    }
}

impl Message for Attribute<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        bytes_field(1, self.0.as_bytes(), buf);
        message_field(2, &AnyValue(self.1), buf);
    }
}

/// `opentelemetry.proto.common.v1.AnyValue`: a oneof, so written even
/// when it is zero or empty.
struct AnyValue<'a>(&'a Value);

/// `opentelemetry.proto.common.v1.ArrayValue`.
struct ArrayValue<'a>(&'a Array);

/// One value of an array, as its own `AnyValue`.
enum Scalar<'a> {
    Bool(bool),
    I64(i64),
    F64(f64),
    Str(&'a str),
}

impl Message for Scalar<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Self::Bool(value) => {
                encode_key(2, WireType::Varint, buf);
                encode_varint(u64::from(*value), buf);
            }
            Self::I64(value) => {
                encode_key(3, WireType::Varint, buf);
                encode_varint(*value as u64, buf);
            }
            Self::F64(value) => {
                encode_key(4, WireType::SixtyFourBit, buf);
                buf.extend_from_slice(&value.to_bits().to_le_bytes());
            }
            Self::Str(text) => {
                encode_key(1, WireType::LengthDelimited, buf);
                encode_varint(text.len() as u64, buf);
                buf.extend_from_slice(text.as_bytes());
            }
        }
    }
}

impl ArrayValue<'_> {
    /// The values, each an `AnyValue` (an array kind this code does not
    /// know yet is written as its text).
    fn values(&self) -> Vec<Scalar<'_>> {
        match self.0 {
            Array::Bool(values) => values.iter().map(|v| Scalar::Bool(*v)).collect(),
            Array::I64(values) => values.iter().map(|v| Scalar::I64(*v)).collect(),
            Array::F64(values) => values.iter().map(|v| Scalar::F64(*v)).collect(),
            Array::String(values) => values.iter().map(|v| Scalar::Str(v.as_str())).collect(),
            _ => Vec::new(),
        }
    }
}

impl Message for ArrayValue<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        for value in self.values() {
            message_field(1, &value, buf);
        }
    }
}

impl Message for AnyValue<'_> {
    fn encode(&self, buf: &mut Vec<u8>) {
        match self.0 {
            Value::Bool(value) => Scalar::Bool(*value).encode(buf),
            Value::I64(value) => Scalar::I64(*value).encode(buf),
            Value::F64(value) => Scalar::F64(*value).encode(buf),
            Value::String(text) => Scalar::Str(text.as_str()).encode(buf),
            Value::Array(array) => message_field(5, &ArrayValue(array), buf),
            other => Scalar::Str(&other.as_str()).encode(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        borrow::Cow,
        time::{Duration, SystemTime},
    };

    use opentelemetry::{
        InstrumentationScope, KeyValue, StringValue,
        trace::{
            Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
        },
    };
    use opentelemetry_proto::{
        tonic::collector::trace::v1::ExportTraceServiceRequest,
        transform::{
            common::tonic::ResourceAttributesWithSchema,
            trace::tonic::group_spans_by_resource_and_scope,
        },
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message as _;

    use super::*;

    fn context(trace: u128, span: u64, remote: bool, state: &str) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            state.parse::<TraceState>().unwrap_or_default(),
        )
    }

    /// Spans with every kind of field filled, and with as little as can be.
    fn spans(scope: &InstrumentationScope) -> Vec<SpanData> {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789);
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "retry",
            start + Duration::from_millis(3),
            vec![KeyValue::new("attempt", 2)],
            1,
        ));
        events.dropped_count = 4;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            context(7, 8, true, "shop=a1,other=b2"),
            vec![KeyValue::new("why", "caller from outside")],
            2,
        ));
        links.dropped_count = 1;
        let full = SpanData {
            span_context: context(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736, 0xf067, false, ""),
            parent_span_id: SpanId::from(0x00f0_67aa_0ba9_02b7),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed("shop.orders.v1.OrderService/CreateOrder"),
            start_time: start,
            end_time: start + Duration::from_millis(12),
            attributes: vec![
                KeyValue::new("rpc.system.name", "connectrpc"),
                KeyValue::new("server.port", 8443_i64),
                KeyValue::new("negative", -3_i64),
                KeyValue::new("ratio", 0.25),
                KeyValue::new("cached", false),
                KeyValue::new("owned", String::from("text")),
                KeyValue::new(
                    "tags",
                    Value::Array(Array::String(vec![
                        StringValue::from("a"),
                        StringValue::from(""),
                    ])),
                ),
                KeyValue::new("flags", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("sizes", Value::Array(Array::I64(vec![0, -1, 300]))),
                KeyValue::new("weights", Value::Array(Array::F64(vec![0.0, 1.5]))),
                KeyValue::new("empty", ""),
            ],
            dropped_attributes_count: 3,
            events,
            links,
            status: Status::error("the card was declined"),
            instrumentation_scope: scope.clone(),
        };
        let bare = SpanData {
            span_context: context(9, 10, false, ""),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Owned(String::new()),
            start_time: start,
            end_time: start,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("other").build(),
        };
        let ok = SpanData {
            span_kind: SpanKind::Client,
            status: Status::Ok,
            parent_span_id: SpanId::from(1),
            instrumentation_scope: scope.clone(),
            ..bare.clone()
        };
        let consumer = SpanData {
            span_kind: SpanKind::Consumer,
            ..bare.clone()
        };
        let producer = SpanData {
            span_kind: SpanKind::Producer,
            ..bare.clone()
        };
        vec![full, bare, ok, consumer, producer]
    }

    #[test]
    fn the_request_is_what_opentelemetry_proto_makes_of_the_same_spans() {
        let scope = InstrumentationScope::builder("connect-shop")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.39.0")
            .with_attributes([KeyValue::new("scope.kind", "rpc")])
            .build();
        let orders = Resource::builder_empty()
            .with_service_name("orders")
            .with_attributes([KeyValue::new("deployment.environment.name", "test")])
            .with_schema_url([], "https://opentelemetry.io/schemas/1.39.0")
            .build();
        let catalog = Resource::builder_empty()
            .with_service_name("catalog")
            .build();
        let orders_spans = spans(&scope);
        let catalog_spans = spans(&scope)[1..3].to_vec();
        let written = export_request(&[
            ResourceGroup {
                resource: &orders,
                spans: orders_spans.iter().collect(),
            },
            ResourceGroup {
                resource: &catalog,
                spans: catalog_spans.iter().collect(),
            },
        ]);
        let read = ExportTraceServiceRequest::decode(written.as_slice()).expect("a valid request");
        let mut expected = group_spans_by_resource_and_scope(
            orders_spans,
            &ResourceAttributesWithSchema::from(&orders),
        );
        expected.extend(group_spans_by_resource_and_scope(
            catalog_spans,
            &ResourceAttributesWithSchema::from(&catalog),
        ));
        // The library groups scopes through a hash map: compare them in
        // one order.
        let sorted = |mut resource_spans: Vec<_>| {
            for resource in &mut resource_spans {
                let resource: &mut opentelemetry_proto::tonic::trace::v1::ResourceSpans = resource;
                resource
                    .scope_spans
                    .sort_by_key(|scope| scope.scope.as_ref().map(|s| s.name.clone()));
            }
            resource_spans
        };
        assert_eq!(sorted(read.resource_spans), sorted(expected));
        // And byte for byte as prost writes that message, field order aside.
        let reencoded = ExportTraceServiceRequest::decode(written.as_slice())
            .expect("a valid request")
            .encode_to_vec();
        assert_eq!(reencoded.len(), written.len());
    }
}
