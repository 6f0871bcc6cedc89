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
}
