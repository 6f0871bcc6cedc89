//! The vendored `buf/validate/validate.proto` (proto/vendor/protovalidate)
//! declares the same rules as the copy prost-protovalidate was built for,
//! so every annotation in the contract means what its validators check.

use std::collections::BTreeSet;

use prost_reflect::{DescriptorPool, MessageDescriptor};

const VALIDATE_PROTO: &str = "buf/validate/validate.proto";

/// Every field of every message (nested ones too) and every extension the
/// file declares: (where, name, number).
fn declared(pool: &DescriptorPool) -> BTreeSet<(String, String, u32)> {
    fn walk(message: MessageDescriptor, out: &mut BTreeSet<(String, String, u32)>) {
        for field in message.fields() {
            out.insert((
                message.full_name().to_owned(),
                field.name().to_owned(),
                field.number(),
            ));
        }
        for nested in message.child_messages() {
            walk(nested, out);
        }
    }
    let file = pool
        .get_file_by_name(VALIDATE_PROTO)
        .expect("validate.proto in the pool");
    let mut out = BTreeSet::new();
    for message in file.messages() {
        walk(message, &mut out);
    }
    for extension in file.extensions() {
        out.insert((
            extension.containing_message().full_name().to_owned(),
            extension.name().to_owned(),
            extension.number(),
        ));
    }
    out
}

#[test]
fn the_vendored_validate_proto_is_the_one_the_validators_know() {
    let contract = DescriptorPool::decode(shop_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let ours = declared(&contract);
    let theirs = declared(&prost_protovalidate_types::DESCRIPTOR_POOL);
    assert!(ours.len() > 200, "a whole validate.proto: {}", ours.len());
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "proto/vendor/protovalidate differs from prost-protovalidate-types: \
         only ours {only_ours:?}, only theirs {only_theirs:?}"
    );
}
