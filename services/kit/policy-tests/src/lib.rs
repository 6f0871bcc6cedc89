//! A probe service for the kit's call policy: one handler that says who
//! called and what deadline it was given. The tests serve it under
//! descriptors compiled from `proto/probe/v1/probe.proto` with other
//! options (see `tests/policy.rs`): the handler never changes.

#![allow(clippy::all, clippy::pedantic, clippy::unwrap_used)]
#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/probe.rs"));
// The probe's rules (`buf.validate`), as the shop's contract has its own.
include!(concat!(env!("OUT_DIR"), "/validate_impl.rs"));

use std::time::Duration;

use axum::Extension;
use connectrpc_axum::prelude::{ConnectError, ConnectResponse, StreamBody};
use shop_kit::{
    Valid, ValidStream,
    auth::Caller,
    client::{CallContext, Peer, PeerPolicy},
    rpc::{HttpConfig, Readiness, RpcServer},
};

use probe::v1 as pb;

/// The probe's contract as compiled (the descriptors its service comes
/// with; the tests serve it under others).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/probe_descriptor.bin"));

/// The probe's source, to compile again with other options.
pub const PROBE_PROTO: &str = include_str!("../proto/probe/v1/probe.proto");

/// Who called and what the call's context says is left of its deadline.
fn seen(caller: Option<Extension<Caller>>) -> pb::WhoResponse {
    let deadline_ms = CallContext::deadline().map_or(0, |at| {
        let left = at.saturating_duration_since(tokio::time::Instant::now());
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1)
    });
    pb::WhoResponse {
        caller: caller
            .map(|Extension(caller)| caller.user_id)
            .unwrap_or_default(),
        deadline_ms,
    }
}

async fn who(
    caller: Option<Extension<Caller>>,
    Valid(request): Valid<pb::WhoRequest>,
) -> Result<ConnectResponse<pb::WhoResponse>, ConnectError> {
    let seen = seen(caller);
    tokio::time::sleep(Duration::from_millis(u64::from(request.sleep_ms))).await;
    Ok(ConnectResponse::new(seen))
}

/// `tally` with one more request counted.
fn counted(mut tally: pb::TallyResponse, request: &pb::TallyRequest) -> pb::TallyResponse {
    tally.requests = tally.requests.saturating_add(1);
    tally.sum = tally.sum.saturating_add(request.count);
    tally
}

async fn tally(
    caller: Option<Extension<Caller>>,
    mut requests: ValidStream<pb::TallyRequest>,
) -> Result<ConnectResponse<pb::TallyResponse>, ConnectError> {
    use futures::StreamExt as _;
    let mut tally = pb::TallyResponse {
        seen: Some(seen(caller)),
        ..pb::TallyResponse::default()
    };
    while let Some(request) = requests.next().await {
        tally = counted(tally, &request?);
    }
    Ok(ConnectResponse::new(tally))
}

type Tallies = futures::stream::BoxStream<'static, Result<pb::TallyResponse, ConnectError>>;

async fn running_tally(
    caller: Option<Extension<Caller>>,
    requests: ValidStream<pb::TallyRequest>,
) -> Result<ConnectResponse<StreamBody<Tallies>>, ConnectError> {
    use futures::StreamExt as _;
    let first = pb::TallyResponse {
        seen: Some(seen(caller)),
        ..pb::TallyResponse::default()
    };
    // One answer per request, as it comes; the first refusal ends it.
    let tallies = requests.scan(first, |tally, request| {
        let next = request.map(|request| {
            *tally = counted(std::mem::take(tally), &request);
            tally.clone()
        });
        futures::future::ready(Some(next))
    });
    Ok(ConnectResponse::new(StreamBody::new(tallies.boxed())))
}

/// Who, as the kit's client calls it at `address` for the call being
/// served (its deadline and caller's token carried by the call's context).
async fn ask_who(address: String) -> Result<pb::WhoResponse, ConnectError> {
    let addr = address
        .parse()
        .map_err(|_| ConnectError::new_invalid_argument("address: no host:port"))?;
    let peer = Peer::at("probe", addr, PeerPolicy::default()).as_the_caller();
    let seen = pb::probe_service_client::ProbeServiceClient::new(peer)
        .who(pb::WhoRequest { sleep_ms: 0 })
        .await
        .map_err(|status| ConnectError::new_unavailable(status.message().to_owned()))?;
    Ok(seen.into_inner())
}

async fn relay(
    Valid(request): Valid<pb::RelayRequest>,
) -> Result<ConnectResponse<pb::WhoResponse>, ConnectError> {
    let seen = shop_kit::task::spawn(ask_who(request.address))
        .await
        .map_err(|e| ConnectError::new_internal(e.to_string()))??;
    Ok(ConnectResponse::new(seen))
}

type Relayed = futures::stream::BoxStream<'static, Result<pb::RelayStreamResponse, ConnectError>>;

async fn relay_stream(
    Valid(request): Valid<pb::RelayRequest>,
) -> Result<ConnectResponse<StreamBody<Relayed>>, ConnectError> {
    use futures::StreamExt as _;
    // Called as the body is polled, after this handler returned.
    let seen = futures::stream::once(ask_who(request.address)).map(|seen| {
        seen.map(|seen| pb::RelayStreamResponse {
            seen: Some(seen),
            heartbeat: None,
        })
    });
    Ok(ConnectResponse::new(StreamBody::new(seen.boxed())))
}

/// The probe served under `descriptors` (a descriptor set of the probe,
/// compiled with whatever options the test chose).
pub fn server(http: &HttpConfig, descriptors: &'static [u8]) -> RpcServer {
    let probe = pb::ProbeServiceRoutes::new()
        .who(who)
        .relay(relay)
        .relay_stream(relay_stream)
        .tally(tally)
        .running_tally(running_tally)
        .build(());
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

        async fn relay(
            &self,
            _request: tonic::Request<pb::RelayRequest>,
        ) -> Result<tonic::Response<pb::WhoResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("not by hand"))
        }

        type RelayStreamStream =
            futures::stream::Empty<Result<pb::RelayStreamResponse, tonic::Status>>;

        async fn relay_stream(
            &self,
            _request: tonic::Request<pb::RelayRequest>,
        ) -> Result<tonic::Response<Self::RelayStreamStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("not by hand"))
        }

        async fn tally(
            &self,
            _request: tonic::Request<tonic::Streaming<pb::TallyRequest>>,
        ) -> Result<tonic::Response<pb::TallyResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("not by hand"))
        }

        type RunningTallyStream = futures::stream::Empty<Result<pb::TallyResponse, tonic::Status>>;

        async fn running_tally(
            &self,
            _request: tonic::Request<tonic::Streaming<pb::TallyRequest>>,
        ) -> Result<tonic::Response<Self::RunningTallyStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("not by hand"))
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
