//! RPC handlers of `shop.catalog.v1.CatalogService` and `StockService`,
//! and the services they make: proto in, domain call, proto out. The same
//! handlers serve Connect, gRPC and gRPC-Web.

use std::collections::HashMap;

use axum::extract::State;
use connectrpc_axum::prelude::*;
use futures::Stream;
use shop_proto::shop::{catalog::v1 as pb, common::v1::Money as PbMoney};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    AppState,
    domain::{self, PageRequest, Product, ReservationStatus},
    error::CatalogError,
    events::StockChanged,
};
use shop_kit::{
    RpcService,
    auth::ServiceCaller,
    rpc::{Valid, connect_errors::refusal},
};

/// The `google.rpc.ErrorInfo` domain of the catalog's refusals.
const DOMAIN: &str = "catalog.connect-shop";

impl From<CatalogError> for ConnectError {
    fn from(error: CatalogError) -> Self {
        match &error {
            CatalogError::InvalidArgument { .. } => {
                ConnectError::new(Code::InvalidArgument, error.to_string())
            }
            CatalogError::PageTokenNotIssued => refusal(
                Code::InvalidArgument,
                error.to_string(),
                "PAGE_TOKEN_NOT_ISSUED",
                DOMAIN,
            ),
            CatalogError::ProductNotFound { .. } => {
                ConnectError::new(Code::NotFound, error.to_string())
            }
            CatalogError::InsufficientStock { .. } => refusal(
                Code::FailedPrecondition,
                error.to_string(),
                "OUT_OF_STOCK",
                DOMAIN,
            ),
            CatalogError::ReservationNotFound { .. } => {
                ConnectError::new(Code::NotFound, error.to_string())
            }
            CatalogError::ReservationSettled { .. } => refusal(
                Code::FailedPrecondition,
                error.to_string(),
                "RESERVATION_SETTLED",
                DOMAIN,
            ),
            CatalogError::DuplicateSku { .. } => refusal(
                Code::AlreadyExists,
                error.to_string(),
                "DUPLICATE_SKU",
                DOMAIN,
            ),
            CatalogError::Storage(failure) => shop_kit::storage_failure("catalog", failure),
        }
    }
}

/// CatalogService: each of its RPCs and the handler that answers it (the
/// builder does not compile without every one).
pub fn catalog_service(state: AppState) -> RpcService {
    pb::CatalogServiceRoutes::new()
        .list_products(list_products)
        .list_categories(list_categories)
        .get_product(get_product)
        .batch_get_products(batch_get_products)
        .watch_stock(watch_stock)
        .build(state)
}

/// StockService, the saga's stock moves, beside CatalogService.
pub fn stock_service(state: AppState) -> RpcService {
    pb::StockServiceRoutes::new()
        .reserve_stock(reserve_stock)
        .release_stock(release_stock)
        .commit_stock(commit_stock)
        .build(state)
}

fn to_proto(product: Product) -> pb::Product {
    pb::Product {
        id: product.id,
        sku: product.sku,
        name: product.name,
        description: product.description,
        price: Some(PbMoney {
            currency_code: product.price.currency_code,
            minor_units: product.price.minor_units,
        }),
        stock_on_hand: product.stock_on_hand,
    }
}

pub async fn list_products(
    State(state): State<AppState>,
    Valid(request): Valid<pb::ListProductsRequest>,
) -> Result<ConnectResponse<pb::ListProductsResponse>, ConnectError> {
    let page = PageRequest::parse(request.page_size, &request.page_token, &request.query)?;
    let (products, more) = state.catalog.store().list(&page).await?;
    let next_page_token = match products.last() {
        Some(last) if more => domain::page_token_after(&last.sku),
        _ => String::new(),
    };
    Ok(ConnectResponse::new(pb::ListProductsResponse {
        products: products.into_iter().map(to_proto).collect(),
        next_page_token,
    }))
}

/// Every category, in the order the shop shows them.
pub async fn list_categories(
    State(state): State<AppState>,
    Valid(_): Valid<pb::ListCategoriesRequest>,
) -> Result<ConnectResponse<pb::ListCategoriesResponse>, ConnectError> {
    let categories = state.catalog.store().categories().await?;
    Ok(ConnectResponse::new(pb::ListCategoriesResponse {
        categories: categories
            .into_iter()
            .map(|category| pb::Category {
                id: category.id,
                name: category.name,
            })
            .collect(),
    }))
}

/// Several products at once, in the order asked, each once.
pub async fn batch_get_products(
    State(state): State<AppState>,
    Valid(request): Valid<pb::BatchGetProductsRequest>,
) -> Result<ConnectResponse<pb::BatchGetProductsResponse>, ConnectError> {
    let ids = domain::product_ids(&request.product_ids)?;
    let mut found = state.catalog.store().get_many(&ids).await?;
    let products = ids
        .into_iter()
        .map(|id| {
            let at = found
                .iter()
                .position(|product| product.id == id)
                .ok_or(CatalogError::ProductNotFound { id })?;
            Ok(to_proto(found.swap_remove(at)))
        })
        .collect::<Result<Vec<_>, CatalogError>>()?;
    Ok(ConnectResponse::new(pb::BatchGetProductsResponse {
        products,
    }))
}

pub async fn get_product(
    State(state): State<AppState>,
    Valid(request): Valid<pb::GetProductRequest>,
) -> Result<ConnectResponse<pb::GetProductResponse>, ConnectError> {
    let id = domain::product_id(&request.id)?;
    let product = state
        .catalog
        .store()
        .get(id)
        .await?
        .ok_or_else(|| CatalogError::ProductNotFound { id: id.to_owned() })?;
    Ok(ConnectResponse::new(pb::GetProductResponse {
        product: Some(to_proto(product)),
    }))
}

type StockStream = StreamBody<
    std::pin::Pin<Box<dyn Stream<Item = Result<pb::WatchStockResponse, ConnectError>> + Send>>,
>;

/// Sends the current stock of each requested product, then every change,
/// until the client leaves or the server shuts down.
pub async fn watch_stock(
    State(state): State<AppState>,
    Valid(request): Valid<pb::WatchStockRequest>,
) -> Result<ConnectResponse<StockStream>, ConnectError> {
    let ids = domain::product_ids(&request.product_ids)?;
    // Subscribe before reading the snapshot so no change falls in between.
    let mut changes = state.catalog.stock_feed().subscribe();
    let snapshot = current_stock(&state, &ids).await?;
    let shutdown = state.shutdown.clone();

    let stream = async_stream::stream! {
        // The stock version each watched product was last sent at: older
        // or repeated news (a redelivered event) is not sent again.
        let mut sent: HashMap<String, i64> = HashMap::new();
        for level in snapshot {
            sent.insert(level.product_id.clone(), level.version);
            yield Ok(to_watch_response(level));
        }
        loop {
            let levels = tokio::select! {
                () = shutdown.requested() => break,
                change = changes.recv() => match change {
                    Ok(change) => vec![change],
                    // Missed some changes: read the current stock again.
                    Err(RecvError::Lagged(_)) => match current_stock(&state, &ids).await {
                        Ok(levels) => levels,
                        Err(error) => { yield Err(error.into()); break; }
                    },
                    Err(RecvError::Closed) => break,
                },
            };
            for level in levels {
                match sent.get_mut(&level.product_id) {
                    Some(version) if *version < level.version => {
                        *version = level.version;
                        yield Ok(to_watch_response(level));
                    }
                    _ => {}
                }
            }
        }
    };
    Ok(ConnectResponse::new(StreamBody::new(Box::pin(stream))))
}

fn to_watch_response(level: StockChanged) -> pb::WatchStockResponse {
    pb::WatchStockResponse {
        product_id: level.product_id,
        stock_on_hand: level.stock_on_hand,
        heartbeat: None,
    }
}

/// The stock of every id, in request order; not_found names the first
/// unknown product.
async fn current_stock(
    state: &AppState,
    ids: &[String],
) -> Result<Vec<StockChanged>, CatalogError> {
    let mut stock = state.catalog.store().stock_of(ids).await?;
    ids.iter()
        .map(|id| {
            stock
                .iter()
                .position(|level| &level.product_id == id)
                .map(|at| stock.swap_remove(at))
                .ok_or_else(|| CatalogError::ProductNotFound { id: id.clone() })
        })
        .collect()
}

fn status_to_proto(status: ReservationStatus) -> i32 {
    let status = match status {
        ReservationStatus::Reserved => pb::ReservationStatus::Reserved,
        ReservationStatus::Released => pb::ReservationStatus::Released,
        ReservationStatus::Committed => pb::ReservationStatus::Committed,
    };
    status.into()
}

/// Stock changes are for the shop's own services (orders), never for a
/// customer calling from a browser.
pub async fn reserve_stock(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::ReserveStockRequest>,
) -> Result<ConnectResponse<pb::ReserveStockResponse>, ConnectError> {
    let lines: Vec<(String, i32)> = request
        .items
        .into_iter()
        .map(|item| (item.product_id, item.quantity))
        .collect();
    let status = state
        .catalog
        .reserve_stock(&request.reservation_id, &lines)
        .await?;
    Ok(ConnectResponse::new(pb::ReserveStockResponse {
        status: status_to_proto(status),
    }))
}

pub async fn release_stock(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::ReleaseStockRequest>,
) -> Result<ConnectResponse<pb::ReleaseStockResponse>, ConnectError> {
    let status = state.catalog.release_stock(&request.reservation_id).await?;
    Ok(ConnectResponse::new(pb::ReleaseStockResponse {
        status: status_to_proto(status),
    }))
}

pub async fn commit_stock(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::CommitStockRequest>,
) -> Result<ConnectResponse<pb::CommitStockResponse>, ConnectError> {
    let status = state.catalog.commit_stock(&request.reservation_id).await?;
    Ok(ConnectResponse::new(pb::CommitStockResponse {
        status: status_to_proto(status),
    }))
}
