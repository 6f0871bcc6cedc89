//! What a call sends and what came back, in the suite's terms: its
//! `Header` lists as HTTP headers and back, a tonic `Status` as its `Error`.

use http::{HeaderMap, HeaderName, HeaderValue};
use prost::Message;
use shop_conformance::{any::Any, conformance as pb};
use tonic::{Status, metadata::MetadataMap};

/// The headers the runner asks to send, as tonic metadata. Values go as
/// given (a `-bin` header's already in base64).
pub fn metadata(headers: &[pb::Header]) -> Result<MetadataMap, String> {
    let mut map = HeaderMap::new();
    for header in headers {
        let name = HeaderName::try_from(header.name.as_str())
            .map_err(|e| format!("header {:?}: {e}", header.name))?;
        for value in &header.value {
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| format!("header {:?}: {e}", header.name))?;
            map.append(name.clone(), value);
        }
    }
    Ok(MetadataMap::from_headers(map))
}

/// gRPC's own trailers, which say the call's status: the result's error
/// carries them, not its trailers.
const STATUS_TRAILERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// `metadata` as the suite's headers, in order of first appearance, each
/// name once with its values; the status trailers left out.
pub fn headers(metadata: &MetadataMap) -> Vec<pb::Header> {
    let map = metadata.clone().into_headers();
    map.keys()
        .filter(|name| !STATUS_TRAILERS.contains(&name.as_str()))
        .map(|name| pb::Header {
            name: name.as_str().to_owned(),
            value: map
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect(),
        })
        .collect()
}

/// `google.rpc.Status`, as `grpc-status-details-bin` carries it.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `status` as the suite's error: its code, message and details.
pub fn error(status: &Status) -> pb::Error {
    let details = RpcStatus::decode(status.details())
        .map(|decoded| decoded.details)
        .unwrap_or_default();
    pb::Error {
        code: status.code() as i32,
        message: Some(status.message().to_owned()),
        details,
    }
}

/// The call cancelled by the client, as the suite expects it said.
pub fn cancelled() -> pb::Error {
    error(&Status::cancelled("the client cancelled the call"))
}
