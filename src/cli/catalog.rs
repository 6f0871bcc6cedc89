//! The catalog's own flags.

use clap::Args;

use super::common::{CatalogDatabase, port};

#[derive(Args, Clone, Debug)]
pub struct CatalogArgs {
    /// Port of the catalog.
    #[arg(id = "catalog_port", long = "catalog-port", value_name = "PORT", env = "CATALOG_PORT", default_value_t = port::CATALOG)]
    pub port: u16,

    #[command(flatten)]
    pub database: CatalogDatabase,

    /// Stock every demo product starts with (default: each its own, a few
    /// dozen); e.g. 1000000 for a load test.
    #[arg(long, env = "SHOP_DEMO_STOCK", value_parser = clap::value_parser!(i32).range(0..))]
    pub demo_stock: Option<i32>,
}
