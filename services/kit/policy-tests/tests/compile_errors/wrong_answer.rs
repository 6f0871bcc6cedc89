// A handler answering the bare message.
use shop_kit::Valid;
use shop_kit_policy_tests::probe::v1 as pb;

async fn who(Valid(_): Valid<pb::WhoRequest>) -> pb::WhoResponse {
    pb::WhoResponse::default()
}

fn main() {
    let _ = pb::ProbeServiceRoutes::<()>::new().who(who);
}
