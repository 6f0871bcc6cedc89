//! A probe service for the kit's call policy: one handler that says who
//! called and what deadline it was given. The tests serve it under
//! descriptors compiled from `proto/probe/v1/probe.proto` with other
//! options (see `tests/policy.rs`): the handler never changes.

#![allow(clippy::all, clippy::pedantic, clippy::unwrap_used)]
#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/probe.rs"));

use std::time::Duration;

use axum::Extension;
use connectrpc_axum::prelude::{ConnectError, ConnectResponse};
use shop_kit::{
    Valid,
    auth::Caller,
    client::CallContext,
    rpc::{HttpConfig, Readiness, RpcServer},
};

use probe::v1 as pb;

/// The probe's contract as compiled (the descriptors its service comes
/// with; the tests serve it under others).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/probe_descriptor.bin"));

/// The probe's source, to compile again with other options.
pub const PROBE_PROTO: &str = include_str!("../proto/probe/v1/probe.proto");

async fn who(
    caller: Option<Extension<Caller>>,
    Valid(request): Valid<pb::WhoRequest>,
) -> Result<ConnectResponse<pb::WhoResponse>, ConnectError> {
    // What the call's context says is left of it.
    let deadline_ms = CallContext::deadline().map_or(0, |at| {
        let left = at.saturating_duration_since(tokio::time::Instant::now());
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1)
    });
    tokio::time::sleep(Duration::from_millis(u64::from(request.sleep_ms))).await;
    Ok(ConnectResponse::new(pb::WhoResponse {
        caller: caller
            .map(|Extension(caller)| caller.user_id)
            .unwrap_or_default(),
        deadline_ms,
    }))
}

/// The probe served under `descriptors` (a descriptor set of the probe,
/// compiled with whatever options the test chose).
pub fn server(http: &HttpConfig, descriptors: &'static [u8]) -> RpcServer {
    let probe = pb::ProbeServiceRoutes::new().who(who).build(());
    RpcServer::new(http.clone(), Readiness::always()).serve(probe.described_by(descriptors))
}

/// The probe as a hand-written tonic server would serve it, under
/// `descriptors`: a handler that checks nothing and says "unchecked". It
/// can only be served through the hatch for tests, and the server still
/// admits its callers as the contract says (`tests/policy.rs`).
pub fn handmade(http: &HttpConfig, descriptors: &'static [u8]) -> RpcServer {
    use pb::probe_service_server::{ProbeService, ProbeServiceServer};

    struct Open;

    #[tonic::async_trait]
    impl ProbeService for Open {
        async fn who(
            &self,
            _request: tonic::Request<pb::WhoRequest>,
        ) -> Result<tonic::Response<pb::WhoResponse>, tonic::Status> {
            Ok(tonic::Response::new(pb::WhoResponse {
                caller: "unchecked".to_owned(),
                deadline_ms: 0,
            }))
        }
    }

    fn limit(server: ProbeServiceServer<Open>, max: usize) -> ProbeServiceServer<Open> {
        server.max_decoding_message_size(max)
    }

    let open = shop_kit_rpc::service::testing::handmade(
        descriptors,
        axum::Router::new(),
        ProbeServiceServer::new(Open),
        limit,
    );
    RpcServer::new(http.clone(), Readiness::always()).serve(open)
}
