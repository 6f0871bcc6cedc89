//! The services the launcher starts alike: each needs only what every
//! service with a database of its own is started with
//! (`shop_kit::app::Basics`), so its one line here gives it its flags
//! (`--NAME-port`, `--NAME-database-url`, and NAME_PORT,
//! NAME_DATABASE_URL), its place in the whole shop and the banner, `shop
//! serve NAME` and `shop migrate NAME`. `just new-service` writes the line
//! (docs/new-service.md); the shop's first services, whose peers and flags
//! are their own, are started by `plan`.

use crate::added::Added;

/// Each service: its crate, its name, and its port's constant (the port
/// itself is its contract's, `kit.policy.v1.deployment`).
pub const ADDED: &[Added] = &[
    // just new-service adds each new service above this line.
];

/// The registry's service called `name`.
pub fn named(name: &str) -> Option<&'static Added> {
    ADDED.iter().find(|added| added.name == name)
}
