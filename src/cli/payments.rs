//! The payments service's own flags.

use clap::Args;

use super::common::{PaymentsDatabase, port};

#[derive(Args, Clone, Debug)]
pub struct PaymentsArgs {
    /// Port of the payments service.
    #[arg(id = "payments_port", long = "payments-port", value_name = "PORT", env = "PAYMENTS_PORT", default_value_t = port::PAYMENTS)]
    pub port: u16,

    #[command(flatten)]
    pub database: PaymentsDatabase,
}
