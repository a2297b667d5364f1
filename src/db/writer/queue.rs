//! The writer thread's loop: it gathers queued jobs (up to `MAX_BATCH`) and the log rows
//! waiting beside the queue into one batch, has `group_commit` commit it, and keeps its
//! connection, WAL and statistics up between batches.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use super::checkpoint::Checkpointer;
use super::connection::WriterConn;
use super::group_commit::commit_batch;
use super::jobs::Job;
use super::statistics::Statistics;
use super::{IDLE, LOG_COMPANY, LOG_DELAY, MAX_BATCH};
use crate::db::Pool;
use crate::db::requests::NewRequest;
use crate::events::wake::DeliveryWake;

/// A job with how it must be committed.
pub(super) struct Queued {
    pub job: Box<dyn Job>,
    /// Must survive a crash once acknowledged; a batch of only non-durable jobs may commit
    /// without waiting for Postgres's WAL flush.
    pub durable: bool,
    /// Holds the writer long (a step of a large change): committed in a batch of its own,
    /// after the light jobs queued with it, so a light job never waits behind more than one.
    pub alone: bool,
}

/// What the queue carries to the writer thread.
pub(super) enum Item {
    Job(Queued),
    /// Log rows wait in `LogRows` (the first, and the `LOG_COMPANY`th).
    Logs,
}

/// Log rows not yet taken by the writer, each with its place in the queue (freed once the row
/// is committed or given up). They wait beside the queue, not in it: a message per row woke
/// the writer's thread for each read, a tenth of a read's time in the server's threads.
pub(super) type LogRows =
    Arc<std::sync::Mutex<Vec<(NewRequest, tokio::sync::OwnedSemaphorePermit)>>>;

pub(super) fn lock_rows(
    rows: &LogRows,
) -> std::sync::MutexGuard<'_, Vec<(NewRequest, tokio::sync::OwnedSemaphorePermit)>> {
    rows.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the writer thread counts for `Writer::queue_depth` and the metrics.
pub(super) struct Counters<'a> {
    /// Log rows queued and not yet committed.
    pub pending_logs: &'a AtomicUsize,
    /// Jobs sent and not yet taken from the queue.
    pub queued_jobs: &'a AtomicUsize,
    pub measures: Option<&'a super::WriterMetrics>,
}

/// What the writer takes from the queue for one batch.
#[derive(Default)]
pub(super) struct Gathered {
    pub jobs: Vec<Queued>,
    pub logs: Vec<NewRequest>,
    /// The queue places of `logs`, given back when the batch is done.
    pub places: Vec<tokio::sync::OwnedSemaphorePermit>,
}

impl Gathered {
    /// Adds a job to the batch, or to `alone` when it commits alone.
    fn add(&mut self, item: Item, alone: &mut VecDeque<Queued>, queued: &AtomicUsize) {
        if matches!(item, Item::Job(_)) {
            queued.fetch_sub(1, Ordering::Relaxed);
        }
        match item {
            Item::Job(q) if q.alone => alone.push_back(q),
            Item::Job(q) => self.jobs.push(q),
            // The rows are taken by `take_logs`.
            Item::Logs => {}
        }
    }

    /// Takes what is already queued, up to `MAX_BATCH` jobs (see `add`).
    fn gather(
        &mut self,
        items: &mpsc::Receiver<Item>,
        alone: &mut VecDeque<Queued>,
        queued: &AtomicUsize,
    ) {
        while self.jobs.len() < MAX_BATCH {
            match items.try_recv() {
                Ok(item) => self.add(item, alone, queued),
                Err(_) => break,
            }
        }
    }

    /// Takes every waiting log row (at most `MAX_PENDING_LOGS`).
    fn take_logs(&mut self, log_rows: &LogRows) {
        for (row, place) in lock_rows(log_rows).drain(..) {
            self.logs.push(row);
            self.places.push(place);
        }
    }
}

/// The writer thread: gathers what is queued, commits it, and keeps the connection's WAL and
/// statistics up between batches.
pub(super) fn writer_loop(
    pool: &Pool,
    mut checkpoints: Option<Checkpointer>,
    items: &mpsc::Receiver<Item>,
    log_rows: &LogRows,
    counters: &Counters<'_>,
    wake: &DeliveryWake,
) {
    let queued = counters.queued_jobs;
    let mut conn: Option<WriterConn> = None;
    let mut statistics = Statistics::default();
    let mut closing = false;
    // Jobs that commit alone (see `Queued::alone`), in arrival order, and whether one is next.
    let mut alone: VecDeque<Queued> = VecDeque::new();
    let mut alone_next = false;
    loop {
        let mut batch = Gathered::default();
        let lone = if alone_next { alone.pop_front() } else { None };
        alone_next = false;
        if let Some(q) = lone {
            // After the light jobs that came with it, and before any that came later: a
            // stream of light jobs never starves it.
            batch.jobs.push(q);
        } else {
            if alone.is_empty() {
                match items.recv_timeout(IDLE) {
                    Ok(item) => batch.add(item, &mut alone, queued),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        conn = None;
                        continue;
                    }
                    // The last rows, if any, then stop.
                    Err(mpsc::RecvTimeoutError::Disconnected) => closing = true,
                }
            }
            batch.gather(items, &mut alone, queued);
            if !closing
                && batch.jobs.is_empty()
                && alone.is_empty()
                && lock_rows(log_rows).len() < LOG_COMPANY
            {
                // A few log rows only: wait a little for more, unless a change arrives.
                let deadline = Instant::now() + LOG_DELAY;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match items.recv_timeout(left) {
                        Ok(item) => {
                            batch.add(item, &mut alone, queued);
                            if !batch.jobs.is_empty() || !alone.is_empty() {
                                batch.gather(items, &mut alone, queued);
                                break;
                            }
                            if lock_rows(log_rows).len() >= LOG_COMPANY {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            if batch.jobs.is_empty() {
                batch.jobs.extend(alone.pop_front());
            } else {
                alone_next = !alone.is_empty();
            }
        }
        batch.take_logs(log_rows);
        if batch.jobs.is_empty() && batch.logs.is_empty() {
            // Woken for rows an earlier batch took already: nothing to commit.
            if closing {
                return;
            }
            continue;
        }
        let logs = batch.logs.len();
        if let Some(m) = counters.measures {
            m.batch_sizes.observe((batch.jobs.len() + logs) as f64);
        }
        // Changes, not bookkeeping (token touches, flushes): what the statistics follow.
        let changes = batch.jobs.iter().filter(|q| q.durable).count();
        if conn.is_none() {
            match pool.get() {
                Ok(c) => conn = Some(WriterConn::new(c)),
                Err(e) => log::error!("database writer: no connection: {e}"),
            }
        }
        match conn.as_mut() {
            Some(c) => {
                let started = std::time::Instant::now();
                let durable_in = commit_batch(c, batch, wake);
                if let (Some(m), Some(commit)) = (counters.measures, durable_in) {
                    m.batch_seconds.observe(started.elapsed().as_secs_f64());
                    m.commit_seconds.observe(commit.as_secs_f64());
                }
                if durable_in.is_some() {
                    statistics.after(c, changes);
                    if let Some(checkpoints) = checkpoints.as_mut() {
                        checkpoints.after(c, changes);
                    }
                } else {
                    // A connection that failed to commit may be broken; the pool checks it.
                    conn = None;
                }
            }
            // Dropping the jobs tells each caller the write was not done.
            None => log::error!("{logs} request log rows lost"),
        }
        counters.pending_logs.fetch_sub(logs, Ordering::SeqCst);
    }
}
