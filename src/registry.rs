//! Every service the launcher starts, the shop's first five and those
//! `just new-service` adds alike: one line each, naming its crate and its
//! contract's description. From that line it has its flags (`--NAME-port`,
//! `--NAME-database-url` when it keeps a database, `--PEER-url` for each
//! peer its contract declares, its crate's own), its place in the whole
//! shop and the banner, `shop serve NAME` and `shop migrate NAME`
//! (docs/new-service.md).

use crate::registered::{Registered, service};

/// Each service, in the order the whole shop starts them: each after the
/// services it calls, so that it finds them serving.
pub const SERVICES: &[Registered] = &[
    service!(shop_users, USERS, migrated),
    service!(shop_catalog, CATALOG, migrated),
    service!(shop_payments, PAYMENTS, migrated),
    service!(shop_orders, ORDERS, migrated),
    service!(shop_gateway, GATEWAY),
    // just new-service adds each new service above this line.
];

/// The registry's service called `name`.
pub fn named(name: &str) -> Option<&'static Registered> {
    SERVICES.iter().find(|service| service.name() == name)
}

#[cfg(test)]
mod tests {
    use super::SERVICES;

    /// The registry and the contract describe the same services: every
    /// service of the contract is started, one with a database has its
    /// schema, and each comes after the services it calls.
    #[test]
    fn every_service_of_the_contract_is_registered_after_its_peers() {
        let names: Vec<&str> = SERVICES.iter().map(|service| service.name()).collect();
        let mut contract = shop_proto::identity::SERVICES.to_vec();
        let mut registered = names.clone();
        contract.sort_unstable();
        registered.sort_unstable();
        assert_eq!(registered, contract);
        for (at, service) in SERVICES.iter().enumerate() {
            assert_eq!(
                service.migrate.is_some(),
                service.deployed.database,
                "{}: a schema exactly when its contract declares a database (`migrated`)",
                service.name()
            );
            for peer in service.deployed.calls {
                let peer_at = names.iter().position(|name| name == peer);
                assert!(
                    peer_at.is_some_and(|peer_at| peer_at < at),
                    "{} calls {peer}, which must come before it",
                    service.name()
                );
            }
        }
        assert_eq!(
            SERVICES
                .iter()
                .filter(|service| service.serves_web_app)
                .count(),
            1,
            "one service serves the web app"
        );
    }

    /// What the banner offers a newcomer to try calls methods of the
    /// contract, a Connect GET only of one that has no side effects; at
    /// most one service makes a demo account.
    #[test]
    fn every_call_the_banner_offers_is_a_method_of_the_contract() {
        use prost_reflect::{DescriptorPool, Value};
        use shop_kit::deploy::Try;

        let pool = DescriptorPool::decode(shop_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let (mut offered, mut demo_accounts) = (0, 0);
        for service in SERVICES {
            for one in (service.tries)("demo account") {
                let (path, get) = match &one {
                    Try::Post { method, .. } | Try::Grpc { method } => (*method, false),
                    Try::Get { method, .. } => (*method, true),
                };
                let (rpc_service, name) = path.split_once('/').expect("SERVICE/METHOD");
                let method = pool
                    .get_service_by_name(rpc_service)
                    .and_then(|found| found.methods().find(|method| method.name() == name))
                    .unwrap_or_else(|| panic!("{path}: no method of the contract"));
                if get {
                    let options = method.options();
                    let level = options.get_field_by_name("idempotency_level");
                    assert!(
                        matches!(level.as_deref(), Some(Value::EnumNumber(1))),
                        "{path}: Connect GET only for a method with no side effects"
                    );
                }
                offered += 1;
            }
            demo_accounts += usize::from((service.demo_account)("demo account").is_some());
        }
        assert!(offered >= 5, "{offered} calls offered");
        assert_eq!(demo_accounts, 1);
    }
}
