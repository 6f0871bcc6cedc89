//! A TLS config built from files, built again when they change: a task
//! looks at the files' contents every [`RELOAD_EVERY`] (a Kubernetes
//! Secret is updated by swapping a symlink, so contents, not events, are
//! what to watch). A change that loads replaces the config for new
//! connections; one that does not is logged and the last good config stays.

use std::{
    path::PathBuf,
    sync::{Arc, PoisonError, RwLock, Weak},
    time::Duration,
};

use sha2::{Digest, Sha256};

use super::TlsError;

/// How often the files are looked at.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

type Build<T> = dyn Fn() -> Result<T, TlsError> + Send + Sync;

/// The config in use, swapped when its files change.
pub(super) struct Reloading<T> {
    current: Arc<RwLock<Arc<T>>>,
}

impl<T> Clone for Reloading<T> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Reloading<T> {
    /// Builds the config once (an error here is a start-up error), then,
    /// inside a Tokio runtime, watches `files` for as long as a clone of
    /// it lives.
    pub(super) fn load(
        what: &'static str,
        files: Vec<PathBuf>,
        build: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Self, TlsError> {
        let fingerprint = fingerprint(&files);
        let current = Arc::new(RwLock::new(Arc::new(build()?)));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(watch(
                what,
                files,
                fingerprint,
                Box::new(build),
                Arc::downgrade(&current),
            ));
        }
        Ok(Self { current })
    }

    pub(super) fn current(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn watch<T>(
    what: &'static str,
    files: Vec<PathBuf>,
    mut last: Option<[u8; 32]>,
    build: Box<Build<T>>,
    current: Weak<RwLock<Arc<T>>>,
) {
    let mut tick = tokio::time::interval(RELOAD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(current) = current.upgrade() else {
            return;
        };
        let now = fingerprint(&files);
        if now == last {
            continue;
        }
        last = now;
        let names = || {
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match build() {
            Ok(config) => {
                *current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
                tracing::info!(
                    files = names(),
                    "TLS {what} reloaded: new connections use it"
                );
            }
            Err(error) => tracing::warn!(
                files = names(),
                %error,
                "TLS {what} changed but does not load: keeping the one in use"
            ),
        }
    }
}

/// The files' contents, hashed (None if one cannot be read: a rotation
/// half done, looked at again next time).
fn fingerprint(files: &[PathBuf]) -> Option<[u8; 32]> {
    let mut hash = Sha256::new();
    for file in files {
        hash.update(std::fs::read(file).ok()?);
        hash.update([0]);
    }
    Some(hash.finalize().into())
}
