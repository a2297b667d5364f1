//! Lanes: each endpoint and directory the worker is delivering to gets a thread of its own for
//! its claimed deliveries, so a slow or hanging receiver holds up only its own deliveries, and
//! one directory's backlog on an endpoint (a large initial sync) never holds up another
//! directory's deliveries to it. The worker claims nothing of a lane that is running (see
//! `db::webhooks::ClaimRequest`): one delivery in flight per endpoint and directory, the
//! directory's deliveries attempted in event order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::wake::DeliveryWake;
use crate::db::webhooks::LaneKey;

/// The lanes running now.
pub(super) struct Lanes {
    busy: Arc<Mutex<HashSet<LaneKey>>>,
    /// Woken when a lane ends: its endpoint may have more due.
    wake: DeliveryWake,
}

impl Lanes {
    pub fn new(wake: DeliveryWake) -> Lanes {
        Lanes {
            busy: Default::default(),
            wake,
        }
    }

    /// The lanes running.
    pub fn busy(&self) -> HashSet<LaneKey> {
        lock(&self.busy).clone()
    }

    /// Runs `run` on a thread of its own for `key`. The lane stays busy until `run` returns
    /// or panics; then the worker is woken.
    pub fn run(&self, key: LaneKey, run: impl FnOnce() + Send + 'static) {
        lock(&self.busy).insert(key.clone());
        let lane = Lane {
            key,
            busy: self.busy.clone(),
            wake: self.wake.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("webhook-lane".into())
            .spawn(move || {
                let _lane = lane;
                run();
            });
        if let Err(e) = spawned {
            // The closure and its lane are dropped: the lane is free again, and its claimed
            // deliveries are attempted once their lease ends.
            log::error!("webhook worker: no thread for a delivery lane: {e}");
        }
    }
}

/// A running lane; dropped when it ends, even by a panic.
struct Lane {
    key: LaneKey,
    busy: Arc<Mutex<HashSet<LaneKey>>>,
    wake: DeliveryWake,
}

impl Drop for Lane {
    fn drop(&mut self) {
        lock(&self.busy).remove(&self.key);
        self.wake.notify();
    }
}

fn lock(busy: &Mutex<HashSet<LaneKey>>) -> std::sync::MutexGuard<'_, HashSet<LaneKey>> {
    busy.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_is_busy_until_it_ends_even_by_a_panic() {
        let wake = DeliveryWake::default();
        let lanes = Lanes::new(wake.clone());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let key = LaneKey {
            endpoint_id: "ep".into(),
            directory_id: "dir".into(),
        };
        lanes.run(key.clone(), move || {
            let _ = released.recv();
            panic!("a lane that dies");
        });
        assert!(lanes.busy().contains(&key));
        release.send(()).unwrap();
        // The lane's end wakes the worker; a bounded number of waits, in case it never does.
        for _ in 0..50 {
            if !lanes.busy().contains(&key) {
                break;
            }
            wake.wait(std::time::Duration::from_millis(100));
        }
        assert!(lanes.busy().is_empty());
    }
}
