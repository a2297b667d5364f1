//! One write at a time per group, in this process.
//!
//! A large membership change is applied in steps, each a job of the shared writer (see
//! `ops::MemberBacklog`), so that other directories' writes are committed between them. A
//! second write to the same group must not land between two steps: a `PATCH` removing a
//! member that a later step of a `PUT` adds back would leave a state neither order gives. So
//! every write to a group holds that group's turn from its first job to its reply; writes to
//! other groups and users never wait for it.
//!
//! The turn is per process: two instances on one Postgres can still interleave a large change
//! with another write to the same group (each step is still a whole transaction).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

/// The groups whose turn some write holds or waits for.
#[derive(Default)]
pub struct GroupTurns {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A group's turn, held until dropped.
pub struct Turn<'a> {
    turns: &'a GroupTurns,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl GroupTurns {
    /// Waits for the turn of group `group_id` of directory `directory_id`.
    pub async fn take(&self, directory_id: &str, group_id: &str) -> Turn<'_> {
        let key = format!("{directory_id}/{group_id}");
        let turn = self
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        Turn {
            turns: self,
            key,
            guard: Some(turn.lock_owned().await),
        }
    }

    /// Groups with a turn held or awaited (for tests).
    pub fn len(&self) -> usize {
        self.turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = self
            .turns
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.guard = None;
        // Forgotten once nobody holds or waits for it: the map holds only busy groups. (A
        // waiter holds a clone of the `Arc`, so the count tells.)
        if turns
            .get(&self.key)
            .is_some_and(|t| Arc::strong_count(t) == 1)
        {
            turns.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[actix_rt::test]
    async fn a_second_write_to_the_same_group_waits_for_the_first() {
        let turns = GroupTurns::default();
        let first = turns.take("d", "g").await;
        let other_group = turns.take("d", "h").await;
        let mut same = Box::pin(turns.take("d", "g"));
        // Polled once: it cannot have the turn while `first` holds it.
        assert!((&mut same).now_or_never().is_none());
        drop(first);
        let second = same.await;
        assert_eq!(turns.len(), 2);
        drop(second);
        drop(other_group);
        assert!(turns.is_empty(), "idle groups are forgotten");
    }
}
