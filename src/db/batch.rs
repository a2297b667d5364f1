//! `Batch`: one write transaction and the work it writes at its end. Every write operation
//! takes one; `events::emit` and `Batch::log` only queue, and `Batch::commit` writes, in this
//! order, the queued events (with their webhook deliveries), the request-log rows, SQLite's
//! search-index work, and then commits. On Postgres a batch that queued webhook deliveries
//! also sends a `NOTIFY` in its transaction, which wakes every instance's delivery worker as
//! it commits; `try_commit` says how many it queued, to wake this process's own at once. The writer's group commit (`writer`) runs many SCIM
//! changes in one `Batch`; any other change runs in a batch of its own (`Batch::run`,
//! `write_tx`).
//!
//! Events about a user the deprovisioning brake holds are stored aside instead (see
//! `crate::brake`).
//!
//! Why at the end: events then take the event-order lock and each directory's counter row
//! once per batch instead of once per change, and only for the last moments before the commit
//! (on Postgres, other instances' batches wait for them only that long).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::{Connection, QueryResult};

use super::events::{self, PendingEvent};
use super::requests::{self, NewRequest};
use super::{DbConn, users, webhooks};

type Tm = <DbConn as Connection>::TransactionManager;

/// Serializes this process's SQLite write transactions. SQLite has one writer at a time:
/// writers of this process queue on this mutex instead of polling SQLite's busy handler, which
/// sleeps between tries and starves some of them under load (requests then fail with
/// "database is locked").
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// An open write transaction (a savepoint when opened inside another) with the events and
/// request-log rows queued for its end. Dropped without `commit`, it rolls back.
pub struct Batch<'c> {
    conn: &'c mut DbConn,
    events: Vec<PendingEvent>,
    /// The users the deprovisioning brake holds, per directory this batch emitted events
    /// about users of (read at its first such event): their events are stored aside.
    held: HashMap<String, HashSet<String>>,
    logs: Vec<NewRequest>,
    /// Webhook deliveries the events written so far queued.
    deliveries: usize,
    /// A savepoint in an enclosing transaction: its end-of-transaction work is the outer one's.
    nested: bool,
    /// Postgres: commit without waiting for the WAL flush.
    relaxed: bool,
    open: bool,
    _sqlite_writer: Option<std::sync::MutexGuard<'static, ()>>,
}

/// What a committed batch wrote that others wait for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Committed {
    /// Webhook deliveries queued: when any, the delivery worker has work.
    pub deliveries: usize,
    /// How long the `COMMIT` itself took: the database making the batch durable (SQLite's
    /// WAL sync, Postgres' WAL flush), the part of a write no batching can share out.
    pub durable_in: Duration,
}

/// How much a batch had queued at some point (see `Batch::forget_since`).
#[derive(Clone, Copy)]
pub struct Mark {
    events: usize,
    logs: usize,
}

impl<'c> Batch<'c> {
    /// Opens a write transaction: `BEGIN IMMEDIATE` on SQLite, so read-then-write
    /// transactions take the write lock up front instead of failing with "database is
    /// locked". Inside another transaction it opens a savepoint.
    pub fn begin(conn: &'c mut DbConn) -> QueryResult<Batch<'c>> {
        let nested = Tm::transaction_manager_status_mut(conn)
            .transaction_depth()?
            .is_some();
        let sqlite_writer = match conn {
            DbConn::Sqlite(_) if !nested => Some(
                SQLITE_WRITER
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
            _ => None,
        };
        match conn {
            DbConn::Sqlite(c) if !nested => {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
            }
            _ => Tm::begin_transaction(conn)?,
        }
        Ok(Batch {
            conn,
            events: Vec::new(),
            held: HashMap::new(),
            logs: Vec::new(),
            deliveries: 0,
            nested,
            relaxed: false,
            open: true,
            _sqlite_writer: sqlite_writer,
        })
    }

    /// Runs `f` in a batch of its own and commits it; an `Err` from `f` rolls it back.
    pub fn run<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Batch<'_>) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        let mut batch = Batch::begin(conn)?;
        let value = f(&mut batch)?;
        // Deliveries queued here wake the worker by the batch's notification on Postgres; on
        // SQLite the handler that ran the change wakes it (`AppState::delivery_wake`).
        let _ = batch.commit()?;
        Ok(value)
    }

    /// The transaction's connection, for the statements of a change.
    pub fn conn(&mut self) -> &mut DbConn {
        self.conn
    }

    /// Queues a request-log row, inserted by `commit`.
    pub fn log(&mut self, row: NewRequest) {
        self.logs.push(row);
    }

    /// Queues events of one directory (type and serialized data), written by `commit`.
    pub(super) fn queue_events(&mut self, events: impl IntoIterator<Item = PendingEvent>) {
        self.events.extend(events);
    }

    /// Commits without waiting for Postgres's WAL flush (rows whose loss in a crash loses no
    /// change). SQLite in WAL mode with `synchronous=NORMAL` never waits for a sync at commit.
    pub fn relax(&mut self) {
        self.relaxed = true;
    }

    /// The users of a directory the brake holds (see `held`).
    pub fn held_users(&mut self, directory_id: &str) -> QueryResult<&HashSet<String>> {
        if !self.held.contains_key(directory_id) {
            let ids = super::brake::held_ids(self.conn, directory_id)?;
            self.held.insert(directory_id.to_string(), ids);
        }
        Ok(&self.held[directory_id])
    }

    /// The brake now holds this user: its events from here on are stored aside.
    pub fn hold_user(&mut self, directory_id: &str, user_id: &str) -> QueryResult<()> {
        self.held_users(directory_id)?;
        if let Some(held) = self.held.get_mut(directory_id) {
            held.insert(user_id.to_string());
        }
        Ok(())
    }

    /// The brake no longer holds these users of the directory (all when `None`): their held
    /// events are being released.
    pub fn unhold_users(&mut self, directory_id: &str, users: Option<&[String]>) {
        match (users, self.held.get_mut(directory_id)) {
            (None, _) => {
                self.held.insert(directory_id.to_string(), HashSet::new());
            }
            (Some(users), Some(held)) => {
                for u in users {
                    held.remove(u);
                }
            }
            (Some(_), None) => {}
        }
    }

    /// What is queued so far.
    pub fn mark(&self) -> Mark {
        Mark {
            events: self.events.len(),
            logs: self.logs.len(),
        }
    }

    /// Forgets what was queued since `mark`: the change that queued it was rolled back.
    pub fn forget_since(&mut self, mark: Mark) {
        self.events.truncate(mark.events);
        self.logs.truncate(mark.logs);
    }

    /// Writes the events queued so far now, rather than at the commit (a change that must
    /// record them before it deletes what they refer to).
    pub fn write_events(&mut self) -> QueryResult<()> {
        let (held, live): (Vec<PendingEvent>, Vec<PendingEvent>) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(PendingEvent::is_held);
        if !held.is_empty() {
            super::brake::insert_held_events(
                self.conn,
                held.into_iter().map(PendingEvent::into_held).collect(),
            )?;
        }
        self.deliveries += events::write_pending(self.conn, live)?;
        Ok(())
    }

    /// Queues request-log rows, inserted by `commit`.
    pub fn log_all(&mut self, rows: Vec<NewRequest>) {
        if self.logs.is_empty() {
            self.logs = rows;
        } else {
            self.logs.extend(rows);
        }
    }

    /// Writes what is queued (events, then request-log rows, then SQLite's search-index
    /// work) and commits. On failure everything is rolled back.
    pub fn commit(self) -> QueryResult<Committed> {
        self.try_commit().map_err(|(e, _)| e)
    }

    /// `commit`, which on failure also hands back the request-log rows it had not yet
    /// given to their insert (the writer keeps them for a replay of its batch).
    pub fn try_commit(mut self) -> Result<Committed, (diesel::result::Error, Vec<NewRequest>)> {
        if let Err(e) = self.write_events() {
            return Err((e, self.rollback()));
        }
        let logs = std::mem::take(&mut self.logs);
        let durable_in = self.finish(logs).map_err(|e| (e, Vec::new()))?;
        Ok(Committed {
            deliveries: self.deliveries,
            durable_in,
        })
    }

    /// Inserts the log rows and commits; says how long the commit itself took.
    fn finish(&mut self, logs: Vec<NewRequest>) -> QueryResult<Duration> {
        if !logs.is_empty() {
            // Rows that cannot be inserted fail the batch (its callers get a 503 and retry),
            // so no change is ever acknowledged without its log row.
            requests::insert_many(self.conn, logs)?;
        }
        if let DbConn::Postgres(pg) = &mut *self.conn {
            // One round trip for both; Postgres sends the notification only if this commits.
            let statements = [
                (self.relaxed, "SET LOCAL synchronous_commit = off;"),
                (self.deliveries > 0, webhooks::NOTIFY_DELIVERIES),
            ];
            let sql: String = statements
                .iter()
                .filter(|(wanted, _)| *wanted)
                .map(|(_, statement)| *statement)
                .collect();
            if !sql.is_empty() {
                pg.batch_execute(&sql)?;
            }
        }
        if !self.nested {
            users::search_index::index_pending(self.conn)?;
        }
        self.open = false;
        let committing = Instant::now();
        Tm::commit_transaction(self.conn).inspect_err(|_| {
            let _ = Tm::rollback_transaction(self.conn);
        })?;
        Ok(committing.elapsed())
    }

    /// Rolls back, and hands back the request-log rows queued.
    pub fn rollback(mut self) -> Vec<NewRequest> {
        self.open = false;
        let _ = Tm::rollback_transaction(self.conn);
        std::mem::take(&mut self.logs)
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = Tm::rollback_transaction(self.conn);
        }
    }
}

/// A batch is also its connection, so the statements and reads of a change take it as is.
impl std::ops::Deref for Batch<'_> {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        self.conn
    }
}

impl std::ops::DerefMut for Batch<'_> {
    fn deref_mut(&mut self) -> &mut DbConn {
        self.conn
    }
}

/// Runs `f` in a write transaction of its own, for changes that emit no events (see
/// `Batch::begin`; inside another transaction it becomes a savepoint).
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    Batch::run(conn, |batch| f(batch.conn()))
}

/// `write_tx` for bookkeeping whose loss in a crash loses no change and is made good again
/// (see `Batch::relax`): on Postgres it commits without waiting for the WAL flush.
pub fn relaxed_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    Batch::run(conn, |batch| {
        batch.relax();
        f(batch.conn())
    })
}
