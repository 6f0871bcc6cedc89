//! The customers of a chaos run: each signs up, then places orders back to
//! back over gRPC (one to three demo products, mostly paid by a good card,
//! some declined), retrying a failed CreateOrder with the same idempotency
//! key until the shop answers, sometimes sending it twice, sometimes
//! cancelling at once. What they were told is the ledger the invariants
//! are checked against.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use shop_proto::shop::{
    orders::v1::{
        CancelOrderRequest, CreateOrderRequest, GetOrderRequest, Order, OrderStatus,
        create_order_request::Item, order_service_client::OrderServiceClient,
    },
    users::v1::{SignUpRequest, user_service_client::UserServiceClient},
};
use tokio::task::JoinSet;
use tonic::{Code, Request, transport::Channel};

use crate::app_suite::shop::addr;

/// The demo catalog's products.
pub const PRODUCTS: [&str; 12] = [
    "prod_espresso",
    "prod_filter",
    "prod_decaf",
    "prod_grinder",
    "prod_kettle",
    "prod_dripper",
    "prod_filters",
    "prod_mug",
    "prod_scale",
    "prod_tamper",
    "prod_milk_jug",
    "prod_giftcard",
];

/// A call that gets no answer by then is tried again.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// CancelOrder waits up to 5 s for the saga to turn back.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(8);
/// After the run, a customer still without an answer gives up then.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// An order the shop acknowledged.
#[derive(Clone, Debug)]
pub struct PlacedOrder {
    pub token: String,
    pub user_id: String,
    pub key: String,
    pub id: String,
    /// (product, quantity), as asked.
    pub lines: Vec<(String, i32)>,
    pub total_minor_units: i64,
    pub cancel_asked: bool,
}

/// What the customers did and were told.
#[derive(Debug, Default)]
pub struct Placed {
    pub orders: Vec<PlacedOrder>,
    /// (customer's user id, key) of orders never acknowledged: the shop may
    /// hold them or not.
    pub unanswered: Vec<(String, String)>,
    pub retried_calls: u64,
    pub double_sends: u64,
    pub cancels_asked: u64,
    /// Answers that break a promise (a repeat answered with another order,
    /// a code no customer should get): violations.
    pub broken_promises: Vec<String>,
}

impl Placed {
    pub fn summary(&self) -> String {
        format!(
            "customers: {} orders acknowledged, {} never answered, {} calls retried, \
             {} sent twice, {} cancels asked",
            self.orders.len(),
            self.unanswered.len(),
            self.retried_calls,
            self.double_sends,
            self.cancels_asked
        )
    }

    fn absorb(&mut self, other: Placed) {
        self.orders.extend(other.orders);
        self.unanswered.extend(other.unanswered);
        self.retried_calls += other.retried_calls;
        self.double_sends += other.double_sends;
        self.cancels_asked += other.cancels_asked;
        self.broken_promises.extend(other.broken_promises);
    }
}

/// The customers at work.
pub struct Crowd {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<anyhow::Result<Placed>>,
}

impl Crowd {
    /// Signs up `count` customers and sets them to work.
    pub async fn start(count: usize, seed: u64) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for number in 0..count {
            let customer = Customer::sign_up(number, seed).await?;
            tasks.spawn(customer.shop(stop.clone()));
        }
        Ok(Self { stop, tasks })
    }

    /// Asks them to stop placing new orders and waits until every order
    /// under way has its answer (or its customer gave up).
    pub async fn finish(mut self) -> anyhow::Result<Placed> {
        self.stop.store(true, Ordering::Relaxed);
        let mut placed = Placed::default();
        while let Some(customer) = self.tasks.join_next().await {
            placed.absorb(customer??);
        }
        Ok(placed)
    }
}

struct Customer {
    number: usize,
    token: String,
    user_id: String,
    orders: OrderServiceClient<Channel>,
    rng: StdRng,
}

fn channel(service: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{}", addr(service)))?
        .connect_timeout(Duration::from_secs(1))
        .connect_lazy())
}

impl Customer {
    async fn sign_up(number: usize, seed: u64) -> anyhow::Result<Self> {
        let mut users = UserServiceClient::new(channel("users")?);
        let session = users
            .sign_up(SignUpRequest {
                email: format!("chaos-{seed}-{number}@example.com"),
                password: "chaos-password-1".to_owned(),
                display_name: format!("Chaos customer {number}"),
            })
            .await
            .context("signing up")?
            .into_inner()
            .session
            .context("no session")?;
        Ok(Self {
            number,
            token: session.access_token,
            user_id: String::new(),
            orders: OrderServiceClient::new(channel("orders")?),
            rng: StdRng::seed_from_u64(seed.wrapping_add(number as u64)),
        })
    }

    fn request<T>(&self, message: T, timeout: Duration) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        request.set_timeout(timeout);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        Ok(request)
    }

    async fn shop(mut self, stop: Arc<AtomicBool>) -> anyhow::Result<Placed> {
        let mut placed = Placed::default();
        let mut number = 0u64;
        while !stop.load(Ordering::Relaxed) {
            number += 1;
            let key = format!("chaos-{}-{number}", self.number);
            let create = self.next_order(&key);
            let lines: Vec<(String, i32)> = create
                .items
                .iter()
                .map(|item| (item.product_id.clone(), item.quantity))
                .collect();
            let Some(order) = self.place(&create, &stop, &mut placed).await? else {
                placed.unanswered.push((self.user_id.clone(), key));
                continue;
            };
            if self.user_id.is_empty() {
                self.user_id = order.customer_id.clone();
            }
            if self.rng.gen_bool(0.1) {
                placed.double_sends += 1;
                if let Some(again) = self.place(&create, &stop, &mut placed).await?
                    && again.id != order.id
                {
                    placed.broken_promises.push(format!(
                        "key {key} placed {} and then {}",
                        order.id, again.id
                    ));
                }
            }
            let cancel_asked = self.rng.gen_bool(0.15);
            if cancel_asked {
                placed.cancels_asked += 1;
                self.cancel(&order.id, &mut placed).await?;
            }
            placed.orders.push(PlacedOrder {
                token: self.token.clone(),
                user_id: order.customer_id.clone(),
                key,
                total_minor_units: order.total.as_ref().map_or(0, |t| t.minor_units),
                id: order.id,
                lines,
                cancel_asked,
            });
            let think = Duration::from_millis(self.rng.gen_range(0..30));
            tokio::time::sleep(think).await;
        }
        Ok(placed)
    }

    /// One to three demo products, one to three of each; a good card
    /// mostly, a declined one sometimes.
    fn next_order(&mut self, key: &str) -> CreateOrderRequest {
        let count = self.rng.gen_range(1..=3);
        let products: Vec<&str> = PRODUCTS
            .choose_multiple(&mut self.rng, count)
            .copied()
            .collect();
        let items = products
            .into_iter()
            .map(|product| Item {
                product_id: product.to_owned(),
                quantity: self.rng.gen_range(1..=3),
            })
            .collect();
        let payment_token = if self.rng.gen_bool(0.1) {
            "tok_declined"
        } else {
            "tok_visa"
        };
        CreateOrderRequest {
            items,
            payment_token: payment_token.to_owned(),
            idempotency_key: key.to_owned(),
        }
    }

    /// CreateOrder until the shop answers (the same key every time), or
    /// `None` once the run is over and GIVE_UP_AFTER has passed.
    async fn place(
        &mut self,
        create: &CreateOrderRequest,
        stop: &AtomicBool,
        placed: &mut Placed,
    ) -> anyhow::Result<Option<Order>> {
        let mut stopped_at: Option<Instant> = None;
        loop {
            let request = self.request(create.clone(), CALL_TIMEOUT)?;
            let answer =
                tokio::time::timeout(CALL_TIMEOUT, self.orders.create_order(request)).await;
            match answer {
                Ok(Ok(answer)) => {
                    let order = answer.into_inner().order.context("no order")?;
                    return Ok(Some(order));
                }
                Ok(Err(status)) if !retryable(status.code()) => {
                    placed.broken_promises.push(format!(
                        "CreateOrder {} answered {:?}: {}",
                        create.idempotency_key,
                        status.code(),
                        status.message()
                    ));
                    return Ok(None);
                }
                Ok(Err(_)) | Err(_) => {
                    placed.retried_calls += 1;
                    if stop.load(Ordering::Relaxed) {
                        let since = *stopped_at.get_or_insert_with(Instant::now);
                        if since.elapsed() > GIVE_UP_AFTER {
                            return Ok(None);
                        }
                    }
                    let pause = Duration::from_millis(self.rng.gen_range(50..250));
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// CancelOrder, tried a few times; an order already charged may refuse.
    async fn cancel(&mut self, order_id: &str, placed: &mut Placed) -> anyhow::Result<()> {
        for _ in 0..5 {
            let request = self.request(
                CancelOrderRequest {
                    order_id: order_id.to_owned(),
                },
                CANCEL_TIMEOUT,
            )?;
            match tokio::time::timeout(CANCEL_TIMEOUT, self.orders.cancel_order(request)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(status)) if status.code() == Code::FailedPrecondition => return Ok(()),
                Ok(Err(status)) if !retryable(status.code()) => {
                    placed.broken_promises.push(format!(
                        "CancelOrder {order_id} answered {:?}: {}",
                        status.code(),
                        status.message()
                    ));
                    return Ok(());
                }
                Ok(Err(_)) | Err(_) => {
                    placed.retried_calls += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Ok(())
    }
}

/// What a customer may meet while a service is down or stalled: worth
/// trying again. Anything else is a broken promise.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Cancelled
            | Code::ResourceExhausted
    )
}

/// The order as the shop tells its customer once it is final (GetOrder,
/// tried again while it does not answer); `None` if it is not final
/// within `patience`.
pub async fn final_order(order: &PlacedOrder, patience: Duration) -> anyhow::Result<Option<Order>> {
    let mut orders = OrderServiceClient::new(channel("orders")?);
    let until = Instant::now() + patience;
    loop {
        let mut request = Request::new(GetOrderRequest {
            order_id: order.id.clone(),
        });
        request.set_timeout(CALL_TIMEOUT);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", order.token).parse()?);
        if let Ok(Ok(answer)) = tokio::time::timeout(CALL_TIMEOUT, orders.get_order(request)).await
            && let Some(found) = answer.into_inner().order
            && found.status() != OrderStatus::Pending
        {
            return Ok(Some(found));
        }
        if Instant::now() > until {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
