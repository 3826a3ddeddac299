//! The RAMA component: alerts and the packet sensor's events move device scores, and
//! the state reaches `rama.json` soon after, so `heir rama` and `heir devices` on the same
//! host see what the agent sees.
//!
//! The engine is shared with the API. It is held only to update it and to copy its state;
//! the file write and its fsync happen after the lock is released.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heir_model::{Alert, Event};

use super::{Failure, Sink, Wants};
use crate::rama_state::RamaState;

/// How often the engine's time-driven work (decay, score history) runs and the state is
/// saved even when nothing changed.
const EVERY: Duration = Duration::from_secs(60);

pub struct Rama {
    state: Arc<Mutex<RamaState>>,
    dirty: bool,
    last_tick: Instant,
}

impl Rama {
    pub fn new(state: Arc<Mutex<RamaState>>) -> Rama {
        Rama {
            state,
            dirty: false,
            last_tick: Instant::now(),
        }
    }

    fn save(&mut self) -> Result<(), Failure> {
        self.dirty = false;
        let saving = self.state.lock().map_err(poisoned)?.saving();
        Ok(saving.write()?)
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Failure {
    Failure::lost(0, "the RAMA engine's lock is poisoned")
}

impl Sink for Rama {
    fn name(&self) -> &'static str {
        "rama"
    }

    fn wants(&self) -> Wants {
        Wants::BOTH
    }

    /// The packet sensor's events tell the inventory which devices are there and what they
    /// serve; the rest tell it nothing.
    fn events(&mut self, events: &[Event]) -> Result<(), Failure> {
        let mut packets = events.iter().filter(|e| e.kind.is_packet()).peekable();
        if packets.peek().is_none() {
            return Ok(());
        }
        let mut state = self.state.lock().map_err(poisoned)?;
        for e in packets {
            self.dirty |= !state.rama.observe_event(e).is_empty();
        }
        Ok(())
    }

    fn alert(&mut self, alert: &Alert) -> Result<(), Failure> {
        self.state.lock().map_err(poisoned)?.rama.alert(alert);
        self.dirty = true;
        Ok(())
    }

    fn tick(&mut self) -> Result<(), Failure> {
        if self.last_tick.elapsed() >= EVERY {
            self.last_tick = Instant::now();
            self.state.lock().map_err(poisoned)?.rama.tick();
            self.dirty = true;
        }
        if self.dirty {
            self.save()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), Failure> {
        self.save()
    }
}
