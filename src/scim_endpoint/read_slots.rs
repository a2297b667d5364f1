//! How many SCIM reads query Postgres at once.
//!
//! The fair share lets a directory send up to sixteen requests at once on two cores. Run all
//! at once, sixteen reads on Postgres are sixteen server processes competing for the cores
//! with the writer's: its commit of a thousand reads' log rows, 40 ms alone, took 0.2–1.5 s,
//! and a read's p99 rose to 90–240 ms (p50 3 ms). Reads past the slots wait here instead, in
//! Roster, where they hold no connection and no process. SQLite's reads run in this process
//! and are not bounded: a list waiting on a page from the file leaves its core to another.

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::db::Backend;

/// Slots per core, plus `EXTRA_SLOTS`: a core's worth of queries running while as many wait
/// on the network for their rows.
const SLOTS_PER_CORE: usize = 2;
const EXTRA_SLOTS: usize = 2;

/// The slots SCIM reads hold while they query the database (`None`: unbounded).
pub struct ReadSlots(Option<Semaphore>);

impl ReadSlots {
    /// Slots for `backend` on a machine with `cores` cores.
    pub fn new(backend: Backend, cores: usize) -> ReadSlots {
        ReadSlots(match backend {
            Backend::Postgres => Some(Semaphore::new(cores.max(1) * SLOTS_PER_CORE + EXTRA_SLOTS)),
            Backend::Sqlite => None,
        })
    }

    /// Waits for a free slot, given back when the permit is dropped (`None`: unbounded).
    pub async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        // Acquiring fails only on a closed semaphore, and this one is never closed.
        self.0.as_ref()?.acquire().await.ok()
    }

    /// Slots free now (`None`: unbounded).
    #[cfg(test)]
    fn free(&self) -> Option<usize> {
        self.0.as_ref().map(Semaphore::available_permits)
    }
}

#[cfg(test)]
mod tests {
    use super::ReadSlots;
    use crate::db::Backend;
    use crate::scim_endpoint::poll_once;

    #[test]
    fn reads_past_the_slots_wait_for_one_to_be_given_back() {
        let slots = ReadSlots::new(Backend::Postgres, 2);
        let held: Vec<_> = (0..6)
            .map(|_| poll_once(&mut Box::pin(slots.enter())).expect("a free slot"))
            .collect();
        assert_eq!(slots.free(), Some(0));
        let mut next = Box::pin(slots.enter());
        assert!(poll_once(&mut next).is_none(), "a seventh read waits");
        drop(held);
        let slot = poll_once(&mut next).expect("a slot once one is given back");
        assert_eq!(slots.free(), Some(5));
        drop(slot);
        assert_eq!(slots.free(), Some(6));
    }

    #[test]
    fn sqlite_reads_are_not_bounded() {
        let slots = ReadSlots::new(Backend::Sqlite, 2);
        for _ in 0..100 {
            let entered = poll_once(&mut Box::pin(slots.enter()));
            assert!(
                matches!(entered, Some(None)),
                "entered at once, holding nothing"
            );
        }
        assert_eq!(slots.free(), None);
    }
}
