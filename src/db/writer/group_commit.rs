//! Runs a gathered batch of jobs in one transaction (a `db::Batch`) and settles each job with
//! its outcome once the batch's fate is known, so a reply never reports a change that could
//! still be lost.
//!
//! A failing job rolls back only itself, with the events and log rows it queued. A savepoint
//! per job would do that, but on SQLite it cost a sixth of a create (its journal copies every
//! page the job touches) and on Postgres a round trip per job, so a batch first runs without
//! them. On SQLite a job that fails before it changed a row (a statement that fails is undone
//! by SQLite on its own, e.g. a create whose userName is taken) needs no rollback. Otherwise (a
//! SQLite job that fails after changing rows; any failing job on Postgres, where a failed
//! statement aborts the transaction) the batch is rolled back and run again with a savepoint
//! per job.
//!
//! User creates, most of an initial sync, are jobs of their own kind: a batch inserts all its
//! new users before it runs its jobs, on Postgres in one statement, and a taken userName only
//! leaves its user out (a failed statement would spoil the batch on Postgres).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::WriteError;
use super::jobs::Job;
use super::queue::Gathered;
use crate::db::requests::NewRequest;
use crate::db::users::{self, NewUser};
use crate::db::{Batch, Committed, DbConn};
use crate::events::wake::DeliveryWake;

/// Runs one batch in one transaction and settles every job with its outcome; when the batch
/// committed, says how long its commit took. A batch that queued webhook deliveries wakes the
/// delivery worker before the jobs hear of their commit, so delivery starts as the replies go
/// out.
pub(super) fn commit_batch(
    conn: &mut DbConn,
    batch: Gathered,
    wake: &DeliveryWake,
) -> Option<Duration> {
    let relaxed = batch.jobs.iter().all(|q| !q.durable);
    let mut jobs: Vec<Box<dyn Job>> = batch.jobs.into_iter().map(|q| q.job).collect();
    let mut logs = batch.logs;
    let log_rows = logs.len();
    let mut outcome = run_batch(conn, &mut jobs, &mut logs, relaxed, Isolation::Optimistic);
    if let Err(BatchError::Spoiled) = outcome {
        outcome = run_batch(conn, &mut jobs, &mut logs, relaxed, Isolation::Savepoints);
    }
    // Another instance's transaction took the same rows in the other order (Postgres then
    // aborts one of the two): nothing of the batch stands, so it runs again, as the provider
    // would have had to. A valid request never hears of it.
    let mut tries = 1;
    while tries < MAX_BATCH_TRIES
        && matches!(&outcome, Err(BatchError::Db(e)) if is_transient_conflict(e))
    {
        tries += 1;
        log::warn!("database writer: batch run again after a transient conflict (try {tries})");
        outcome = run_batch(conn, &mut jobs, &mut logs, relaxed, Isolation::Savepoints);
    }
    let durable_in = outcome.as_ref().ok().map(|c| c.durable_in);
    if outcome.as_ref().is_ok_and(|c| c.deliveries > 0) {
        wake.notify();
    }
    let outcome = outcome.map(|_| ()).map_err(|e| {
        log::error!(
            "database writer: batch of {} changes and {log_rows} queued log rows not committed: {e}",
            jobs.len(),
        );
        e.to_string()
    });
    for job in jobs {
        job.settle(outcome.clone().map_err(WriteError::Commit));
    }
    durable_in
}

/// How many times a batch is run when it keeps meeting transient conflicts.
const MAX_BATCH_TRIES: u32 = 5;

/// A deadlock or serialization failure: the database aborted the transaction to let another
/// go on, and running it again succeeds.
fn is_transient_conflict(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// How a batch keeps a failing job's changes apart from the others'.
#[derive(Clone, Copy)]
enum Isolation {
    /// A savepoint around each job, rolled back when the job fails.
    Savepoints,
    /// No savepoints: a failing job spoils the batch, unless it changed nothing (which only
    /// SQLite can tell: on Postgres a failed statement aborts the whole transaction).
    Optimistic,
}

#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("a job failed, with no savepoint to roll back to")]
    Spoiled,
    #[error("{0}")]
    Db(#[from] diesel::result::Error),
}

/// Runs the jobs in one `Batch` and commits it, with the waiting request-log rows `logs` (put
/// first) and the rows the jobs add. Unless they were given to their insert, `logs` are handed
/// back for a replay (without the jobs' rows: a replay adds them again).
fn run_batch(
    conn: &mut DbConn,
    jobs: &mut [Box<dyn Job>],
    logs: &mut Vec<NewRequest>,
    relaxed: bool,
    isolation: Isolation,
) -> Result<Committed, BatchError> {
    let waiting = logs.len();
    let mut batch = Batch::begin(conn)?;
    batch.log_all(std::mem::take(logs));
    let outcome = match run_jobs(&mut batch, jobs, isolation) {
        Ok(()) => {
            if relaxed {
                batch.relax();
            }
            batch.try_commit().map_err(|(e, kept)| {
                *logs = kept;
                BatchError::Db(e)
            })
        }
        Err(e) => {
            *logs = batch.rollback();
            Err(e)
        }
    };
    logs.truncate(waiting);
    outcome
}

/// Runs each job in the batch, in order, after inserting the batch's new users; a job that
/// fails is undone alone (`isolation`), with the events and log rows it queued.
fn run_jobs(
    batch: &mut Batch<'_>,
    jobs: &mut [Box<dyn Job>],
    isolation: Isolation,
) -> Result<(), BatchError> {
    let inserted = insert_new_users(batch, jobs)?;
    for (i, (job, inserted)) in jobs.iter_mut().zip(inserted).enumerate() {
        let queued = batch.mark();
        let changes_before = match isolation {
            Isolation::Savepoints => {
                job_savepoint(batch, i == 0)?;
                None
            }
            Isolation::Optimistic => Some(total_changes(batch)?),
        };
        // A panicking job leaves the transaction in an unknown state: give up the batch.
        let stands = catch_unwind(AssertUnwindSafe(|| job.run(batch, inserted)))
            .map_err(|_| diesel::result::Error::RollbackTransaction)??;
        if stands {
            continue;
        }
        match changes_before {
            None => batch.batch_execute("ROLLBACK TO SAVEPOINT job")?,
            // Failed before it changed anything: nothing to undo.
            Some(Some(before)) if total_changes(batch)? == Some(before) => {}
            Some(_) => return Err(BatchError::Spoiled),
        }
        batch.forget_since(queued);
    }
    Ok(())
}

/// Inserts the new users of the batch's jobs; says for each job whether its user went in.
///
/// Inserting them before the jobs run (their events are recorded by the jobs, in order) is
/// one valid order of the batch's changes: none has been answered yet, so none can name a
/// user another creates (ids are only known from the reply).
fn insert_new_users(
    c: &mut DbConn,
    jobs: &[Box<dyn Job>],
) -> Result<Vec<bool>, diesel::result::Error> {
    let new_users: Vec<&NewUser> = jobs.iter().filter_map(|j| j.new_user()).collect();
    let mut inserted = users::insert(c, &new_users)?.into_iter();
    Ok(jobs
        .iter()
        .map(|j| j.new_user().is_some() && inserted.next().unwrap_or(false))
        .collect())
}

mod sql {
    diesel::define_sql_function! {
        /// SQLite's count of rows changed by this connection's completed statements (a failing
        /// statement's are undone and not counted; it never decreases).
        fn total_changes() -> diesel::sql_types::BigInt;
    }
}

/// For optimistic batches: SQLite's count of changed rows; none on Postgres, which has no
/// such function (and where a failed statement spoils the transaction anyway).
fn total_changes(c: &mut DbConn) -> Result<Option<i64>, diesel::result::Error> {
    use diesel::RunQueryDsl;
    match c {
        DbConn::Sqlite(c) => diesel::select(sql::total_changes()).get_result(c).map(Some),
        DbConn::Postgres(_) => Ok(None),
    }
}

/// Opens the next job's savepoint. A job's savepoint is released when the next one opens
/// (or by the commit): on Postgres every statement is a round trip, and the two travel
/// together.
fn job_savepoint(c: &mut DbConn, first: bool) -> Result<(), diesel::result::Error> {
    c.batch_execute(if first {
        "SAVEPOINT job"
    } else {
        "RELEASE SAVEPOINT job; SAVEPOINT job"
    })
}
