// tonic's server of a contract's service, which would serve any
// implementation of its trait: private to the contract's crate.
use shop_kit_policy_tests::probe::v1::probe_service_server::ProbeServiceServer;

fn main() {
    let _ = std::any::type_name::<ProbeServiceServer<()>>();
}
