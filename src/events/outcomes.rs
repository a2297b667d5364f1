//! What lanes' runs gave, waiting to be recorded. A lane hands its run's outcomes here as it
//! ends, and the dispatcher records every waiting run in the transaction of its next claim
//! (which the lane's end wakes it for): one write per round, however many lanes ended, instead
//! of one per lane. A quiet directory's lane runs a delivery or two, and on SQLite each write
//! of its own took the write lock from the writer, which a large sync beside it waits for.
//!
//! Once the dispatcher has stopped, the queue is closed and a lane records its own outcomes.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::db::DbConn;
use crate::db::webhooks::{self, Attempted, Due, Outcome};

/// One lane's run: its claimed deliveries, the outcomes of those attempted and those given
/// back unattempted.
pub(super) struct RunOutcome {
    run: Vec<Due>,
    /// Index in `run`, outcome, and when to try again (`None`: dead-lettered or delivered).
    attempted: Vec<(usize, Outcome, Option<chrono::Duration>)>,
    released: Vec<usize>,
}

impl RunOutcome {
    pub fn new(run: Vec<Due>) -> RunOutcome {
        RunOutcome {
            run,
            attempted: Vec::new(),
            released: Vec::new(),
        }
    }

    pub fn run(&self) -> &[Due] {
        &self.run
    }

    pub fn attempted(
        &mut self,
        index: usize,
        outcome: Outcome,
        retry_in: Option<chrono::Duration>,
    ) {
        self.attempted.push((index, outcome, retry_in));
    }

    pub fn released(&mut self, index: usize) {
        self.released.push(index);
    }
}

/// Records the outcomes of `runs` (in the caller's transaction, or in one of their own).
pub(super) fn record(conn: &mut DbConn, runs: &[RunOutcome]) -> diesel::QueryResult<()> {
    let attempted: Vec<Attempted> = runs
        .iter()
        .flat_map(|r| {
            r.attempted.iter().map(|(i, outcome, retry_in)| Attempted {
                due: &r.run[*i],
                outcome: outcome.clone(),
                retry_in: *retry_in,
            })
        })
        .collect();
    let released: Vec<&Due> = runs
        .iter()
        .flat_map(|r| r.released.iter().map(|i| &r.run[*i]))
        .collect();
    if attempted.is_empty() && released.is_empty() {
        return Ok(());
    }
    webhooks::record_attempts(conn, &attempted, &released)
}

/// Runs waiting for the dispatcher to record them.
#[derive(Default)]
pub(super) struct Outcomes {
    state: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    runs: Vec<RunOutcome>,
    /// The dispatcher has stopped: nobody takes runs any more.
    closed: bool,
}

impl Outcomes {
    /// Queues `run` for the dispatcher; gives it back when the dispatcher has stopped.
    pub fn hand_over(&self, run: RunOutcome) -> Option<RunOutcome> {
        let mut waiting = self.lock();
        if waiting.closed {
            return Some(run);
        }
        waiting.runs.push(run);
        None
    }

    /// The runs waiting now, for the dispatcher to record.
    pub fn take(&self) -> Vec<RunOutcome> {
        std::mem::take(&mut self.lock().runs)
    }

    /// Closes the queue as the dispatcher stops; returns what was still waiting.
    pub fn close(&self) -> Vec<RunOutcome> {
        let mut waiting = self.lock();
        waiting.closed = true;
        std::mem::take(&mut waiting.runs)
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
