//! Drains the probes' ring buffer.
//!
//! The probes wake the reader only when enough data is waiting; otherwise the reader drains on
//! a short timer. One wake-up per event would cost an interrupt each and cap throughput far
//! below what the ring buffer can carry.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

use super::Error;

/// Records handed over per call at most. Under a flood the producers refill the ring as fast
/// as it drains; without a cap one call would gather the whole flood into memory before its
/// caller saw any of it. With it, memory stays bounded and the overflow waits in the ring,
/// where a full ring is counted as lost by the kernel.
pub const MAX_PER_CALL: usize = 16 * 1024;

pub struct Reader {
    ring: AsyncFd<RingBuf<MapData>>,
    poll: Duration,
    /// The last call stopped at the cap with records still waiting: read on without waiting.
    more: bool,
}

impl Reader {
    pub(super) fn new(map: aya::maps::Map, poll: Duration) -> Result<Reader, Error> {
        let ring = RingBuf::try_from(map).map_err(|source| Error::Map {
            name: "EVENTS",
            source,
        })?;
        // SAFETY: the ring buffer owns its fd and keeps it open for as long as it lives, and the
        // AsyncFd owns the ring buffer.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| Error::Io(e.into_parts().1))?;
        Ok(Reader {
            ring,
            poll,
            more: false,
        })
    }

    /// Waits until the kernel signals data or the poll interval passes (at once if records
    /// were left over), then hands up to [`MAX_PER_CALL`] waiting records to `f`. Returns the
    /// number of records read.
    pub async fn read_batch(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, Error> {
        if self.more {
            // Let the other tasks on this thread run between two capped calls.
            tokio::task::yield_now().await;
        } else {
            tokio::select! {
                guard = self.ring.readable_mut() => {
                    let mut guard = guard?;
                    guard.clear_ready();
                }
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        let n = self.drain(&mut f);
        self.more = n == MAX_PER_CALL;
        Ok(n)
    }

    /// Hands up to [`MAX_PER_CALL`] records already waiting to `f`, without waiting for more;
    /// returns how many. For callers that know the kernel has written (a `BPF_PROG_TEST_RUN`
    /// returns after its records are committed).
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let ring = self.ring.get_mut();
        let mut n = 0;
        while n < MAX_PER_CALL {
            let Some(item) = ring.next() else { break };
            f(&item);
            n += 1;
        }
        n
    }
}
