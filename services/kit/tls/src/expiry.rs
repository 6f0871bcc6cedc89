//! When the certificates in use expire, as a metric an alert can watch
//! (`shop_tls_certificate_expiry_timestamp_seconds`): set each time a
//! certificate is loaded, so a renewal that reached the files, and was
//! reloaded, moves it forward; one that did not leaves it to run out.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use x509_parser::prelude::FromDer;

/// The metric: seconds since the epoch at which the leaf certificate of
/// `file` stops being valid, labelled by its `role` (server or client) and
/// file (a handful per process: the files it was configured with).
pub const EXPIRY_METRIC: &str = "shop_tls_certificate_expiry_timestamp_seconds";

/// Records when `leaf`, read from `file`, expires. A certificate x509-parser
/// cannot read is left out: rustls has accepted it, and the handshake is
/// what counts.
pub(super) fn record(role: &'static str, file: &Path, leaf: &CertificateDer<'_>) {
    let Ok((_, parsed)) = x509_parser::certificate::X509Certificate::from_der(leaf) else {
        return;
    };
    let not_after = parsed.validity().not_after.timestamp();
    metrics::gauge!(
        EXPIRY_METRIC,
        "role" => role,
        "file" => file.display().to_string()
    )
    .set(not_after as f64);
}
