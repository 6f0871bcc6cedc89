//! The client's address behind an edge: any header lines (any bytes, any
//! number of lines of each header) parse without a panic, for every header
//! the edge may write and every hop count; a peer that is not believed is
//! always the client, and an IPv6 limit key has no bits past its prefix.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use shop_kit::rpc::{ClientAddressHeader, ClientAddressing, client_address::limit_key};

const NAMES: [&str; 4] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-envoy-external-address",
];

fuzz_target!(|data: &[u8]| {
    let Some((head, lines)) = data.split_at_checked(18) else {
        return;
    };
    let (mode, prefix) = (head[0], head[1]);
    let mut peer = [0u8; 16];
    peer.copy_from_slice(&head[2..]);
    let peer = IpAddr::V6(Ipv6Addr::from(peer)).to_canonical();
    let mut headers = http::HeaderMap::new();
    for line in lines.split(|&byte| byte == b'\n') {
        let Some((&which, value)) = line.split_first() else {
            continue;
        };
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            headers.append(NAMES[usize::from(which % 4)], value);
        }
    }
    // The lower half of IPv4 trusted, or (without proxies) hops alone.
    let proxies = if mode & 0x10 == 0 { "0.0.0.0/1" } else { "" };
    let addressing = ClientAddressing {
        proxies: proxies.parse().expect("a list"),
        header: ClientAddressHeader::NAMED[usize::from(mode % 4)].1,
        hops: std::num::NonZeroU8::new((mode >> 5) & 0x3),
        ipv6_limit_prefix: prefix % 129,
    };
    let client = addressing.client(peer, &headers);
    let believed = match (addressing.proxies.is_empty(), peer) {
        (true, _) => addressing.hops.is_some(),
        (false, IpAddr::V4(v4)) => v4.octets()[0] < 128,
        (false, IpAddr::V6(_)) => false,
    };
    if !believed {
        assert_eq!(client, peer);
    }
    if let IpAddr::V6(key) = limit_key(client, addressing.ipv6_limit_prefix) {
        let prefix = u32::from(addressing.ipv6_limit_prefix);
        assert_eq!(key.to_bits().checked_shl(prefix).unwrap_or(0), 0);
    }
});
