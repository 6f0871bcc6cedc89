//! TLS for the kit's listener and clients, on rustls (ring):
//!
//! - [`ServerTls`]: a listener's certificate and key (PEM files), ALPN
//!   `h2` and `http/1.1` (Connect, gRPC and gRPC-Web on one port), and,
//!   with a client CA, the client certificates it accepts;
//! - [`ClientTls`]: the CA a client trusts and the certificate it presents;
//! - [`TlsSession`]: what a connection's client certificate says of its
//!   caller ([`ClientIdentity`]), on every request of that connection;
//! - [`DevCa`]: a CA and certificates for development (`shop certs`).
//!
//! Certificates, keys and CAs are read again when their files change
//! (rotation without a restart): new connections get the new ones, those
//! in flight keep theirs, and files that do not load leave the last good
//! ones in use. No key material is ever logged: errors name files.

mod client;
mod config;
mod dev;
mod expiry;
mod identity;
mod pem;
mod reload;
mod server;

use std::path::PathBuf;

pub use client::{ClientTls, Connector};
pub use config::{ClientTlsConfig, ServerTlsConfig};
pub use dev::{DevCa, IssuedPem, Usage, server_names};
pub use expiry::EXPIRY_METRIC;
pub use identity::{ClientIdentity, ServiceNames, TlsSession};
pub use reload::RELOAD_EVERY;
pub use server::{Accepted, Refused, ServerTls};

/// Why TLS could not be set up; every file is named, no content shown.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Pem { path: PathBuf, what: String },
    #[error("the key {} does not match the certificate {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: {reason}", path.display())]
    Rejected { path: PathBuf, reason: String },
    #[error("{0}")]
    Flags(String),
    #[error("{0:?} is no name a certificate can carry")]
    ServerName(String),
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The crypto every TLS config of the kit uses: rustls on ring.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<std::sync::Arc<rustls::crypto::CryptoProvider>> =
        std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}
