//! The orders service's own flags.

use clap::Args;

use super::common::{OrdersDatabase, port};

#[derive(Args, Clone, Debug)]
pub struct OrdersArgs {
    /// Port of the orders service.
    #[arg(id = "orders_port", long = "orders-port", value_name = "PORT", env = "ORDERS_PORT", default_value_t = port::ORDERS)]
    pub port: u16,

    #[command(flatten)]
    pub database: OrdersDatabase,

    /// An order not charged within this many seconds is cancelled (its
    /// stock released, any charge refunded).
    #[arg(long, env = "SHOP_ORDER_DEADLINE_SECS", default_value_t = shop_orders::SagaPolicy::default().deadline.as_secs())]
    pub order_deadline_secs: u64,
}

impl OrdersArgs {
    pub fn saga(&self) -> shop_orders::SagaPolicy {
        shop_orders::SagaPolicy {
            deadline: std::time::Duration::from_secs(self.order_deadline_secs),
            ..shop_orders::SagaPolicy::default()
        }
    }
}
