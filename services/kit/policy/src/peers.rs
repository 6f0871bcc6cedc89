//! The services a service calls, as its contract declares them: the file
//! option `kit.policy.v1.peers` of its package's files. Read here for the
//! build (which checks every name and hands the list to the launcher) and
//! for whatever else reads the contract.

use std::collections::BTreeMap;

use prost_reflect::{DescriptorPool, Value};

/// The option's full name.
pub const PEERS_EXTENSION: &str = "kit.policy.v1.peers";

/// Each package whose files declare peers, with the names they declare
/// (in the order written, each once; the declarations of a package's
/// files taken together).
pub fn declared_peers(pool: &DescriptorPool) -> BTreeMap<String, Vec<String>> {
    let mut peers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(extension) = pool.get_extension_by_name(PEERS_EXTENSION) else {
        // The contract never imported the options: nothing declared.
        return peers;
    };
    for file in pool.files() {
        let options = file.options();
        if !options.has_extension(&extension) {
            continue;
        }
        let value = options.get_extension(&extension);
        let Value::Message(declared) = value.as_ref() else {
            continue;
        };
        let names = declared
            .get_field_by_name("calls")
            .and_then(|calls| {
                calls.as_list().map(|list| {
                    list.iter()
                        .filter_map(|name| name.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
            })
            .unwrap_or_default();
        let calls = peers.entry(file.package_name().to_owned()).or_default();
        for name in names {
            if !calls.contains(&name) {
                calls.push(name);
            }
        }
    }
    peers
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    #[test]
    fn a_packages_declared_peers_are_read_in_order_once() {
        let set = crate::testing::descriptor_set(
            "shop/reviews/v1/reviews.proto",
            r#"syntax = "proto3";
package shop.reviews.v1;
import "kit/policy/v1/policy.proto";
option (kit.policy.v1.peers) = { calls: ["catalog", "users", "catalog"] };
message Nothing {}
"#,
        );
        let pool = crate::descriptors(&set).expect("descriptors");
        let peers = declared_peers(&pool);
        assert_eq!(
            peers.get("shop.reviews.v1").map(Vec::as_slice),
            Some(["catalog".to_owned(), "users".to_owned()].as_slice())
        );
        assert_eq!(peers.len(), 1, "{peers:?}");
    }
}
