//! The gRPC JSON codec: any bytes as a JSON message are transcoded or
//! refused with invalid_argument, never a panic; what transcodes survives a
//! round trip through protobuf and back.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost_reflect::MessageDescriptor;
use shop_kit::rpc::fuzzing::{descriptor_pool, json_to_proto, proto_to_json};

fn descriptor() -> &'static MessageDescriptor {
    static DESCRIPTOR: OnceLock<MessageDescriptor> = OnceLock::new();
    DESCRIPTOR.get_or_init(|| {
        descriptor_pool(&[tonic_health::pb::FILE_DESCRIPTOR_SET])
            .get_message_by_name("grpc.health.v1.HealthCheckResponse")
            .expect("a message with an enum")
    })
}

fuzz_target!(|data: &[u8]| {
    match json_to_proto(descriptor(), data) {
        Ok(proto) => {
            let json = proto_to_json(descriptor(), &proto).expect("our own bytes re-encode");
            let again = json_to_proto(descriptor(), &json).expect("our own JSON decodes");
            assert_eq!(proto, again);
        }
        Err(status) => assert_eq!(status.code(), tonic::Code::InvalidArgument),
    }
});
