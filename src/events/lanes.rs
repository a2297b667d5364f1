//! Lanes: each endpoint the worker is delivering to gets a thread of its own for its claimed
//! deliveries, so a slow or hanging receiver holds up only its own deliveries. The worker
//! claims nothing of an endpoint whose lane is running (see `db::webhooks::ClaimRequest`): one
//! delivery in flight per endpoint, the endpoint's deliveries attempted in claim order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::wake::DeliveryWake;

/// The endpoints being delivered to now.
pub(super) struct Lanes {
    busy: Arc<Mutex<HashSet<String>>>,
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

    /// The endpoints with a lane running.
    pub fn busy(&self) -> HashSet<String> {
        lock(&self.busy).clone()
    }

    /// Runs `run` on a thread of its own for `endpoint_id`. The endpoint stays busy until `run`
    /// returns or panics; then the worker is woken.
    pub fn run(&self, endpoint_id: String, run: impl FnOnce() + Send + 'static) {
        lock(&self.busy).insert(endpoint_id.clone());
        let lane = Lane {
            endpoint_id,
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
            // The closure and its lane are dropped: the endpoint is free again, and its
            // claimed deliveries are attempted once their lease ends.
            log::error!("webhook worker: no thread for a delivery lane: {e}");
        }
    }
}

/// A running lane; dropped when it ends, even by a panic.
struct Lane {
    endpoint_id: String,
    busy: Arc<Mutex<HashSet<String>>>,
    wake: DeliveryWake,
}

impl Drop for Lane {
    fn drop(&mut self) {
        lock(&self.busy).remove(&self.endpoint_id);
        self.wake.notify();
    }
}

fn lock(busy: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    busy.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_busy_until_its_lane_ends_even_by_a_panic() {
        let wake = DeliveryWake::default();
        let lanes = Lanes::new(wake.clone());
        let (release, released) = std::sync::mpsc::channel::<()>();
        lanes.run("ep".into(), move || {
            let _ = released.recv();
            panic!("a lane that dies");
        });
        assert!(lanes.busy().contains("ep"));
        release.send(()).unwrap();
        // The lane's end wakes the worker; a bounded number of waits, in case it never does.
        for _ in 0..50 {
            if !lanes.busy().contains("ep") {
                break;
            }
            wake.wait(std::time::Duration::from_millis(100));
        }
        assert!(lanes.busy().is_empty());
    }
}
