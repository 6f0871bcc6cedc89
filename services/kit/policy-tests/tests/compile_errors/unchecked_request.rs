// A handler asking for the request unchecked (the library's extractor).
use connectrpc_axum::prelude::*;
use shop_kit_policy_tests::probe::v1 as pb;

async fn who(
    ConnectRequest(_): ConnectRequest<pb::WhoRequest>,
) -> Result<ConnectResponse<pb::WhoResponse>, ConnectError> {
    Err(ConnectError::new_unimplemented())
}

fn main() {
    let _ = pb::ProbeServiceRoutes::<()>::new().who(who);
}
