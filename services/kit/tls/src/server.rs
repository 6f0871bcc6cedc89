//! A listener's TLS: the handshake (bounded in time), ALPN `h2` and
//! `http/1.1`, the client certificate (with a client CA), and what to do
//! with a client that speaks plain text to the TLS port.

use std::{path::PathBuf, sync::Arc, time::Duration};

use rustls::{ServerConfig, server::WebPkiClientVerifier};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use super::{
    TlsError,
    identity::{ClientIdentity, ServiceNames, TlsSession},
    pem,
    reload::Reloading,
};

/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;
/// What a plain-text client is told before the connection is closed.
const PLAIN_TEXT_REFUSED: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Connection: close\r\n\
    Content-Length: 49\r\n\r\n\
    This port speaks TLS only: call it with https://\n";

/// A listener's TLS settings, reloaded when their files change.
#[derive(Clone)]
pub struct ServerTls {
    config: Reloading<ServerConfig>,
    require_service_cert: bool,
    allow_plaintext: bool,
    /// Who a client certificate may name.
    services: ServiceNames,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("require_service_cert", &self.require_service_cert)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish_non_exhaustive()
    }
}

/// A connection after its first bytes.
pub enum Accepted {
    Tls(Box<TlsStream<TcpStream>>, TlsSession),
    /// Plain text, served because `--tls-allow-plaintext` says so.
    Plain(TcpStream),
}

/// Why a connection was not served.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("plain text on the TLS port")]
    PlainText,
    #[error("the TLS handshake took longer than {0:?}")]
    Slow(Duration),
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
}

impl Refused {
    /// A metric label: one of a few words.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PlainText => "plain_text",
            Self::Slow(_) => "slow_handshake",
            Self::Handshake(_) => "handshake",
        }
    }
}

impl ServerTls {
    pub(super) fn load(
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
        require_service_cert: bool,
        allow_plaintext: bool,
        services: ServiceNames,
    ) -> Result<Self, TlsError> {
        let mut files = vec![cert.clone(), key.clone()];
        files.extend(client_ca.clone());
        let config = Reloading::load("server certificate", files, move || {
            server_config(&cert, &key, client_ca.as_deref())
        })?;
        Ok(Self {
            config,
            require_service_cert,
            allow_plaintext,
            services,
        })
    }

    /// Completes a connection's TLS handshake within `patience`, or
    /// refuses it (after telling a plain-text HTTP client why).
    pub async fn accept(
        &self,
        mut tcp: TcpStream,
        patience: Duration,
    ) -> Result<Accepted, Refused> {
        let handshake = async {
            let mut first = [0u8; 1];
            let peeked = tcp.peek(&mut first).await.map_err(Refused::Handshake)?;
            if peeked == 1 && first[0] != TLS_HANDSHAKE {
                if self.allow_plaintext {
                    return Ok(Accepted::Plain(tcp));
                }
                let _ = tcp.write_all(PLAIN_TEXT_REFUSED).await;
                let _ = tcp.shutdown().await;
                return Err(Refused::PlainText);
            }
            let acceptor = TlsAcceptor::from(self.config.current());
            let stream = acceptor.accept(tcp).await.map_err(Refused::Handshake)?;
            let client = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(<[_]>::first)
                .map(|certificate| ClientIdentity::of(certificate, &self.services));
            let session = TlsSession {
                client,
                service_certificate_required: self.require_service_cert,
            };
            Ok(Accepted::Tls(Box::new(stream), session))
        };
        tokio::time::timeout(patience, handshake)
            .await
            .map_err(|_| Refused::Slow(patience))?
    }
}

fn server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> Result<ServerConfig, TlsError> {
    let certified = pem::certified_key("server", cert, key)?;
    let provider = super::provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    let builder = match client_ca {
        Some(ca) => {
            // Browsers and curl show no certificate and are still served;
            // a certificate that does not verify is refused.
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(pem::roots(ca)?), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::Rejected {
                        path: ca.to_owned(),
                        reason: e.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
