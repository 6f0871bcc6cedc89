//! Reading PEM files: certificate chains, private keys, CA bundles. Every
//! error names the file and what was wrong with it, never its content.

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::TlsError;

/// PEM files larger than this are refused (a bundle of a few hundred CAs
/// is well under it).
const MAX_PEM_BYTES: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    let failed = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(failed)?.len();
    if size > MAX_PEM_BYTES {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: format!("{size} bytes: larger than a PEM file should be"),
        });
    }
    std::fs::read(path).map_err(failed)
}

/// The certificates of a PEM file (a leaf and its chain, or CAs).
pub(super) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: format!("not a valid PEM file ({e})"),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "no certificate in it (expected -----BEGIN CERTIFICATE-----)".to_owned(),
        });
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(super) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        what: match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no private key in it (expected -----BEGIN PRIVATE KEY-----)".to_owned()
            }
            other => format!("not a valid PEM private key ({other})"),
        },
    })
}

/// The CAs of a PEM bundle, as trust anchors.
pub(super) fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path)? {
        roots.add(certificate).map_err(|e| TlsError::Rejected {
            path: path.to_owned(),
            reason: format!("not a usable CA certificate ({e})"),
        })?;
    }
    Ok(roots)
}

/// A certificate chain and its key, checked to belong together; its
/// expiry recorded for `role` (see [`super::expiry`]).
pub(super) fn certified_key(
    role: &'static str,
    cert: &Path,
    key: &Path,
) -> Result<std::sync::Arc<rustls::sign::CertifiedKey>, TlsError> {
    let chain = certificates(cert)?;
    let private = private_key(key)?;
    let provider = super::provider();
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| TlsError::Rejected {
            path: key.to_owned(),
            reason: format!("not a usable private key ({e})"),
        })?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // Unknown: the key cannot tell its public half; the handshake will.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            if let Some(leaf) = certified.cert.first() {
                super::expiry::record(role, cert, leaf);
            }
            Ok(std::sync::Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }),
        Err(e) => Err(TlsError::Rejected {
            path: cert.to_owned(),
            reason: e.to_string(),
        }),
    }
}
