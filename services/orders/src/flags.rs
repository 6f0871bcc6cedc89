//! The orders service as the launcher starts it: its own flags, and its
//! [`Config`] made from them and what the launcher found
//! (`shop_kit::deploy`).

use clap::Args;
use shop_kit::{
    app::BoxError,
    deploy::{Deployable, Given, NoDatabase, Shared},
};

use crate::{Config, Peers, SagaPolicy};

/// The orders service's own flags.
#[derive(Args, Clone, Debug)]
pub struct Flags {
    /// An order not charged within this many seconds is cancelled (its
    /// stock released, any charge refunded).
    #[arg(long, env = "SHOP_ORDER_DEADLINE_SECS", default_value_t = SagaPolicy::default().deadline.as_secs())]
    pub order_deadline_secs: u64,
}

impl Deployable for Config {
    const ABOUT: &'static str = "Orders and the saga that reserves, charges and confirms them.";
    const SHARES: &'static [Shared] = &[Shared::ServiceSecret];
    type Flags = Flags;

    /// Its peers are its contract's (users for its service token, the
    /// catalog and payments for the saga), each with the service secret.
    fn configure(flags: Flags, given: Given) -> Result<Self, BoxError> {
        let peers = &given.peers;
        Ok(Self {
            database_url: given.database_url.ok_or(NoDatabase)?,
            peers: Peers {
                users: peers.target("users")?.clone(),
                catalog: peers.target("catalog")?.clone(),
                payments: peers.target("payments")?.clone(),
                service_secret: given.service_secret,
                calls: peers.policy().calls.clone(),
            },
            nats: given.nats,
            saga: SagaPolicy {
                deadline: std::time::Duration::from_secs(flags.order_deadline_secs),
                ..SagaPolicy::default()
            },
            token_keys: given.token_keys,
        })
    }
}
