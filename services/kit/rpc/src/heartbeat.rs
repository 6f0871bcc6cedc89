//! The heartbeat of a server stream: a message of the stream's own type
//! with only its `kit.stream.v1.Heartbeat` field set, encoded once per
//! method, in proto and in JSON. Every server-streaming response has such a
//! field; `stream_heartbeats` sends it on a quiet stream.

use bytes::Bytes;
use prost_reflect::{Kind, MethodDescriptor};

use super::envelope;

/// The message type of the heartbeat field.
pub const HEARTBEAT_TYPE: &str = "kit.stream.v1.Heartbeat";

/// The heartbeat of one server-streaming method, encoded once.
#[derive(Debug)]
pub struct Heartbeat {
    /// The message as one envelope, in binary proto.
    pub(crate) proto: Bytes,
    /// The message as one envelope, in JSON.
    pub(crate) json: Bytes,
}

/// A server stream whose response cannot carry a heartbeat.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server stream {method} has no heartbeat: add a field `{HEARTBEAT_TYPE} heartbeat = N;` \
     (kit/stream/v1/heartbeat.proto) to {response}, so proxies do not cut it when it is quiet"
)]
pub struct NoHeartbeat {
    method: String,
    response: String,
}

impl Heartbeat {
    /// The heartbeat of `method`: `None` for a method that streams no
    /// responses, an error for a server stream without the field.
    pub fn of(method: &MethodDescriptor) -> Result<Option<Self>, NoHeartbeat> {
        if !method.is_server_streaming() {
            return Ok(None);
        }
        let response = method.output();
        let field = response.fields().find(
            |field| matches!(field.kind(), Kind::Message(kind) if kind.full_name() == HEARTBEAT_TYPE),
        );
        let Some(field) = field else {
            return Err(NoHeartbeat {
                method: method.full_name().to_owned(),
                response: response.full_name().to_owned(),
            });
        };
        // The field, length-delimited, empty: its key then a zero length.
        let mut proto = Vec::new();
        prost::encoding::encode_key(
            field.number(),
            prost::encoding::WireType::LengthDelimited,
            &mut proto,
        );
        proto.push(0);
        let json = format!("{{\"{}\":{{}}}}", field.json_name());
        Ok(Some(Self {
            proto: envelope::framed(0, &proto),
            json: envelope::framed(0, json.as_bytes()),
        }))
    }

    /// The message as JSON, unframed (what REST's events compare with).
    pub fn json_payload(&self) -> &[u8] {
        &self.json[envelope::HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    /// A contract with a heartbeat on one stream and none on another.
    fn pool() -> DescriptorPool {
        use prost_types::{
            DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
            MethodDescriptorProto, ServiceDescriptorProto, field_descriptor_proto::Type,
        };
        let message = |name: &str, fields: Vec<FieldDescriptorProto>| DescriptorProto {
            name: Some(name.to_owned()),
            field: fields,
            ..Default::default()
        };
        let field =
            |name: &str, number: i32, kind: Type, type_name: Option<&str>| FieldDescriptorProto {
                name: Some(name.to_owned()),
                json_name: Some(name.to_owned()),
                number: Some(number),
                r#type: Some(kind.into()),
                type_name: type_name.map(str::to_owned),
                label: Some(prost_types::field_descriptor_proto::Label::Optional.into()),
                ..Default::default()
            };
        let method = |name: &str, output: &str, streaming: bool| MethodDescriptorProto {
            name: Some(name.to_owned()),
            input_type: Some(".t.v1.Tick".to_owned()),
            output_type: Some(output.to_owned()),
            server_streaming: Some(streaming),
            ..Default::default()
        };
        let kit = FileDescriptorProto {
            name: Some("kit/stream/v1/heartbeat.proto".to_owned()),
            package: Some("kit.stream.v1".to_owned()),
            message_type: vec![message("Heartbeat", vec![])],
            syntax: Some("proto3".to_owned()),
            ..Default::default()
        };
        let contract = FileDescriptorProto {
            name: Some("t/v1/t.proto".to_owned()),
            package: Some("t.v1".to_owned()),
            dependency: vec!["kit/stream/v1/heartbeat.proto".to_owned()],
            message_type: vec![
                message("Tick", vec![field("n", 1, Type::Int32, None)]),
                message(
                    "Beating",
                    vec![
                        field("n", 1, Type::Int32, None),
                        field(
                            "heartbeat",
                            20,
                            Type::Message,
                            Some(".kit.stream.v1.Heartbeat"),
                        ),
                    ],
                ),
            ],
            service: vec![ServiceDescriptorProto {
                name: Some("Ticks".to_owned()),
                method: vec![
                    method("Beating", ".t.v1.Beating", true),
                    method("Silent", ".t.v1.Tick", true),
                    method("Once", ".t.v1.Tick", false),
                ],
                ..Default::default()
            }],
            syntax: Some("proto3".to_owned()),
            ..Default::default()
        };
        DescriptorPool::from_file_descriptor_set(FileDescriptorSet {
            file: vec![kit, contract],
        })
        .expect("pool")
    }

    fn method(name: &str) -> MethodDescriptor {
        pool()
            .get_service_by_name("t.v1.Ticks")
            .and_then(|service| service.methods().find(|m| m.name() == name))
            .expect("method")
    }

    #[test]
    fn a_heartbeat_is_its_field_alone_in_either_codec() {
        let heartbeat = Heartbeat::of(&method("Beating"))
            .expect("has the field")
            .expect("a stream");
        // Field 20, length-delimited: key (20 << 3 | 2) = 162 as a varint.
        assert_eq!(&heartbeat.proto[..], &[0, 0, 0, 0, 3, 0xa2, 0x01, 0]);
        assert_eq!(&heartbeat.json[5..], br#"{"heartbeat":{}}"#);
        assert_eq!(heartbeat.json_payload(), br#"{"heartbeat":{}}"#);
        assert!(Heartbeat::of(&method("Once")).expect("unary").is_none());
    }

    #[test]
    fn a_stream_without_the_field_is_refused_naming_what_to_add() {
        let error = Heartbeat::of(&method("Silent")).expect_err("no field");
        let text = error.to_string();
        assert!(text.contains("t.v1.Ticks.Silent"), "{text}");
        assert!(
            text.contains("kit.stream.v1.Heartbeat heartbeat = N;"),
            "{text}"
        );
        assert!(text.contains("t.v1.Tick"), "{text}");
    }
}
