//! `google.protobuf.Any` with its proto3 JSON form (`{"@type": ..., fields}`),
//! which pbjson-types does not produce. The suite echoes its own request
//! messages as Any, so a registry of the suite's types is enough here.

use prost::{Message, Name};
use serde::{Deserialize, Serialize, de::Error as _, ser::Error as _};

use crate::conformance::{self as pb, conformance_payload::RequestInfo};

#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: bytes::Bytes,
}

impl Any {
    pub fn pack<M: Message + Name>(message: &M) -> Self {
        Self {
            type_url: M::type_url(),
            value: message.encode_to_vec().into(),
        }
    }
}

/// Calls `$then!(Type)` for the registered type named `$name`.
macro_rules! with_registered {
    ($name:expr, $then:ident, $otherwise:expr) => {
        match $name {
            n if n == pb::UnaryRequest::full_name() => $then!(pb::UnaryRequest),
            n if n == pb::IdempotentUnaryRequest::full_name() => $then!(pb::IdempotentUnaryRequest),
            n if n == pb::ServerStreamRequest::full_name() => $then!(pb::ServerStreamRequest),
            n if n == pb::ClientStreamRequest::full_name() => $then!(pb::ClientStreamRequest),
            n if n == pb::BidiStreamRequest::full_name() => $then!(pb::BidiStreamRequest),
            n if n == pb::UnimplementedRequest::full_name() => $then!(pb::UnimplementedRequest),
            n if n == RequestInfo::full_name() => $then!(RequestInfo),
            _ => $otherwise,
        }
    };
}

fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

impl Serialize for Any {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        macro_rules! to_json {
            ($t:ty) => {
                serde_json::to_value(<$t>::decode(self.value.clone()).map_err(S::Error::custom)?)
                    .map_err(S::Error::custom)?
            };
        }
        let unknown =
            || S::Error::custom(format!("no JSON form for Any of type {}", self.type_url));
        let mut json = with_registered!(type_name(&self.type_url), to_json, return Err(unknown()));
        let fields = json.as_object_mut().ok_or_else(unknown)?;
        fields.insert(
            "@type".to_owned(),
            serde_json::Value::String(self.type_url.clone()),
        );
        json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut json = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let Some(serde_json::Value::String(type_url)) = json.remove("@type") else {
            return Err(D::Error::custom("an Any needs its \"@type\""));
        };
        macro_rules! from_json {
            ($t:ty) => {
                serde_json::from_value::<$t>(serde_json::Value::Object(json))
                    .map_err(D::Error::custom)?
                    .encode_to_vec()
            };
        }
        let value = with_registered!(
            type_name(&type_url),
            from_json,
            return Err(D::Error::custom(format!("unknown Any type {type_url}")))
        );
        Ok(Self {
            type_url,
            value: value.into(),
        })
    }
}
