//! RPC handlers of `shop.widgets.v1.WidgetService`. Each takes a checked
//! request (`Valid`: the contract's rules hold) and its caller (`Customer`:
//! a signed-in customer, as the contract's caller rule says), and answers
//! with the customer's own widgets only.

use axum::extract::State;
use connectrpc_axum::prelude::*;
use shop_kit::{RpcService, Valid, auth::Customer, rpc::connect_errors::refusal};
use shop_proto::shop::widgets::v1 as pb;
use tokio::sync::broadcast::error::RecvError;

use crate::{
    AppState,
    domain::{Cursor, NewWidget, Page, Widget},
    error::WidgetsError,
};

/// The `google.rpc.ErrorInfo` domain of the widget service's refusals.
const DOMAIN: &str = "widgets.connect-shop";

impl From<WidgetsError> for ConnectError {
    fn from(error: WidgetsError) -> Self {
        match &error {
            WidgetsError::InvalidArgument { .. } => {
                ConnectError::new(Code::InvalidArgument, error.to_string())
            }
            WidgetsError::PageTokenNotIssued => refusal(
                Code::InvalidArgument,
                error.to_string(),
                "PAGE_TOKEN_NOT_ISSUED",
                DOMAIN,
            ),
            WidgetsError::RequestIdReused => refusal(
                Code::AlreadyExists,
                error.to_string(),
                "REQUEST_ID_REUSED",
                DOMAIN,
            ),
            WidgetsError::NotFound { .. } => ConnectError::new(Code::NotFound, error.to_string()),
            WidgetsError::NoSuchProduct { .. } => refusal(
                Code::FailedPrecondition,
                error.to_string(),
                "NO_SUCH_PRODUCT",
                DOMAIN,
            ),
            WidgetsError::Catalog(status) => {
                ConnectError::from(shop_kit::client::translate("catalog", status, |_| None))
            }
            WidgetsError::Storage(failure) => shop_kit::storage_failure("widgets", failure),
        }
    }
}

/// WidgetService: each of its RPCs and the handler that answers it. The
/// builder does not compile without every one; run `just new-service
/// widgets` again after adding an RPC to the contract, and it adds the
/// RPC's line here and a stub of its handler below (never touching one
/// that is written).
pub fn widget_service(state: AppState) -> RpcService {
    pb::WidgetServiceRoutes::new()
        .create_widget(create_widget)
        .get_widget(get_widget)
        .list_widgets(list_widgets)
        .watch_widgets(watch_widgets)
        .build(state)
}

fn to_proto(widget: Widget) -> pb::Widget {
    pb::Widget {
        id: widget.id,
        customer_id: widget.customer_id,
        title: widget.title,
        description: widget.description,
        product_id: widget.product_id,
        create_time: Some(shop_proto::wkt::Timestamp {
            seconds: widget.created_at_ms.div_euclid(1000),
            nanos: i32::try_from(widget.created_at_ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
        }),
    }
}

pub async fn create_widget(
    customer: Customer,
    State(state): State<AppState>,
    Valid(request): Valid<pb::CreateWidgetRequest>,
) -> Result<ConnectResponse<pb::CreateWidgetResponse>, ConnectError> {
    let widget = state
        .widgets
        .create(NewWidget {
            customer_id: customer.user_id,
            request_id: request.request_id,
            title: request.title,
            description: request.description,
            product_id: request.product_id,
        })
        .await?;
    Ok(ConnectResponse::new(pb::CreateWidgetResponse {
        widget: Some(to_proto(widget)),
    }))
}

pub async fn get_widget(
    customer: Customer,
    State(state): State<AppState>,
    Valid(request): Valid<pb::GetWidgetRequest>,
) -> Result<ConnectResponse<pb::GetWidgetResponse>, ConnectError> {
    let widget = state
        .widgets
        .own(&customer.user_id, &request.widget_id)
        .await?;
    Ok(ConnectResponse::new(pb::GetWidgetResponse {
        widget: Some(to_proto(widget)),
    }))
}

pub async fn list_widgets(
    customer: Customer,
    State(state): State<AppState>,
    Valid(request): Valid<pb::ListWidgetsRequest>,
) -> Result<ConnectResponse<pb::ListWidgetsResponse>, ConnectError> {
    let page = Page::parse(request.page_size, &request.page_token)?;
    let (widgets, more) = state.widgets.page(&customer.user_id, &page).await?;
    let next_page_token = match widgets.last() {
        Some(last) if more => Cursor::after(last).encode(),
        _ => String::new(),
    };
    Ok(ConnectResponse::new(pb::ListWidgetsResponse {
        widgets: widgets.into_iter().map(to_proto).collect(),
        next_page_token,
    }))
}

type WidgetStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<pb::WatchWidgetsResponse, ConnectError>> + Send>,
>;

pub async fn watch_widgets(
    customer: Customer,
    State(state): State<AppState>,
    Valid(_request): Valid<pb::WatchWidgetsRequest>,
) -> Result<ConnectResponse<StreamBody<WidgetStream>>, ConnectError> {
    let mut created = state.widgets.feed().watch();
    let shutdown = state.widgets.shutdown.clone();
    let stream = async_stream::stream! {
        loop {
            let widget = tokio::select! {
                () = shutdown.requested() => break,
                next = created.recv() => match next {
                    Ok(widget) => widget,
                    // A watcher that fell behind skips what it missed:
                    // ListWidgets has every widget.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                },
            };
            if widget.customer_id == customer.user_id {
                yield Ok(pb::WatchWidgetsResponse { widget: Some(to_proto(widget)), ..Default::default() });
            }
        }
    };
    let stream: WidgetStream = Box::pin(stream);
    Ok(ConnectResponse::new(StreamBody::new(stream)))
}
