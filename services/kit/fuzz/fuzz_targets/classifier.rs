//! The request classifier: any content type, path, request id and encoding
//! header is classified without a panic, and an RPC name is only ever made
//! of the characters a route can have.
#![no_main]

use http::{HeaderValue, Request, header::CONTENT_TYPE};
use libfuzzer_sys::fuzz_target;
use shop_kit::rpc::{
    fuzzing::{check_encoding, drop_unsafe_request_id, is_safe_request_id},
    protocol::{Protocol, RpcName, content_type},
};

fuzz_target!(|input: (&[u8], &str, &[u8], &[u8])| {
    let (content_type_bytes, path, id, content_encoding) = input;
    if let Some(name) = RpcName::from_path(path) {
        let word = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        assert!(word(&name.service) && word(&name.method) && name.service.contains('.'));
    }
    let mut request = Request::post("/").body(()).expect("request");
    if let Ok(value) = HeaderValue::from_bytes(content_type_bytes) {
        request.headers_mut().insert(CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(content_encoding) {
        request.headers_mut().insert("content-encoding", value.clone());
        request.headers_mut().insert("connect-content-encoding", value);
    }
    if let Ok(value) = HeaderValue::from_bytes(id) {
        request.headers_mut().insert("x-request-id", value);
    }
    let protocol = Protocol::of(request.headers());
    let ct = content_type(request.headers());
    if protocol != Protocol::Connect {
        assert!(ct.is_some_and(|ct| ct.starts_with("application/grpc")));
    }
    let _ = check_encoding(&request);
    let kept = drop_unsafe_request_id(request);
    if let Some(id) = kept.headers().get("x-request-id") {
        assert!(is_safe_request_id(id.as_bytes()));
    }
});
