//! The client stack against real replicas on loopback: each a kit server
//! (health included) in a runtime of its own, so a test can kill it as
//! `kill -9` would (every socket closed at once), drain it as SIGTERM does,
//! or start it again on the same address.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use tokio::time::Instant;
use tonic::{Code, Status};

use shop_kit_rpc::{HttpConfig, Readiness, RpcServer};
use shop_kit_shutdown::Shutdown;

use super::*;

/// One replica of a test service: `/whoami` answers its name (after
/// `/slow`'s delay when asked there), `/fail` answers 500 while `failing`.
struct Replica {
    addr: SocketAddr,
    hits: Arc<AtomicU32>,
    failing: Arc<AtomicBool>,
    gate: Arc<tokio::sync::Semaphore>,
    shutdown: Shutdown,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone)]
struct ReplicaState {
    name: &'static str,
    hits: Arc<AtomicU32>,
    failing: Arc<AtomicBool>,
    slow: Duration,
    /// `/hold` waits for a permit of this.
    gate: Arc<tokio::sync::Semaphore>,
}

async fn whoami(State(state): State<ReplicaState>) -> &'static str {
    state.hits.fetch_add(1, Ordering::SeqCst);
    state.name
}

async fn slow(State(state): State<ReplicaState>) -> &'static str {
    state.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(state.slow).await;
    state.name
}

async fn fail(State(state): State<ReplicaState>) -> Result<&'static str, StatusCode> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    if state.failing.load(Ordering::SeqCst) {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Ok(state.name)
}

/// `unavailable` (HTTP 503) on every odd call, the name on every even one.
async fn flaky(State(state): State<ReplicaState>) -> Result<&'static str, StatusCode> {
    let n = state.hits.fetch_add(1, Ordering::SeqCst);
    if n % 2 == 0 {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(state.name)
}

/// `unavailable` (HTTP 503) while `failing`, else the name.
async fn down(State(state): State<ReplicaState>) -> Result<&'static str, StatusCode> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    if state.failing.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(state.name)
}

/// Always `resource_exhausted` (a gRPC status in the head).
async fn busy(State(state): State<ReplicaState>) -> impl axum::response::IntoResponse {
    state.hits.fetch_add(1, Ordering::SeqCst);
    ([("grpc-status", "8"), ("grpc-message", "busy")], "")
}

/// While `failing`, refused as a server's admission control refuses a
/// call it did no work on (overloaded); else the name.
async fn overloaded(State(state): State<ReplicaState>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    state.hits.fetch_add(1, Ordering::SeqCst);
    if state.failing.load(Ordering::SeqCst) {
        return (
            [
                ("grpc-status", "8"),
                ("grpc-message", "overloaded"),
                ("x-shop-not-processed", "overloaded"),
            ],
            "",
        )
            .into_response();
    }
    state.name.into_response()
}

/// The first call's answer breaks off after its head and a first part
/// (as a replica killed mid-answer); every later call is answered whole.
async fn broken(State(state): State<ReplicaState>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if state.hits.fetch_add(1, Ordering::SeqCst) > 0 {
        return state.name.into_response();
    }
    // The head and first part are on the wire before the break: a reset
    // stream drops what it had not sent yet.
    let parts = futures::stream::unfold(0, |part| async move {
        match part {
            0 => Some((Ok("the first part"), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((Err(std::io::Error::other("broke off")), 2))
            }
            _ => None,
        }
    });
    axum::body::Body::from_stream(parts).into_response()
}

/// Answers once the test lets it.
async fn hold(State(state): State<ReplicaState>) -> &'static str {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let _ = state.gate.acquire().await;
    state.name
}

impl Replica {
    fn start(name: &'static str, addr: SocketAddr) -> Self {
        Self::start_slow(name, addr, Duration::ZERO)
    }

    fn start_slow(name: &'static str, addr: SocketAddr, slow_by: Duration) -> Self {
        // As a program does at start, before any metric handle is taken.
        shop_kit_observe::metrics::Metrics::install();
        let hits = Arc::new(AtomicU32::new(0));
        let failing = Arc::new(AtomicBool::new(false));
        let shutdown = Shutdown::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let state = ReplicaState {
            name,
            hits: hits.clone(),
            failing: failing.clone(),
            slow: slow_by,
            gate: gate.clone(),
        };
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
        let stopping = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let listening = runtime.block_on(async {
                let http = HttpConfig {
                    shutdown_grace_secs: 1,
                    // A replica of its own (a runtime, and sockets that a
                    // kill closes), as another process would be.
                    in_process_calls: false,
                    ..HttpConfig::default()
                };
                let routes = Router::new()
                    .route("/whoami", get(whoami))
                    .route("/slow", get(slow))
                    .route("/fail", get(fail))
                    .route("/flaky", get(flaky))
                    .route("/down", get(down))
                    .route("/busy", get(busy))
                    .route("/hold", get(hold))
                    .route("/overloaded", get(overloaded))
                    .route("/broken", get(broken))
                    // The test proto's methods (see `probe`).
                    .route("/probe.v1.Probe/Flaky", get(flaky))
                    .route("/probe.v1.Probe/Wait", get(slow))
                    .route("/probe.v1.Probe/Down", get(down))
                    .with_state(state);
                // The same, at paths no retry policy names.
                let routes = routes.clone().nest("/once", routes);
                // A fake replica: its routes (some at an RPC's path, which
                // the kit refuses as hand routes) beside a kit server.
                let router = routes.merge(
                    RpcServer::new(http.clone(), Readiness::always())
                        .into_router(&stopping)
                        .await
                        .expect("router"),
                );
                shop_kit_rpc::start(addr, router, stopping, &http)
                    .await
                    .expect("bind")
            });
            started_tx.send(listening.addr).expect("started");
            // Until killed (or the test ends): then every socket closes.
            let _ = kill_rx.recv();
            runtime.shutdown_background();
        });
        let addr = started_rx.recv().expect("started");
        Self {
            addr,
            hits,
            failing,
            gate,
            shutdown,
            kill: Some(kill_tx),
            thread: Some(thread),
        }
    }

    fn hits(&self) -> u32 {
        self.hits.load(Ordering::SeqCst)
    }

    /// As `kill -9`: every connection and the listener closed at once.
    fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a test's call is made at a path whose policy retries it.
#[derive(Clone, Copy, Debug)]
enum Retry {
    /// `/x`: 3 attempts on unavailable or resource_exhausted.
    Safe,
    /// `/once/x`: no policy, so only a call that never left or was refused
    /// unprocessed is sent again.
    Never,
}

/// Quick retries of the paths a test calls as [`Retry::Safe`].
fn retried(max_attempts: u32) -> CallPolicies {
    let retry = MethodCalls {
        retry: Some(Retrying {
            max_attempts,
            backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(20)),
            codes: Codes::of(&["UNAVAILABLE".to_owned(), "RESOURCE_EXHAUSTED".to_owned()]),
        }),
        one_answer: true,
        // As a contract's idempotent method.
        repeating: calls::Repeating::Retried,
        ..MethodCalls::default()
    };
    [
        "/whoami",
        "/slow",
        "/fail",
        "/flaky",
        "/busy",
        "/hold",
        "/overloaded",
        "/broken",
        "/peer",
    ]
    .into_iter()
    .fold(CallPolicies::default(), |policies, path| {
        policies.with(path, retry.clone())
    })
}

fn policy() -> PeerPolicy {
    PeerPolicy {
        timeout: Duration::from_secs(2),
        calls: Calls::fixed(retried(3)),
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_millis(300),
        max_in_flight: 64,
        connect_timeout: Duration::from_millis(500),
        resolve_patience: Duration::from_secs(1),
        ..PeerPolicy::default()
    }
}

/// A GET of `path` through the peer's stack, `retry` on the request, with
/// the caller's `timeout` if any: the body as text, or the status.
async fn ask_within(
    peer: &Peer,
    retry: Retry,
    path: &str,
    timeout: Option<Duration>,
) -> Result<String, Status> {
    let path = match retry {
        Retry::Safe => path.to_owned(),
        Retry::Never => format!("/once{path}"),
    };
    let mut request = http::Request::get(format!("http://peer{path}"))
        .body(tonic::body::Body::default())
        .expect("request");
    if let Some(timeout) = timeout {
        request.headers_mut().insert(
            "grpc-timeout",
            format!("{}m", timeout.as_millis()).parse().expect("header"),
        );
    }
    let response = peer
        .clone()
        .oneshot(request)
        .await
        .map_err(Status::from_error)?;
    let body = super::read_answer(response, &path).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn ask(peer: &Peer, retry: Retry, path: &str) -> Result<String, Status> {
    ask_within(peer, retry, path, None).await
}

/// Two replicas of one service, and the peer of them.
async fn pair(slow_a: Duration) -> (Replica, Replica, Peer) {
    let a = Replica::start_slow("a", "127.0.0.1:0".parse().expect("addr"), slow_a);
    let b = Replica::start("b", "127.0.0.1:0".parse().expect("addr"));
    let target: PeerTarget = format!("http://{},http://{}", a.addr, b.addr)
        .parse()
        .expect("target");
    let downstream = Peer::connect("test", &target, policy())
        .await
        .expect("connect");
    (a, b, downstream)
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Four callers asking `/whoami` back to back until stopped.
struct Callers {
    failures: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Callers {
    fn start(downstream: &Peer, retry: Retry) -> Self {
        let failures = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..4)
            .map(|_| {
                let (downstream, failures, stop) =
                    (downstream.clone(), failures.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        if let Err(status) = ask(&downstream, retry, "/whoami").await {
                            println!("failed: {status:?}");
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        Self {
            failures,
            stop,
            tasks,
        }
    }

    /// Stops them: how many calls failed.
    async fn stop(self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("caller");
        }
        self.failures.load(Ordering::SeqCst)
    }
}

/// Waits until every endpoint of `downstream` has `health`.
async fn every_endpoint(downstream: &Peer, health: &str) {
    wait_for(&format!("every endpoint {health}"), || {
        downstream.endpoints().iter().all(|(_, h, _)| *h == health)
    })
    .await;
}

fn health_of(downstream: &Peer, addr: SocketAddr) -> &'static str {
    downstream
        .endpoints()
        .into_iter()
        .find(|(at, _, _)| *at == addr)
        .map_or("gone", |(_, health, _)| health)
}

#[tokio::test]
async fn calls_go_to_the_less_busy_replica_not_a_random_one() {
    // a takes 400 ms a call, b none: a balancer by load sends a caller to
    // a only when a is no busier than b, so b takes nearly every call; a
    // random pick would send half the picks to a.
    let (a, b, downstream) = pair(Duration::from_millis(400)).await;
    let until = Instant::now() + Duration::from_millis(1200);
    let callers = (0..4).map(|_| {
        let downstream = downstream.clone();
        tokio::spawn(async move {
            while Instant::now() < until {
                ask(&downstream, Retry::Safe, "/slow")
                    .await
                    .expect("answered");
            }
        })
    });
    for caller in futures::future::join_all(callers).await {
        caller.expect("caller");
    }
    let (slow, fast) = (a.hits(), b.hits());
    println!("calls: slow replica {slow}, fast replica {fast}");
    assert!(slow >= 1, "both replicas are used");
    assert!(fast > 20 * slow, "slow {slow}, fast {fast}");
}

#[tokio::test]
async fn sequential_calls_use_every_replica() {
    let (a, b, downstream) = pair(Duration::ZERO).await;
    for _ in 0..200 {
        ask(&downstream, Retry::Never, "/whoami")
            .await
            .expect("answered");
    }
    assert!(
        a.hits() >= 50 && b.hits() >= 50,
        "a {}, b {}",
        a.hits(),
        b.hits()
    );
}

#[tokio::test]
async fn a_killed_replica_is_ejected_at_once_and_its_calls_go_elsewhere() {
    let (mut a, b, downstream) = pair(Duration::ZERO).await;
    every_endpoint(&downstream, "serving").await;
    let callers = Callers::start(&downstream, Retry::Safe);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_at = Instant::now();
    a.kill();
    wait_for("the dead replica out of rotation", || {
        health_of(&downstream, a.addr) == "down"
    })
    .await;
    let noticed = killed_at.elapsed();
    let b_before = b.hits();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let failures = callers.stop().await;
    println!("noticed the kill in {noticed:?}");
    // The connection's end says it at once; the slow way would be the next
    // lookup (RESOLVE_EVERY, 5 s) or the keep-alive (10 s + 5 s): bounded at
    // half the fastest of those, room for a busy machine.
    assert!(noticed < RESOLVE_EVERY / 2, "{noticed:?}");
    assert_eq!(failures, 0, "no call failed");
    assert!(b.hits() > b_before, "the live replica took the calls");
    assert!(!downstream.is_open());
}

#[tokio::test]
async fn a_call_that_cannot_connect_is_sent_elsewhere_even_when_not_safe_to_repeat() {
    // A replica that never ran: its connection is refused, so the request
    // never left and may go to the other one.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead = gone.local_addr().expect("addr");
    drop(gone);
    let b = Replica::start("b", "127.0.0.1:0".parse().expect("addr"));
    let target: PeerTarget = format!("http://{dead},http://{}", b.addr)
        .parse()
        .expect("target");
    let downstream = Peer::connect("test", &target, policy())
        .await
        .expect("connect");
    for _ in 0..20 {
        let answer = ask(&downstream, Retry::Never, "/whoami").await;
        assert_eq!(answer.expect("answered").as_str(), "b");
    }
    assert_eq!(health_of(&downstream, dead), "down");
}

#[tokio::test]
async fn a_draining_replica_gets_no_new_calls_before_its_listener_closes() {
    let (a, b, downstream) = pair(Duration::ZERO).await;
    every_endpoint(&downstream, "serving").await;
    // Not safe to repeat: nothing may fail at all.
    let callers = Callers::start(&downstream, Retry::Never);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // SIGTERM: drain 3 s, then close. The health watch says NOT_SERVING at
    // once; 3 s leaves a busy machine room to hear it before the close.
    let draining = a.shutdown.clone();
    let drained = tokio::spawn(async move {
        draining.drain_then_trigger(Duration::from_secs(3)).await;
    });
    wait_for("the draining replica out of rotation", || {
        health_of(&downstream, a.addr) == "not_serving"
    })
    .await;
    let a_then = a.hits();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.hits(), a_then, "no new call reached the draining replica");
    drained.await.expect("drained");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(callers.stop().await, 0, "no call failed");
    assert!(b.hits() > 0);
}

#[tokio::test]
async fn a_failing_replica_opens_its_own_breaker_never_its_siblings() {
    let (a, b, downstream) = pair(Duration::ZERO).await;
    a.failing.store(true, Ordering::SeqCst);
    let mut failed = 0;
    for _ in 0..60 {
        if ask(&downstream, Retry::Safe, "/fail").await.is_err() {
            failed += 1;
        }
    }
    // internal is not retried: a's calls fail until its breaker opens
    // (3 in a row), then every call goes to b.
    assert!(failed >= 3, "{failed}");
    assert!(!downstream.is_open(), "the peer still answers");
    let a_then = a.hits();
    for _ in 0..20 {
        assert_eq!(
            ask(&downstream, Retry::Safe, "/fail")
                .await
                .expect("b")
                .as_str(),
            "b"
        );
    }
    assert_eq!(a.hits(), a_then, "a's breaker is open: not called");
    assert!(b.hits() >= 20);
    // a mends; after the cool-down one probe call closes its breaker.
    a.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..40 {
        ask(&downstream, Retry::Safe, "/fail")
            .await
            .expect("answered");
    }
    assert!(a.hits() > a_then, "a is back in rotation");
}

#[tokio::test]
async fn a_replica_started_again_is_probed_back_into_rotation() {
    let (mut a, _b, downstream) = pair(Duration::ZERO).await;
    let addr = a.addr;
    a.kill();
    wait_for("down", || health_of(&downstream, addr) == "down").await;
    let again = Replica::start("a", addr);
    wait_for("serving again", || {
        health_of(&downstream, addr) == "serving"
    })
    .await;
    for _ in 0..50 {
        ask(&downstream, Retry::Never, "/whoami")
            .await
            .expect("answered");
    }
    assert!(again.hits() > 0, "the new process takes calls");
}

#[tokio::test]
async fn with_every_replica_down_calls_fail_fast_marked_not_sent() {
    let a = Replica::start("a", "127.0.0.1:0".parse().expect("addr"));
    let b = Replica::start("b", "127.0.0.1:0".parse().expect("addr"));
    let target: PeerTarget = format!("http://{},http://{}", a.addr, b.addr)
        .parse()
        .expect("target");
    // The slow ways to fail, long: a connect timeout and the resolve
    // patience of 5 s each.
    let patient = PeerPolicy {
        connect_timeout: Duration::from_secs(5),
        resolve_patience: Duration::from_secs(5),
        ..policy()
    };
    let downstream = Peer::connect("test", &target, patient)
        .await
        .expect("connect");
    every_endpoint(&downstream, "serving").await;
    let (mut a, mut b) = (a, b);
    a.kill();
    b.kill();
    every_endpoint(&downstream, "down").await;
    let started = Instant::now();
    let refused = ask(&downstream, Retry::Safe, "/whoami")
        .await
        .expect_err("none serves");
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(was_not_sent(&refused), "{refused:?}");
    // Not after either of them: bounded at half of one, room for a busy
    // machine.
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn only_calls_safe_to_repeat_are_retried() {
    let replica = Replica::start("a", "127.0.0.1:0".parse().expect("addr"));
    let peer = Peer::at("test-retry", replica.addr, policy());
    every_endpoint(&peer, "serving").await;
    // 503 first, then the name: a safe call's retry gets it.
    assert_eq!(
        ask(&peer, Retry::Safe, "/flaky").await.expect("retried"),
        "a"
    );
    assert_eq!(replica.hits(), 2);
    // Not safe to repeat: the 503 is the answer.
    every_endpoint(&peer, "serving").await;
    let once = ask(&peer, Retry::Never, "/flaky").await;
    assert_eq!(once.expect_err("not retried").code(), Code::Unavailable);
    assert_eq!(replica.hits(), 3);

    let busy = Replica::start("busy", "127.0.0.1:0".parse().expect("addr"));
    let peer = Peer::at("test-busy", busy.addr, policy());
    let exhausted = ask(&peer, Retry::Safe, "/busy").await;
    assert_eq!(
        exhausted.expect_err("gives up").code(),
        Code::ResourceExhausted
    );
    assert_eq!(busy.hits(), 3, "max_attempts in all");
}

#[tokio::test]
async fn an_answer_broken_off_half_way_is_asked_again_where_the_call_is_safe_to_repeat() {
    let safe = Replica::start("a", "127.0.0.1:0".parse().expect("addr"));
    let peer = Peer::at("test", safe.addr, policy());
    every_endpoint(&peer, "serving").await;
    // Safe to repeat: read whole, so the break is seen before the caller
    // reads, and the call is sent again.
    assert_eq!(
        ask(&peer, Retry::Safe, "/broken").await.expect("answer"),
        "a"
    );
    assert_eq!(safe.hits(), 2);

    // Not safe to repeat: the caller's read fails, and nothing is sent
    // again.
    let once = Replica::start("b", "127.0.0.1:0".parse().expect("addr"));
    let peer = Peer::at("test", once.addr, policy());
    every_endpoint(&peer, "serving").await;
    let failed = ask(&peer, Retry::Never, "/broken")
        .await
        .expect_err("broken off");
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    assert_eq!(once.hits(), 1);
}

#[tokio::test]
async fn a_call_refused_unprocessed_goes_to_a_sibling_whatever_the_method_and_opens_no_breaker() {
    let (a, b, downstream) = pair(Duration::ZERO).await;
    every_endpoint(&downstream, "serving").await;
    a.failing.store(true, Ordering::SeqCst);
    for _ in 0..20 {
        // Not safe to repeat, yet sent again: the refusal says it never ran.
        let answer = ask(&downstream, Retry::Never, "/overloaded").await;
        assert_eq!(answer.expect("a sibling answered"), "b");
    }
    assert!(a.hits() <= 2, "avoided after refusing: {} calls", a.hits());
    assert_eq!(b.hits(), 20);
    // (Nor does its breaker count it: see breaker's tests.)
    assert_eq!(health_of(&downstream, a.addr), "serving", "never ejected");

    // With nowhere else to go, every attempt refused: said as the
    // downstream being busy, never down.
    b.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = ask(&downstream, Retry::Never, "/overloaded")
        .await
        .expect_err("refused");
    assert!(was_refused_unprocessed(&refused), "{refused:?}");
    let said = translate("catalog", &refused, |_| None);
    assert_eq!(said.code(), Code::ResourceExhausted, "{said:?}");
    assert_eq!(
        said.message(),
        "busy: the catalog service is overloaded; try again shortly"
    );
}

#[tokio::test]
async fn retries_stay_within_the_peer_s_budget() {
    // A peer answering unavailable every other call: without a budget
    // each of these calls would be sent again; the budget lets retries add
    // only its floor (1 a second over 10 s) and 10% of the calls.
    let flaky = Replica::start("f", "127.0.0.1:0".parse().expect("addr"));
    let always = Peer::at(
        "test-budget-503",
        flaky.addr,
        PeerPolicy {
            retry_ratio: 0.1,
            min_retries_per_sec: 1,
            calls: Calls::fixed(retried(5)),
            breaker_threshold: 10_000,
            ..policy()
        },
    );
    every_endpoint(&always, "serving").await;
    // /flaky answers 503 every other call: each call may need one retry;
    // fifty calls ask for fifty, the budget grants far fewer once spent.
    let mut failed = 0;
    for _ in 0..50 {
        wait_for("serving", || {
            always.endpoints().iter().all(|(_, h, _)| *h == "serving")
        })
        .await;
        if ask(&always, Retry::Safe, "/flaky").await.is_err() {
            failed += 1;
        }
    }
    let retries = flaky.hits() - 50;
    println!("50 calls: {retries} retries, {failed} failed");
    assert!(retries <= 10 + 5 + 1, "retries {retries} beyond the budget");
    assert!(failed > 0, "the budget ran out");
}

#[tokio::test]
async fn a_replica_answering_unavailable_is_the_last_choice_for_a_moment() {
    let (a, b, _) = pair(Duration::ZERO).await;
    a.failing.store(true, Ordering::SeqCst);
    let target: PeerTarget = format!("http://{},http://{}", a.addr, b.addr)
        .parse()
        .expect("target");
    // No breaker in the way: what keeps calls off `a` is being avoided.
    let downstream = Peer::connect(
        "test-avoid",
        &target,
        PeerPolicy {
            breaker_threshold: 10_000,
            ..policy()
        },
    )
    .await
    .expect("connect");
    every_endpoint(&downstream, "serving").await;
    for _ in 0..100 {
        let _ = ask(&downstream, Retry::Never, "/down").await;
    }
    // Picked at random, `a` would take about half; each failure makes it
    // the last choice for 250 ms, far longer than these calls take.
    assert!(
        a.hits() <= 10,
        "the failing replica took {} of 100",
        a.hits()
    );
    assert!(b.hits() >= 90, "{}", b.hits());
}

#[tokio::test]
async fn the_callers_deadline_bounds_every_attempt() {
    let replica = Replica::start_slow(
        "a",
        "127.0.0.1:0".parse().expect("addr"),
        Duration::from_secs(5),
    );
    let peer = Peer::at("test-deadline", replica.addr, policy());
    every_endpoint(&peer, "serving").await;
    let started = Instant::now();
    let slow = ask_within(&peer, Retry::Safe, "/slow", Some(Duration::from_millis(60))).await;
    let slow = slow.expect_err("too slow");
    assert_eq!(slow.code(), Code::DeadlineExceeded, "{slow:?}");
    // The replica takes 5 s: bounded well below, with room for a busy machine.
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_full_bulkhead_sheds_with_resource_exhausted() {
    let replica = Replica::start("a", "127.0.0.1:0".parse().expect("addr"));
    let peer = Peer::at(
        "test-bulkhead",
        replica.addr,
        PeerPolicy {
            max_in_flight: 2,
            ..policy()
        },
    );
    every_endpoint(&peer, "serving").await;
    let hold = || {
        let peer = peer.clone();
        tokio::spawn(async move { ask(&peer, Retry::Never, "/hold").await })
    };
    let first = hold();
    let second = hold();
    wait_for("two calls held", || replica.hits() == 2).await;
    let shed = ask(&peer, Retry::Safe, "/whoami").await.expect_err("shed");
    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert!(was_not_sent(&shed));
    assert!(was_shed(&shed));
    // Its caller hears that this service is busy, not that the peer is
    // down (it may be fine: here it answers the two it holds).
    let told = translate("catalog", &shed, |_| None);
    assert_eq!(told.code(), Code::ResourceExhausted);
    assert!(told.message().starts_with("busy:"), "{told:?}");
    assert!(!told.message().contains("unavailable"), "{told:?}");
    // The peer's own resource_exhausted is another matter: it was sent.
    assert!(!was_shed(&Status::resource_exhausted("peer busy")));
    replica.gate.add_permits(2);
    first.await.expect("join").expect("first");
    second.await.expect("join").expect("second");
}

#[tokio::test]
async fn tonic_clients_take_a_peer_and_its_credentials_reach_the_server() {
    // A peer is what a tonic client is made of: here the health client,
    // with the service's bearer token put on by the stack.
    struct Token;
    impl Credentials for Token {
        fn bearer(
            &self,
            _deadline: Instant,
        ) -> futures::future::BoxFuture<'_, Result<Arc<str>, Status>> {
            Box::pin(async { Ok(Arc::from("t0k3n")) })
        }
    }
    struct NoToken;
    impl Credentials for NoToken {
        fn bearer(
            &self,
            _deadline: Instant,
        ) -> futures::future::BoxFuture<'_, Result<Arc<str>, Status>> {
            Box::pin(async { Err(Status::unavailable("the token service is down")) })
        }
    }
    let replica = Replica::start("a", "127.0.0.1:0".parse().expect("addr"));
    let peer = Peer::at("test-tonic", replica.addr, policy());
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        peer.clone().with_credentials(Arc::new(Token)),
    );
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("serving");
    assert_eq!(
        answer.into_inner().status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let mut refused = tonic_health::pb::health_client::HealthClient::new(
        peer.with_credentials(Arc::new(NoToken)),
    );
    let status = refused
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect_err("no token, no call");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        lacked_credentials(&status) && was_not_sent(&status),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_name_that_never_resolves_is_a_start_up_error_naming_the_flag() {
    let target = PeerTarget::url("http://no-such-peer.invalid:8082")
        .expect("target")
        .from_origin("--catalog-url");
    let error = Peer::connect(
        "catalog",
        &target,
        PeerPolicy {
            resolve_patience: Duration::from_millis(200),
            ..policy()
        },
    )
    .await
    .expect_err("never resolves")
    .to_string();
    assert!(error.contains("--catalog-url"), "{error}");
    assert!(error.contains("no-such-peer.invalid"), "{error}");
}

#[test]
fn errors_are_translated_for_the_caller() {
    let not_found = Status::not_found("product \"x\" not found");
    let invalid = translate("catalog", &not_found, |code| {
        (code == Code::NotFound).then_some(Code::InvalidArgument)
    });
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let denied = translate("orders", &Status::permission_denied("no"), |_| None);
    assert_eq!(denied.code(), Code::Internal);
    let broken = translate("orders", &Status::internal("stack trace here"), |_| None);
    assert_eq!(broken.code(), Code::Unavailable);
    assert!(!broken.message().contains("stack"));
    let anonymous = translate("orders", &Status::unauthenticated("log in"), |_| None);
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

/// A real DNS server (Debian's dnsmasq) answering for `catalog.test` from a
/// hosts file the test rewrites; skipped where dnsmasq is not installed
/// (CI installs it).
struct Dns {
    port: u16,
    hosts: tempfile::NamedTempFile,
    child: std::process::Child,
}

impl Dns {
    fn start(records: &str) -> Option<Self> {
        let dnsmasq = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists());
        let Some(dnsmasq) = dnsmasq else {
            // CI installs it: there, a missing dnsmasq is a failure.
            assert!(
                std::env::var("CI").is_err(),
                "dnsmasq is not installed (apt-get install dnsmasq-base)"
            );
            println!("SKIPPED: dnsmasq is not installed (apt-get install dnsmasq-base)");
            return None;
        };
        let hosts = tempfile::NamedTempFile::new().expect("hosts file");
        std::fs::write(hosts.path(), records).expect("records");
        // A free port is asked for, then given to dnsmasq: another process
        // may take it in between, and dnsmasq then exits. Try another.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("a free port")
                .port();
            let mut child = std::process::Command::new(dnsmasq)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--no-resolv",
                    "--no-hosts",
                    "--local-ttl=0",
                    "--pid-file=",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--addn-hosts={}", hosts.path().display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("dnsmasq");
            match wait_until_listening(port, &mut child) {
                Ok(()) => return Some(Self { port, hosts, child }),
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(failure);
                }
            }
        }
        panic!("dnsmasq did not start: {failures:?}");
    }

    /// New records, read at once (SIGHUP).
    fn set(&self, records: &str) {
        std::fs::write(self.hosts.path(), records).expect("records");
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns once dnsmasq holds `port`: a query sent from then on waits in
/// the socket until dnsmasq has read its hosts file (a fixed pause was not
/// enough on a busy CI machine). Why not, if it exits or does not listen
/// within 10 s.
fn wait_until_listening(port: u16, dnsmasq: &mut std::process::Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        if let Ok(Some(status)) = dnsmasq.try_wait() {
            let mut said = String::new();
            if let Some(stderr) = dnsmasq.stderr.as_mut() {
                let _ = std::io::Read::read_to_string(stderr, &mut said);
            }
            return Err(format!("port {port}: exited {status}: {}", said.trim()));
        }
        if Instant::now() >= deadline {
            return Err(format!("port {port}: not listening in 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[tokio::test]
async fn a_name_with_many_addresses_uses_them_all_and_follows_their_changes() {
    // Two replicas on their own loopback addresses and the same port, as
    // pods behind a headless Service are.
    let a = Replica::start("a", "127.0.0.2:0".parse().expect("addr"));
    let port = a.addr.port();
    let b = Replica::start("b", SocketAddr::from(([127, 0, 0, 3], port)));
    let Some(dns) = Dns::start("127.0.0.2 catalog.test\n127.0.0.3 catalog.test\n") else {
        return;
    };
    let target: PeerTarget = format!("dns://127.0.0.1:{}/catalog.test:{port}", dns.port)
        .parse()
        .expect("target");
    let downstream = Peer::connect("catalog", &target, policy())
        .await
        .expect("resolves");
    assert_eq!(
        downstream.endpoints().len(),
        2,
        "{:?}",
        downstream.endpoints()
    );
    for _ in 0..100 {
        ask(&downstream, Retry::Never, "/whoami")
            .await
            .expect("answered");
    }
    assert!(
        a.hits() > 10 && b.hits() > 10,
        "a {}, b {}",
        a.hits(),
        b.hits()
    );

    // A replica leaves the name: it leaves the set at the next lookup.
    dns.set("127.0.0.3 catalog.test\n");
    wait_for_endpoints(&downstream, 1).await;
    let a_then = a.hits();
    for _ in 0..20 {
        assert_eq!(
            ask(&downstream, Retry::Never, "/whoami").await.expect("b"),
            "b"
        );
    }
    assert_eq!(a.hits(), a_then);

    // The name stops resolving: the last endpoints known are kept.
    dns.set("");
    tokio::time::sleep(RESOLVE_EVERY + Duration::from_secs(1)).await;
    assert_eq!(downstream.endpoints().len(), 1);
    ask(&downstream, Retry::Never, "/whoami")
        .await
        .expect("still called");

    // More addresses than allowed: the first 64 are used.
    let many: String = (1..=70)
        .map(|i| format!("127.0.1.{i} catalog.test\n"))
        .collect();
    dns.set(&many);
    wait_for_endpoints(&downstream, endpoints::MAX_ENDPOINTS).await;
}

async fn wait_for_endpoints(downstream: &Peer, count: usize) {
    let deadline = Instant::now() + RESOLVE_EVERY * 3;
    while downstream.endpoints().len() != count {
        assert!(
            Instant::now() < deadline,
            "{count} endpoints: {:?}",
            downstream.endpoints()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The breaker gauge of a peer: 1 only while every endpoint it has fails
/// fast (the alert ShopDownstreamBreakerOpen reads it).
fn breaker_gauge(downstream: &str) -> Option<f64> {
    let label = format!("downstream=\"{downstream}\"");
    shop_kit_observe::metrics::Metrics::install()
        .render()
        .lines()
        .find(|line| line.starts_with("shop_downstream_breaker_open{") && line.contains(&label))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn the_breaker_gauge_follows_the_endpoints_a_peer_has_now() {
    // A peer of one replica whose breaker opens, then cools down (half
    // open: a probe may go); then the name moves to a healthy replica.
    let a = Replica::start("a", "127.0.0.1:0".parse().expect("addr"));
    let b = Replica::start("b", "127.0.0.1:0".parse().expect("addr"));
    let downstream = Peer::at("test-gauge", a.addr, policy());
    a.failing.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let _ = ask(&downstream, Retry::Safe, "/fail").await;
    }
    assert!(downstream.is_open());
    assert_eq!(
        breaker_gauge("test-gauge"),
        Some(1.0),
        "every endpoint fails fast"
    );
    tokio::time::sleep(policy().breaker_cooldown + Duration::from_millis(50)).await;
    let moved: std::collections::BTreeSet<_> = [resolve::Address {
        addr: b.addr,
        scheme: target::Scheme::Http,
        authority: b.addr.to_string(),
    }]
    .into_iter()
    .collect();
    downstream.inner.set.update(&moved);
    every_endpoint(&downstream, "serving").await;
    assert_eq!(
        ask(&downstream, Retry::Safe, "/whoami").await.expect("b"),
        "b"
    );
    assert_eq!(
        breaker_gauge("test-gauge"),
        Some(0.0),
        "a healthy endpoint serves: no breaker alert"
    );
}

/// A server of this process on `in_process_calls` terms, answering
/// `/peer` with the port of the connection its request came on.
async fn server_here(in_process_calls: bool, shutdown: &Shutdown) -> SocketAddr {
    let http = HttpConfig {
        in_process_calls,
        ..HttpConfig::default()
    };
    let routes = get(
        |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>| async move {
            peer.port().to_string()
        },
    );
    let router = RpcServer::new(http.clone(), Readiness::always())
        .http_route("/peer", routes)
        .into_router(shutdown)
        .await
        .expect("router");
    shop_kit_rpc::start(
        "127.0.0.1:0".parse().expect("addr"),
        router,
        shutdown.clone(),
        &http,
    )
    .await
    .expect("bind")
    .addr
}

#[tokio::test]
async fn a_server_of_this_process_is_called_without_a_socket_until_it_stops() {
    for in_process_calls in [true, false] {
        let shutdown = Shutdown::new();
        let addr = server_here(in_process_calls, &shutdown).await;
        let target: PeerTarget = format!("http://{addr}").parse().expect("target");
        let downstream = Peer::connect("test", &target, policy())
            .await
            .expect("connect");
        // Through the server's layers (the listener's peer address is
        // there), from no connection at all (port 0) when in process.
        let port = ask(&downstream, Retry::Safe, "/peer")
            .await
            .expect("answered");
        assert_eq!(port == "0", in_process_calls, "port {port}");
        // Stopped, it is not found in process any more, and its closed
        // listener refuses the call as it would in another process.
        shutdown.trigger();
        wait_for("the listener closed", || {
            std::net::TcpStream::connect(addr).is_err()
        })
        .await;
        let refused = ask(&downstream, Retry::Safe, "/peer").await;
        assert_eq!(
            refused.map_err(|status| status.code()),
            Err(Code::Unavailable)
        );
    }
}

/// How a peer calls the methods of the test proto's `Probe` service, each
/// with its options as written in `methods` (anyone may call them).
fn probe_policy(methods: &str) -> PeerPolicy {
    let proto = format!(
        "syntax = \"proto3\";\npackage probe.v1;\nimport \"kit/policy/v1/policy.proto\";\n\
         message Request {{}}\nmessage Response {{}}\n\
         service Probe {{\n\
           option (kit.policy.v1.service) = {{ caller: {{ anyone: true }} }};\n\
           {methods}\n\
         }}\n"
    );
    let set = shop_kit_policy::testing::descriptor_set("probe/v1/probe.proto", &proto);
    PeerPolicy {
        calls: Calls::of_contract(&set, None).expect("the probe's policy"),
        ..policy()
    }
}

/// A peer of `replica` calling as the test proto says.
fn probe(replica: &Replica, methods: &str) -> Peer {
    Peer::at("test-probe", replica.addr, probe_policy(methods))
}

const READ: &str = "option idempotency_level = NO_SIDE_EFFECTS;";

#[tokio::test]
async fn a_retry_is_made_where_the_contract_gives_one_and_not_where_it_does_not() {
    for (options, retried) in [
        (
            format!(
                "{READ} option (kit.policy.v1.method) = {{ retry: {{ max_attempts: 2 \
             initial_backoff: {{ nanos: 1000000 }} max_backoff: {{ nanos: 1000000 }} \
             backoff_multiplier: 2 retryable_status_codes: [\"UNAVAILABLE\"] }} }};"
            ),
            true,
        ),
        (READ.to_owned(), false),
        // A retry on other codes only: unavailable ends the call.
        (
            format!(
                "{READ} option (kit.policy.v1.method) = {{ retry: {{ max_attempts: 2 \
             initial_backoff: {{ nanos: 1000000 }} max_backoff: {{ nanos: 1000000 }} \
             backoff_multiplier: 2 retryable_status_codes: [\"ABORTED\"] }} }};"
            ),
            false,
        ),
    ] {
        let replica = Replica::start("r", "127.0.0.1:0".parse().expect("addr"));
        let peer = probe(
            &replica,
            &format!("rpc Flaky(Request) returns (Response) {{ {options} }}"),
        );
        every_endpoint(&peer, "serving").await;
        // The first call is answered unavailable, the second served.
        let answer = ask(&peer, Retry::Safe, "/probe.v1.Probe/Flaky").await;
        assert_eq!(answer.is_ok(), retried, "{options}: {answer:?}");
        assert_eq!(replica.hits(), if retried { 2 } else { 1 }, "{options}");
    }
}

/// A peer of two replicas calling as the test proto says.
fn probe_pair(a: &Replica, b: &Replica, methods: &str) -> Peer {
    let endpoints = [a.addr, b.addr].into_iter().map(|addr| resolve::Address {
        addr,
        scheme: target::Scheme::Http,
        authority: addr.to_string(),
    });
    Peer::with_addresses(
        "test-probe-pair",
        &endpoints.collect(),
        probe_policy(methods),
        None,
    )
}

#[tokio::test]
async fn a_hedge_is_sent_where_the_contract_gives_hedging_and_its_answer_taken() {
    const HEDGED: &str = "option (kit.policy.v1.method) = { hedging: { max_attempts: 2 \
                          hedging_delay: { nanos: 20000000 } } };";
    for hedged in [true, false] {
        let slow = Replica::start_slow(
            "slow",
            "127.0.0.1:0".parse().expect("addr"),
            Duration::from_secs(1),
        );
        let fast = Replica::start("fast", "127.0.0.1:0".parse().expect("addr"));
        let options = if hedged { HEDGED } else { "" };
        let peer = probe_pair(
            &slow,
            &fast,
            &format!("rpc Wait(Request) returns (Response) {{ {READ} {options} }}"),
        );
        every_endpoint(&peer, "serving").await;
        // One call after another: the balancer picks either replica.
        let mut slowest = Duration::ZERO;
        for _ in 0..12 {
            let started = Instant::now();
            ask(&peer, Retry::Safe, "/probe.v1.Probe/Wait")
                .await
                .expect("served");
            slowest = slowest.max(started.elapsed());
        }
        let sent = slow.hits() + fast.hits();
        if hedged {
            // A call that went to the slow replica had a copy sent to the
            // fast one 20 ms on, whose answer it took: far under the slow
            // replica's 1 s (the peer's budget is 2 s), at half of it for a
            // busy machine.
            assert!(slowest < Duration::from_millis(500), "hedged: {slowest:?}");
            assert!(slow.hits() > 0 && sent > 12, "hedges sent: {sent}");
        } else {
            assert!(slowest >= Duration::from_secs(1), "not hedged: {slowest:?}");
            assert_eq!(sent, 12, "no hedge");
        }
    }
}

#[tokio::test]
async fn no_hedge_is_sent_where_it_could_only_go_to_the_same_endpoint() {
    let replica = Replica::start_slow(
        "r",
        "127.0.0.1:0".parse().expect("addr"),
        Duration::from_millis(300),
    );
    let peer = probe(
        &replica,
        &format!(
            "rpc Wait(Request) returns (Response) {{ {READ} option (kit.policy.v1.method) = \
             {{ hedging: {{ max_attempts: 3 hedging_delay: {{ nanos: 20000000 }} }} }}; }}"
        ),
    );
    every_endpoint(&peer, "serving").await;
    ask(&peer, Retry::Safe, "/probe.v1.Probe/Wait")
        .await
        .expect("served");
    assert_eq!(replica.hits(), 1, "a copy would only add to its work");
}

#[tokio::test]
async fn the_method_s_deadline_bounds_a_call_the_caller_gave_none_or_a_longer_one() {
    let replica = Replica::start_slow(
        "r",
        "127.0.0.1:0".parse().expect("addr"),
        Duration::from_secs(5),
    );
    let peer = probe(
        &replica,
        "rpc Wait(Request) returns (Response) { option (kit.policy.v1.method) = { deadline: { nanos: 100000000 } }; }",
    );
    every_endpoint(&peer, "serving").await;
    for asked in [None, Some(Duration::from_secs(5))] {
        let started = Instant::now();
        let late = ask_within(&peer, Retry::Safe, "/probe.v1.Probe/Wait", asked)
            .await
            .expect_err("past the method's deadline");
        assert_eq!(late.code(), Code::DeadlineExceeded, "{asked:?}");
        // The method's 100 ms, not the replica's 5 s: at half of that.
        assert!(started.elapsed() < Duration::from_millis(2500), "{asked:?}");
    }
}

#[tokio::test]
async fn a_service_config_file_is_followed_as_it_changes_and_a_bad_change_is_not_taken() {
    let contract = shop_kit_policy::testing::descriptor_set(
        "probe/v1/probe.proto",
        "syntax = \"proto3\";\npackage probe.v1;\nimport \"kit/policy/v1/policy.proto\";\n\
         message Request {}\nmessage Response {}\n\
         service Probe { option (kit.policy.v1.service) = { caller: { anyone: true } deadline: { seconds: 5 } };\n\
           rpc Get(Request) returns (Response); }\n",
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("service-config.json");
    let timeout = |seconds: &str| {
        format!(
            r#"{{"methodConfig": [{{"name": [{{"service": "probe.v1.Probe"}}], "timeout": "{seconds}"}}]}}"#
        )
    };
    std::fs::write(&file, timeout("2s")).expect("write");
    let calls = Calls::of_contract(&contract, Some(&file)).expect("a good config");
    let of = |calls: &Calls| calls.current().of("/probe.v1.Probe/Get").timeout;
    assert_eq!(of(&calls), Some(Duration::from_secs(2)));
    calls.follow();
    // Another second on the clock, whatever the file system's precision.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&file, timeout("7s")).expect("write");
    wait_until(|| of(&calls) == Some(Duration::from_secs(7))).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&file, "{ not json").expect("write");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        of(&calls),
        Some(Duration::from_secs(7)),
        "the config before stays"
    );
    // A bad file at start is refused, saying which and why.
    let refused = Calls::of_contract(&contract, Some(&file)).expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("service-config.json is refused: not a gRPC service config"),
        "{refused}"
    );
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_call_carries_its_contexts_deadline_and_with_none_left_is_never_sent() {
    let replica = Replica::start_slow(
        "r",
        "127.0.0.1:0".parse().expect("addr"),
        Duration::from_secs(5),
    );
    let peer = Peer::at("test-context", replica.addr, policy());
    every_endpoint(&peer, "serving").await;
    // Served with 100 ms left: the call made meanwhile has that, not the
    // peer's 2 s budget nor the replica's 5 s.
    let started = Instant::now();
    let late = CallContext::until(Instant::now() + Duration::from_millis(100))
        .scope(ask(&peer, Retry::Never, "/slow"))
        .await
        .expect_err("past the caller's deadline");
    assert_eq!(late.code(), Code::DeadlineExceeded, "{late:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // No time left at all: refused here, not sent, the replica untouched.
    let hits = replica.hits();
    let refused = CallContext::until(Instant::now())
        .scope(ask(&peer, Retry::Safe, "/whoami"))
        .await
        .expect_err("no time left");
    assert_eq!(refused.code(), Code::DeadlineExceeded, "{refused:?}");
    assert!(was_not_sent(&refused), "{refused:?}");
    assert_eq!(replica.hits(), hits, "nothing was sent");
}

/// A server like the conformance suite's reference server: its health
/// service refuses (`invalid_argument`, no test case named), `/whoami`
/// answers, `/down` answers `unavailable`.
async fn refusing_health_checks() -> SocketAddr {
    async fn refuse() -> axum::response::Response {
        Status::invalid_argument("missing x-test-case-name header").into_http()
    }
    async fn unavailable() -> axum::response::Response {
        Status::unavailable("not now").into_http()
    }
    let router = Router::new()
        .route("/grpc.health.v1.Health/Watch", axum::routing::post(refuse))
        .route("/grpc.health.v1.Health/Check", axum::routing::post(refuse))
        .route("/whoami", get(|| async { "refusing" }))
        .route("/down", get(unavailable));
    // At the paths no retry policy names too (`Retry::Never`).
    let router = router.clone().nest("/once", router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

#[tokio::test]
async fn with_health_checks_off_a_peer_whose_health_service_refuses_is_called() {
    let addr = refusing_health_checks().await;
    let watched = Peer::at("test", addr, policy());
    every_endpoint(&watched, "down").await;
    let refused = ask(&watched, Retry::Never, "/whoami")
        .await
        .expect_err("not serving, as its health service says");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    let unwatched = Peer::at(
        "test",
        addr,
        PeerPolicy {
            health_checks: false,
            ..policy()
        },
    );
    assert_eq!(health_of(&unwatched, addr), "serving");
    assert_eq!(
        ask(&unwatched, Retry::Never, "/whoami")
            .await
            .expect("called"),
        "refusing"
    );
    // An `unavailable` answer asks no health check: it stays in rotation
    // (until its breaker opens, at 3 in a row here).
    for _ in 0..2 {
        let answered = ask(&unwatched, Retry::Never, "/down")
            .await
            .expect_err("unavailable");
        assert_eq!(answered.code(), Code::Unavailable);
    }
    assert_eq!(health_of(&unwatched, addr), "serving");
    assert_eq!(
        ask(&unwatched, Retry::Never, "/whoami")
            .await
            .expect("called"),
        "refusing"
    );
}

/// Quick retries on `unavailable`, up to 5 attempts.
fn quick_retries() -> Retrying {
    Retrying {
        max_attempts: 5,
        backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(20)),
        codes: Codes::of(&["UNAVAILABLE".to_owned()]),
    }
}

/// Every method of the test proto with retries (`retry`) or hedging
/// forced on, whatever its contract says, on two replicas.
fn forced(a: &Replica, b: &Replica, methods: &str, retry: Option<Retrying>) -> Peer {
    let hedge = retry.is_none();
    let proto = format!(
        "syntax = \"proto3\";\npackage probe.v1;\n\
         message Request {{}}\nmessage Response {{}}\n\
         service Probe {{ {methods} }}\n"
    );
    let set = shop_kit_policy::testing::descriptor_set("probe/v1/probe.proto", &proto);
    let contract = shop_kit_policy::descriptors(&set).expect("descriptors");
    let policies = CallPolicies::of_contract(&contract, None)
        .expect("policies")
        .forcing(|calls| {
            if hedge {
                calls.hedging = Some(Hedging {
                    max_attempts: 3,
                    delay: Duration::from_millis(10),
                    non_fatal: Codes::of(&["UNAVAILABLE".to_owned()]),
                });
            } else {
                calls.retry.clone_from(&retry);
            }
        });
    let endpoints = [a.addr, b.addr].into_iter().map(|addr| resolve::Address {
        addr,
        scheme: target::Scheme::Http,
        authority: addr.to_string(),
    });
    let policy = PeerPolicy {
        calls: Calls::fixed(policies),
        ..policy()
    };
    Peer::with_addresses("test-forced", &endpoints.collect(), policy, None)
}

#[tokio::test]
async fn a_method_the_contract_does_not_let_repeat_is_sent_once_whatever_policy_is_forced() {
    for hedge in [false, true] {
        for (options, repeated) in [("", false), (READ, true)] {
            let a = Replica::start("a", "127.0.0.1:0".parse().expect("addr"));
            let b = Replica::start("b", "127.0.0.1:0".parse().expect("addr"));
            let peer = forced(
                &a,
                &b,
                &format!("rpc Flaky(Request) returns (Response) {{ {options} }}"),
                (!hedge).then(quick_retries),
            );
            every_endpoint(&peer, "serving").await;
            // Each replica answers its first call unavailable.
            let answer = ask(&peer, Retry::Safe, "/probe.v1.Probe/Flaky").await;
            let sent = a.hits() + b.hits();
            let case = format!("hedging {hedge}, {options:?}: {answer:?}");
            if repeated {
                assert!(answer.is_ok(), "{case}");
                assert!(sent >= 2, "sent again: {case}");
            } else {
                assert_eq!(
                    answer.expect_err("once").code(),
                    Code::Unavailable,
                    "{case}"
                );
                assert_eq!(sent, 1, "never sent twice: {case}");
            }
        }
    }
}

#[tokio::test]
async fn retries_never_stretch_the_callers_deadline() {
    let a = Replica::start("a", "127.0.0.1:0".parse().expect("addr"));
    let b = Replica::start("b", "127.0.0.1:0".parse().expect("addr"));
    a.failing.store(true, Ordering::SeqCst);
    b.failing.store(true, Ordering::SeqCst);
    // Slow retries of many attempts, forced on a method that may repeat.
    let patient = Retrying {
        max_attempts: 10,
        backoff: Backoff::new(Duration::from_millis(40), Duration::from_millis(80)),
        codes: Codes::of(&["UNAVAILABLE".to_owned()]),
    };
    let peer = forced(
        &a,
        &b,
        &format!("rpc Down(Request) returns (Response) {{ {READ} }}"),
        Some(patient),
    );
    every_endpoint(&peer, "serving").await;
    let asked = Duration::from_millis(150);
    let started = Instant::now();
    let failed = ask_within(&peer, Retry::Safe, "/probe.v1.Probe/Down", Some(asked))
        .await
        .expect_err("every replica failing");
    let took = started.elapsed();
    assert!(
        matches!(failed.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{failed:?}"
    );
    assert!(a.hits() + b.hits() >= 2, "retried");
    // No retry is begun that its backoff would carry past the deadline:
    // within it, and a little for a busy machine.
    assert!(took < asked + Duration::from_millis(50), "{took:?}");
}

#[tokio::test]
async fn an_answer_that_stalls_after_its_head_ends_at_the_deadline() {
    use futures::StreamExt as _;
    async fn stall() -> axum::response::Response {
        let first = futures::stream::once(async {
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"begun"))
        });
        let body = axum::body::Body::from_stream(first.chain(futures::stream::pending()));
        axum::response::Response::new(body)
    }
    let router = Router::new().route("/stall", get(stall));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let peer = Peer::at(
        "test-stall",
        addr,
        PeerPolicy {
            health_checks: false,
            ..policy()
        },
    );
    let mut request = http::Request::get("http://peer/stall")
        .body(tonic::body::Body::default())
        .expect("request");
    request
        .headers_mut()
        .insert("grpc-timeout", "100m".parse().expect("header"));
    let started = Instant::now();
    let response = peer.clone().oneshot(request).await.expect("a head");
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        http_body_util::BodyExt::collect(response.into_body()),
    )
    .await
    .expect("not waited for past the deadline")
    .expect("ended, not broken");
    let trailers = answer.trailers().cloned().unwrap_or_default();
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"4"[..]),
        "deadline_exceeded: {trailers:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
