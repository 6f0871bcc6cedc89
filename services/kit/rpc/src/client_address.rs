//! Who is calling: the client's address, as every per-address rule, log
//! line and trace sees it. Behind a proxy (a Gateway, an ingress, a load
//! balancer) the TCP peer is the proxy, so the proxies named in
//! `--trusted-proxies` are believed about the address they forwarded for:
//! the client is the rightmost address of `Forwarded` (RFC 7239), else of
//! `X-Forwarded-For`, that is not itself a trusted proxy. A peer that is not
//! trusted is the client, whatever its headers say.

use std::{fmt, net::IpAddr, str::FromStr, sync::Arc};

use axum::extract::ConnectInfo;
use forwarded_header_value::{ForwardedStanza, Identifier};
use http::{HeaderMap, header::FORWARDED};
use ipnet::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose forwarding headers are believed (none by default).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client of a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut nearest = peer;
        for hop in forwarded_for(headers).into_iter().rev() {
            match hop {
                // "unknown", an obfuscated name, a hop that does not parse:
                // nothing further left is believable.
                None => return nearest,
                Some(address) if self.trusts(address) => nearest = address,
                Some(address) => return address,
            }
        }
        // Every hop a trusted proxy: the furthest of them.
        nearest
    }
}

/// The `for` addresses a request was forwarded for, nearest last: those of
/// `Forwarded` if it is present, else those of `X-Forwarded-For`, every
/// line of the header in order. `None` where a hop names no address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    let forwarded = headers.get_all(FORWARDED);
    if forwarded.iter().next().is_some() {
        // Stanza by stanza: one that does not parse (a client's own, on
        // the left) spoils none of the hops the proxies added after it.
        for line in forwarded {
            let Ok(line) = line.to_str() else {
                hops.push(None);
                continue;
            };
            hops.extend(line.split(',').map(|stanza| {
                stanza
                    .parse::<ForwardedStanza>()
                    .ok()
                    .and_then(|stanza| stanza.forwarded_for.as_ref().and_then(Identifier::ip))
                    .map(|address| address.to_canonical())
            }));
        }
        return hops;
    }
    for line in headers.get_all(X_FORWARDED_FOR) {
        match line.to_str() {
            Ok(line) => hops.extend(line.split(',').map(|hop| parse_hop(hop.trim()))),
            Err(_) => hops.push(None),
        }
    }
    hops
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`[v6]:p`,
/// `v4:p`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|address| address.to_canonical())
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&nets.join(","))
    }
}

/// A trusted proxy that is not an address or a CIDR block.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32)")]
pub struct NotANetwork(String);

impl FromStr for TrustedProxies {
    type Err = NotANetwork;

    /// A comma-separated list of addresses and CIDR blocks; empty: none.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| NotANetwork(item.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(nets.into()))
    }
}

/// The client's address, put on a request by the listener when it is not
/// the TCP peer (a trusted proxy forwarded the request). Read it with
/// [`client_address`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client a request came from: as a trusted proxy forwarded it, else
/// the TCP peer (unspecified for a request that came from no connection).
pub fn client_address(extensions: &http::Extensions) -> IpAddr {
    if let Some(ClientAddress(address)) = extensions.get::<ClientAddress>() {
        return *address;
    }
    extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |info| {
            info.0.ip().to_canonical()
        })
}

/// Keys tower-governor's limits by [`client_address`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientAddressKeyExtractor;

impl tower_governor::key_extractor::KeyExtractor for ClientAddressKeyExtractor {
    type Key = IpAddr;

    fn extract<T>(
        &self,
        request: &http::Request<T>,
    ) -> Result<Self::Key, tower_governor::GovernorError> {
        Ok(client_address(request.extensions()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn trusting(list: &str) -> TrustedProxies {
        list.parse().expect("proxies")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let forged = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        assert_eq!(
            TrustedProxies::default().client(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
        assert_eq!(
            trusting("10.0.0.0/8").client(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_has() {
        let proxies = trusting("10.0.0.0/8, 192.0.2.1");
        // The client spoofed the leftmost entry; the edge appended the
        // address it saw, then an inner proxy its own.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 192.0.2.1")]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &chain), ip("198.51.100.7"));
        // Several header lines are one list.
        let lines = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.7, 10.9.9.9"),
        ]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &lines), ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // Every hop trusted: the furthest one.
        let inner = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &inner), ip("10.0.0.5"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_reads_ports_and_v6() {
        let proxies = trusting("10.0.0.0/8");
        let both = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711""#,
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &both),
            ip("2001:db8:cafe::17")
        );
        let with_port = headers(&[("x-forwarded-for", "198.51.100.7:5050")]);
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &with_port),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_hop_without_an_address_stops_the_walk_at_the_proxy_that_wrote_it() {
        let proxies = trusting("10.0.0.0/8");
        let hidden = headers(&[("forwarded", "for=192.0.2.60, for=unknown, for=10.0.0.7")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &hidden), ip("10.0.0.7"));
        let garbage = headers(&[("x-forwarded-for", "198.51.100.7, not-an-address")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &garbage), ip("10.0.0.1"));
        let broken = headers(&[("forwarded", "for=192.0.2.60, for=bad")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &broken), ip("10.0.0.1"));
        // A client's own stanza that does not parse spoils nothing right of it.
        let spoiled = headers(&[("forwarded", "for=\"bad, for=198.51.100.7")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &spoiled), ip("198.51.100.7"));
    }

    #[test]
    fn v4_mapped_v6_peers_match_v4_blocks() {
        let proxies = trusting("127.0.0.1");
        let forwarded = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), &forwarded),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_list_is_addresses_and_blocks_and_says_which_item_is_wrong() {
        let proxies = trusting(" 10.0.0.0/8,192.0.2.1 ,2001:db8::/32,");
        assert_eq!(proxies.to_string(), "10.0.0.0/8,192.0.2.1/32,2001:db8::/32");
        assert!(trusting("").is_empty());
        let error = "10.0.0.0/8,edge"
            .parse::<TrustedProxies>()
            .expect_err("refused");
        assert!(error.to_string().contains("\"edge\""), "{error}");
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
    }
}
