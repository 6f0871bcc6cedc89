//! The customers of a chaos (or replicas) run: each signs up, then places
//! orders back to back over gRPC (one to three demo products, mostly paid
//! by a good card, some declined), retrying a failed CreateOrder with the
//! same idempotency key until the shop answers, sometimes sending it twice,
//! sometimes cancelling at once. They reach the shop through the kit's
//! client stack, as the shop's own services call each other: every orders
//! replica, balanced. What they were told is the ledger the invariants are
//! checked against; every call they made, and every one that failed, is
//! counted in the phase of the run it happened in (`super::calls::Calls`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use shop_kit::client::{Peer, PeerPolicy, PeerTarget};
use shop_proto::shop::{
    orders::v1::{
        CancelOrderRequest, CreateOrderRequest, GetOrderRequest, Order, OrderStatus,
        create_order_request::Item, order_service_client::OrderServiceClient,
    },
    users::v1::{SignUpRequest, user_service_client::UserServiceClient},
};
use tokio::task::JoinSet;
use tonic::{Code, Request, Status};

use super::{calls::Calls, session::Session};

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

/// Every chaos customer's password.
const PASSWORD: &str = "chaos-password-1";

/// A call that gets no answer by then is tried again.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// CancelOrder waits up to 5 s for the saga to turn back.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(8);
/// After the run, a customer still without an answer gives up then.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// An order the shop acknowledged.
#[derive(Clone, Debug)]
pub struct PlacedOrder {
    /// Its customer's session (GetOrder follows the order with it).
    pub session: Session,
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

    /// Adds what another crowd did.
    pub fn absorb(&mut self, other: Placed) {
        self.orders.extend(other.orders);
        self.unanswered.extend(other.unanswered);
        self.retried_calls += other.retried_calls;
        self.double_sends += other.double_sends;
        self.cancels_asked += other.cancels_asked;
        self.broken_promises.extend(other.broken_promises);
    }
}

/// Where the customers reach the shop: the users service and the orders
/// service, each one address or many.
#[derive(Clone, Debug)]
pub struct Reach {
    users: Peer,
    orders: Peer,
}

impl Reach {
    pub async fn at(users: &PeerTarget, orders: &PeerTarget) -> anyhow::Result<Self> {
        // Each method called as the contract says, as a generated client
        // would be.
        let policy = PeerPolicy {
            timeout: CALL_TIMEOUT,
            calls: shop_proto::calls(None)?,
            max_in_flight: 1024,
            ..PeerPolicy::default()
        };
        Ok(Self {
            users: Peer::connect("users", users, policy.clone()).await?,
            orders: Peer::connect("orders", orders, policy).await?,
        })
    }

    /// The users service (sessions are renewed there).
    pub fn users(&self) -> &Peer {
        &self.users
    }

    /// The orders service's endpoints (address, health, calls in flight).
    pub fn orders_endpoints(&self) -> Vec<(std::net::SocketAddr, &'static str, usize)> {
        self.orders.endpoints()
    }
}

/// How fast each customer orders.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// As fast as the shop answers, thinking 0-30 ms between orders.
    Eager,
    /// One order every so often (an order that took longer is followed at
    /// once, and the schedule starts again from then).
    Every(Duration),
}

/// The customers at work.
pub struct Crowd {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<anyhow::Result<Placed>>,
}

impl Crowd {
    /// Signs up `count` customers and sets them to work, counting their
    /// calls in `calls`.
    pub async fn start(
        count: usize,
        seed: u64,
        reach: &Reach,
        calls: Arc<Calls>,
        pace: Pace,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for number in 0..count {
            let customer = Customer::sign_up(number, seed, reach, calls.clone()).await?;
            tasks.spawn(customer.shop(stop.clone(), pace));
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
    session: Session,
    user_id: String,
    orders: Peer,
    calls: Arc<Calls>,
    rng: StdRng,
}

impl Customer {
    async fn sign_up(
        number: usize,
        seed: u64,
        reach: &Reach,
        calls: Arc<Calls>,
    ) -> anyhow::Result<Self> {
        let email = format!("chaos-{seed}-{number}@example.com");
        let sign_up = SignUpRequest {
            email: email.clone(),
            password: PASSWORD.to_owned(),
            display_name: format!("Chaos customer {number}"),
        };
        // Not keyed, so never retried (the contract says so): a second
        // sign-up would find the email taken.
        let asked = Request::new(sign_up);
        let session = UserServiceClient::new(reach.users.clone())
            .sign_up(asked)
            .await
            .context("signing up")?
            .into_inner()
            .session
            .context("no session")?;
        let session = Session::renewed(
            session,
            reach.users.clone(),
            email,
            PASSWORD.to_owned(),
            calls.clone(),
        );
        Ok(Self {
            number,
            session,
            user_id: String::new(),
            orders: reach.orders.clone(),
            calls,
            rng: StdRng::seed_from_u64(seed.wrapping_add(number as u64)),
        })
    }

    async fn shop(mut self, stop: Arc<AtomicBool>, pace: Pace) -> anyhow::Result<Placed> {
        let mut placed = Placed::default();
        let mut number = 0u64;
        let mut next = tokio::time::Instant::now();
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
                session: self.session.clone(),
                user_id: order.customer_id.clone(),
                key,
                total_minor_units: order.total.as_ref().map_or(0, |t| t.minor_units),
                id: order.id,
                lines,
                cancel_asked,
            });
            match pace {
                Pace::Eager => {
                    let think = Duration::from_millis(self.rng.gen_range(0..30));
                    tokio::time::sleep(think).await;
                }
                Pace::Every(every) => {
                    next += every;
                    let now = tokio::time::Instant::now();
                    if next > now {
                        tokio::time::sleep_until(next).await;
                    } else {
                        next = now;
                    }
                }
            }
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
            let sent = Instant::now();
            let answer = async {
                // Keyed: the client stack may repeat it on another replica.
                let asked = self.session.request(create.clone()).await?;
                OrderServiceClient::new(self.orders.clone())
                    .create_order(asked)
                    .await
            }
            .await;
            self.calls
                .count_timed("CreateOrder", &answer, sent.elapsed());
            match answer {
                Ok(answer) => {
                    let order = answer.into_inner().order.context("no order")?;
                    return Ok(Some(order));
                }
                Err(status) if !retryable(status.code()) => {
                    placed.broken_promises.push(format!(
                        "CreateOrder {} answered {:?}: {}",
                        create.idempotency_key,
                        status.code(),
                        status.message()
                    ));
                    return Ok(None);
                }
                Err(_) => {
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
        let cancel = CancelOrderRequest {
            order_id: order_id.to_owned(),
        };
        for _ in 0..5 {
            let sent = Instant::now();
            let answer = async {
                // Cancelling twice is cancelling once.
                let mut asked = self.session.request(cancel.clone()).await?;
                asked.set_timeout(CANCEL_TIMEOUT);
                OrderServiceClient::new(self.orders.clone())
                    .cancel_order(asked)
                    .await
            }
            .await;
            let refused =
                matches!(&answer, Err(status) if status.code() == Code::FailedPrecondition);
            if refused {
                self.calls
                    .count_timed("CancelOrder", &Ok::<(), Status>(()), sent.elapsed());
            } else {
                self.calls
                    .count_timed("CancelOrder", &answer, sent.elapsed());
            }
            match answer {
                Ok(_) => return Ok(()),
                Err(status) if status.code() == Code::FailedPrecondition => return Ok(()),
                Err(status) if !retryable(status.code()) => {
                    placed.broken_promises.push(format!(
                        "CancelOrder {order_id} answered {:?}: {}",
                        status.code(),
                        status.message()
                    ));
                    return Ok(());
                }
                Err(_) => {
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
pub async fn final_order(
    reach: &Reach,
    order: &PlacedOrder,
    patience: Duration,
) -> anyhow::Result<Option<Order>> {
    let until = Instant::now() + patience;
    let get = GetOrderRequest {
        order_id: order.id.clone(),
    };
    loop {
        let answer = async {
            let asked = order.session.request(get.clone()).await?;
            OrderServiceClient::new(reach.orders.clone())
                .get_order(asked)
                .await
        }
        .await;
        if let Ok(answer) = answer
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
