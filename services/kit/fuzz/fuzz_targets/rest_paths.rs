//! REST routes' parsers: any path template parses or is refused, any path
//! is matched against a parsed one, and any query string is bound to a
//! message's fields or refused, without a panic; a match binds every
//! variable the template declares.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost_reflect::DescriptorPool;
use shop_kit::rest::{RestPath, bind_query};

fuzz_target!(|input: (&str, &str, &str)| {
    let (template, path, query) = input;
    if let Ok(rest_path) = RestPath::parse(template) {
        if let Ok(Some(bindings)) = rest_path.bind(path) {
            assert_eq!(bindings.len(), rest_path.fields().count());
        }
    }
    let pool = DescriptorPool::decode(tonic_health::pb::FILE_DESCRIPTOR_SET).expect("descriptors");
    let message = pool
        .get_message_by_name("grpc.health.v1.HealthCheckRequest")
        .expect("HealthCheckRequest");
    let mut json = serde_json::Map::new();
    let _ = bind_query(&message, &mut json, query);
});
