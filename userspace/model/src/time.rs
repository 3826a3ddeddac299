//! Wall-clock timestamps with nanosecond resolution.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Nanoseconds since the Unix epoch, UTC.
///
/// Stored as an integer so events stay small and cheap to compare; serialised as RFC 3339
/// because that is what people and SIEMs read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const fn from_nanos(ns: u64) -> Self {
        Self(ns)
    }

    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1_000_000_000))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn saturating_sub(self, other: Self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.saturating_sub(other.0))
    }

    pub fn to_rfc3339(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        dt.format(&Rfc3339)
            .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
    }

    pub fn parse_rfc3339(s: &str) -> Result<Self, time::error::Parse> {
        let dt = OffsetDateTime::parse(s, &Rfc3339)?;
        Ok(Self(
            u64::try_from(dt.unix_timestamp_nanos()).unwrap_or_default(),
        ))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            Self::parse_rfc3339(&s).map_err(serde::de::Error::custom)
        } else {
            u64::deserialize(d).map(Self)
        }
    }
}

/// Converts the probes' boot-time clock to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    offset_ns: i128,
}

impl BootClock {
    /// Samples both clocks now. Re-sample after the wall clock is stepped.
    pub fn now() -> Self {
        let read = |clock| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid pointer to a local timespec.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
        };
        BootClock {
            offset_ns: read(libc::CLOCK_REALTIME) - read(libc::CLOCK_BOOTTIME),
        }
    }

    /// A clock with a fixed offset, for fixtures.
    pub const fn with_offset(offset_ns: i128) -> Self {
        BootClock { offset_ns }
    }

    pub fn wall(&self, boot_ns: u64) -> Timestamp {
        let ns = i128::from(boot_ns) + self.offset_ns;
        Timestamp::from_nanos(u64::try_from(ns.max(0)).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_nanoseconds() {
        let t = Timestamp(1_764_400_000_123_456_789);
        let s = t.to_rfc3339();
        assert_eq!(s, "2025-11-29T07:06:40.123456789Z");
        assert_eq!(Timestamp::parse_rfc3339(&s).unwrap(), t);
    }
}
