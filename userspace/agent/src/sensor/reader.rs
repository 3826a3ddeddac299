//! Drains the probes' ring buffer.
//!
//! The probes wake the reader only when enough data is waiting; otherwise the reader drains on
//! a short timer. One wake-up per event would cost an interrupt each and cap throughput far
//! below what the ring buffer can carry.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

use super::Error;

pub struct Reader {
    ring: AsyncFd<RingBuf<MapData>>,
    poll: Duration,
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
        Ok(Reader { ring, poll })
    }

    /// Waits until the kernel signals data or the poll interval passes, then hands every
    /// waiting record to `f`. Returns the number of records read.
    pub async fn read_batch(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, Error> {
        tokio::select! {
            guard = self.ring.readable_mut() => {
                let mut guard = guard?;
                guard.clear_ready();
            }
            _ = tokio::time::sleep(self.poll) => {}
        }
        let ring = self.ring.get_mut();
        let mut n = 0;
        while let Some(item) = ring.next() {
            f(&item);
            n += 1;
        }
        Ok(n)
    }
}
