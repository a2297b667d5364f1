//! SQLite's WAL checkpoints, on a thread beside the writer, and the writer's own restart of
//! the WAL once it grew long (see `Checkpointer`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use diesel::connection::SimpleConnection;

use super::connection::WriterConn;
use crate::db::{DbConn, Pool};

/// On SQLite, copies the WAL into the database file on a thread of its own, beside the
/// writer: done by the writer at its commits (SQLite's automatic checkpoint), it was a seventh
/// of the writer's time. Only a checkpoint that leaves nothing behind lets the WAL file start
/// over, and one running beside a busy writer rarely does (the WAL then grew without bound).
/// So once the WAL holds `WriterConn::WAL_FRAMES` frames, the writer itself, between two
/// batches and after waiting for the thread's copy to end, copies what is left and starts the
/// WAL over (a RESTART checkpoint, which gives up at once if a reader still reads the WAL; the
/// thread's next report brings the next try).
pub(super) struct Checkpointer {
    nudge: mpsc::SyncSender<()>,
    /// Held while a checkpoint runs: SQLite lets one run at a time and skips the others.
    running: Arc<std::sync::Mutex<()>>,
    /// WAL frames as of the thread's last checkpoint.
    pub(super) wal_frames: Arc<AtomicUsize>,
    changes: usize,
}

#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    /// 1 when the checkpoint could not do all it was asked (readers, or another checkpoint).
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

impl Checkpointer {
    /// Changes committed between two background checkpoints (a few hundred WAL frames).
    const EVERY: usize = 100;

    /// `None` on Postgres, or when the thread could not start (the writer then checkpoints
    /// alone, as SQLite does by default).
    pub(super) fn start(pool: &Pool) -> Option<Checkpointer> {
        let sqlite = pool.get().is_ok_and(|c| matches!(*c, DbConn::Sqlite(_)));
        if !sqlite {
            return None;
        }
        let (nudge, nudges) = mpsc::sync_channel::<()>(1);
        let running = Arc::new(std::sync::Mutex::new(()));
        let wal_frames = Arc::new(AtomicUsize::new(0));
        let (pool, lock, frames) = (pool.clone(), running.clone(), wal_frames.clone());
        std::thread::Builder::new()
            .name("roster-checkpoint".into())
            .spawn(move || {
                // Ends when the writer does (its end of the channel is dropped).
                while nudges.recv().is_ok() {
                    let copied = pool.get().map_err(|e| e.to_string()).and_then(|mut c| {
                        let _running = lock.lock().unwrap_or_else(|e| e.into_inner());
                        Self::checkpoint(&mut c, "PASSIVE").map_err(|e| e.to_string())
                    });
                    match copied {
                        Ok(r) => {
                            frames.store(usize::try_from(r.log).unwrap_or(0), Ordering::SeqCst)
                        }
                        Err(e) => log::warn!("background checkpoint: {e}"),
                    }
                }
            })
            .inspect_err(|e| log::warn!("the checkpoint thread did not start: {e}"))
            .ok()?;
        Some(Checkpointer {
            nudge,
            running,
            wal_frames,
            changes: 0,
        })
    }

    /// `PRAGMA wal_checkpoint(mode)`: PASSIVE never waits for readers or the writer.
    fn checkpoint(c: &mut DbConn, mode: &str) -> Result<CheckpointResult, diesel::result::Error> {
        use diesel::RunQueryDsl;
        crate::on_backend!(c, |c| diesel::sql_query(format!(
            "PRAGMA wal_checkpoint({mode})"
        ))
        .get_result(c))
    }

    /// Copies what is left of the WAL and starts it over, unless a reader still reads it
    /// (no waiting: the writer must not stall); true when it did.
    fn restart(c: &mut DbConn) -> Result<bool, diesel::result::Error> {
        c.batch_execute("PRAGMA busy_timeout = 0")?;
        let r = Self::checkpoint(c, "RESTART");
        c.batch_execute(&format!(
            "PRAGMA busy_timeout = {}",
            crate::db::SQLITE_BUSY_TIMEOUT_MS
        ))?;
        Ok(r?.busy == 0)
    }

    /// After a committed batch, on the writer's connection.
    pub(super) fn after(&mut self, conn: &mut DbConn, changes: usize) {
        if self.wal_frames.load(Ordering::SeqCst) >= WriterConn::WAL_FRAMES as usize {
            let _running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            match Self::restart(conn) {
                Ok(true) => {}
                Ok(false) => log::debug!("WAL still read: it starts over at a later try"),
                Err(e) => log::warn!("database writer: checkpoint: {e}"),
            }
            // Done, or tried again once the thread reports the WAL this long again.
            self.wal_frames.store(0, Ordering::SeqCst);
            self.changes = 0;
            return;
        }
        self.changes += changes;
        if self.changes >= Self::EVERY {
            self.changes = 0;
            // Already nudged and not done yet: this commit's frames go with that checkpoint.
            let _ = self.nudge.try_send(());
        }
    }
}
