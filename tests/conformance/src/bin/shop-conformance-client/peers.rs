//! One `Peer` per server the runner names (its address, its certificate,
//! the certificate to show it), made on first use and kept, with the
//! suite's contract as the call policies (retries or hedging forced on if
//! asked) and TLS from PEM files, as a shop service is given them.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::{FileDescriptorSet, method_options::IdempotencyLevel};
use shop_conformance::{DESCRIPTORS, conformance as pb};
use shop_kit::{
    client::{
        Backoff, CallPolicies, Calls, Codes, Hedging, Peer, PeerPolicy, PeerTarget, Retrying,
    },
    policy::STATUS_CODES,
    tls::ClientTls,
};
use tokio::sync::Mutex;

/// What is turned on for every method beyond what the contract says.
#[derive(Clone, Copy, Debug)]
pub enum Forcing {
    Nothing,
    /// Up to 5 attempts on any failure but `cancelled`.
    Retries,
    /// Up to 3 copies, 10 ms apart, the next at once after any failure but
    /// `cancelled`; each server reached at two endpoints (its own address
    /// and a forwarder's), so that a copy has somewhere else to go.
    Hedging,
}

/// Where a call goes and how it is secured.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Server {
    host: String,
    port: u32,
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

pub struct Peers {
    calls: Calls,
    forcing: Forcing,
    made: Mutex<HashMap<Server, Peer>>,
    /// The PEM files of each server's TLS.
    files: PathBuf,
}

impl Peers {
    /// Peers calling as the suite's contract says, with `forcing` on; with
    /// `repeatable`, as if the contract let every method be sent again
    /// (idempotent for retries, free of side effects for hedging).
    pub fn new(forcing: Forcing, repeatable: bool) -> Result<Self, Box<dyn std::error::Error>> {
        let contract = match (forcing, repeatable) {
            (Forcing::Nothing, _) | (_, false) => shop_kit::policy::descriptors(DESCRIPTORS)?,
            (Forcing::Retries, true) => marked(IdempotencyLevel::Idempotent)?,
            (Forcing::Hedging, true) => marked(IdempotencyLevel::NoSideEffects)?,
        };
        // Every code a call can fail with but `cancelled` (the caller's own).
        let failures: Vec<String> = STATUS_CODES
            .iter()
            .filter(|code| !matches!(**code, "OK" | "CANCELLED"))
            .map(|code| (*code).to_owned())
            .collect();
        let failures = Codes::of(&failures);
        let policies = CallPolicies::of_contract(&contract, None)?.forcing(|calls| match forcing {
            Forcing::Nothing => {}
            Forcing::Retries => {
                calls.retry = Some(Retrying {
                    max_attempts: 5,
                    backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
                    codes: failures,
                });
            }
            Forcing::Hedging => {
                calls.hedging = Some(Hedging {
                    max_attempts: 3,
                    delay: Duration::from_millis(10),
                    non_fatal: failures,
                });
            }
        });
        let calls = Calls::fixed(policies);
        let files =
            std::env::temp_dir().join(format!("shop-conformance-client-{}", std::process::id()));
        std::fs::create_dir_all(&files)?;
        Ok(Self {
            calls,
            forcing,
            made: Mutex::new(HashMap::new()),
            files,
        })
    }

    /// The peer for the server `request` names.
    pub async fn of(&self, request: &pb::ClientCompatRequest) -> Result<Peer, String> {
        let server = Server {
            host: request.host.clone(),
            port: request.port,
            ca: request.server_tls_cert.clone(),
            identity: request
                .client_tls_creds
                .as_ref()
                .map(|creds| (creds.cert.clone(), creds.key.clone())),
        };
        let mut made = self.made.lock().await;
        if let Some(peer) = made.get(&server) {
            return Ok(peer.clone());
        }
        let tls = self.tls(&server, made.len()).map_err(|e| e.to_string())?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut ports = vec![server.port];
        if let Forcing::Hedging = self.forcing {
            ports.push(u32::from(
                forwarder(&server).await.map_err(|e| e.to_string())?,
            ));
        }
        let urls: Vec<String> = ports
            .iter()
            .map(|port| format!("{scheme}://{}:{port}", server.host))
            .collect();
        let target = urls
            .join(",")
            .parse::<PeerTarget>()
            .map_err(|e| e.to_string())?
            .with_tls(tls);
        let policy = PeerPolicy {
            calls: self.calls.clone(),
            // The reference server refuses any request that names no test
            // case (`x-test-case-name`), the health watch included.
            health_checks: false,
            // The suite's cases answer error after error on purpose, which
            // would open the breaker and fail the cases after them fast;
            // its opening is the kit's own tests' to show.
            breaker_threshold: u32::MAX,
            ..PeerPolicy::default()
        };
        let peer = Peer::connect("conformance", &target, policy)
            .await
            .map_err(|e| e.to_string())?;
        made.insert(server, peer.clone());
        Ok(peer)
    }

    /// The server's TLS, its PEMs written to files: none when the runner
    /// gives no server certificate.
    fn tls(&self, server: &Server, nth: usize) -> std::io::Result<Option<ClientTls>> {
        if server.ca.is_empty() {
            return Ok(None);
        }
        let write = |name: &str, bytes: &[u8]| -> std::io::Result<PathBuf> {
            let path = self.files.join(format!("{nth}-{name}"));
            std::fs::write(&path, bytes)?;
            Ok(path)
        };
        let ca = write("ca.pem", &server.ca)?;
        let identity = match &server.identity {
            Some((cert, key)) => Some((write("cert.pem", cert)?, write("key.pem", key)?)),
            None => None,
        };
        ClientTls::load(ca, identity)
            .map(Some)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// The suite's contract with every method marked `level`: its server only
/// echoes, so a call may be sent again, and the forced policies then act
/// on every method (the kit sends a call again only where its contract
/// lets it).
fn marked(level: IdempotencyLevel) -> Result<DescriptorPool, Box<dyn std::error::Error>> {
    let mut set = FileDescriptorSet::decode(DESCRIPTORS)?;
    for method in set
        .file
        .iter_mut()
        .flat_map(|file| file.service.iter_mut())
        .flat_map(|service| service.method.iter_mut())
    {
        method.options.get_or_insert_default().idempotency_level = Some(level as i32);
    }
    Ok(shop_kit::policy::descriptors(&set.encode_to_vec())?)
}

/// A second way to `server`: a port whose connections are forwarded to it
/// byte for byte (TLS included), for the rest of the run.
async fn forwarder(server: &Server) -> std::io::Result<u16> {
    let to = format!("{}:{}", server.host, server.port);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut accepted, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&to).await {
                    let _ = tokio::io::copy_bidirectional(&mut accepted, &mut server).await;
                }
            });
        }
    });
    Ok(port)
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.files);
    }
}
