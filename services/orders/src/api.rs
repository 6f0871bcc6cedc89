//! RPC handlers of `shop.orders.v1.OrderService`: every call needs a
//! signed-in customer, who sees and touches only their own orders.

use axum::extract::State;
use connectrpc_axum::prelude::*;
use futures::Stream;
use shop_kit::{
    RpcService, Valid,
    auth::{Caller, Customer},
    rpc::connect_errors::refusal,
};
use shop_proto::shop::{common::v1::Money, orders::v1 as pb};

use crate::{
    AppState,
    domain::{self, CancelReason, Order, OrderStatus},
    error::OrdersError,
};

/// The `google.rpc.ErrorInfo` domain of the order service's refusals.
const DOMAIN: &str = "orders.connect-shop";
/// When a caller turned away as busy may come back: a bulkhead empties in
/// about a call's time, well under a second.
const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl From<OrdersError> for ConnectError {
    fn from(error: OrdersError) -> Self {
        match &error {
            OrdersError::InvalidArgument { .. } => {
                ConnectError::new(Code::InvalidArgument, error.to_string())
            }
            OrdersError::PageTokenNotIssued => refusal(
                Code::InvalidArgument,
                error.to_string(),
                "PAGE_TOKEN_NOT_ISSUED",
                DOMAIN,
            ),
            OrdersError::TooManyOfOneProduct { .. } => refusal(
                Code::InvalidArgument,
                error.to_string(),
                "TOO_MANY_OF_ONE_PRODUCT",
                DOMAIN,
            ),
            OrdersError::NotFound { .. } | OrdersError::UnknownProduct(_) => {
                ConnectError::new(Code::NotFound, error.to_string())
            }
            OrdersError::NotCancellable { .. } => refusal(
                Code::FailedPrecondition,
                error.to_string(),
                "ORDER_NOT_CANCELLABLE",
                DOMAIN,
            ),
            // A key names the order it created (AIP-133's client-assigned
            // id): another order under it already exists.
            OrdersError::KeyReused { .. } => refusal(
                Code::AlreadyExists,
                error.to_string(),
                "IDEMPOTENCY_KEY_REUSED",
                DOMAIN,
            ),
            OrdersError::UnknownPaymentToken(_) => refusal(
                Code::NotFound,
                error.to_string(),
                "UNKNOWN_PAYMENT_TOKEN",
                DOMAIN,
            ),
            // Said as busy, with when to come back: never as the peer
            // being unavailable, which would send retries to a healthy one.
            OrdersError::Busy(_) => {
                shop_kit::rpc::connect_errors::retry_later(error.to_string(), BUSY_RETRY_AFTER)
            }
            OrdersError::Unavailable { .. } => {
                ConnectError::new(Code::Unavailable, error.to_string())
            }
            OrdersError::DeadlinePassed { .. } => {
                ConnectError::new(Code::DeadlineExceeded, error.to_string())
            }
            OrdersError::MalformedEvent(_) | OrdersError::Events(_) => {
                tracing::error!(%error, "orders events error");
                ConnectError::new(Code::Internal, "the orders service failed")
            }
            OrdersError::Storage(failure) => shop_kit::storage_failure("orders", failure),
        }
    }
}

/// An instant (Unix milliseconds) as `google.protobuf.Timestamp`.
fn timestamp(ms: i64) -> Option<shop_proto::wkt::Timestamp> {
    Some(shop_proto::wkt::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    })
}

fn money(currency_code: &str, minor_units: i64) -> Option<Money> {
    Some(Money {
        currency_code: currency_code.to_owned(),
        minor_units,
    })
}

fn to_proto(order: Order) -> pb::Order {
    let status = match order.status {
        OrderStatus::Pending => pb::OrderStatus::Pending,
        OrderStatus::Confirmed => pb::OrderStatus::Confirmed,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
    };
    pb::Order {
        items: order
            .lines
            .iter()
            .map(|line| pb::OrderItem {
                product_id: line.product_id.clone(),
                quantity: line.quantity,
                product_name: line.product_name.clone(),
                unit_price: money(&order.currency_code, line.unit_price_minor_units),
            })
            .collect(),
        total: money(&order.currency_code, order.total_minor_units),
        id: order.id,
        customer_id: order.user_id,
        status: status.into(),
        created_at: timestamp(order.created_at_ms),
        updated_at: timestamp(order.updated_at_ms),
        cancel_reason: order
            .cancellation
            .as_ref()
            .map_or(pb::CancelReason::Unspecified, |c| cancel_reason(c.reason))
            .into(),
        cancel_message: order.cancellation.map(|c| c.message).unwrap_or_default(),
    }
}

fn cancel_reason(reason: CancelReason) -> pb::CancelReason {
    match reason {
        CancelReason::OutOfStock => pb::CancelReason::OutOfStock,
        CancelReason::NotInCatalog => pb::CancelReason::NotInCatalog,
        CancelReason::CardDeclined => pb::CancelReason::CardDeclined,
        CancelReason::PaymentRefused => pb::CancelReason::PaymentRefused,
        CancelReason::CustomerRequest => pb::CancelReason::CustomerRequest,
        CancelReason::TimedOut => pb::CancelReason::TimedOut,
        CancelReason::StockLost => pb::CancelReason::StockLost,
    }
}

/// OrderService: each of its RPCs and the handler that answers it (the
/// builder does not compile without every one).
pub fn order_service(state: AppState) -> RpcService {
    pb::OrderServiceRoutes::new()
        .create_order(create_order)
        .get_order(get_order)
        .list_orders(list_orders)
        .cancel_order(cancel_order)
        .watch_order(watch_order)
        .build(state)
}

pub async fn create_order(
    caller: Customer,
    State(state): State<AppState>,
    Valid(request): Valid<pb::CreateOrderRequest>,
) -> Result<ConnectResponse<pb::CreateOrderResponse>, ConnectError> {
    let lines: Vec<(String, i32)> = request
        .items
        .into_iter()
        .map(|i| (i.product_id, i.quantity))
        .collect();
    let order = state
        .orders
        .create(
            &caller.user_id,
            &request.idempotency_key,
            &lines,
            &request.payment_token,
        )
        .await?;
    Ok(ConnectResponse::new(pb::CreateOrderResponse {
        order: Some(to_proto(order)),
    }))
}

pub async fn get_order(
    caller: Caller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::GetOrderRequest>,
) -> Result<ConnectResponse<pb::GetOrderResponse>, ConnectError> {
    let order_id = domain::order_id(&request.order_id)?;
    let order = state.orders.own(&caller.user_id, order_id).await?;
    Ok(ConnectResponse::new(pb::GetOrderResponse {
        order: Some(to_proto(order)),
    }))
}

pub async fn list_orders(
    caller: Caller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::ListOrdersRequest>,
) -> Result<ConnectResponse<pb::ListOrdersResponse>, ConnectError> {
    let size = domain::page_size(request.page_size)?;
    let after = domain::decode_cursor(&request.page_token)?;
    let (orders, more) = state
        .orders
        .history_page(&caller.user_id, size, after.as_ref())
        .await?;
    let next_page_token = match orders.last() {
        Some(last) if more => domain::encode_cursor(&domain::Cursor {
            created_at_ms: last.created_at_ms,
            id: last.id.clone(),
        }),
        _ => String::new(),
    };
    Ok(ConnectResponse::new(pb::ListOrdersResponse {
        orders: orders.into_iter().map(to_proto).collect(),
        next_page_token,
    }))
}

pub async fn cancel_order(
    caller: Caller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::CancelOrderRequest>,
) -> Result<ConnectResponse<pb::CancelOrderResponse>, ConnectError> {
    let order = state
        .orders
        .cancel(&caller.user_id, domain::order_id(&request.order_id)?)
        .await?;
    Ok(ConnectResponse::new(pb::CancelOrderResponse {
        order: Some(to_proto(order)),
    }))
}

/// A WatchOrder stream that heard nothing this long reads the order again.
const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

type OrderStream = StreamBody<
    std::pin::Pin<Box<dyn Stream<Item = Result<pb::WatchOrderResponse, ConnectError>> + Send>>,
>;

/// The order as it is, then each change, until it is final, the client
/// leaves or the server shuts down.
pub async fn watch_order(
    caller: Caller,
    State(state): State<AppState>,
    Valid(request): Valid<pb::WatchOrderRequest>,
) -> Result<ConnectResponse<OrderStream>, ConnectError> {
    let order_id = domain::order_id(&request.order_id)?;
    // Watch before reading, so no change falls in between.
    let mut watch = state.orders.feed().watch(order_id);
    let current = state.orders.own(&caller.user_id, order_id).await?;
    let shutdown = state.shutdown.clone();
    let (user_id, order_id) = (caller.user_id, current.id.clone());
    let stream = async_stream::stream! {
        // Only newer versions go out: a redelivered or late event is news
        // to nobody.
        let mut last = current.version;
        let done = current.status.is_final();
        yield Ok(pb::WatchOrderResponse { order: Some(to_proto(current)), ..Default::default() });
        if done {
            return;
        }
        loop {
            let order = tokio::select! {
                () = shutdown.requested() => break,
                change = tokio::time::timeout(RECHECK_AFTER, watch.newer_than(last)) => match change {
                    Ok(Some(order)) => Order::clone(&order),
                    Ok(None) => break,
                    // Live events may be lost (over NATS they are at most
                    // once): now and then, read the order as it is.
                    Err(_quiet) => match state.orders.own(&user_id, &order_id).await {
                        Ok(order) if order.version > last => order,
                        Ok(_) => continue,
                        Err(error) => { yield Err(error.into()); break; }
                    },
                },
            };
            last = order.version;
            let done = order.status.is_final();
            yield Ok(pb::WatchOrderResponse { order: Some(to_proto(order)), ..Default::default() });
            if done {
                break;
            }
        }
    };
    Ok(ConnectResponse::new(StreamBody::new(Box::pin(stream))))
}
