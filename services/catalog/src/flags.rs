//! The catalog as the launcher starts it: its own flags, and its
//! [`Config`] made from them and what the launcher found
//! (`shop_kit::deploy`).

use clap::Args;
use shop_kit::{
    app::BoxError,
    deploy::{Deployable, Given, NoDatabase, Shared, Try},
};

use crate::Config;

/// The catalog's own flags.
#[derive(Args, Clone, Debug)]
pub struct Flags {
    /// Stock every demo product starts with (default: each its own, a few
    /// dozen); e.g. 1000000 for a load test.
    #[arg(long, env = "SHOP_DEMO_STOCK", value_parser = clap::value_parser!(i32).range(0..))]
    pub demo_stock: Option<i32>,
}

impl Deployable for Config {
    const ABOUT: &'static str = "Products and stock.";
    const SHARES: &'static [Shared] = &[Shared::DemoData];
    type Flags = Flags;

    fn configure(flags: Flags, given: Given) -> Result<Self, BoxError> {
        Ok(Self {
            database_url: given.database_url.ok_or(NoDatabase)?,
            demo_data: given.demo_data,
            demo_stock: flags.demo_stock,
            nats: given.nats,
            token_keys: given.token_keys,
        })
    }

    /// A page of products, one product by Connect GET, the same page over
    /// gRPC.
    fn tries(_: &str) -> Vec<Try> {
        vec![
            Try::Post {
                method: "shop.catalog.v1.CatalogService/ListProducts",
                body: r#"{"pageSize": 3}"#.to_owned(),
            },
            Try::Get {
                method: "shop.catalog.v1.CatalogService/GetProduct",
                message: r#"{"id":"prod_mug"}"#,
            },
            Try::Grpc {
                method: "shop.catalog.v1.CatalogService/ListProducts",
            },
        ]
    }
}
