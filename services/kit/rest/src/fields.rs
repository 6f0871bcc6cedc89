//! Setting a request message's fields from text, as a REST call gives them
//! (path variables and query parameters), into the message's JSON form,
//! which the handler then reads as any Connect JSON request. The rules
//! follow `google/api/http.proto` and grpc-gateway:
//!
//! - a field is named by its JSON name or its proto name, nested fields by
//!   dots (`page.size`), through singular message fields only;
//! - the value is parsed by the field's type: every integer and float
//!   kind, `bool` as `true`/`false`, enums by name or number, `bytes` as
//!   base64 (checked by the handler's decoding), and the well-known types
//!   whose JSON form is a string (Timestamp, Duration, FieldMask) as text;
//! - a repeated field takes the parameter as often as it is given; any
//!   other field at most once;
//! - a parameter naming no field, a map, or a message is refused.

use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Number, Value};

/// Why a value could not be set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("{name}: no such field")]
    Unknown { name: String },
    #[error("{name}: a {kind} cannot be given as text")]
    NotText { name: String, kind: &'static str },
    #[error("{name}: {value:?} is not a valid {kind}")]
    BadValue {
        name: String,
        value: String,
        kind: &'static str,
    },
    #[error("{name}: given more than once")]
    Repeated { name: String },
}

/// The well-known message types whose JSON form is one string.
const STRING_MESSAGES: [&str; 3] = [
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
];

/// Sets the field `name` (dotted, JSON or proto names) of a `message`
/// whose JSON form is being built in `json` to `text`.
pub fn set(
    message: &MessageDescriptor,
    json: &mut Map<String, Value>,
    name: &str,
    text: &str,
) -> Result<(), FieldError> {
    let unknown = || FieldError::Unknown {
        name: name.to_owned(),
    };
    let mut message = message.clone();
    let mut json = json;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = message
            .get_field_by_json_name(part)
            .or_else(|| message.get_field_by_name(part))
            .ok_or_else(unknown)?;
        if parts.peek().is_none() {
            return set_leaf(&field, json, name, text);
        }
        let Kind::Message(inner) = field.kind() else {
            return Err(unknown());
        };
        if field.is_list() || field.is_map() || STRING_MESSAGES.contains(&inner.full_name()) {
            return Err(unknown());
        }
        let entry = json
            .entry(field.json_name())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(inner_json) = entry else {
            return Err(unknown());
        };
        json = inner_json;
        message = inner;
    }
    Err(unknown())
}

fn set_leaf(
    field: &FieldDescriptor,
    json: &mut Map<String, Value>,
    name: &str,
    text: &str,
) -> Result<(), FieldError> {
    if field.is_map() {
        return Err(FieldError::NotText {
            name: name.to_owned(),
            kind: "map",
        });
    }
    let value = value(&field.kind(), name, text)?;
    let key = field.json_name().to_owned();
    if field.cardinality() == Cardinality::Repeated {
        match json.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(values) => values.push(value),
            _ => {
                return Err(FieldError::Repeated {
                    name: name.to_owned(),
                });
            }
        }
        return Ok(());
    }
    if json.contains_key(&key) {
        return Err(FieldError::Repeated {
            name: name.to_owned(),
        });
    }
    json.insert(key, value);
    Ok(())
}

/// The JSON value of `text` for a field of `kind`.
fn value(kind: &Kind, name: &str, text: &str) -> Result<Value, FieldError> {
    let bad = |kind: &'static str| FieldError::BadValue {
        name: name.to_owned(),
        value: text.to_owned(),
        kind,
    };
    Ok(match kind {
        Kind::String | Kind::Bytes => Value::String(text.to_owned()),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("bool")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let number: i32 = text.parse().map_err(|_| bad("int32"))?;
            Value::Number(number.into())
        }
        Kind::Uint32 | Kind::Fixed32 => {
            let number: u32 = text.parse().map_err(|_| bad("uint32"))?;
            Value::Number(number.into())
        }
        // 64-bit integers are strings in proto's JSON.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            let number: i64 = text.parse().map_err(|_| bad("int64"))?;
            Value::String(number.to_string())
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let number: u64 = text.parse().map_err(|_| bad("uint64"))?;
            Value::String(number.to_string())
        }
        Kind::Float | Kind::Double => match text {
            "NaN" | "Infinity" | "-Infinity" => Value::String(text.to_owned()),
            _ => {
                let number: f64 = text.parse().map_err(|_| bad("number"))?;
                Value::Number(Number::from_f64(number).ok_or_else(|| bad("number"))?)
            }
        },
        Kind::Enum(descriptor) => {
            if descriptor.get_value_by_name(text).is_some() {
                Value::String(text.to_owned())
            } else {
                let number: i32 = text.parse().map_err(|_| bad("enum value"))?;
                if descriptor.get_value(number).is_none() {
                    return Err(bad("enum value"));
                }
                Value::Number(number.into())
            }
        }
        Kind::Message(message) if STRING_MESSAGES.contains(&message.full_name()) => {
            Value::String(text.to_owned())
        }
        Kind::Message(_) => {
            return Err(FieldError::NotText {
                name: name.to_owned(),
                kind: "message",
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;
    use prost_types::{
        DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
        FileDescriptorProto, FileDescriptorSet, field_descriptor_proto::Label,
        field_descriptor_proto::Type,
    };
    use serde_json::json;

    fn field(name: &str, number: i32, kind: Type, type_name: Option<&str>) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.to_owned()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(kind as i32),
            type_name: type_name.map(str::to_owned),
            json_name: None,
            ..Default::default()
        }
    }

    /// `probe.Probe`: one field of each kind, a nested message, an enum, a
    /// repeated field and a map.
    fn probe() -> MessageDescriptor {
        let mut repeated = field("tags", 20, Type::String, None);
        repeated.label = Some(Label::Repeated as i32);
        let mut map = field(
            "labels",
            21,
            Type::Message,
            Some(".probe.Probe.LabelsEntry"),
        );
        map.label = Some(Label::Repeated as i32);
        let entry = DescriptorProto {
            name: Some("LabelsEntry".to_owned()),
            field: vec![
                field("key", 1, Type::String, None),
                field("value", 2, Type::String, None),
            ],
            options: Some(prost_types::MessageOptions {
                map_entry: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let probe = DescriptorProto {
            name: Some("Probe".to_owned()),
            field: vec![
                field("page_size", 1, Type::Int32, None),
                field("count", 2, Type::Uint32, None),
                field("total_cents", 3, Type::Int64, None),
                field("big", 4, Type::Uint64, None),
                field("ratio", 5, Type::Double, None),
                field("active", 6, Type::Bool, None),
                field("name", 7, Type::String, None),
                field("blob", 8, Type::Bytes, None),
                field("status", 9, Type::Enum, Some(".probe.Status")),
                field("inner", 10, Type::Message, Some(".probe.Inner")),
                repeated,
                map,
            ],
            nested_type: vec![entry],
            ..Default::default()
        };
        let inner = DescriptorProto {
            name: Some("Inner".to_owned()),
            field: vec![field("order_id", 1, Type::String, None)],
            ..Default::default()
        };
        let status = EnumDescriptorProto {
            name: Some("Status".to_owned()),
            value: ["STATUS_UNSPECIFIED", "STATUS_OPEN"]
                .iter()
                .zip(0..)
                .map(|(name, number)| EnumValueDescriptorProto {
                    name: Some((*name).to_owned()),
                    number: Some(number),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("probe.proto".to_owned()),
            package: Some("probe".to_owned()),
            message_type: vec![probe, inner],
            enum_type: vec![status],
            syntax: Some("proto3".to_owned()),
            ..Default::default()
        };
        let pool = DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] })
            .expect("pool");
        pool.get_message_by_name("probe.Probe").expect("Probe")
    }

    fn set_all(pairs: &[(&str, &str)]) -> Result<Value, FieldError> {
        let message = probe();
        let mut json = Map::new();
        for (name, text) in pairs {
            set(&message, &mut json, name, text)?;
        }
        Ok(Value::Object(json))
    }

    #[test]
    fn every_scalar_kind_is_parsed_into_its_json_form() {
        assert_eq!(
            set_all(&[
                ("pageSize", "-5"),
                ("count", "7"),
                ("totalCents", "-9000000000"),
                ("big", "18446744073709551615"),
                ("ratio", "0.25"),
                ("active", "true"),
                ("name", "blue cup"),
                ("blob", "aGk="),
            ]),
            Ok(json!({
                "pageSize": -5, "count": 7, "totalCents": "-9000000000",
                "big": "18446744073709551615", "ratio": 0.25, "active": true,
                "name": "blue cup", "blob": "aGk="
            }))
        );
        assert_eq!(set_all(&[("ratio", "NaN")]), Ok(json!({"ratio": "NaN"})));
    }

    #[test]
    fn a_value_out_of_its_type_is_refused_with_its_name() {
        for (name, text) in [
            ("pageSize", "2147483648"),
            ("count", "-1"),
            ("totalCents", "1.5"),
            ("active", "yes"),
            ("ratio", "many"),
            ("status", "STATUS_CLOSED"),
            ("status", "7"),
        ] {
            let refused = set_all(&[(name, text)]);
            assert!(
                matches!(&refused, Err(FieldError::BadValue { name: n, .. }) if n == name),
                "{name}={text}: {refused:?}"
            );
        }
    }

    #[test]
    fn proto_and_json_names_both_name_a_field() {
        assert_eq!(set_all(&[("page_size", "3")]), Ok(json!({"pageSize": 3})));
        assert_eq!(set_all(&[("pageSize", "3")]), Ok(json!({"pageSize": 3})));
    }

    #[test]
    fn enums_by_name_or_number() {
        assert_eq!(
            set_all(&[("status", "STATUS_OPEN")]),
            Ok(json!({"status": "STATUS_OPEN"}))
        );
        assert_eq!(set_all(&[("status", "1")]), Ok(json!({"status": 1})));
    }

    #[test]
    fn nested_fields_by_dots() {
        assert_eq!(
            set_all(&[("inner.order_id", "o-1")]),
            Ok(json!({"inner": {"orderId": "o-1"}}))
        );
        assert_eq!(
            set_all(&[("inner.nope", "x")]),
            Err(FieldError::Unknown {
                name: "inner.nope".to_owned()
            })
        );
        assert!(matches!(
            set_all(&[("name.first", "x")]),
            Err(FieldError::Unknown { .. })
        ));
    }

    #[test]
    fn repeated_fields_take_every_value_others_one() {
        assert_eq!(
            set_all(&[("tags", "a"), ("tags", "b")]),
            Ok(json!({"tags": ["a", "b"]}))
        );
        assert_eq!(
            set_all(&[("name", "a"), ("name", "b")]),
            Err(FieldError::Repeated {
                name: "name".to_owned()
            })
        );
    }

    #[test]
    fn unknown_names_maps_and_messages_are_refused() {
        assert_eq!(
            set_all(&[("colour", "blue")]),
            Err(FieldError::Unknown {
                name: "colour".to_owned()
            })
        );
        assert!(matches!(
            set_all(&[("labels", "x")]),
            Err(FieldError::NotText { kind: "map", .. })
        ));
        assert!(matches!(
            set_all(&[("inner", "x")]),
            Err(FieldError::NotText {
                kind: "message",
                ..
            })
        ));
    }
}
