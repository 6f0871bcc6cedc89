// The request before an extractor: it is read last.
use axum::extract::State;
use connectrpc_axum::prelude::*;
use shop_kit::Valid;
use shop_kit_policy_tests::probe::v1 as pb;

async fn who(
    Valid(_): Valid<pb::WhoRequest>,
    State(()): State<()>,
) -> Result<ConnectResponse<pb::WhoResponse>, ConnectError> {
    Err(ConnectError::new_unimplemented())
}

fn main() {
    let _ = pb::ProbeServiceRoutes::<()>::new().who(who);
}
