// A client-streaming handler asking for one checked request, not the stream.
use connectrpc_axum::prelude::*;
use shop_kit::Valid;
use shop_kit_policy_tests::probe::v1 as pb;

async fn tally(
    Valid(_): Valid<pb::TallyRequest>,
) -> Result<ConnectResponse<pb::TallyResponse>, ConnectError> {
    Err(ConnectError::new_unimplemented())
}

fn main() {
    let _ = pb::ProbeServiceRoutes::<()>::new().tally(tally);
}
