//! What the overload run offers the shop, each as a foreign gRPC client
//! would call it (tonic, no retries: every refusal is seen): orders placed,
//! products looked up, the web home through the gateway.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use shop_kit::client::CallExt as _;
use shop_proto::shop::{
    bff::v1::{WebBffServiceGetHomeRequest, web_bff_service_client::WebBffServiceClient},
    catalog::v1::{GetProductRequest, catalog_service_client::CatalogServiceClient},
    orders::v1::{
        CreateOrderRequest, create_order_request::Item, order_service_client::OrderServiceClient,
    },
};
use tonic::{Request, transport::Channel};

use super::load::{Call, Outcome};
use crate::{
    app_suite::{orders::Customer, shop::addr},
    chaos::{
        customers::{PRODUCTS, PlacedOrder},
        session::Session,
    },
};

/// HTTP/2 connections per service: the server takes 256 calls at once on
/// each, the generator may have thousands in flight.
const CONNECTIONS: usize = 32;
/// The product every order buys (the demo stock is made large enough).
pub const PRODUCT: &str = "prod_giftcard";

/// Connections to `service`, used in turn.
async fn channels(service: &str) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        channels.push(
            Channel::from_shared(format!("http://{}", addr(service)))?
                .connect()
                .await
                .with_context(|| format!("connecting to {service}"))?,
        );
    }
    Ok(channels)
}

/// Signs up `count` customers (the app suite's, each with its own
/// connection to orders, unused here).
pub async fn customers(count: usize) -> anyhow::Result<Vec<Customer>> {
    let mut customers = Vec::with_capacity(count);
    for number in 0..count {
        customers.push(Customer::sign_up(number).await?);
    }
    Ok(customers)
}

/// CreateOrder: one gift card, a new key each time; every order the shop
/// acknowledges is kept, for the invariants.
pub struct CreateOrder {
    channels: Vec<Channel>,
    customers: Vec<Customer>,
    /// Each customer's session, as its orders keep it (a run shorter than
    /// a token's life: never renewed).
    sessions: Vec<Session>,
    pub placed: Mutex<Vec<PlacedOrder>>,
}

impl CreateOrder {
    pub async fn new(customers: Vec<Customer>) -> anyhow::Result<Arc<Self>> {
        let sessions = customers
            .iter()
            .map(|customer| Session::fixed(&customer.token))
            .collect();
        Ok(Arc::new(Self {
            channels: channels("orders").await?,
            customers,
            sessions,
            placed: Mutex::default(),
        }))
    }

    /// Every order acknowledged so far.
    pub fn placed(&self) -> Vec<PlacedOrder> {
        self.placed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Call for CreateOrder {
    async fn call(&self, n: u64) -> Outcome {
        let which = n as usize % self.customers.len();
        let customer = &self.customers[which];
        let key = uuid::Uuid::new_v4().to_string();
        let request = Request::new(CreateOrderRequest {
            items: vec![Item {
                product_id: PRODUCT.to_owned(),
                quantity: 1,
            }],
            payment_token: "tok_visa".to_owned(),
            idempotency_key: key.clone(),
        })
        .bearer(&customer.token);
        let channel = self.channels[n as usize % self.channels.len()].clone();
        let answer = OrderServiceClient::new(channel).create_order(request).await;
        let outcome = Outcome::of(&answer);
        if let Ok(answer) = answer
            && let Some(order) = answer.into_inner().order
        {
            self.placed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(PlacedOrder {
                    session: self.sessions[which].clone(),
                    user_id: customer.user_id.clone(),
                    key,
                    id: order.id.clone(),
                    lines: vec![(PRODUCT.to_owned(), 1)],
                    total_minor_units: order.total.as_ref().map_or(0, |t| t.minor_units),
                    cancel_asked: false,
                });
        }
        outcome
    }
}

/// GetProduct of the demo products in turn.
pub struct GetProduct {
    channels: Vec<Channel>,
}

impl GetProduct {
    pub async fn new() -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            channels: channels("catalog").await?,
        }))
    }
}

impl Call for GetProduct {
    async fn call(&self, n: u64) -> Outcome {
        let channel = self.channels[n as usize % self.channels.len()].clone();
        let answer = CatalogServiceClient::new(channel)
            .get_product(GetProductRequest {
                id: PRODUCTS[n as usize % PRODUCTS.len()].to_owned(),
            })
            .await;
        Outcome::of(&answer)
    }
}

/// The web home through the gateway, signed in (account, featured
/// products, latest orders: a fan-out to three services).
pub struct Home {
    channels: Vec<Channel>,
    customers: Vec<Customer>,
}

impl Home {
    pub async fn new(customers: Vec<Customer>) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            channels: channels("gateway").await?,
            customers,
        }))
    }
}

impl Call for Home {
    async fn call(&self, n: u64) -> Outcome {
        let customer = &self.customers[n as usize % self.customers.len()];
        let channel = self.channels[n as usize % self.channels.len()].clone();
        let request =
            Request::new(WebBffServiceGetHomeRequest { featured_count: 4 }).bearer(&customer.token);
        match WebBffServiceClient::new(channel).get_home(request).await {
            Ok(home) if !home.get_ref().degraded.is_empty() => Outcome::Degraded,
            answer => Outcome::of(&answer),
        }
    }
}
