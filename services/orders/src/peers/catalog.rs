//! The catalog as orders sees it: product names and prices for pricing an
//! order, and the saga's stock steps (reserve, commit, release, all keyed by
//! the order id so a repeat is harmless), through the kit's client stack
//! (orders' service token on every call).

use shop_kit::client::{CallContext, Peer, PeerFailure, busy_message};
use shop_proto::shop::catalog::v1::{
    BatchGetProductsRequest, CommitStockRequest, Product, ReleaseStockRequest, ReservationStatus,
    ReserveStockRequest, StockItem, catalog_service_client::CatalogServiceClient,
    stock_service_client::StockServiceClient,
};
use tokio::time::Instant;
use tonic::Code;

use super::unavailable;
use crate::{
    domain::{CancelReason, Cancellation, Order, Priced, saga::Outcome},
    error::OrdersError,
};

const PEER: &str = "catalog";

/// The catalog's public CatalogService (pricing) and internal
/// StockService (the saga's steps), on the same endpoints.
#[derive(Clone, Debug)]
pub struct Catalog {
    peer: Peer,
}

impl Catalog {
    pub fn new(peer: Peer) -> Self {
        Self { peer }
    }

    /// Names and prices of `product_ids` (distinct), in order: one call,
    /// whatever the number of lines. An unknown product is not_found (the
    /// catalog's words name it); anything else means the catalog is
    /// unavailable (details are logged), or the caller's deadline passed.
    pub async fn prices(&self, product_ids: &[String]) -> Result<Vec<Priced>, OrdersError> {
        let lookup = BatchGetProductsRequest {
            product_ids: product_ids.to_vec(),
        };
        let deadline = CallContext::deadline();
        let answer = CatalogServiceClient::new(self.peer.clone())
            .batch_get_products(lookup)
            .await;
        let status = match answer {
            Ok(answer) => return priced(answer.into_inner().products, product_ids),
            Err(status) => status,
        };
        // The kit's one ladder, read as pricing needs it.
        let failure = PeerFailure::of(&status);
        Err(match failure {
            PeerFailure::Answered(Code::NotFound) => {
                OrdersError::UnknownProduct(status.message().to_owned())
            }
            PeerFailure::Shed | PeerFailure::Overloaded => {
                OrdersError::Busy(busy_message(PEER, &status).unwrap_or_default())
            }
            // Only the caller's own deadline passing is the caller's doing:
            // a catalog that did not answer within its method's time, with
            // the caller's time left, is unavailable (try again).
            _ if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
                tracing::debug!(code = ?status.code(), "the caller's deadline passed asking the catalog");
                OrdersError::DeadlinePassed { service: PEER }
            }
            _ => {
                if shop_kit::client::was_not_sent(&status) {
                    tracing::debug!(message = status.message(), "catalog call not sent");
                } else {
                    tracing::warn!(code = ?status.code(), message = status.message(), "catalog call failed");
                }
                OrdersError::Unavailable { service: PEER }
            }
        })
    }

    /// The internal StockService, on the same endpoints.
    fn stock(&self) -> StockServiceClient<Peer> {
        StockServiceClient::new(self.peer.clone())
    }

    /// Sets the order's stock aside (reservation id = order id).
    pub async fn reserve(&self, order: &Order) -> Outcome {
        let reserve = ReserveStockRequest {
            reservation_id: order.id.clone(),
            items: order
                .lines
                .iter()
                .map(|line| StockItem {
                    product_id: line.product_id.clone(),
                    quantity: line.quantity,
                })
                .collect(),
        };
        let answer = self.stock().reserve_stock(reserve).await;
        match answer {
            Ok(answer) if answer.get_ref().status() == ReservationStatus::Reserved => Outcome::Done,
            Ok(_) => Outcome::Refused(Cancellation::new(
                CancelReason::StockLost,
                "the stock reservation was released",
            )),
            Err(status) => match status.code() {
                Code::FailedPrecondition => Outcome::Refused(Cancellation::new(
                    CancelReason::OutOfStock,
                    format!("out of stock: {}", status.message()),
                )),
                Code::NotFound => Outcome::Refused(Cancellation::new(
                    CancelReason::NotInCatalog,
                    format!("no longer in the catalog: {}", status.message()),
                )),
                _ => unavailable(PEER, &status),
            },
        }
    }

    /// Turns the order's reservation into a sale.
    pub async fn commit(&self, order: &Order) -> Outcome {
        let commit = CommitStockRequest {
            reservation_id: order.id.clone(),
        };
        let answer = self.stock().commit_stock(commit).await;
        match answer {
            Ok(_) => Outcome::Done,
            Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::NotFound) => {
                tracing::error!(order = %order.id, message = status.message(), "reservation lost before commit");
                Outcome::Refused(Cancellation::new(
                    CancelReason::StockLost,
                    "the stock set aside for it was lost",
                ))
            }
            Err(status) => unavailable(PEER, &status),
        }
    }

    /// Puts the order's stock back (or makes sure it is never taken).
    pub async fn release(&self, order: &Order) -> Outcome {
        let release = ReleaseStockRequest {
            reservation_id: order.id.clone(),
        };
        let answer = self.stock().release_stock(release).await;
        match answer {
            Ok(_) => Outcome::Done,
            Err(status) if status.code() == Code::FailedPrecondition => {
                tracing::error!(order = %order.id, message = status.message(), "release refused: the stock was sold");
                Outcome::Refused(Cancellation::new(CancelReason::StockLost, status.message()))
            }
            Err(status) => unavailable(PEER, &status),
        }
    }
}

/// The catalog's products as the prices of `product_ids`, in their order:
/// anything else is a catalog that answered wrong.
fn priced(products: Vec<Product>, product_ids: &[String]) -> Result<Vec<Priced>, OrdersError> {
    if products.len() != product_ids.len()
        || products.iter().zip(product_ids).any(|(p, id)| &p.id != id)
    {
        tracing::error!("the catalog answered other products than asked");
        return Err(OrdersError::Unavailable { service: PEER });
    }
    products
        .into_iter()
        .map(|product| {
            let price = product
                .price
                .ok_or(OrdersError::Unavailable { service: PEER })?;
            Ok(Priced {
                name: product.name,
                currency_code: price.currency_code,
                minor_units: price.minor_units,
            })
        })
        .collect()
}
