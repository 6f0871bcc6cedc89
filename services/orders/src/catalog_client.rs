//! The catalog as the orders service sees it: product names and prices,
//! over gRPC. Its errors are translated at this boundary: an unknown
//! product is the caller's invalid argument, anything else means the
//! catalog is unavailable (details are logged, not returned).

use std::time::Duration;

use shop_proto::shop::catalog::v1::{
    GetProductRequest, catalog_service_client::CatalogServiceClient,
};
use tonic::transport::Channel;

use crate::{domain::Priced, error::OrdersError};

const CALL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct Catalog {
    client: CatalogServiceClient<Channel>,
}

impl Catalog {
    /// A client for the catalog at `url`; connects on first use.
    pub fn new(url: &str) -> Result<Self, OrdersError> {
        let channel = Channel::from_shared(url.to_owned())
            .map_err(|e| OrdersError::invalid("catalog_url", e.to_string()))?
            .connect_timeout(CALL_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        Ok(Self {
            client: CatalogServiceClient::new(channel),
        })
    }

    /// Names and prices of `product_ids`, in order, fetched in parallel.
    pub async fn prices(&self, product_ids: &[String]) -> Result<Vec<Priced>, OrdersError> {
        let lookups = product_ids.iter().map(|id| {
            let mut client = self.client.clone();
            async move {
                match client.get_product(GetProductRequest { id: id.clone() }).await {
                    Ok(answer) => answer.into_inner().product.map(|p| {
                        let price = p.price.unwrap_or_default();
                        Priced { name: p.name, currency_code: price.currency_code, minor_units: price.minor_units }
                    }).ok_or(OrdersError::Unavailable { service: "catalog" }),
                    Err(status) if status.code() == tonic::Code::NotFound => Err(OrdersError::invalid(
                        "items.product_id",
                        format!("no product {id:?} in the catalog"),
                    )),
                    Err(status) => {
                        tracing::warn!(code = ?status.code(), message = status.message(), "catalog call failed");
                        Err(OrdersError::Unavailable { service: "catalog" })
                    }
                }
            }
        });
        futures::future::join_all(lookups)
            .await
            .into_iter()
            .collect()
    }
}
