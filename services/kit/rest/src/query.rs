//! A REST call's query string as request fields: each parameter (form
//! encoded: `+` is a space, `%HH` a byte) sets the field it names by the
//! rules of [`fields::set`](super::fields::set); the first it cannot set
//! refuses the call.

use prost_reflect::MessageDescriptor;
use serde_json::{Map, Value};

use super::fields::{self, FieldError};

/// Sets every parameter of `query` (without its `?`) into `json`, the JSON
/// form of a `message` being built.
pub fn bind_query(
    message: &MessageDescriptor,
    json: &mut Map<String, Value>,
    query: &str,
) -> Result<(), FieldError> {
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        fields::set(message, json, &name, &value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;
    use serde_json::json;

    fn health_check() -> MessageDescriptor {
        DescriptorPool::decode(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .expect("descriptors")
            .get_message_by_name("grpc.health.v1.HealthCheckRequest")
            .expect("HealthCheckRequest")
    }

    #[test]
    fn parameters_are_form_decoded_into_fields() {
        let mut json = Map::new();
        bind_query(
            &health_check(),
            &mut json,
            "service=shop.catalog.v1%2ECatalog+Service",
        )
        .expect("bound");
        assert_eq!(
            Value::Object(json),
            json!({"service": "shop.catalog.v1.Catalog Service"})
        );
    }

    #[test]
    fn an_unknown_parameter_refuses_the_call() {
        let mut json = Map::new();
        assert_eq!(
            bind_query(&health_check(), &mut json, "service=a&verbose=1"),
            Err(FieldError::Unknown {
                name: "verbose".to_owned()
            })
        );
    }

    #[test]
    fn an_empty_query_sets_nothing() {
        let mut json = Map::new();
        bind_query(&health_check(), &mut json, "").expect("bound");
        assert!(json.is_empty());
    }
}
