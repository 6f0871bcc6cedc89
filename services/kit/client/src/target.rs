//! Where a peer is: the value of a flag such as `--catalog-url`. One or more
//! comma-separated entries, each either
//!
//! - a base URL, `http://host:port` (or `https://`): an IP address, or a
//!   name whose every address is used and looked up again periodically;
//! - a DNS target as gRPC writes it, `dns:///host:port` (the system's
//!   resolver, e.g. a Kubernetes headless Service) or
//!   `dns://server:port/host:port` (that DNS server), looked up again
//!   periodically.
//!
//! Parsing checks the form only; names are resolved when the peer is
//! connected (see [`super::Peer::connect`]).

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use shop_kit_tls::ClientTls;

/// A peer's addresses as configured, and the TLS its https entries (and,
/// with TLS given, its `dns:///` entries) are called with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTarget {
    entries: Vec<Entry>,
    tls: Option<ClientTls>,
    /// The text it was parsed from, for messages.
    text: String,
    /// Where it was configured (a flag), for messages.
    origin: Option<&'static str>,
}

/// One entry of a peer's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) scheme: Scheme,
    pub(crate) host: Host,
    pub(crate) port: u16,
    /// The DNS server a `dns://server/` entry names; else the system's.
    pub(crate) dns_server: Option<SocketAddr>,
    /// A `dns:` entry (no scheme of its own: TLS when TLS is given).
    pub(crate) dns: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Scheme {
    Http,
    Https,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Ip(IpAddr),
    Name(String),
}

/// Why a peer's address was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTarget(String);

fn bad(reason: impl Into<String>) -> BadTarget {
    BadTarget(reason.into())
}

/// Entries per peer at most: a longer list is a configuration mistake.
const MAX_ENTRIES: usize = 64;
/// The DNS port, when a `dns://server/` names none.
const DNS_PORT: u16 = 53;

impl FromStr for PeerTarget {
    type Err = BadTarget;

    fn from_str(text: &str) -> Result<Self, BadTarget> {
        let mut entries = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(bad(format!(
                    "{text:?} has an empty entry (a list is comma-separated URLs)"
                )));
            }
            entries.push(parse_entry(part)?);
        }
        if entries.len() > MAX_ENTRIES {
            return Err(bad(format!(
                "{} entries; at most {MAX_ENTRIES}",
                entries.len()
            )));
        }
        Ok(Self {
            entries,
            tls: None,
            text: text.trim().to_owned(),
            origin: None,
        })
    }
}

fn parse_entry(text: &str) -> Result<Entry, BadTarget> {
    match text.strip_prefix("dns:") {
        Some(rest) => parse_dns(text, rest),
        None => parse_url(text),
    }
}

/// `dns:///host:port` or `dns://server[:port]/host:port`.
fn parse_dns(text: &str, rest: &str) -> Result<Entry, BadTarget> {
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(bad(format!(
            "{text:?}: write dns:///host:port (or dns://dns-server/host:port)"
        )));
    };
    let Some((server, name)) = rest.split_once('/') else {
        return Err(bad(format!("{text:?}: write dns:///host:port")));
    };
    let dns_server = if server.is_empty() {
        None
    } else {
        Some(socket_addr(server, DNS_PORT).ok_or_else(|| {
            bad(format!(
                "{text:?}: the DNS server {server:?} must be an IP address (and port)"
            ))
        })?)
    };
    let (host, port) =
        host_and_port(name, None).map_err(|reason| bad(format!("{text:?}: {reason}")))?;
    Ok(Entry {
        scheme: Scheme::Http,
        host,
        port,
        dns_server,
        dns: true,
    })
}

/// `http://host[:port]` or `https://host[:port]`, nothing after the port.
fn parse_url(text: &str) -> Result<Entry, BadTarget> {
    let (scheme, rest) = if let Some(rest) = text.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = text.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(bad(format!(
            "{text:?} is not an http:// or https:// URL, nor dns:///host:port"
        )));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(bad(format!(
            "{text:?}: a base URL has no path, query or user (just scheme://host:port)"
        )));
    }
    let default_port = match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let (host, port) = host_and_port(authority, Some(default_port))
        .map_err(|reason| bad(format!("{text:?}: {reason}")))?;
    Ok(Entry {
        scheme,
        host,
        port,
        dns_server: None,
        dns: false,
    })
}

/// `host:port`, `[v6]:port`, or the host alone when a default port is given.
fn host_and_port(text: &str, default_port: Option<u16>) -> Result<(Host, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address needs its closing ]".to_owned())?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected {after:?} after the address")),
        };
        let ip: IpAddr = v6
            .parse()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        (Host::Ip(ip), port)
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        (parse_host(host)?, port)
    };
    let port = match (port, default_port) {
        (Some(port), _) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("{port:?} is not a port (1-65535)"))?,
        (None, Some(port)) => port,
        (None, None) => return Err("the port is missing (host:port)".to_owned()),
    };
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("the host is missing".to_owned());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let valid = host.len() <= 253
        && host.split('.').enumerate().all(|(i, label)| {
            // A trailing dot (a fully qualified name) leaves one empty label.
            (label.is_empty() && i > 0 && host.ends_with('.'))
                || (!label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && !label.starts_with('-')
                    && !label.ends_with('-'))
        });
    if !valid {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    Ok(Host::Name(host.to_ascii_lowercase()))
}

fn socket_addr(text: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = text.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

impl PeerTarget {
    /// Says where it was configured (e.g. `--catalog-url`), for messages.
    #[must_use]
    pub fn from_origin(mut self, origin: &'static str) -> Self {
        self.origin = Some(origin);
        self
    }

    /// A single base URL (for tests and defaults).
    pub fn url(url: &str) -> Result<Self, BadTarget> {
        url.parse()
    }

    /// The peer at one socket address, over plain HTTP/2.
    pub fn addr(addr: SocketAddr) -> Self {
        Self {
            entries: vec![Entry {
                scheme: Scheme::Http,
                host: Host::Ip(addr.ip()),
                port: addr.port(),
                dns_server: None,
                dns: false,
            }],
            tls: None,
            text: format!("http://{addr}"),
            origin: None,
        }
    }

    /// The peer at one socket address, over https (its certificate must
    /// name the address).
    pub fn https(addr: SocketAddr) -> Self {
        let mut target = Self::addr(addr);
        for entry in &mut target.entries {
            entry.scheme = Scheme::Https;
        }
        target.text = format!("https://{addr}");
        target
    }

    /// Calls its https entries with `tls` (its CA, the certificate this
    /// client shows); with TLS given, `dns:///` entries speak TLS too.
    #[must_use]
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        if tls.is_some() {
            for entry in &mut self.entries {
                if entry.dns {
                    entry.scheme = Scheme::Https;
                }
            }
        }
        self.tls = tls;
        self
    }

    pub(crate) fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether every entry is an IP address (nothing to resolve).
    pub fn is_static(&self) -> bool {
        self.entries.iter().all(|e| matches!(e.host, Host::Ip(_)))
    }

    /// The first entry as a base URL, if it is one a browser could use
    /// (`http(s)://host:port`): the default for what the web app calls.
    pub fn first_url(&self) -> Option<String> {
        let first = self.entries.first()?;
        if self.text.starts_with("dns:") {
            return None;
        }
        let scheme = match first.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        Some(format!("{scheme}://{}", first.authority()))
    }
}

impl Entry {
    /// `host:port` as a request's authority.
    pub(crate) fn authority(&self) -> String {
        match &self.host {
            Host::Ip(ip) => SocketAddr::new(*ip, self.port).to_string(),
            Host::Name(name) => format!("{}:{}", name.trim_end_matches('.'), self.port),
        }
    }
}

impl fmt::Display for PeerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin {
            Some(origin) => write!(f, "{origin} {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Entry {
        let target: PeerTarget = text.parse().expect(text);
        assert_eq!(target.entries.len(), 1, "{text}");
        target.entries.into_iter().next().expect("one")
    }

    #[test]
    fn base_urls_lists_and_dns_targets() {
        let entry = one("http://127.0.0.1:8082");
        assert_eq!(entry.host, Host::Ip("127.0.0.1".parse().expect("ip")));
        assert_eq!(entry.port, 8082);
        assert_eq!(one("https://catalog").port, 443);
        assert_eq!(one("http://catalog/").port, 80);
        assert_eq!(
            one("http://[::1]:9").host,
            Host::Ip("::1".parse().expect("ip"))
        );
        assert_eq!(
            one("http://Catalog.Shop.svc:8082").host,
            Host::Name("catalog.shop.svc".to_owned())
        );
        let dns = one("dns:///catalog-headless.shop.svc.cluster.local:8082");
        assert_eq!(dns.dns_server, None);
        assert_eq!(dns.port, 8082);
        let server = one("dns://127.0.0.1:5353/catalog.test:8082");
        assert_eq!(
            server.dns_server,
            Some("127.0.0.1:5353".parse().expect("addr"))
        );
        assert_eq!(
            one("dns://10.0.0.10/catalog:1")
                .dns_server
                .map(|s| s.port()),
            Some(53)
        );

        let list: PeerTarget = "http://127.0.0.2:8082, http://127.0.0.3:8082,dns:///c:1"
            .parse()
            .expect("list");
        assert_eq!(list.entries.len(), 3);
        assert!(!list.is_static());
        assert_eq!(list.first_url().as_deref(), Some("http://127.0.0.2:8082"));
        assert_eq!(
            "dns:///c:1".parse::<PeerTarget>().expect("dns").first_url(),
            None
        );
    }

    #[test]
    fn malformed_addresses_are_refused_with_the_reason() {
        for (text, says) in [
            ("", "empty entry"),
            ("http://a:1,,http://b:2", "empty entry"),
            ("catalog:8082", "not an http:// or https:// URL"),
            ("ftp://catalog", "not an http:// or https:// URL"),
            ("http://catalog:port", "not a port"),
            ("http://catalog:0", "not a port"),
            ("http://catalog:99999", "not a port"),
            ("http://catalog:1/path", "no path"),
            ("http://user@catalog:1", "no path, query or user"),
            ("http://:1", "host is missing"),
            ("http://cata log:1", "not a host name"),
            ("http://[::1:1", "closing ]"),
            ("dns:///catalog", "port is missing"),
            ("dns:catalog:1", "write dns:///host:port"),
            ("dns://resolver.local/catalog:1", "must be an IP address"),
        ] {
            let error = text.parse::<PeerTarget>().expect_err(text).to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
        let long = vec!["http://a:1"; 65].join(",");
        assert!(long.parse::<PeerTarget>().is_err());
    }

    #[test]
    fn messages_name_where_it_was_configured() {
        let target = PeerTarget::url("http://a:1")
            .expect("url")
            .from_origin("--catalog-url");
        assert_eq!(target.to_string(), "--catalog-url http://a:1");
    }
}
