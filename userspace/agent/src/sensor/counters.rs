//! Per-kind counters kept by the probes: records emitted, records lost (ring buffer full) and
//! events filtered in the kernel. Every loss is counted; nothing is dropped silently.

use aya::{Ebpf, maps::PerCpuArray};
use heir_abi::Kind as AbiKind;
use heir_model::Kind;

use super::Error;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts {
    pub emitted: u64,
    pub lost: u64,
    pub filtered: u64,
}

/// A snapshot of all counters, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub by_kind: Vec<(Kind, KindCounts)>,
}

impl Counters {
    pub(super) fn read(ebpf: &Ebpf) -> Result<Counters, Error> {
        let sum = |name: &'static str| -> Result<Vec<u64>, Error> {
            let map = ebpf.map(name).ok_or(Error::NoMap(name))?;
            let arr: PerCpuArray<_, u64> =
                PerCpuArray::try_from(map).map_err(|source| Error::Map { name, source })?;
            (0..AbiKind::COUNT)
                .map(|i| {
                    arr.get(&i, 0)
                        .map(|v| v.iter().sum())
                        .map_err(|source| Error::Map { name, source })
                })
                .collect()
        };
        let (emitted, lost, filtered) = (sum("EMITTED")?, sum("LOST")?, sum("FILTERED")?);
        Ok(Counters {
            by_kind: AbiKind::ALL
                .iter()
                .map(|&k| {
                    let i = k as usize;
                    (
                        Kind::from(k),
                        KindCounts {
                            emitted: emitted[i],
                            lost: lost[i],
                            filtered: filtered[i],
                        },
                    )
                })
                .collect(),
        })
    }

    pub fn total(&self) -> KindCounts {
        self.by_kind
            .iter()
            .fold(KindCounts::default(), |a, (_, c)| KindCounts {
                emitted: a.emitted + c.emitted,
                lost: a.lost + c.lost,
                filtered: a.filtered + c.filtered,
            })
    }

    pub fn get(&self, kind: impl Into<Kind>) -> KindCounts {
        let kind = kind.into();
        self.by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }
}
