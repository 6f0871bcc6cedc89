//! Timeout headers: `grpc-timeout` and `connect-timeout-ms` parse any text
//! without a panic; what parses converts to a grpc-timeout that parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shop_kit::rpc::deadline::{grpc_timeout_value, parse_connect_timeout, parse_grpc_timeout};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(timeout) = parse_connect_timeout(text) {
        let value = grpc_timeout_value(timeout);
        let back = parse_grpc_timeout(value.to_str().expect("ascii")).expect("parses back");
        assert!(back <= timeout);
    }
    if let Some(timeout) = parse_grpc_timeout(text) {
        let value = grpc_timeout_value(timeout);
        assert!(parse_grpc_timeout(value.to_str().expect("ascii")).is_some());
    }
});
