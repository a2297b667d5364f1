//! `DeliveryWake`: how a commit that queued webhook deliveries tells this process's delivery
//! worker to look for them at once, instead of at its next poll. Handed explicitly to the
//! writer (which commits SCIM changes) and the worker through `AppState`.
//!
//! A wake is a flag, not a count: wakes that arrive while the worker is busy fold into one
//! look, and a wake sent before the worker waits is not lost (the flag stays set).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// A shared "deliveries may be due" signal.
#[derive(Clone, Default)]
pub struct DeliveryWake {
    inner: Arc<Signal>,
}

#[derive(Default)]
struct Signal {
    woken: Mutex<bool>,
    changed: Condvar,
}

impl DeliveryWake {
    /// Says deliveries may be due: the waiting worker (or its next wait) returns at once.
    pub fn notify(&self) {
        let mut woken = self
            .inner
            .woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *woken = true;
        self.inner.changed.notify_all();
    }

    /// Waits for a wake or `fallback`, whichever comes first; true when woken. Clears the
    /// wake, so the next wait waits for a new one.
    pub fn wait(&self, fallback: Duration) -> bool {
        let woken = self
            .inner
            .woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (mut woken, _) = self
            .inner
            .changed
            .wait_timeout_while(woken, fallback, |w| !*w)
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *woken)
    }
}

impl std::fmt::Debug for DeliveryWake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveryWake")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_sent_before_the_wait_is_kept() {
        let wake = DeliveryWake::default();
        wake.notify();
        assert!(wake.wait(Duration::from_secs(60)));
        assert!(!wake.wait(Duration::from_millis(1)));
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let wake = DeliveryWake::default();
        let other = wake.clone();
        let waiter = std::thread::spawn(move || other.wait(Duration::from_secs(60)));
        // Notified until the waiter returns: whichever comes first, the wait ends woken.
        while !waiter.is_finished() {
            wake.notify();
            std::thread::yield_now();
        }
        assert!(waiter.join().unwrap());
    }
}
