//! The kernel's block and protect tables, pinned in bpffs.
//!
//! The XDP program consults these tables on every packet; they are pinned so a block made by
//! an operator, a rule or a mesh indicator outlives the agent and ends only by
//! [`Tables::unblock`] or expiry. Expiry is kept in `CLOCK_BOOTTIME` nanoseconds, the clock
//! the program reads, so the kernel enforces it even while no agent runs.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, lpm_trie::Key};
use heir_abi::packet::{
    BlockEntry, MacKey, ORIGIN_MESH, ORIGIN_OPERATOR, ORIGIN_RULE, REASON_LEN, V4, V6,
};

use crate::sensor::xdp::{Options, Packets};

/// What a block or protection applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    V4 { addr: Ipv4Addr, prefix: u8 },
    V6 { addr: Ipv6Addr, prefix: u8 },
    Mac([u8; 6]),
}

impl From<std::net::IpAddr> for Target {
    /// One host: a /32 or /128.
    fn from(a: std::net::IpAddr) -> Target {
        match a {
            std::net::IpAddr::V4(addr) => Target::V4 { addr, prefix: 32 },
            std::net::IpAddr::V6(addr) => Target::V6 { addr, prefix: 128 },
        }
    }
}

/// A target that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not an address to block: {why} (expected an IPv4 or IPv6 address, optionally /prefix, or a MAC like 02:00:5e:00:53:01)"
)]
pub struct BadTarget {
    pub input: String,
    pub why: &'static str,
}

impl FromStr for Target {
    type Err = BadTarget;

    fn from_str(s: &str) -> Result<Target, BadTarget> {
        let bad = |why| BadTarget {
            input: s.to_owned(),
            why,
        };
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a,
                Some(
                    p.parse::<u8>()
                        .map_err(|_| bad("the prefix length is not a number"))?,
                ),
            ),
            None => (s, None),
        };
        if let Ok(a) = addr.parse::<Ipv4Addr>() {
            let prefix = prefix.unwrap_or(32);
            if prefix > 32 {
                return Err(bad("an IPv4 prefix is at most 32 bits"));
            }
            return Ok(Target::V4 {
                addr: Ipv4Addr::from_bits(a.to_bits() & mask32(prefix)),
                prefix,
            });
        }
        if let Ok(a) = addr.parse::<Ipv6Addr>() {
            let prefix = prefix.unwrap_or(128);
            if prefix > 128 {
                return Err(bad("an IPv6 prefix is at most 128 bits"));
            }
            return Ok(Target::V6 {
                addr: Ipv6Addr::from_bits(a.to_bits() & mask128(prefix)),
                prefix,
            });
        }
        if prefix.is_some() {
            return Err(bad("only IP addresses take a prefix"));
        }
        let parts: Vec<&str> = addr.split([':', '-']).collect();
        if parts.len() == 6 && parts.iter().all(|p| p.len() == 2) {
            let mut mac = [0u8; 6];
            for (m, p) in mac.iter_mut().zip(&parts) {
                *m = u8::from_str_radix(p, 16).map_err(|_| bad("a MAC byte is not hex"))?;
            }
            return Ok(Target::Mac(mac));
        }
        Err(bad("not an IP or MAC address"))
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::V4 { addr, prefix: 32 } => write!(f, "{addr}"),
            Target::V4 { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Target::V6 { addr, prefix: 128 } => write!(f, "{addr}"),
            Target::V6 { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Target::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

impl Target {
    /// True when every address of `other` is inside `self`.
    pub fn covers(&self, other: &Target) -> bool {
        match (self, other) {
            (
                Target::V4 { addr, prefix },
                Target::V4 {
                    addr: o,
                    prefix: op,
                },
            ) => op >= prefix && o.to_bits() & mask32(*prefix) == addr.to_bits(),
            (
                Target::V6 { addr, prefix },
                Target::V6 {
                    addr: o,
                    prefix: op,
                },
            ) => op >= prefix && o.to_bits() & mask128(*prefix) == addr.to_bits(),
            (Target::Mac(a), Target::Mac(b)) => a == b,
            _ => false,
        }
    }

    /// True when `self` and `other` share an address.
    pub fn overlaps(&self, other: &Target) -> bool {
        self.covers(other) || other.covers(self)
    }
}

/// Who asked for a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Rule,
    Operator,
    Mesh,
}

impl Origin {
    fn code(self) -> u8 {
        match self {
            Origin::Rule => ORIGIN_RULE,
            Origin::Operator => ORIGIN_OPERATOR,
            Origin::Mesh => ORIGIN_MESH,
        }
    }

    fn from_code(c: u8) -> Option<Origin> {
        match c {
            ORIGIN_RULE => Some(Origin::Rule),
            ORIGIN_OPERATOR => Some(Origin::Operator),
            ORIGIN_MESH => Some(Origin::Mesh),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Rule => "rule",
            Origin::Operator => "operator",
            Origin::Mesh => "mesh",
        })
    }
}

/// The clocks a block's times are kept in; injectable so expiry is tested exactly.
pub trait Clock {
    /// Time since boot, suspend included (`CLOCK_BOOTTIME`), as the XDP program reads it.
    fn boot(&self) -> Duration;
    /// Seconds since the Unix epoch.
    fn unix(&self) -> u64;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn boot(&self) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid pointer to a local timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    fn unix(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A block as the tables hold it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Block {
    #[serde(serialize_with = "display")]
    pub target: Target,
    pub reason: String,
    pub origin: Option<Origin>,
    pub created_unix: u64,
    /// Time left; `None` for a block without expiry.
    pub remaining: Option<Duration>,
    /// Past its expiry: the kernel ignores it and [`Tables::purge_expired`] removes it.
    pub expired: bool,
}

fn display<S: serde::Serializer>(t: &Target, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{target} is a protected device (protected as {by}): no block can cut it off; `heir unprotect {by}` first if that is really meant"
    )]
    Protected { target: Target, by: Target },
    #[error("block reason is {len} bytes; at most {max} fit", max = REASON_LEN)]
    ReasonTooLong { len: usize },
    #[error("opening the pinned table {path}")]
    Open {
        path: PathBuf,
        source: aya::maps::MapError,
    },
    #[error("table {name}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("creating the pinned tables in {dir}")]
    Create {
        dir: PathBuf,
        source: Box<crate::sensor::Error>,
    },
}

/// The pinned tables, opened.
pub struct Tables {
    blocks: Table<BlockEntry>,
    protected: Table<u32>,
    generation: Array<MapData, u64>,
}

/// One kind of entry (a block, or a protection) in the three shapes the kernel keys it by:
/// IPv4 and IPv6 prefixes (LPM tries) and MAC addresses (a hash).
struct Table<T: aya::Pod> {
    v4: LpmTrie<MapData, V4, T>,
    v6: LpmTrie<MapData, V6, T>,
    mac: HashMap<MapData, MacKey, T>,
    /// The pinned maps' names, in that order, for errors.
    names: [&'static str; 3],
}

impl<T: aya::Pod> Table<T> {
    fn open(
        open: impl Fn(&'static str) -> Result<Map, Error>,
        names: [&'static str; 3],
    ) -> Result<Self, Error> {
        let typed = |name: &'static str| move |source| Error::Map { name, source };
        Ok(Table {
            v4: open(names[0])?.try_into().map_err(typed(names[0]))?,
            v6: open(names[1])?.try_into().map_err(typed(names[1]))?,
            mac: open(names[2])?.try_into().map_err(typed(names[2]))?,
            names,
        })
    }

    fn name(&self, target: &Target) -> &'static str {
        self.names[match target {
            Target::V4 { .. } => 0,
            Target::V6 { .. } => 1,
            Target::Mac(_) => 2,
        }]
    }

    fn insert(&mut self, target: Target, value: T) -> Result<(), Error> {
        let name = self.name(&target);
        match target {
            Target::V4 { addr, prefix } => {
                self.v4
                    .insert(&Key::new(u32::from(prefix), addr.octets()), value, 0)
            }
            Target::V6 { addr, prefix } => {
                self.v6
                    .insert(&Key::new(u32::from(prefix), addr.octets()), value, 0)
            }
            Target::Mac(m) => self.mac.insert(mac_key(m), value, 0),
        }
        .map_err(|source| Error::Map { name, source })
    }

    /// Removes exactly `target`; false when it was not there.
    fn remove(&mut self, target: &Target) -> Result<bool, Error> {
        let r = match *target {
            Target::V4 { addr, prefix } => {
                self.v4.remove(&Key::new(u32::from(prefix), addr.octets()))
            }
            Target::V6 { addr, prefix } => {
                self.v6.remove(&Key::new(u32::from(prefix), addr.octets()))
            }
            Target::Mac(m) => self.mac.remove(&mac_key(m)),
        };
        gone(self.name(target), r)
    }

    fn entries(&self) -> Result<Vec<(Target, T)>, Error> {
        let typed = |name: &'static str| move |source| Error::Map { name, source };
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(typed(self.names[0]))?;
            let (addr, prefix) = (Ipv4Addr::from(k.data()), k.prefix_len() as u8);
            out.push((Target::V4 { addr, prefix }, v));
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(typed(self.names[1]))?;
            let (addr, prefix) = (Ipv6Addr::from(k.data()), k.prefix_len() as u8);
            out.push((Target::V6 { addr, prefix }, v));
        }
        for item in self.mac.iter() {
            let (k, v) = item.map_err(typed(self.names[2]))?;
            out.push((Target::Mac(k.addr), v));
        }
        Ok(out)
    }
}

const NAMES: [&str; 7] = [
    "BLOCK_GEN",
    "BLOCK_V4",
    "BLOCK_V6",
    "BLOCK_MAC",
    "PROTECT_V4",
    "PROTECT_V6",
    "PROTECT_MAC",
];

impl Tables {
    /// Opens the tables pinned in `dir`, creating them (by loading the XDP object, which
    /// attaches nothing) when no agent has pinned them yet.
    pub fn open(dir: &Path) -> Result<Tables, Error> {
        if !NAMES.iter().all(|n| dir.join(n).exists()) {
            let options = Options {
                pin_dir: dir.to_owned(),
                flow_entries: 1024,
                ring_bytes: 4096,
                ..Options::default()
            };
            Packets::load(&options).map_err(|source| Error::Create {
                dir: dir.to_owned(),
                source: Box::new(source),
            })?;
        }
        let open = |name: &'static str| -> Result<Map, Error> {
            let path = dir.join(name);
            MapData::from_pin(&path)
                .and_then(Map::from_map_data)
                .map_err(|source| Error::Open { path, source })
        };
        Ok(Tables {
            blocks: Table::open(open, ["BLOCK_V4", "BLOCK_V6", "BLOCK_MAC"])?,
            protected: Table::open(open, ["PROTECT_V4", "PROTECT_V6", "PROTECT_MAC"])?,
            generation: open("BLOCK_GEN")?.try_into().map_err(|source| Error::Map {
                name: "BLOCK_GEN",
                source,
            })?,
        })
    }

    /// Tells the XDP program the tables changed: flows re-decide their cached verdicts.
    fn bump(&mut self) -> Result<(), Error> {
        let map = |source| Error::Map {
            name: "BLOCK_GEN",
            source,
        };
        let g = self.generation.get(&0, 0).map_err(map)?;
        self.generation.set(0, g.wrapping_add(1), 0).map_err(map)
    }

    /// Blocks `target`. Refused when a protected entry covers the whole target; a block of a
    /// wider prefix is accepted and the protected devices inside it stay reachable.
    pub fn block(
        &mut self,
        target: Target,
        ttl: Option<Duration>,
        reason: &str,
        origin: Origin,
        clock: &impl Clock,
    ) -> Result<(), Error> {
        self.insert_block(target, ttl, reason, origin, clock)?;
        self.bump()
    }

    fn insert_block(
        &mut self,
        target: Target,
        ttl: Option<Duration>,
        reason: &str,
        origin: Origin,
        clock: &impl Clock,
    ) -> Result<(), Error> {
        if reason.len() > REASON_LEN {
            return Err(Error::ReasonTooLong { len: reason.len() });
        }
        if let Some(by) = self.protected()?.into_iter().find(|p| p.covers(&target)) {
            return Err(Error::Protected { target, by });
        }
        let mut entry = BlockEntry {
            expires_boot_ns: ttl
                .map(|t| (clock.boot() + t).as_nanos().min(u128::from(u64::MAX)) as u64)
                .unwrap_or(0),
            created_unix: clock.unix(),
            origin: origin.code(),
            _pad: [0; 7],
            reason: [0; REASON_LEN],
        };
        entry.reason[..reason.len()].copy_from_slice(reason.as_bytes());
        self.blocks.insert(target, entry)
    }

    /// Removes the block of exactly `target`; false when there was none.
    pub fn unblock(&mut self, target: &Target) -> Result<bool, Error> {
        let removed = self.remove_block(target)?;
        self.bump()?;
        Ok(removed)
    }

    fn remove_block(&mut self, target: &Target) -> Result<bool, Error> {
        self.blocks.remove(target)
    }

    /// Every block, expired ones included (marked).
    pub fn blocks(&self, clock: &impl Clock) -> Result<Vec<Block>, Error> {
        let now = clock.boot().as_nanos() as u64;
        let mut out: Vec<Block> = self
            .blocks
            .entries()?
            .into_iter()
            .map(|(target, e)| to_block(target, &e, now))
            .collect();
        out.sort_by_key(|b| b.target.to_string());
        Ok(out)
    }

    /// Removes expired blocks; returns how many.
    pub fn purge_expired(&mut self, clock: &impl Clock) -> Result<usize, Error> {
        let expired: Vec<Target> = self
            .blocks(clock)?
            .into_iter()
            .filter(|b| b.expired)
            .map(|b| b.target)
            .collect();
        for t in &expired {
            self.unblock(t)?;
        }
        Ok(expired.len())
    }

    /// Adds `target` to the protected devices: no block drops its traffic.
    pub fn protect(&mut self, target: Target) -> Result<(), Error> {
        self.insert_protect(target)?;
        self.bump()
    }

    fn insert_protect(&mut self, target: Target) -> Result<(), Error> {
        self.protected.insert(target, 1)
    }

    pub fn unprotect(&mut self, target: &Target) -> Result<bool, Error> {
        let removed = self.remove_protect(target)?;
        self.bump()?;
        Ok(removed)
    }

    fn remove_protect(&mut self, target: &Target) -> Result<bool, Error> {
        self.protected.remove(target)
    }

    /// The protected devices.
    pub fn protected(&self) -> Result<Vec<Target>, Error> {
        Ok(self
            .protected
            .entries()?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }
}

fn mac_key(addr: [u8; 6]) -> MacKey {
    MacKey { addr, _pad: [0; 2] }
}

fn gone(name: &'static str, r: Result<(), aya::maps::MapError>) -> Result<bool, Error> {
    match r {
        Ok(()) => Ok(true),
        Err(aya::maps::MapError::KeyNotFound) => Ok(false),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(false)
        }
        Err(source) => Err(Error::Map { name, source }),
    }
}

fn to_block(target: Target, e: &BlockEntry, now_boot_ns: u64) -> Block {
    let end = e.reason.iter().position(|&b| b == 0).unwrap_or(REASON_LEN);
    let expired = e.expires_boot_ns != 0 && now_boot_ns >= e.expires_boot_ns;
    Block {
        target,
        reason: String::from_utf8_lossy(&e.reason[..end]).into_owned(),
        origin: Origin::from_code(e.origin),
        created_unix: e.created_unix,
        remaining: (e.expires_boot_ns != 0)
            .then(|| Duration::from_nanos(e.expires_boot_ns.saturating_sub(now_boot_ns))),
        expired,
    }
}

/// Reads a duration like `90s`, `15m`, `2h`, `7d` (a bare number is seconds).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like 90s, 15m, 2h, 7d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err(format!("`{s}`: a block's time to live must be positive"));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            "10.1.2.3".parse::<Target>().unwrap(),
            Target::V4 {
                addr: Ipv4Addr::new(10, 1, 2, 3),
                prefix: 32
            }
        );
        assert_eq!(
            "10.1.2.3/24".parse::<Target>().unwrap(),
            Target::V4 {
                addr: Ipv4Addr::new(10, 1, 2, 0),
                prefix: 24
            }
        );
        assert_eq!(
            "fd00::1/64".parse::<Target>().unwrap().to_string(),
            "fd00::/64"
        );
        assert_eq!(
            "02:00:5E:00:53:01".parse::<Target>().unwrap(),
            Target::Mac([2, 0, 0x5e, 0, 0x53, 1])
        );
        for bad in [
            "",
            "10.0.0.1/33",
            "fd00::/129",
            "02:00:5e:00:53",
            "aa:bb/3",
            "host",
        ] {
            let e = bad.parse::<Target>().unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn coverage() {
        let net: Target = "10.0.0.0/24".parse().unwrap();
        let host: Target = "10.0.0.7".parse().unwrap();
        let other: Target = "10.0.1.7".parse().unwrap();
        assert!(net.covers(&host));
        assert!(!host.covers(&net));
        assert!(host.overlaps(&net));
        assert!(!net.covers(&other));
        assert!(!net.covers(&"fd00::1".parse().unwrap()));
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_ttl("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("5w").unwrap_err().contains("unknown unit"));
        assert!(parse_ttl("soon").is_err());
    }

    #[test]
    fn expiry_is_read_against_the_boot_clock() {
        let e = BlockEntry {
            expires_boot_ns: 5_000_000_000,
            created_unix: 1,
            origin: ORIGIN_MESH,
            _pad: [0; 7],
            reason: *b"scan\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        let t: Target = "10.0.0.1".parse().unwrap();
        let b = to_block(t, &e, 4_000_000_000);
        assert_eq!(b.reason, "scan");
        assert_eq!(b.origin, Some(Origin::Mesh));
        assert_eq!(b.remaining, Some(Duration::from_secs(1)));
        assert!(!b.expired);
        assert!(to_block(t, &e, 5_000_000_000).expired);
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errs(s in ".{0,40}") {
            let _ = s.parse::<Target>();
        }

        #[test]
        fn v4_round_trips(a in any::<u32>(), p in 0u8..=32) {
            let t: Target = format!("{}/{}", Ipv4Addr::from_bits(a), p).parse().unwrap();
            let again: Target = t.to_string().parse().unwrap();
            prop_assert_eq!(t, again);
            let host = Target::V4 { addr: Ipv4Addr::from_bits(a), prefix: 32 };
            prop_assert!(t.covers(&host));
        }
    }
}
