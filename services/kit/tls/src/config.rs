//! How a service serves and calls over TLS: the files, read by `load`.
//! The program decides where they come from (the shop's flags).

use std::path::PathBuf;

use super::{ClientTls, ServerTls, TlsError};

/// A listener's TLS: without `--tls-cert`, h2c and HTTP/1.1 in clear text.
#[derive(Clone, Debug, Default)]
pub struct ServerTlsConfig {
    /// Serve TLS (HTTP/2 and HTTP/1.1 by ALPN) with this PEM certificate
    /// chain; plain text on the port is then refused. Re-read when the
    /// file changes.
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,

    /// Ask callers for a client certificate and verify it against these
    /// PEM CAs (mutual TLS). Callers without one are still served (browsers,
    /// curl); one that does not verify is refused at the handshake.
    pub tls_client_ca: Option<PathBuf>,

    /// The internal services (those only the shop's services call) accept
    /// only callers whose client certificate, from --tls-client-ca, names
    /// one of the shop's services: a service token alone gets nothing.
    pub tls_require_service_cert: bool,

    /// Migration only: also serve clients that speak plain text on the TLS
    /// port (the first byte tells them apart), until they all use TLS.
    pub tls_allow_plaintext: bool,

    /// Which services a client certificate may name: the application's
    /// (no flag; none by default).
    pub service_names: super::ServiceNames,
}

impl ServerTlsConfig {
    /// The listener's TLS, if configured; files are read (and watched) now.
    pub fn load(&self) -> Result<Option<ServerTls>, TlsError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => {
                let needs_cert = [
                    (self.tls_client_ca.is_some(), "--tls-client-ca"),
                    (self.tls_require_service_cert, "--tls-require-service-cert"),
                    (self.tls_allow_plaintext, "--tls-allow-plaintext"),
                ];
                match needs_cert.iter().find(|(given, _)| *given) {
                    Some((_, flag)) => Err(TlsError::Flags(format!(
                        "{flag} needs --tls-cert and --tls-key"
                    ))),
                    None => Ok(None),
                }
            }
            (Some(cert), Some(key)) => {
                if self.tls_require_service_cert && self.tls_client_ca.is_none() {
                    return Err(TlsError::Flags(
                        "--tls-require-service-cert needs --tls-client-ca".to_owned(),
                    ));
                }
                ServerTls::load(
                    cert.clone(),
                    key.clone(),
                    self.tls_client_ca.clone(),
                    self.tls_require_service_cert,
                    self.tls_allow_plaintext,
                    self.service_names.clone(),
                )
                .map(Some)
            }
            (Some(_), None) => Err(TlsError::Flags("--tls-cert needs --tls-key".to_owned())),
            (None, Some(_)) => Err(TlsError::Flags("--tls-key needs --tls-cert".to_owned())),
        }
    }

    /// Whether the listener serves TLS.
    pub fn is_enabled(&self) -> bool {
        self.tls_cert.is_some()
    }
}

/// How the shop's services call each other over TLS: the CA they trust,
/// and the certificate they present.
#[derive(Clone, Debug, Default)]
pub struct ClientTlsConfig {
    /// PEM CAs that sign the certificates of the services this one calls
    /// (its https:// and dns:/// peers).
    pub tls_ca: Option<PathBuf>,

    /// The PEM certificate this service presents when it calls another
    /// (mutual TLS), e.g. one naming spiffe://<trust domain>/orders.
    pub tls_client_cert: Option<PathBuf>,

    /// The PEM private key of --tls-client-cert.
    pub tls_client_key: Option<PathBuf>,
}

impl ClientTlsConfig {
    /// The clients' TLS, if configured; files are read (and watched) now.
    pub fn load(&self) -> Result<Option<ClientTls>, TlsError> {
        let identity = match (&self.tls_client_cert, &self.tls_client_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(TlsError::Flags(
                    "--tls-client-cert needs --tls-client-key".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(TlsError::Flags(
                    "--tls-client-key needs --tls-client-cert".to_owned(),
                ));
            }
        };
        match &self.tls_ca {
            Some(ca) => ClientTls::load(ca.clone(), identity).map(Some),
            None if identity.is_some() => Err(TlsError::Flags(
                "--tls-client-cert needs --tls-ca (the CA of the services it calls)".to_owned(),
            )),
            None => Ok(None),
        }
    }
}
