//! The nemesis: one fault at a time on a random service, for a random,
//! bounded time, then a random pause before the next; all from the seed.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

use super::Options;
use crate::app_suite::shop::Shop;

/// What the nemesis does to a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL, then a fresh start on the same data once the fault is over.
    Kill,
    /// SIGSTOP, then SIGCONT: a stalled process holding its connections.
    Pause,
}

/// The faults struck: (service, fault) -> how many.
pub type Strikes = BTreeMap<(&'static str, Fault), u32>;

/// Strikes until `until`; leaves every service running.
pub async fn strike(shop: &mut Shop, options: &Options, until: Instant) -> anyhow::Result<Strikes> {
    let mut rng = StdRng::seed_from_u64(options.seed.rotate_left(17));
    let mut strikes = Strikes::new();
    if options.faults.is_empty() || options.targets.is_empty() {
        tokio::time::sleep_until(until.into()).await;
        return Ok(strikes);
    }
    let shortest = Duration::from_millis(100).min(options.longest_fault);
    loop {
        let calm = Duration::from_millis(rng.gen_range(300..=1500));
        if Instant::now() + calm >= until {
            tokio::time::sleep_until(until.into()).await;
            return Ok(strikes);
        }
        tokio::time::sleep(calm).await;
        let (Some(&service), Some(&fault)) = (
            options.targets.choose(&mut rng),
            options.faults.choose(&mut rng),
        ) else {
            continue;
        };
        let lasting = rng.gen_range(shortest..=options.longest_fault);
        match fault {
            Fault::Kill => {
                shop.kill(service).await?;
                tokio::time::sleep(lasting).await;
                shop.restart(service).await?;
            }
            Fault::Pause => {
                shop.pause(service)?;
                tokio::time::sleep(lasting).await;
                shop.resume(service)?;
            }
        }
        *strikes.entry((service, fault)).or_default() += 1;
    }
}

/// "faults: catalog killed 3, orders paused 2, ..."
pub fn summary(strikes: &Strikes) -> String {
    let total: u32 = strikes.values().sum();
    let each: Vec<String> = strikes
        .iter()
        .map(|((service, fault), n)| {
            let done = match fault {
                Fault::Kill => "killed",
                Fault::Pause => "paused",
            };
            format!("{service} {done} {n}")
        })
        .collect();
    format!("faults: {total} ({})", each.join(", "))
}
