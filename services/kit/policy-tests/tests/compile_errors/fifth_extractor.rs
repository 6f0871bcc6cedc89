// Five extractors before the request: four at most.
use axum::extract::State;
use connectrpc_axum::prelude::*;
use shop_kit::Valid;
use shop_kit_policy_tests::probe::v1 as pb;

async fn who(
    State(()): State<()>,
    State(()): State<()>,
    State(()): State<()>,
    State(()): State<()>,
    State(()): State<()>,
    Valid(_): Valid<pb::WhoRequest>,
) -> Result<ConnectResponse<pb::WhoResponse>, ConnectError> {
    Err(ConnectError::new_unimplemented())
}

fn main() {
    let _ = pb::ProbeServiceRoutes::<()>::new().who(who);
}
