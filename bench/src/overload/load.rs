//! Load of two kinds: closed (so many callers back to back: what the shop
//! does at its peak) and open (calls started at a fixed rate whatever the
//! answers: what arrives when it is offered more than it can do, since
//! customers do not slow down because the shop does).

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinSet;
use tonic::Code;

/// How one call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Answered, but with parts left out because a service behind it
    /// refused or failed (the web home's `degraded` sections): served,
    /// yet not goodput.
    Degraded,
    /// Refused for want of room (`resource_exhausted`).
    Refused,
    Failed(Code),
}

impl Outcome {
    pub fn of<T>(result: &Result<T, tonic::Status>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(status) if status.code() == Code::ResourceExhausted => Self::Refused,
            Err(status) => Self::Failed(status.code()),
        }
    }
}

/// One call: how long its answer took, and what it was.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub latency: Duration,
    pub outcome: Outcome,
}

/// What a run of load gave.
#[derive(Debug, Default)]
pub struct Run {
    pub samples: Vec<Sample>,
    /// From the first call sent to the last answer.
    pub elapsed: Duration,
    /// Calls the generator could not start: it had `cap` in flight already.
    pub not_sent: u64,
}

/// Something to call: the `n`th call.
pub trait Call: Send + Sync + 'static {
    fn call(&self, n: u64) -> impl Future<Output = Outcome> + Send;
}

async fn timed<C: Call>(call: &C, n: u64) -> Sample {
    let started = Instant::now();
    let outcome = call.call(n).await;
    Sample {
        latency: started.elapsed(),
        outcome,
    }
}

/// `callers` callers, each calling back to back for `duration`.
pub async fn closed<C: Call>(call: Arc<C>, callers: u64, duration: Duration) -> Run {
    let started = Instant::now();
    let until = started + duration;
    let mut workers = JoinSet::new();
    for worker in 0..callers {
        let call = call.clone();
        workers.spawn(async move {
            let mut samples = Vec::new();
            let mut n = worker;
            while Instant::now() < until {
                samples.push(timed(call.as_ref(), n).await);
                n += callers;
            }
            samples
        });
    }
    let mut run = Run::default();
    while let Some(done) = workers.join_next().await {
        run.samples.extend(done.unwrap_or_default());
    }
    run.elapsed = started.elapsed();
    run
}

/// Calls started at `rate` a second for `duration`, at most `cap` in
/// flight (beyond that a call is counted as not sent).
pub async fn open<C: Call>(call: Arc<C>, rate: f64, duration: Duration, cap: usize) -> Run {
    let mut samples = Vec::new();
    let mut run = open_with(call, rate, duration, cap, |sample| samples.push(sample)).await;
    run.samples = samples;
    run
}

/// As [`open`], each call's sample handed to `each` as it ends rather than
/// kept (for runs of hours).
pub async fn open_with<C: Call>(
    call: Arc<C>,
    rate: f64,
    duration: Duration,
    cap: usize,
    mut each: impl FnMut(Sample),
) -> Run {
    let total = (rate * duration.as_secs_f64()) as u64;
    let started = Instant::now();
    let mut calls = JoinSet::new();
    let mut run = Run::default();
    let mut sent = 0;
    while sent < total {
        let due = ((started.elapsed().as_secs_f64() * rate) as u64).min(total);
        while sent < due {
            while let Some(done) = calls.try_join_next() {
                done.into_iter().for_each(&mut each);
            }
            if calls.len() >= cap {
                run.not_sent += 1;
            } else {
                let call = call.clone();
                calls.spawn(async move { timed(call.as_ref(), sent).await });
            }
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while let Some(done) = calls.join_next().await {
        done.into_iter().for_each(&mut each);
    }
    run.elapsed = started.elapsed();
    run
}
