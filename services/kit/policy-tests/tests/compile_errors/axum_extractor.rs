// An axum extractor that refuses with no Connect error.
use std::collections::HashMap;

use axum::extract::Query;
use connectrpc_axum::prelude::*;
use shop_kit::Valid;
use shop_kit_policy_tests::probe::v1 as pb;

async fn who(
    Query(_): Query<HashMap<String, String>>,
    Valid(_): Valid<pb::WhoRequest>,
) -> Result<ConnectResponse<pb::WhoResponse>, ConnectError> {
    Err(ConnectError::new_unimplemented())
}

fn main() {
    let _ = pb::ProbeServiceRoutes::<()>::new().who(who);
}
