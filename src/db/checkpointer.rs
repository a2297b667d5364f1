//! SQLite WAL checkpoints on a thread of their own, beside the writer.
//!
//! Why: by default the connection whose commit pushes the WAL past 1 000 pages copies them
//! into the database file and syncs it, inside that commit. On the writer, that was a tenth of
//! a create's time (the copy and the fsync) spent while every other write waited. Here the
//! writer only counts what it committed and, every `EVERY` changes, asks this thread for a
//! PASSIVE checkpoint, which runs beside later commits instead of before them. The writer's
//! own automatic checkpoint stays as a backstop (`WRITER_AUTOCHECKPOINT`) should this thread
//! fall behind or stop.

use std::sync::mpsc;

use super::{DbConn, Pool};

/// Committed changes (jobs, or log rows counted by `LOG_ROWS_PER_CHANGE`) between
/// checkpoint requests: about what fills SQLite's default 1 000-page threshold.
const EVERY: usize = 256;
/// Request-log rows that count as one change (a log row is a few dozen bytes of a page).
const LOG_ROWS_PER_CHANGE: usize = 16;
/// The writer's own automatic checkpoint threshold, in pages: only reached when this thread
/// cannot keep up (≈ 80 MB of WAL with 4 KiB pages).
pub const WRITER_AUTOCHECKPOINT: u32 = 20_000;

/// The writer's side: counts commits and asks for a checkpoint every `EVERY` changes.
pub struct Checkpointer {
    /// Capacity one: a request made while one is pending is already served by it.
    requests: Option<mpsc::SyncSender<()>>,
    since: usize,
}

impl Checkpointer {
    /// Starts the checkpoint thread for a SQLite pool (on Postgres, a no-op checkpointer).
    pub fn start(pool: &Pool) -> Checkpointer {
        let sqlite = matches!(pool.get().as_deref(), Ok(DbConn::Sqlite(_)));
        let requests = sqlite.then(|| {
            let (requests, incoming) = mpsc::sync_channel::<()>(1);
            let pool = pool.clone();
            std::thread::Builder::new()
                .name("roster-checkpoint".into())
                .spawn(move || {
                    // Ends when the writer (and with it `requests`) is dropped.
                    while incoming.recv().is_ok() {
                        checkpoint(&pool);
                    }
                })
                .inspect_err(|e| log::warn!("no checkpoint thread ({e}); the writer checkpoints"))
                .ok()
                .map(|_| requests)
        });
        Checkpointer {
            requests: requests.flatten(),
            since: 0,
        }
    }

    /// True when this checkpointer takes the checkpoints off the writer.
    pub fn active(&self) -> bool {
        self.requests.is_some()
    }

    /// Called after each committed batch.
    pub fn committed(&mut self, jobs: usize, log_rows: usize) {
        let Some(requests) = &self.requests else {
            return;
        };
        self.since += jobs + log_rows.div_ceil(LOG_ROWS_PER_CHANGE);
        if self.since >= EVERY {
            self.since = 0;
            // Full: a checkpoint is already asked for, and will include this batch.
            let _ = requests.try_send(());
        }
    }
}

fn checkpoint(pool: &Pool) {
    use diesel::connection::SimpleConnection;
    let done = pool.get().map_err(|e| e.to_string()).and_then(|mut c| {
        c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")
            .map_err(|e| e.to_string())
    });
    if let Err(e) = done {
        log::warn!("WAL checkpoint failed (the writer's own checkpoint takes over): {e}");
    }
}
