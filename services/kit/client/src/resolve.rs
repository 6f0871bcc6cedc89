//! Turning a peer's entries into the addresses to call: IP addresses as
//! they are, names through DNS (hickory-resolver: the system's
//! configuration, `/etc/resolv.conf` and `/etc/hosts`, as a pod has it; or
//! the DNS server a `dns://server/` entry names). Answers are kept no longer
//! than [`MAX_TTL`], so re-resolving sees new replicas soon.

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    sync::{Mutex, OnceLock, PoisonError},
    time::Duration,
};

use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
};

use super::target::{Entry, Host, PeerTarget, Scheme};

/// How long a DNS answer is trusted at most (the TTL it came with, if
/// shorter): the resolver asks again after that.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(5);
/// A lookup's time limit, per attempt.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// One address a peer answers at, and how to speak to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Address {
    pub(crate) addr: SocketAddr,
    pub(crate) scheme: Scheme,
    /// `host:port` as configured: the request authority (and, with TLS,
    /// the name the certificate must carry).
    pub(crate) authority: String,
}

impl Address {
    /// The host of its authority: the name (or IP address) its TLS
    /// certificate must carry.
    pub(crate) fn host(&self) -> &str {
        let host = self
            .authority
            .rsplit_once(':')
            .map_or(self.authority.as_str(), |(host, _)| host);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// What resolving a target found: every address, and the names that did
/// not resolve (with why).
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    pub(crate) addresses: BTreeSet<Address>,
    pub(crate) failures: Vec<String>,
}

/// Resolves every entry of `target` (names concurrently).
pub(crate) async fn resolve(target: &PeerTarget) -> Resolution {
    let lookups = target.entries().iter().map(|entry| async move {
        let found = match &entry.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, entry.port)]),
            Host::Name(name) => lookup(name, entry).await,
        };
        (entry, found)
    });
    let mut resolution = Resolution::default();
    for (entry, found) in futures::future::join_all(lookups).await {
        match found {
            Ok(addrs) => resolution
                .addresses
                .extend(addrs.into_iter().map(|addr| Address {
                    addr,
                    scheme: entry.scheme,
                    authority: entry.authority(),
                })),
            Err(reason) => resolution.failures.push(reason),
        }
    }
    resolution
}

async fn lookup(name: &str, entry: &Entry) -> Result<Vec<SocketAddr>, String> {
    let resolver = resolver(entry.dns_server)?;
    let found = resolver
        .lookup_ip(name)
        .await
        .map_err(|error| format!("{name}: {error}"))?;
    let addrs: Vec<SocketAddr> = found
        .iter()
        .map(|ip| SocketAddr::new(ip, entry.port))
        .collect();
    if addrs.is_empty() {
        return Err(format!("{name}: no addresses"));
    }
    Ok(addrs)
}

/// The resolver for `server` (`None`: the system's), made once.
fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, String> {
    static SYSTEM: OnceLock<Result<TokioResolver, String>> = OnceLock::new();
    static BY_SERVER: OnceLock<Mutex<HashMap<SocketAddr, TokioResolver>>> = OnceLock::new();
    match server {
        None => SYSTEM
            .get_or_init(|| {
                let mut builder = TokioResolver::builder_tokio()
                    .map_err(|e| format!("the system's DNS configuration: {e}"))?;
                tune(builder.options_mut());
                builder
                    .build()
                    .map_err(|e| format!("the system's DNS configuration: {e}"))
            })
            .clone(),
        Some(server) => {
            let mut known = BY_SERVER
                .get_or_init(Mutex::default)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(resolver) = known.get(&server) {
                return Ok(resolver.clone());
            }
            let connection = |mut config: ConnectionConfig| {
                config.port = server.port();
                config
            };
            let config = ResolverConfig::from_parts(
                None,
                Vec::new(),
                vec![NameServerConfig::new(
                    server.ip(),
                    true,
                    vec![
                        connection(ConnectionConfig::udp()),
                        connection(ConnectionConfig::tcp()),
                    ],
                )],
            );
            let mut builder =
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
            tune(builder.options_mut());
            let resolver = builder
                .build()
                .map_err(|e| format!("the DNS server {server}: {e}"))?;
            known.insert(server, resolver.clone());
            Ok(resolver)
        }
    }
}

fn tune(options: &mut hickory_resolver::config::ResolverOpts) {
    options.positive_max_ttl = Some(MAX_TTL);
    options.negative_max_ttl = Some(Duration::from_secs(1));
    options.timeout = LOOKUP_TIMEOUT;
    options.attempts = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_addresses_need_no_lookup_and_lists_are_merged() {
        let target: PeerTarget = "http://127.0.0.2:1,http://127.0.0.3:1,http://127.0.0.2:1"
            .parse()
            .expect("target");
        let found = resolve(&target).await;
        assert!(found.failures.is_empty());
        let addrs: Vec<String> = found.addresses.iter().map(|a| a.addr.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.2:1", "127.0.0.3:1"]);
    }

    #[tokio::test]
    async fn names_come_from_the_hosts_file_too() {
        let target: PeerTarget = "http://localhost:7".parse().expect("target");
        let found = resolve(&target).await;
        assert!(
            found
                .addresses
                .iter()
                .any(|a| a.addr.ip().is_loopback() && a.authority == "localhost:7"),
            "{found:?}"
        );
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_failure_naming_it() {
        let target: PeerTarget = "http://no-such-peer.invalid:1".parse().expect("target");
        let found = resolve(&target).await;
        assert!(found.addresses.is_empty());
        assert!(
            found.failures[0].contains("no-such-peer.invalid"),
            "{found:?}"
        );
    }
}
