//! Password hashing with argon2id, off the async threads (it is meant to be
//! slow) and bounded: every hash takes ~19 MiB and a core for a while, so
//! at most one per core runs at once, within a memory budget. Callers
//! beyond that wait a short, bounded time (never past their deadline) and
//! are otherwise told to come back (resource_exhausted), so a burst of
//! log-ins cannot exhaust memory. Each slot keeps its hash's memory for the
//! next: the service holds at most slots × 19 MiB for hashing, steadily.

mod argon2id;

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use argon2::Block;
use tokio::{sync::Semaphore, time::Instant};

use crate::error::UsersError;

/// Memory one argon2id hash with the default parameters takes: 19 MiB of
/// blocks (m=19456 KiB), counted as 20 for the allocator's own slack.
pub const MIB_PER_HASH: usize = 20;

/// How much password hashing may use, from flags or env.
#[derive(Clone, Debug)]
pub struct HashingConfig {
    /// Memory password hashing may use at once, in MiB (each argon2id hash
    /// takes ~20 MiB, so 256 allows 12 at once, and never more than the
    /// cores).
    pub password_hashing_mib: usize,
    /// How long a sign-in or log-in waits for a free hashing slot before it
    /// is refused with resource_exhausted, in milliseconds.
    pub password_hashing_wait_ms: u64,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self {
            password_hashing_mib: 256,
            password_hashing_wait_ms: 2000,
        }
    }
}

/// Hashes and checks passwords, at most N at once.
#[derive(Clone, Debug)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    /// The memory of the hashes not running now, one per slot at most.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    max_wait: Duration,
}

impl Passwords {
    pub fn new(config: &HashingConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            slots: Arc::new(Semaphore::new(Self::slots_for(
                config.password_hashing_mib,
                cores,
            ))),
            memory: Arc::default(),
            max_wait: Duration::from_millis(config.password_hashing_wait_ms),
        }
    }

    /// How many hashes run at once: as many as fit in `budget_mib`, and no
    /// more than `cores` (hashes beyond them only slow each other down and
    /// hold their memory longer); at least one.
    pub fn slots_for(budget_mib: usize, cores: usize) -> usize {
        (budget_mib / MIB_PER_HASH).min(cores).max(1)
    }

    /// A PHC-format argon2id hash of `password` with a fresh salt.
    pub async fn hash(
        &self,
        password: String,
        deadline: Option<Instant>,
    ) -> Result<String, UsersError> {
        self.run(deadline, move |memory| {
            argon2id::hash(password.as_bytes(), memory)
        })
        .await
    }

    /// Whether `password` matches `hash`. With no hash (unknown email) a
    /// dummy one is checked anyway, so timing does not tell which emails
    /// exist.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
        deadline: Option<Instant>,
    ) -> Result<bool, UsersError> {
        self.run(deadline, move |memory| {
            let known = hash.is_some();
            let hash = hash.as_deref().unwrap_or(DUMMY_HASH);
            let matches = argon2id::verify(password.as_bytes(), hash, memory)?;
            Ok(known && matches)
        })
        .await
    }

    /// Runs `work` on the blocking pool, in the memory a slot keeps, once a
    /// slot is free; waits at most `max_wait`, and never past the caller's
    /// deadline.
    async fn run<T: Send + 'static>(
        &self,
        deadline: Option<Instant>,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, UsersError> + Send + 'static,
    ) -> Result<T, UsersError> {
        let give_up = deadline.map_or(Instant::now() + self.max_wait, |deadline| {
            deadline.min(Instant::now() + self.max_wait)
        });
        let slot = tokio::time::timeout_at(give_up, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| UsersError::HashingBusy)?
            .map_err(|_| UsersError::HashingBusy)?;
        // Hashing is the slow part of a sign-in: its own span.
        let span = shop_kit::observe::traces::work_span("argon2id");
        let kept = self.memory.clone();
        shop_kit::task::spawn_blocking(move || {
            let _hashing = span.enter();
            let taken = kept.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut memory = taken.unwrap_or_else(argon2id::memory);
            let result = work(&mut memory);
            kept.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(memory);
            drop(slot);
            result
        })
        .await
        .map_err(|e| UsersError::Hashing(e.to_string()))?
    }
}

/// argon2id of a random password, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2hvcHNhbHRzaG9wc2FsdA$Vq0d0C2w4Qm6xk7M3N2xg6QbS5m8cH1pYqzZ5y4tR0E";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_memory_budget_and_the_cores() {
        assert_eq!(Passwords::slots_for(256, 64), 12);
        assert_eq!(Passwords::slots_for(256, 2), 2);
        assert_eq!(Passwords::slots_for(20, 8), 1);
        assert_eq!(Passwords::slots_for(0, 8), 1);
        assert_eq!(Passwords::slots_for(256, 0), 1);
    }

    #[tokio::test]
    async fn a_slots_memory_is_kept_for_the_next_hash() {
        let passwords = Passwords::new(&HashingConfig {
            password_hashing_mib: MIB_PER_HASH,
            password_hashing_wait_ms: 5_000,
        });
        let hash = passwords
            .hash("a password 1".to_owned(), None)
            .await
            .expect("hash");
        for _ in 0..3 {
            assert!(
                passwords
                    .verify("a password 1".to_owned(), Some(hash.clone()), None)
                    .await
                    .expect("verify")
            );
            assert!(
                !passwords
                    .verify("a password 1".to_owned(), None, None)
                    .await
                    .expect("verify")
            );
        }
        let kept = passwords.memory.lock().expect("memory");
        assert_eq!(kept.len(), 1, "one slot, one memory");
        assert_eq!(kept[0].len(), argon2id::memory().len());
    }

    #[tokio::test]
    async fn callers_beyond_the_slots_are_refused_after_a_bounded_wait() {
        let passwords = Passwords::new(&HashingConfig {
            password_hashing_mib: MIB_PER_HASH,
            password_hashing_wait_ms: 50,
        });
        let _held = passwords.slots.clone().acquire_owned().await.expect("slot");
        let started = Instant::now();
        let refused = passwords.hash("a password 1".to_owned(), None).await;
        assert!(
            matches!(refused, Err(UsersError::HashingBusy)),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        // A caller whose deadline is nearer gives up sooner: 5 ms against a
        // wait of 5 s, bounded at 1 s so that a busy machine cannot fail it.
        let patient = Passwords::new(&HashingConfig {
            password_hashing_mib: MIB_PER_HASH,
            password_hashing_wait_ms: 5_000,
        });
        let _held = patient.slots.clone().acquire_owned().await.expect("slot");
        let started = Instant::now();
        let soon = Some(Instant::now() + Duration::from_millis(5));
        assert!(patient.verify("x".to_owned(), None, soon).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
