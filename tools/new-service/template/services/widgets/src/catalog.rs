//! The catalog, as widgets calls it: whether a product exists. Its
//! contract declares the call (`kit.policy.v1.deployment` in widgets.proto), so
//! the launcher gives it the catalog (`--catalog-url` where it runs alone)
//! and the manifests let it through. The client is tonic's, generated from
//! the catalog's contract, on the kit's client stack: the catalog's own
//! policy for GetProduct (its deadline, hedging), and what is left of the
//! caller's deadline.

use shop_kit::client::Peer;
use shop_proto::shop::catalog::v1::{
    GetProductRequest, catalog_service_client::CatalogServiceClient,
};

use crate::error::WidgetsError;

#[derive(Clone, Debug)]
pub struct Catalog {
    peer: Peer,
    products: CatalogServiceClient<Peer>,
}

impl Catalog {
    pub fn new(catalog: Peer) -> Self {
        Self {
            products: CatalogServiceClient::new(catalog.clone()),
            peer: catalog,
        }
    }

    /// The catalog as the kit's client stack reaches it (whether it has an
    /// endpoint that serves).
    pub fn peer(&self) -> Peer {
        self.peer.clone()
    }

    /// Refuses a product the catalog does not have.
    pub async fn check_product(&self, id: &str) -> Result<(), WidgetsError> {
        let request = GetProductRequest { id: id.to_owned() };
        match self.products.clone().get_product(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(WidgetsError::NoSuchProduct { id: id.to_owned() })
            }
            Err(status) => Err(WidgetsError::Catalog(status)),
        }
    }
}
