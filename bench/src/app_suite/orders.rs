//! Orders end to end: each worker signs in as its own customer, places an
//! order (CreateOrder over gRPC) and follows it (WatchOrder) until it is
//! confirmed: the whole saga across orders, catalog and payments, persisted.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shop_proto::shop::{
    orders::v1::{
        CreateOrderRequest, OrderStatus, WatchOrderRequest, create_order_request::Item,
        order_service_client::OrderServiceClient,
    },
    users::v1::{SignUpRequest, user_service_client::UserServiceClient},
};
use tonic::{Request, transport::Channel};

use super::shop;

/// A signed-in customer with a connection of its own to the orders service.
#[derive(Clone)]
pub struct Customer {
    pub token: String,
    pub user_id: String,
    orders: OrderServiceClient<Channel>,
}

impl Customer {
    /// Signs up a new customer.
    pub async fn sign_up(number: usize) -> anyhow::Result<Self> {
        let mut users =
            UserServiceClient::connect(format!("http://{}", shop::addr("users"))).await?;
        let signed_up = users
            .sign_up(SignUpRequest {
                email: format!(
                    "bench-{}-{number}@example.com",
                    uuid::Uuid::new_v4().simple()
                ),
                password: "benchmark-password-1".to_owned(),
                display_name: format!("Bench customer {number}"),
            })
            .await
            .context("signing up")?
            .into_inner();
        let session = signed_up.session.context("no session")?;
        let user = signed_up.user.context("no user")?;
        let orders =
            OrderServiceClient::connect(format!("http://{}", shop::addr("orders"))).await?;
        Ok(Self {
            token: session.access_token,
            user_id: user.id,
            orders,
        })
    }

    fn request<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        Ok(request)
    }

    /// Places one order for one gift card and waits until it is final;
    /// returns whether it was confirmed.
    pub async fn place_order(&mut self) -> anyhow::Result<bool> {
        let created = self
            .orders
            .create_order(self.request(CreateOrderRequest {
                items: vec![Item {
                    product_id: "prod_giftcard".to_owned(),
                    quantity: 1,
                }],
                payment_token: "tok_visa".to_owned(),
                idempotency_key: uuid::Uuid::new_v4().to_string(),
            })?)
            .await
            .context("CreateOrder")?
            .into_inner()
            .order
            .context("CreateOrder answered no order")?;
        let mut updates = self
            .orders
            .watch_order(self.request(WatchOrderRequest {
                order_id: created.id.clone(),
            })?)
            .await
            .context("WatchOrder")?
            .into_inner();
        while let Some(update) = updates.message().await.context("WatchOrder stream")? {
            match update.order.map(|o| o.status()) {
                Some(OrderStatus::Confirmed) => return Ok(true),
                Some(OrderStatus::Cancelled) => return Ok(false),
                _ => {}
            }
        }
        bail!("WatchOrder ended before order {} was final", created.id)
    }
}

/// What one timed run of orders gave.
pub struct OrderRun {
    pub latencies_us: Vec<f64>,
    /// Every order finished, warm-up included (for CPU per order).
    pub placed: u64,
    pub confirmed: u64,
    pub cancelled: u64,
    pub elapsed: Duration,
}

/// Every customer places orders back to back for `warm_up` (not counted),
/// then for `duration`.
pub async fn run(
    customers: &[Customer],
    warm_up: Duration,
    duration: Duration,
) -> anyhow::Result<OrderRun> {
    let start = Instant::now();
    let measure_from = start + warm_up;
    let end = measure_from + duration;
    let mut workers = tokio::task::JoinSet::new();
    for customer in customers {
        let mut customer = customer.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let (mut confirmed, mut cancelled, mut placed) = (0u64, 0u64, 0u64);
            while Instant::now() < end {
                let began = Instant::now();
                let ok = customer.place_order().await?;
                let finished = Instant::now();
                placed += 1;
                if finished >= measure_from && finished <= end {
                    latencies.push((finished - began).as_secs_f64() * 1e6);
                    if ok {
                        confirmed += 1;
                    } else {
                        cancelled += 1;
                    }
                }
            }
            anyhow::Ok((latencies, confirmed, cancelled, placed))
        });
    }
    let mut run = OrderRun {
        latencies_us: Vec::new(),
        placed: 0,
        confirmed: 0,
        cancelled: 0,
        elapsed: duration,
    };
    while let Some(worker) = workers.join_next().await {
        let (latencies, confirmed, cancelled, placed) = worker??;
        run.placed += placed;
        run.latencies_us.extend(latencies);
        run.confirmed += confirmed;
        run.cancelled += cancelled;
    }
    Ok(run)
}
