//! Whether the machine itself held everything up: a plain thread (not a
//! task, so no busy runtime delays it) sleeps 10 ms at a time and notes
//! how late it woke, and the kernel's CPU pressure says what share of the
//! time some task waited for a CPU (`/proc/pressure/cpu`). A stall every
//! process shows at once, the load generator's thread included, is the
//! machine's (its cores taken, or the whole VM paused by its host), not
//! one service's or the database's.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

/// How long the watching thread sleeps at a time.
const NAP: Duration = Duration::from_millis(10);

/// The watching thread; it stops when this is dropped.
pub struct Pauses {
    longest_us: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Pauses {
    pub fn watch() -> std::io::Result<Self> {
        let longest_us = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        thread::Builder::new()
            .name("soak-pauses".to_owned())
            .spawn({
                let (longest_us, stop) = (longest_us.clone(), stop.clone());
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        let asleep = Instant::now();
                        thread::sleep(NAP);
                        let late = asleep.elapsed().saturating_sub(NAP);
                        let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                        longest_us.fetch_max(late_us, Ordering::Relaxed);
                    }
                }
            })?;
        Ok(Self { longest_us, stop })
    }

    /// The longest the thread woke late since the last call, in ms.
    pub fn take_longest_ms(&self) -> f64 {
        self.longest_us.swap(0, Ordering::Relaxed) as f64 / 1000.0
    }
}

impl Drop for Pauses {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Microseconds in which some task waited for a CPU, since boot (`some
/// total=` of `/proc/pressure/cpu`); `None` where the kernel does not say.
pub fn cpu_waited_us() -> Option<u64> {
    let pressure = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    some_total(&pressure)
}

fn some_total(pressure: &str) -> Option<u64> {
    pressure
        .lines()
        .find(|line| line.starts_with("some "))?
        .split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_tasks_waited_is_read_from_the_some_line() {
        let pressure = "some avg10=86.52 avg60=86.48 avg300=89.28 total=10522990239\n\
                        full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(some_total(pressure), Some(10_522_990_239));
        assert_eq!(some_total("full avg10=0.00 total=5\n"), None);
    }
}
