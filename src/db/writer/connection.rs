//! The writer's connection: the settings it holds while it is the writer's, and gives back
//! to the pool.

use diesel::connection::SimpleConnection;

use crate::db::{DbConn, PooledConn};

/// The writer's pooled connection. On SQLite it keeps statement journals in memory while it
/// is the writer's: a job's savepoint (or a statement's) would otherwise keep its journal in a
/// temporary file written with every page it changes (a tenth of a create's cost). Pooled
/// readers keep SQLite's default, so their large sorts spill to disk rather than to the heap.
pub(super) struct WriterConn(PooledConn);

impl WriterConn {
    /// WAL frames after which the writer finishes a checkpoint (see `Checkpointer`).
    pub(super) const WAL_FRAMES: u32 = 4000;

    pub(super) fn new(mut conn: PooledConn) -> WriterConn {
        Self::set(&mut conn, "temp_store = MEMORY");
        Self::set_pg(&mut conn, "SET plan_cache_mode = force_generic_plan");
        WriterConn(conn)
    }

    fn set(conn: &mut DbConn, pragma: &str) {
        if let DbConn::Sqlite(c) = conn
            && let Err(e) = c.batch_execute(&format!("PRAGMA {pragma}"))
        {
            log::warn!("database writer: {pragma}: {e}");
        }
    }

    fn set_pg(conn: &mut DbConn, statement: &str) {
        if let DbConn::Postgres(c) = conn
            && let Err(e) = c.batch_execute(statement)
        {
            log::warn!("database writer: {statement}: {e}");
        }
    }
}

impl Drop for WriterConn {
    fn drop(&mut self) {
        // The defaults, for whoever gets the connection from the pool next.
        Self::set(&mut self.0, "temp_store = DEFAULT");
        Self::set_pg(&mut self.0, "RESET plan_cache_mode");
    }
}

impl std::ops::Deref for WriterConn {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.0
    }
}

impl std::ops::DerefMut for WriterConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.0
    }
}
