//! Group commit: the SCIM endpoint's changes (and request-log rows) queue here, and one
//! thread per process commits them in batches: many changes in one `db::Batch`, one commit.
//!
//! - `Writer` (here): the handle the server queues jobs on (`run`, `run_create`, `spawn`,
//!   `log`, `flush`).
//! - `jobs`: the kinds of job and how each reports its outcome.
//! - `queue`: the writer thread's loop, gathering jobs and waiting log rows into a batch.
//! - `group_commit`: runs a gathered batch in one transaction, undoing a failed job alone.
//! - `connection`, `checkpoint`, `statistics`: the writer connection's settings, SQLite's WAL
//!   checkpoints and the planners' statistics, kept up between batches.
//!
//! Why: SQLite has one writer at a time, and a commit costs far more than the statements of
//! a typical SCIM change. Committing up to `MAX_BATCH` queued jobs together divides that cost,
//! and a single long-lived writer connection keeps its page cache warm (a connection whose
//! cache another connection's commit invalidated re-reads every page it touches). On Postgres
//! it divides the WAL flushes the same way.
//!
//! Request-log rows of reads and refusals carry no change, so they are not waited for: they
//! queue here and are inserted together, after at most `LOG_DELAY`. Whoever
//! reads the log calls `flush` first, so this instance's pages always show every request.

mod checkpoint;
mod connection;
mod group_commit;
mod jobs;
mod queue;
mod statistics;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::requests::NewRequest;
use super::users::NewUser;
use super::{Batch, Pool};
use crate::events::wake::DeliveryWake;
use checkpoint::Checkpointer;
use jobs::{Call, Chore, CreateUser, Job, Reply};
use prometheus::Histogram;
use queue::{Counters, Item, LogRows, Queued, lock_rows, writer_loop};

/// The histograms the writer thread records each batch in.
#[derive(Clone)]
pub struct WriterMetrics {
    /// Jobs and log rows committed together.
    pub batch_sizes: Histogram,
    /// Seconds from a batch's first statement to its commit's end.
    pub batch_seconds: Histogram,
    /// Seconds of the commit alone: the database making the batch durable.
    pub commit_seconds: Histogram,
}

/// Jobs committed together at most.
const MAX_BATCH: usize = 128;
/// How long log rows wait for company when no change is queued… The rows queued here are
/// reads' (and refused requests'): no response waits for them, and a crash loses those still
/// waiting (normally under a quarter second's worth). Each commit costs the writer a WAL write and every reader its page
/// cache (SQLite drops a connection's cache when another commits), so reads' rows go in
/// few, large commits. A change's own row is in its job, committed before its response.
const LOG_DELAY: Duration = Duration::from_millis(250);
/// …unless there are this many already: about 10 ms of the writer's time, which a change
/// arriving meanwhile waits at most.
const LOG_COMPANY: usize = 1000;
/// Log rows queued and not yet committed at most: beyond this, `log` waits. Reads can come
/// faster than their rows can be written; the queue must not grow without bound.
const MAX_PENDING_LOGS: usize = 8000;
/// An idle writer gives its connection back to the pool after this long.
const IDLE: Duration = Duration::from_secs(1);

/// WAL frames after which a commit on any SQLite connection copies the WAL into the database
/// itself (SQLite's automatic checkpoint): twice the writer's own mark, a safety net should
/// the checkpoint thread be missing. At SQLite's default of 1 000, which a busy writer's WAL
/// is always past, every commit beside the writer (a portal or console change; the webhook
/// worker's claims and records, before they went through the writer) ran a checkpoint of its
/// own: an fsync of several ms each, while the checkpoint thread was doing the same work.
pub(crate) const SQLITE_AUTOCHECKPOINT_FRAMES: u32 = 2 * connection::WriterConn::WAL_FRAMES;

/// Why a queued job has no result.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the batch this write was in could not be committed: {0}")]
    Commit(String),
    #[error("the database writer is not available: {0}")]
    Unavailable(String),
}

/// How a job a caller waits for is committed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// With the other jobs of its batch, durably.
    Durable,
    /// Durably, in a batch of its own (see `Writer::run_alone`).
    Alone,
    /// Without waiting for Postgres's WAL flush when its batch holds only such jobs.
    Relaxed,
}

/// Handle to the process's writer thread; dropping it commits what is queued and stops the
/// thread.
///
/// One writer on Postgres too. Two made creates 25–35 % faster (their batches ran side by side
/// until each wrote its events), but two batches that take the same keys in opposite orders
/// deadlock: concurrent creates of one userName, each waiting for the other batch's
/// uncommitted row, made Postgres abort one after a second (a 503). One writer never waits on
/// itself.
pub struct Writer {
    queue: Option<mpsc::Sender<Item>>,
    /// Log rows queued and not yet committed (or given up).
    pending_logs: Arc<AtomicUsize>,
    /// Places in the queue for log rows (`MAX_PENDING_LOGS`).
    log_places: Arc<tokio::sync::Semaphore>,
    log_rows: LogRows,
    /// Jobs sent and not yet taken by the writer thread.
    queued_jobs: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread after its last batch; waiting for it means no
        // database work is still running when the process exits.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Writer {
    /// Starts the writer thread on `pool`; its commits that queue webhook deliveries `wake`
    /// the delivery worker.
    pub fn start(pool: Pool, wake: DeliveryWake) -> Writer {
        Self::start_with(pool, wake, Checkpointer::start, None)
    }

    /// `start`, recording each batch's size and times in `measures` (see `metrics`).
    pub fn start_measured(pool: Pool, wake: DeliveryWake, measures: WriterMetrics) -> Writer {
        Self::start_with(pool, wake, Checkpointer::start, Some(measures))
    }

    /// Jobs and log rows waiting for the writer thread.
    pub fn queue_depth(&self) -> usize {
        self.queued_jobs.load(Ordering::Relaxed) + self.pending_logs.load(Ordering::Relaxed)
    }

    /// `start`, with the checkpointer `checkpointer` starts (on the writer's thread).
    fn start_with(
        pool: Pool,
        wake: DeliveryWake,
        checkpointer: impl FnOnce(&Pool) -> Option<Checkpointer> + Send + 'static,
        measures: Option<WriterMetrics>,
    ) -> Writer {
        let (queue, items) = mpsc::channel::<Item>();
        let pending_logs = Arc::new(AtomicUsize::new(0));
        let pending = pending_logs.clone();
        let log_rows = LogRows::default();
        let rows = log_rows.clone();
        let queued_jobs = Arc::new(AtomicUsize::new(0));
        let queued = queued_jobs.clone();
        // Named, so profiles and `top -H` show which thread is the writer.
        let thread = std::thread::Builder::new()
            .name("roster-writer".into())
            .spawn(move || {
                let checkpoints = checkpointer(&pool);
                writer_loop(
                    &pool,
                    checkpoints,
                    &items,
                    &rows,
                    &Counters {
                        pending_logs: &pending,
                        queued_jobs: &queued,
                        measures: measures.as_ref(),
                    },
                    &wake,
                )
            })
            // Without the thread every write is refused as unavailable (503), not lost.
            .inspect_err(|e| log::error!("the database writer thread did not start: {e}"))
            .ok();
        Writer {
            queue: Some(queue),
            pending_logs,
            log_places: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_LOGS)),
            log_rows,
            queued_jobs,
            thread,
        }
    }

    fn send(&self, item: Item) -> Result<(), WriteError> {
        let job = matches!(item, Item::Job(_));
        if job {
            self.queued_jobs.fetch_add(1, Ordering::Relaxed);
        }
        let sent = self.queue.as_ref().and_then(|q| q.send(item).ok());
        if sent.is_none() && job {
            self.queued_jobs.fetch_sub(1, Ordering::Relaxed);
        }
        sent.ok_or_else(|| WriteError::Unavailable("the writer thread has stopped".into()))
    }

    /// Queues a request-log row; it is committed within `LOG_DELAY` (or at the next `flush`).
    /// Waits while `MAX_PENDING_LOGS` rows are queued already.
    pub async fn log(&self, row: NewRequest) {
        let Ok(place) = self.log_places.clone().acquire_owned().await else {
            log::error!("request log row dropped: the log queue is closed");
            return;
        };
        self.pending_logs.fetch_add(1, Ordering::SeqCst);
        let waiting = {
            let mut rows = lock_rows(&self.log_rows);
            rows.push((row, place));
            rows.len()
        };
        // The writer takes every waiting row at once: only the first needs to wake it (and
        // the `LOG_COMPANY`th, to end its wait for more).
        if (waiting == 1 || waiting == LOG_COMPANY) && self.send(Item::Logs).is_err() {
            log::error!("request log rows dropped: the writer thread has stopped");
        }
    }

    /// Waits until every log row queued so far, and every job queued before it, is committed
    /// (immediately when no log row is pending).
    pub async fn flush(&self) {
        if self.pending_logs.load(Ordering::SeqCst) > 0 {
            let _ = self
                .run_relaxed(|_| Ok::<_, diesel::result::Error>(()))
                .await;
        }
    }

    /// Queues `f` in the next batch without waiting for it (bookkeeping whose failure is only
    /// logged). `f` may run more than once (see `Job::run`).
    pub fn spawn<F>(&self, what: &'static str, f: F)
    where
        F: FnMut(&mut Batch<'_>) -> Result<(), diesel::result::Error> + Send + 'static,
    {
        let _ = self.send(Item::Job(Queued {
            job: Box::new(Chore { what, f }),
            durable: false,
            alone: false,
        }));
    }

    /// Runs `f` in the next batch; its result arrives once the batch committed. An `Err` from
    /// `f` rolls back what `f` did (and only that: the events and log rows it queued too) and
    /// is returned as is. `f` may run more than once: only its last run counts (see
    /// `Job::run`).
    pub async fn run<T, E, F>(&self, f: F) -> Result<Result<T, E>, WriteError>
    where
        F: FnMut(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
    {
        self.submit(f, Commit::Durable).await
    }

    /// Like `run`, for a job that holds the writer long (a step of a large membership change):
    /// it is committed in a batch of its own, after the jobs queued with it, so that other
    /// directories' changes never wait behind more than one such job.
    pub async fn run_alone<T, E, F>(&self, f: F) -> Result<Result<T, E>, WriteError>
    where
        F: FnMut(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
    {
        self.submit(f, Commit::Alone).await
    }

    /// Like `run`, for rows whose loss in a crash loses no change (request-log rows of reads):
    /// on Postgres, a batch holding only such jobs commits without waiting for the WAL flush.
    pub async fn run_relaxed<T, E, F>(&self, f: F) -> Result<Result<T, E>, WriteError>
    where
        F: FnMut(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
    {
        self.submit(f, Commit::Relaxed).await
    }

    /// Like `run`, for a caller on a thread of its own outside the async runtime (the webhook
    /// worker's dispatcher): blocks until the batch committed.
    pub fn run_blocking<T, E, F>(&self, f: F) -> Result<Result<T, E>, WriteError>
    where
        F: FnMut(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Item::Job(Queued {
            job: Box::new(Call {
                f,
                result: None,
                reply,
            }),
            durable: true,
            alone: false,
        }))?;
        answer
            .blocking_recv()
            .map_err(|_| WriteError::Unavailable("the write was abandoned".into()))?
    }

    /// Creates `user` in the next batch. With `insert_first` (a user that joins no groups) the
    /// batch inserts it together with its other new users (see `users::insert`), and `store`
    /// runs only if it went in; otherwise `store` inserts it (see `jobs::CreateUser`).
    /// `None`: its userName is taken. `store` may run more than once: only its last run
    /// counts.
    pub async fn run_create<T, E, F>(
        &self,
        user: NewUser,
        insert_first: bool,
        store: F,
    ) -> Result<Option<Result<T, E>>, WriteError>
    where
        F: FnMut(&mut Batch<'_>, &NewUser, Option<bool>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.queue(
            |reply| {
                Box::new(CreateUser {
                    user,
                    insert_first,
                    store,
                    result: None,
                    reply,
                })
            },
            Commit::Durable,
        )
        .await
    }

    async fn submit<T, E, F>(&self, f: F, commit: Commit) -> Result<Result<T, E>, WriteError>
    where
        F: FnMut(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.queue(
            |reply| {
                Box::new(Call {
                    f,
                    result: None,
                    reply,
                })
            },
            commit,
        )
        .await
    }

    /// Queues the job `job` builds around the sender of its reply, and waits for the reply.
    async fn queue<T>(
        &self,
        job: impl FnOnce(Reply<T>) -> Box<dyn Job>,
        commit: Commit,
    ) -> Result<T, WriteError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Item::Job(Queued {
            job: job(reply),
            durable: commit != Commit::Relaxed,
            alone: commit == Commit::Alone,
        }))?;
        answer
            .await
            .map_err(|_| WriteError::Unavailable("the write was abandoned".into()))?
    }
}
