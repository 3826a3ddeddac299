//! Addresses no block may reach, whoever asks: the hospital's own infrastructure.
//!
//! A detector can be fooled (spoofed SYNs "from" the DNS resolver look like a scan from it),
//! and the mesh relays what other hospitals were fooled by. If such a block went in, the
//! gateway would cut its own hospital off from name resolution, time, its router or the
//! consortium. So the host's default gateways, the resolvers in `resolv.conf`, the NTP servers
//! its time daemons are configured with, the mesh's bootstrap peers and the operator's
//! `[respond] never_block` prefixes go into the kernel's protected table at start, beside the
//! registry's protected devices; the tables then refuse any block they cover, from a
//! detector, the mesh or an operator.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Why an address is never blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Gateway,
    Resolver,
    Ntp,
    MeshPeer,
    Configured,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Gateway => "default gateway",
            Why::Resolver => "DNS resolver",
            Why::Ntp => "NTP server",
            Why::MeshPeer => "mesh bootstrap peer",
            Why::Configured => "[respond] never_block",
        }
    }
}

/// The host's infrastructure as its own files describe it. Unreadable files add nothing:
/// a host without chrony has no chrony servers.
pub fn host_infrastructure() -> Vec<(IpAddr, Why)> {
    let read = |p: &str| std::fs::read_to_string(Path::new(p)).unwrap_or_default();
    let mut out = Vec::new();
    out.extend(
        gateways_v4(&read("/proc/net/route"))
            .into_iter()
            .map(|a| (IpAddr::V4(a), Why::Gateway)),
    );
    out.extend(
        gateways_v6(&read("/proc/net/ipv6_route"))
            .into_iter()
            .map(|a| (IpAddr::V6(a), Why::Gateway)),
    );
    out.extend(
        resolvers(&read("/etc/resolv.conf"))
            .into_iter()
            .map(|a| (a, Why::Resolver)),
    );
    for f in [
        "/etc/systemd/timesyncd.conf",
        "/etc/chrony/chrony.conf",
        "/etc/chrony.conf",
        "/etc/ntp.conf",
        "/etc/ntpsec/ntp.conf",
    ] {
        out.extend(ntp_servers(&read(f)).into_iter().map(|a| (a, Why::Ntp)));
    }
    out.retain(|(a, _)| !a.is_loopback() && !a.is_unspecified());
    out
}

/// Next hops of the IPv4 default routes in `/proc/net/route` (hex, in host byte order).
pub fn gateways_v4(route: &str) -> Vec<Ipv4Addr> {
    route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, gw, mask) = (f.get(1)?, f.get(2)?, f.get(7)?);
            if *dest != "00000000" || *mask != "00000000" {
                return None;
            }
            let g = u32::from_str_radix(gw, 16).ok()?;
            // The kernel prints the network-order word as a native integer.
            (g != 0).then(|| Ipv4Addr::from(g.to_ne_bytes()))
        })
        .collect()
}

/// Next hops of the IPv6 default routes in `/proc/net/ipv6_route`.
pub fn gateways_v6(route: &str) -> Vec<Ipv6Addr> {
    route
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, len, hop) = (f.first()?, f.get(1)?, f.get(4)?);
            if dest.chars().any(|c| c != '0') || *len != "00" {
                return None;
            }
            let n = u128::from_str_radix(hop, 16).ok()?;
            (n != 0).then(|| Ipv6Addr::from(n))
        })
        .collect()
}

/// `nameserver` lines of a `resolv.conf`.
pub fn resolvers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then_some(())?;
            // A link-local IPv6 resolver may carry its zone: fe80::1%eth0.
            w.next()?.split('%').next()?.parse().ok()
        })
        .collect()
}

/// Literal addresses among the servers of chrony, ntpd and systemd-timesyncd configuration
/// (`server`/`pool`/`peer` lines, `NTP=`/`FallbackNTP=`). Names are not resolved here.
pub fn ntp_servers(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for l in text.lines() {
        let l = l.trim();
        if l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let words: Vec<&str> = if let Some(v) = l
            .strip_prefix("NTP=")
            .or_else(|| l.strip_prefix("FallbackNTP="))
        {
            v.split_whitespace().collect()
        } else {
            let mut w = l.split_whitespace();
            match w.next() {
                Some("server" | "pool" | "peer") => w.next().into_iter().collect(),
                _ => Vec::new(),
            }
        };
        out.extend(words.into_iter().filter_map(|w| w.parse::<IpAddr>().ok()));
    }
    out
}

/// The address in a multiaddr such as `/ip4/192.0.2.7/tcp/4001/p2p/12D3…`; `None` for a
/// DNS name (not resolved here) or an unparseable address.
pub fn multiaddr_ip(addr: &str) -> Option<IpAddr> {
    use heir_mesh::node::{Multiaddr, Protocol};
    addr.parse::<Multiaddr>()
        .ok()?
        .iter()
        .find_map(|p| match p {
            Protocol::Ip4(a) => Some(IpAddr::V4(a)),
            Protocol::Ip6(a) => Some(IpAddr::V6(a)),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routes_resolvers_and_ntp_servers_are_read_from_the_hosts_files() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(gateways_v4(route), [Ipv4Addr::new(10, 0, 0, 1)]);
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000000 00000000 00000003 eth0\n\
                  20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000000 00000000 00000001 eth0\n";
        assert_eq!(gateways_v6(v6), ["fe80::1".parse::<Ipv6Addr>().unwrap()]);
        let resolv = "# generated\nsearch hospital.lan\nnameserver 10.0.0.53\nnameserver fe80::53%eth0\noptions edns0\n";
        assert_eq!(
            resolvers(resolv),
            [
                "10.0.0.53".parse::<IpAddr>().unwrap(),
                "fe80::53".parse().unwrap()
            ]
        );
        let chrony =
            "pool 2.debian.pool.ntp.org iburst\nserver 10.0.0.123 iburst\n# server 10.9.9.9\n";
        assert_eq!(
            ntp_servers(chrony),
            ["10.0.0.123".parse::<IpAddr>().unwrap()]
        );
        let timesyncd = "[Time]\nNTP=10.0.0.124 ntp.hospital.lan\nFallbackNTP=192.0.2.123\n";
        assert_eq!(
            ntp_servers(timesyncd),
            [
                "10.0.0.124".parse::<IpAddr>().unwrap(),
                "192.0.2.123".parse().unwrap()
            ]
        );
        assert_eq!(
            multiaddr_ip("/ip4/192.0.2.7/tcp/4001"),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(multiaddr_ip("/dns4/mesh.example/tcp/4001"), None);
    }
}
