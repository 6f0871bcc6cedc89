//! The TLS the shop's clients speak: the CA they trust for their peers,
//! the certificate they present (mutual TLS), and the connector that
//! makes a TLS stream to each endpoint.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::{TlsError, pem, reload::Reloading};

/// A client's TLS settings, reloaded when their files change.
#[derive(Clone)]
pub struct ClientTls {
    config: Reloading<ClientConfig>,
    files: Arc<(PathBuf, Option<(PathBuf, PathBuf)>)>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.files.0)
            .field("certificate", &self.files.1.as_ref().map(|(cert, _)| cert))
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.files == other.files
    }
}

impl Eq for ClientTls {}

impl ClientTls {
    /// Trusts the CAs of `ca`; presents `identity` (certificate, key) if
    /// given.
    pub fn load(ca: PathBuf, identity: Option<(PathBuf, PathBuf)>) -> Result<Self, TlsError> {
        let mut files = vec![ca.clone()];
        if let Some((cert, key)) = &identity {
            files.extend([cert.clone(), key.clone()]);
        }
        let (for_build, identity_for_build) = (ca.clone(), identity.clone());
        let config = Reloading::load("client certificate", files, move || {
            client_config(&for_build, identity_for_build.as_ref())
        })?;
        Ok(Self {
            config,
            files: Arc::new((ca, identity)),
        })
    }

    /// Connects to `addr` and completes the handshake, expecting a
    /// certificate for `server_name` (a DNS name or an IP address).
    pub fn connector(
        &self,
        addr: SocketAddr,
        server_name: &str,
        connect_timeout: Duration,
    ) -> Result<Connector, TlsError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::ServerName(server_name.to_owned()))?;
        Ok(Connector {
            tls: self.clone(),
            addr,
            name,
            connect_timeout,
        })
    }
}

fn client_config(
    ca: &std::path::Path,
    identity: Option<&(PathBuf, PathBuf)>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected {
            path: ca.to_owned(),
            reason: e.to_string(),
        })?
        .with_root_certificates(pem::roots(ca)?);
    let mut config = match identity {
        Some((cert, key)) => builder.with_client_cert_resolver(Arc::new(
            rustls::sign::SingleCertAndKey::from(pem::certified_key("client", cert, key)?),
        )),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Makes TLS connections to one endpoint, whose address and name it
/// knows.
#[derive(Clone)]
pub struct Connector {
    tls: ClientTls,
    addr: SocketAddr,
    name: ServerName<'static>,
    connect_timeout: Duration,
}

impl Connector {
    /// A TLS connection to the endpoint (TCP and handshake within the
    /// connect timeout), its certificate checked against the CA and name.
    pub async fn connect(&self) -> std::io::Result<TokioIo<TlsStream<TcpStream>>> {
        let connector = TlsConnector::from(self.tls.config.current());
        let (addr, patience) = (self.addr, self.connect_timeout);
        let connecting = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            connector.connect(self.name.clone(), tcp).await
        };
        let stream = tokio::time::timeout(patience, connecting)
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("TLS connection to {addr} took longer than {patience:?}"),
                )
            })??;
        Ok(TokioIo::new(stream))
    }
}
