//! The load: closed loop, `concurrency` customers each placing one order
//! after another (CreateOrder over gRPC through the kit's client, with no
//! retry: every failure is seen) until `orders` have been asked for; then
//! the last order of each followed until its saga is over.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use shop_kit::client::{CallExt, Peer, PeerPolicy, PeerTarget};
use shop_proto::shop::{
    orders::v1::{
        CreateOrderRequest, GetOrderRequest, OrderStatus, create_order_request::Item,
        order_service_client::OrderServiceClient,
    },
    users::v1::{SignUpRequest, user_service_client::UserServiceClient},
};

/// How long a saga may take to finish once the load is over.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// What one round of load saw.
#[derive(Debug, Default)]
pub struct Round {
    pub placed: usize,
    pub elapsed: Duration,
    /// CreateOrder's latency of each placed order, in ms.
    pub latencies_ms: Vec<f64>,
    /// Failed calls by code and message.
    pub failed: BTreeMap<String, usize>,
    /// How long after the last answer the last sagas were over.
    pub settled_after: Duration,
}

impl Round {
    pub fn failed_count(&self) -> usize {
        self.failed.values().sum()
    }
}

/// The customers, signed up, and their way to the orders service.
pub struct Customers {
    orders: Peer,
    tokens: Vec<String>,
}

/// No retry (no method's policy given: only a call that never left is
/// sent again), no shedding below what the load sends at once.
fn policy() -> PeerPolicy {
    PeerPolicy {
        timeout: Duration::from_secs(10),
        max_in_flight: 1024,
        ..PeerPolicy::default()
    }
}

impl Customers {
    /// Signs up `count` customers at `users`, who order at `orders`.
    pub async fn sign_up(
        users: &PeerTarget,
        orders: &PeerTarget,
        count: usize,
    ) -> anyhow::Result<Self> {
        let users = Peer::connect("users", users, policy()).await?;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut tokens = Vec::with_capacity(count);
        for number in 0..count {
            let session = UserServiceClient::new(users.clone())
                .sign_up(SignUpRequest {
                    email: format!("profile-{run}-{number}@example.com"),
                    password: "profile-password-1".to_owned(),
                    display_name: format!("Profile customer {number}"),
                })
                .await
                .context("signing up")?
                .into_inner()
                .session
                .context("no session")?;
            tokens.push(session.access_token);
        }
        Ok(Self {
            orders: Peer::connect("orders", orders, policy()).await?,
            tokens,
        })
    }

    /// `orders` orders, as many at once as there are customers.
    pub async fn order(&self, orders: usize) -> anyhow::Result<Round> {
        let asked = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = self
            .tokens
            .iter()
            .map(|token| {
                let worker = Worker {
                    orders: OrderServiceClient::new(self.orders.clone()),
                    token: token.clone(),
                };
                let asked = asked.clone();
                tokio::spawn(async move { worker.run(&asked, orders).await })
            })
            .collect();
        let mut round = Round::default();
        let mut last = Vec::new();
        for worker in workers {
            let (mine, order) = worker.await?;
            round.placed += mine.placed;
            round.latencies_ms.extend(mine.latencies_ms);
            for (reason, n) in mine.failed {
                *round.failed.entry(reason).or_default() += n;
            }
            last.extend(order);
        }
        round.elapsed = started.elapsed();
        self.settle(&last).await?;
        round.settled_after = started.elapsed() - round.elapsed;
        Ok(round)
    }

    /// Waits until each of `last` (an order id and its customer's token)
    /// is no longer pending: the sagas run in the order they began, so the
    /// work the load asked for is then done.
    async fn settle(&self, last: &[(String, String)]) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETTLE_WITHIN;
        let mut orders = OrderServiceClient::new(self.orders.clone());
        for (id, token) in last {
            loop {
                let order = orders
                    .get_order(
                        tonic::Request::new(GetOrderRequest {
                            order_id: id.clone(),
                        })
                        .bearer(token),
                    )
                    .await
                    .context("GetOrder")?
                    .into_inner()
                    .order
                    .context("no order")?;
                if order.status() != OrderStatus::Pending {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "order {id} still pending {SETTLE_WITHIN:?} after the load"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }
}

struct Worker {
    orders: OrderServiceClient<Peer>,
    token: String,
}

impl Worker {
    /// Orders until `asked` reaches `total`; its round, and its last
    /// order placed (id, token).
    async fn run(mut self, asked: &AtomicUsize, total: usize) -> (Round, Option<(String, String)>) {
        let mut round = Round::default();
        let mut last = None;
        while asked.fetch_add(1, Ordering::Relaxed) < total {
            let request = tonic::Request::new(CreateOrderRequest {
                items: vec![Item {
                    product_id: "prod_giftcard".to_owned(),
                    quantity: 1,
                }],
                payment_token: "tok_visa".to_owned(),
                idempotency_key: uuid::Uuid::new_v4().to_string(),
            })
            .bearer(&self.token);
            let sent = Instant::now();
            match self.orders.create_order(request).await {
                Ok(answer) => {
                    round
                        .latencies_ms
                        .push(sent.elapsed().as_secs_f64() * 1000.0);
                    round.placed += 1;
                    if let Some(order) = answer.into_inner().order {
                        last = Some((order.id, self.token.clone()));
                    }
                }
                Err(status) => {
                    let reason = format!("{:?}: {}", status.code(), status.message());
                    *round.failed.entry(reason).or_default() += 1;
                }
            }
        }
        (round, last)
    }
}
