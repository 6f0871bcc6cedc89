//! Who is calling: the client's address, as every per-address rule, log
//! line and trace sees it. Behind an edge (a Gateway, an ingress, a load
//! balancer) the TCP peer is the edge, so the operator says which peers are
//! believed (`--trusted-proxies`, or a number of hops, `--trusted-hops`) and
//! the one header the edge writes (`--client-address-header`). Only that
//! header is read: a client that sends another one (a `Forwarded` through
//! an nginx or Envoy that writes `X-Forwarded-For`) chooses nothing.
//!
//! - `x-forwarded-for` (the default) and `forwarded` (RFC 7239) are lists
//!   the edge appends to: the client is the rightmost address that is no
//!   trusted proxy, or, with `--trusted-hops N`, the N-th from the right
//!   (Envoy's `xff_num_trusted_hops`). Every hop is parsed on its own, so
//!   a client's garbage (a bad byte, `unknown`) spoils nothing the edge
//!   appended after it.
//! - `x-real-ip` and `x-envoy-external-address` hold one address the edge
//!   sets, replacing the client's (nginx's `proxy_set_header X-Real-IP
//!   $remote_addr`, Envoy's external address).
//!
//! A peer that is not believed is the client, whatever its headers say,
//! and so is a believed peer whose header names no address. Per-address
//! limits key an IPv6 client by its network (`--rate-limit-ipv6-prefix`,
//! /64 by default), since one host holds a whole /64.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU8,
    str::FromStr,
    sync::Arc,
};

use axum::extract::ConnectInfo;
use forwarded_header_value::{ForwardedStanza, Identifier};
use http::{HeaderMap, HeaderName, header::FORWARDED};
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

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
}

/// The one header the edge writes the client's address in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For`, appended to by nginx, Envoy, HAProxy, Istio and
    /// the cloud load balancers.
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239), for edges configured to append it.
    Forwarded,
    /// `X-Real-IP`, set (not appended) by the edge.
    XRealIp,
    /// `X-Envoy-External-Address`, set by Envoy for an external client.
    XEnvoyExternalAddress,
}

impl ClientAddressHeader {
    /// The headers by name, as the command line takes them.
    pub const NAMED: [(&'static str, Self); 4] = [
        ("x-forwarded-for", Self::XForwardedFor),
        ("forwarded", Self::Forwarded),
        ("x-real-ip", Self::XRealIp),
        ("x-envoy-external-address", Self::XEnvoyExternalAddress),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMED
            .iter()
            .find(|(_, header)| *header == self)
            .map_or("x-forwarded-for", |(name, _)| name)
    }
}

impl fmt::Display for ClientAddressHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A header the kit does not read client addresses from.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a client address header: one of x-forwarded-for, forwarded, x-real-ip, x-envoy-external-address"
)]
pub struct UnknownClientAddressHeader(String);

impl FromStr for ClientAddressHeader {
    type Err = UnknownClientAddressHeader;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::NAMED
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name.trim()))
            .map(|(_, header)| *header)
            .ok_or_else(|| UnknownClientAddressHeader(name.to_owned()))
    }
}

/// How the services tell who the client is: what they believe about the
/// edge in front of them (which peers: `proxies`, or any peer when only
/// `hops` is given, the network letting only the edge in; which header;
/// how many hops of it are the edge's), and how coarsely per-address
/// limits key an IPv6 client. By default the TCP peer is the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddressing {
    pub proxies: TrustedProxies,
    pub header: ClientAddressHeader,
    /// The client is this many entries from the right of a list header,
    /// instead of the rightmost that is no trusted proxy.
    pub hops: Option<NonZeroU8>,
    /// Per-address limits count an IPv6 client's network of this prefix
    /// length as one client (an IPv4 client is its address).
    pub ipv6_limit_prefix: u8,
}

/// The IPv6 network per-address limits count as one client, by default:
/// one host is given a /64.
pub const DEFAULT_IPV6_LIMIT_PREFIX: u8 = 64;

impl Default for ClientAddressing {
    fn default() -> Self {
        Self {
            proxies: TrustedProxies::default(),
            header: ClientAddressHeader::default(),
            hops: None,
            ipv6_limit_prefix: DEFAULT_IPV6_LIMIT_PREFIX,
        }
    }
}

impl ClientAddressing {
    /// What the listener puts on a request from `peer`: `None` when the
    /// peer is the client and its own limit key (the common case, at no
    /// cost to the call).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> Option<Client> {
        let address = if self.is_off() {
            peer.to_canonical()
        } else {
            self.client(peer, headers)
        };
        let limit_key = limit_key(address, self.ipv6_limit_prefix);
        (address != peer || limit_key != address).then_some(Client { address, limit_key })
    }

    /// Whether any peer's headers are believed at all.
    pub fn is_off(&self) -> bool {
        self.proxies.is_empty() && self.hops.is_none()
    }

    fn believes(&self, peer: IpAddr) -> bool {
        if self.proxies.is_empty() {
            self.hops.is_some()
        } else {
            self.proxies.trusts(peer)
        }
    }

    /// The client of a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.believes(peer) {
            return peer;
        }
        let named = match self.header {
            ClientAddressHeader::XRealIp => client_ip::x_real_ip(headers).ok(),
            ClientAddressHeader::XEnvoyExternalAddress => {
                client_ip::x_envoy_external_address(headers).ok()
            }
            ClientAddressHeader::XForwardedFor | ClientAddressHeader::Forwarded => {
                let mut hops = nearest_first(self.header, headers);
                match self.hops {
                    // The count-th from the right, if the list has that
                    // many and it names an address (as Envoy: the peer
                    // otherwise).
                    Some(count) => hops.nth(usize::from(count.get()) - 1).flatten(),
                    None => Some(self.rightmost_untrusted(peer, hops)),
                }
            }
        };
        named.map_or(peer, |address| address.to_canonical())
    }

    /// The rightmost hop that is no trusted proxy; where a hop names no
    /// address, the trusted proxy that wrote it.
    fn rightmost_untrusted(
        &self,
        peer: IpAddr,
        hops: impl Iterator<Item = Option<IpAddr>>,
    ) -> IpAddr {
        let mut nearest = peer;
        for hop in hops {
            match hop {
                None => return nearest,
                Some(address) if self.proxies.trusts(address) => nearest = address,
                Some(address) => return address,
            }
        }
        // Every hop a trusted proxy: the furthest of them.
        nearest
    }
}

/// The `for` addresses of `header`'s every line, nearest first (the entry
/// the edge appended, then leftwards), each hop parsed on its own from its
/// bytes and only once it is read, so a client's long list costs nothing
/// past the hops the walk needs: `None` where a hop names no address.
fn nearest_first(
    header: ClientAddressHeader,
    headers: &HeaderMap,
) -> impl Iterator<Item = Option<IpAddr>> + '_ {
    let (name, parse): (HeaderName, fn(&str) -> Option<IpAddr>) = match header {
        ClientAddressHeader::Forwarded => (FORWARDED, parse_stanza),
        _ => (X_FORWARDED_FOR, parse_hop),
    };
    headers
        .get_all(name)
        .iter()
        .rev()
        .flat_map(|line| line.as_bytes().rsplit(|&byte| byte == b','))
        .map(move |hop| {
            std::str::from_utf8(hop)
                .ok()
                .and_then(|hop| parse(hop.trim()))
        })
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`[v6]:p`,
/// `v4:p`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// One `Forwarded` stanza's `for` address.
fn parse_stanza(stanza: &str) -> Option<IpAddr> {
    stanza
        .parse::<ForwardedStanza>()
        .ok()
        .and_then(|stanza| stanza.forwarded_for.as_ref().and_then(Identifier::ip))
}

/// The key per-address limits count `address` under: an IPv6 address's
/// network of `ipv6_prefix` bits, an IPv4 address itself.
pub fn limit_key(address: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & mask))
        }
    }
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

/// The client of a request, put on it by the listener when it is not the
/// TCP peer (an edge forwarded the request) or is keyed coarser than its
/// address (IPv6). Read it with [`client_address`] and [`client_limit_key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub address: IpAddr,
    /// What per-address limits count it under ([`limit_key`]).
    pub limit_key: IpAddr,
}

fn peer(extensions: &http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |info| {
            info.0.ip().to_canonical()
        })
}

/// The client a request came from: as the edge named it, else the TCP
/// peer (unspecified for a request that came from no connection).
pub fn client_address(extensions: &http::Extensions) -> IpAddr {
    match extensions.get::<Client>() {
        Some(client) => client.address,
        None => peer(extensions),
    }
}

/// What per-address limits (sign-in, the gateway's) count a request's
/// client under: its address, or an IPv6 client's network.
pub fn client_limit_key(extensions: &http::Extensions) -> IpAddr {
    match extensions.get::<Client>() {
        Some(client) => client.limit_key,
        None => peer(extensions),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_bytes(value).expect("value"),
            );
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn trusting(list: &str) -> ClientAddressing {
        ClientAddressing {
            proxies: list.parse().expect("proxies"),
            ..ClientAddressing::default()
        }
    }

    fn reading(list: &str, header: ClientAddressHeader) -> ClientAddressing {
        ClientAddressing {
            header,
            ..trusting(list)
        }
    }

    fn hops(count: u8) -> ClientAddressing {
        ClientAddressing {
            hops: NonZeroU8::new(count),
            ..ClientAddressing::default()
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let forged = headers(&[
            ("x-forwarded-for", b"198.51.100.7"),
            ("forwarded", b"for=1.2.3.4"),
            ("x-real-ip", b"1.2.3.5"),
        ]);
        for addressing in [
            ClientAddressing::default(),
            trusting("10.0.0.0/8"),
            reading("10.0.0.0/8", ClientAddressHeader::Forwarded),
            reading("10.0.0.0/8", ClientAddressHeader::XRealIp),
        ] {
            assert_eq!(
                addressing.client(ip("203.0.113.9"), &forged),
                ip("203.0.113.9")
            );
        }
    }

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_has() {
        let proxies = trusting("10.0.0.0/8, 192.0.2.1");
        // The client spoofed the leftmost entry; the edge appended the
        // address it saw, then an inner proxy its own.
        let chain = headers(&[("x-forwarded-for", b"1.1.1.1, 198.51.100.7, 192.0.2.1")]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &chain), ip("198.51.100.7"));
        // Several header lines are one list (HAProxy adds a line).
        let lines = headers(&[
            ("x-forwarded-for", b"1.1.1.1"),
            ("x-forwarded-for", b"198.51.100.7, 10.9.9.9"),
        ]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &lines), ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // Every hop trusted: the furthest one.
        let inner = headers(&[("x-forwarded-for", b"10.0.0.5, 10.0.0.6")]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &inner), ip("10.0.0.5"));
    }

    #[test]
    fn only_the_header_the_edge_writes_is_read() {
        // nginx appends X-Forwarded-For; the client's own Forwarded (which
        // no edge strips) names nobody.
        let through_nginx = headers(&[
            ("forwarded", b"for=198.51.100.1"),
            ("x-forwarded-for", b"203.0.113.50"),
        ]);
        let proxies = trusting("10.0.0.0/8");
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &through_nginx),
            ip("203.0.113.50")
        );
        let unknown = headers(&[
            ("forwarded", b"for=unknown"),
            ("x-forwarded-for", b"203.0.113.50"),
        ]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &unknown), ip("203.0.113.50"));
        // An edge that writes Forwarded: X-Forwarded-For is the forgery.
        let forwarded = reading("10.0.0.0/8", ClientAddressHeader::Forwarded);
        let both = headers(&[
            (
                "forwarded",
                br#"for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711""#,
            ),
            ("x-forwarded-for", b"198.51.100.7"),
        ]);
        assert_eq!(
            forwarded.client(ip("10.0.0.1"), &both),
            ip("2001:db8:cafe::17")
        );
        // X-Real-IP: the one value the edge set, else the edge.
        let real_ip = reading("10.0.0.0/8", ClientAddressHeader::XRealIp);
        let set = headers(&[
            ("x-real-ip", b"203.0.113.8"),
            ("x-forwarded-for", b"1.1.1.1"),
        ]);
        assert_eq!(real_ip.client(ip("10.0.0.1"), &set), ip("203.0.113.8"));
        let twice = headers(&[("x-real-ip", b"1.1.1.1"), ("x-real-ip", b"203.0.113.8")]);
        assert_eq!(real_ip.client(ip("10.0.0.1"), &twice), ip("10.0.0.1"));
        let envoy = reading("10.0.0.0/8", ClientAddressHeader::XEnvoyExternalAddress);
        let set = headers(&[("x-envoy-external-address", b"2001:db8::9")]);
        assert_eq!(envoy.client(ip("10.0.0.1"), &set), ip("2001:db8::9"));
    }

    #[test]
    fn each_hop_is_parsed_on_its_own() {
        let proxies = trusting("10.0.0.0/8");
        // A bad byte, garbage, `unknown` or a broken quote the client sent
        // spoil nothing the edge appended after them.
        for forged in [
            &b"\xff"[..],
            b"not-an-address",
            b"unknown",
            b"\"1.2.3.4",
            b"1.2.3.4\xff, 5.6.7.8\x80",
        ] {
            let mut line = forged.to_vec();
            line.extend_from_slice(b", 203.0.113.50");
            let chain = headers(&[("x-forwarded-for", &line)]);
            assert_eq!(
                proxies.client(ip("10.0.0.1"), &chain),
                ip("203.0.113.50"),
                "{}",
                String::from_utf8_lossy(forged)
            );
        }
        let forwarded = reading("10.0.0.0/8", ClientAddressHeader::Forwarded);
        let spoiled = headers(&[("forwarded", b"for=\"bad\xff, for=198.51.100.7")]);
        assert_eq!(
            forwarded.client(ip("10.0.0.1"), &spoiled),
            ip("198.51.100.7")
        );
        // A hop a trusted proxy wrote that names nobody: that proxy.
        let hidden = headers(&[("forwarded", b"for=192.0.2.60, for=unknown, for=10.0.0.7")]);
        assert_eq!(forwarded.client(ip("10.0.0.1"), &hidden), ip("10.0.0.7"));
        let with_port = headers(&[("x-forwarded-for", b"198.51.100.7:5050, [2001:db8::1]:80")]);
        assert_eq!(
            trusting("10.0.0.0/8, 2001:db8::1").client(ip("10.0.0.1"), &with_port),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_hop_count_takes_the_nth_entry_from_the_right() {
        // A cloud load balancer, then the edge: two hops appended.
        let two = hops(2);
        let chain = headers(&[("x-forwarded-for", b"6.6.6.6, 198.51.100.7, 10.0.0.9")]);
        assert_eq!(two.client(ip("10.0.0.1"), &chain), ip("198.51.100.7"));
        // Fewer entries than hops (a call from inside): the peer.
        let short = headers(&[("x-forwarded-for", b"198.51.100.7")]);
        assert_eq!(two.client(ip("10.0.0.1"), &short), ip("10.0.0.1"));
        // One hop: the rightmost, whatever it is.
        assert_eq!(hops(1).client(ip("10.0.0.1"), &chain), ip("10.0.0.9"));
        // With proxies named too, only they are believed.
        let named = ClientAddressing {
            hops: NonZeroU8::new(1),
            ..trusting("10.0.0.1")
        };
        assert_eq!(named.client(ip("10.0.0.2"), &chain), ip("10.0.0.2"));
        assert_eq!(named.client(ip("10.0.0.1"), &chain), ip("10.0.0.9"));
    }

    #[test]
    fn v4_mapped_v6_peers_match_v4_blocks() {
        let proxies = trusting("127.0.0.1");
        let forwarded = headers(&[("x-forwarded-for", b"198.51.100.7")]);
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), &forwarded),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn limits_key_an_ipv6_client_by_its_network() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1"), 64),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            limit_key(ip("2001:db8:1:2:bbbb::7"), 64),
            ip("2001:db8:1:2::")
        );
        assert_eq!(limit_key(ip("2001:db8:1:2::7"), 128), ip("2001:db8:1:2::7"));
        assert_eq!(limit_key(ip("2001:db8:1:2::7"), 0), ip("::"));
        assert_eq!(limit_key(ip("198.51.100.7"), 64), ip("198.51.100.7"));
        assert_eq!(limit_key(ip("::ffff:198.51.100.7"), 64), ip("198.51.100.7"));
        // The listener puts nothing on a request whose peer is its own key.
        let addressing = ClientAddressing::default();
        assert_eq!(
            addressing.client_of(ip("127.0.0.1"), &HeaderMap::new()),
            None
        );
        assert_eq!(
            addressing.client_of(ip("2001:db8::5"), &HeaderMap::new()),
            Some(Client {
                address: ip("2001:db8::5"),
                limit_key: ip("2001:db8::"),
            })
        );
    }

    #[test]
    fn the_settings_say_which_item_is_wrong() {
        let proxies: TrustedProxies = " 10.0.0.0/8,192.0.2.1 ,2001:db8::/32,"
            .parse()
            .expect("list");
        assert_eq!(proxies.to_string(), "10.0.0.0/8,192.0.2.1/32,2001:db8::/32");
        assert!("".parse::<TrustedProxies>().expect("empty").is_empty());
        let error = "10.0.0.0/8,edge"
            .parse::<TrustedProxies>()
            .expect_err("refused");
        assert!(error.to_string().contains("\"edge\""), "{error}");
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        for (name, _) in ClientAddressHeader::NAMED {
            let header: ClientAddressHeader = name.parse().expect("a header");
            assert_eq!(header.to_string(), name);
        }
        let error = "true-client-ip"
            .parse::<ClientAddressHeader>()
            .expect_err("refused");
        assert!(error.to_string().contains("x-real-ip"), "{error}");
    }
}
