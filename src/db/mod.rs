//! Storage: one diesel `MultiConnection` over SQLite or PostgreSQL, picked at run time by the
//! database URL. Repository modules hold sync functions that take the tenant (org or directory)
//! first; handlers call them inside `web::block`. Changes run in a `Batch` (see `batch`):
//! SCIM changes in the writer's group commit (`writer`), any other in a batch of its own
//! (`write_tx`, `Batch::run`).

pub mod alerts;
pub mod api_keys;
pub mod attributes;
pub mod batch;
pub mod brake;
pub mod brands;
pub use batch::{Batch, Committed, relaxed_tx, write_tx};
pub mod directories;
pub mod events;
pub mod gauges;
pub mod groups;
pub mod memberships;
pub mod orgs;
pub mod owners;
pub mod renormalize;
pub mod requests;
pub mod resyncs;
pub mod role_refreshes;
pub mod roles;
pub mod schema;
pub mod scim_filter;
pub mod sealing;
pub mod sessions;
pub mod settings;
mod snapshot;
pub use snapshot::read_snapshot;
mod timestamp;
pub use timestamp::DbTimestamp;
pub mod users;
/// Paging a directory's users in id order (kept at this path for its callers).
pub use users::pages as user_pages;
pub mod webhooks;
pub mod writer;

use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::CustomizeConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// Key of the Postgres advisory lock that serializes migrations of instances starting together.
const MIGRATION_LOCK: i64 = 0x526f_7374;

/// A connection to either backend; most queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs `$body` with `$c` bound to the backend's own connection (`SqliteConnection` or
/// `PgConnection`), for queries on the hot paths. Through the `MultiConnection` every
/// execution writes the query's SQL text out again (its wrapper serializes the query for each
/// pass diesel makes: the statement-cache check and the binds), which was a tenth of a create's
/// time on the writer; on the backend's own connection a query with a static id finds its
/// prepared statement by type alone.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgres($c) => $body,
        }
    };
}

/// A statement of fixed text with text parameters (`?`, written as `$n` for Postgres), kept
/// prepared by the connection under the query id `Id` (diesel prepares a `sql_query` anew
/// every time). `ST` is the SQL type of its rows.
pub struct FixedSql<Id, ST> {
    sql: &'static str,
    binds: Vec<String>,
    marker: std::marker::PhantomData<(Id, ST)>,
}

impl<Id, ST> FixedSql<Id, ST> {
    /// `binds` fill the `?`s of `sql` in order.
    pub fn new(sql: &'static str, binds: Vec<String>) -> Self {
        debug_assert_eq!(sql.matches('?').count(), binds.len());
        FixedSql {
            sql,
            binds,
            marker: std::marker::PhantomData,
        }
    }
}

impl<Id: 'static, ST> diesel::query_builder::QueryId for FixedSql<Id, ST> {
    type QueryId = Id;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Id, ST> diesel::query_builder::Query for FixedSql<Id, ST> {
    type SqlType = ST;
}

impl<Id, ST, DB> diesel::query_builder::QueryFragment<DB> for FixedSql<Id, ST>
where
    DB: diesel::backend::Backend,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        let mut pieces = self.sql.split('?');
        out.push_sql(pieces.next().unwrap_or_default());
        for (bind, piece) in self.binds.iter().zip(pieces) {
            out.push_bind_param::<diesel::sql_types::Text, _>(bind)?;
            out.push_sql(piece);
        }
        Ok(())
    }
}

impl<Id, ST, Conn> diesel::RunQueryDsl<Conn> for FixedSql<Id, ST> {}

/// Ids as a JSON array, for SQLite's `json_each`.
pub fn json_array(ids: &[impl AsRef<str>]) -> String {
    serde_json::Value::from(ids.iter().map(|i| i.as_ref()).collect::<Vec<_>>()).to_string()
}

/// What diesel needs to run a hand-written statement type (`$name<'a>`, with its own
/// `QueryFragment`) that returns rows of `$sql_type`, and to keep it prepared: its text never
/// changes, so the type itself is its query id.
macro_rules! prepared_statement {
    ($name:ident, $sql_type:ty) => {
        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::Query for $name<'_> {
            type SqlType = $sql_type;
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $name<'_> {}
    };
}
pub(crate) use prepared_statement;

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Runs `f` on a pooled connection off the async workers (background work and changes that
/// read before they queue their writes on the writer).
pub async fn on_pool<T, E, F>(pool: &Pool, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<r2d2::Error> + From<actix_web::error::BlockingError> + Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL (expected postgres://…, postgresql://… or sqlite://…): {0}")]
    BadUrl(String),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations: {0}")]
    Migration(String),
}

impl Backend {
    /// The backend named by a URL's scheme. A bare path is refused so a typo cannot create an
    /// empty database somewhere unexpected.
    pub fn from_url(url: &str) -> Result<Backend, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(DbError::BadUrl(redact_url(url)))
        }
    }
}

/// The URL without a password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// r2d2 manager that connects with the right backend and keeps the driver's own error.
#[derive(Debug)]
pub struct Manager {
    url: String,
    backend: Backend,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        Ok(match self.backend {
            Backend::Postgres => DbConn::Postgres(
                diesel::PgConnection::establish(&self.url)
                    .map_err(diesel::r2d2::Error::ConnectionError)?,
            ),
            Backend::Sqlite => {
                // diesel opens SQLite URLs as URIs: `sqlite://path` becomes `file:path`.
                let path = self
                    .url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                DbConn::Sqlite(
                    diesel::SqliteConnection::establish(path)
                        .map_err(diesel::r2d2::Error::ConnectionError)?,
                )
            }
        })
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        match conn {
            DbConn::Postgres(c) => diesel::r2d2::R2D2Connection::is_broken(c),
            DbConn::Sqlite(_) => false,
        }
    }
}

/// How long a SQLite connection waits for a lock before giving up.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// SQLite settings every pooled connection needs; `batch_execute` runs them all (a single
/// `sql_query` would run only the first).
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            // WAL is set once per database file (in `connect`); these are per connection.
            c.batch_execute(&format!(
                "PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}; PRAGMA synchronous=NORMAL; \
                     PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint={};",
                writer::SQLITE_AUTOCHECKPOINT_FRAMES
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Opens a pool and applies pending migrations.
pub fn connect(url: &str) -> Result<Pool, DbError> {
    connect_sized(url, None)
}

/// A one-connection pool for a CLI command: no background connection is ever being opened
/// when the process exits (libpq can crash if one is).
pub fn connect_single(url: &str) -> Result<Pool, DbError> {
    connect_sized(url, Some(1))
}

fn connect_sized(url: &str, max: Option<u32>) -> Result<Pool, DbError> {
    let backend = Backend::from_url(url)?;
    if backend == Backend::Sqlite {
        ensure_sqlite_parent_dir(url);
    }
    let size = max.unwrap_or(match backend {
        Backend::Sqlite => 8,
        Backend::Postgres => 16,
    });
    let pool = r2d2::Pool::builder()
        .max_size(size)
        // Open connections as needed: a CLI command needs one, not a full pool.
        .min_idle(Some(if max.is_some() { 0 } else { 1 }))
        .connection_timeout(Duration::from_secs(5))
        // No `SELECT 1` round trip on every checkout; broken connections are still detected.
        .test_on_check_out(false)
        .connection_customizer(Box::new(SqlitePragmas))
        .build(Manager {
            url: url.to_string(),
            backend,
        })?;
    let mut conn = pool.get()?;
    if let DbConn::Sqlite(c) = &mut *conn {
        // Persistent in the file; switching needs a moment with no other writer.
        c.batch_execute("PRAGMA journal_mode=WAL;")?;
    }
    migrate(&mut conn)?;
    drop(conn);
    Ok(pool)
}

/// The file of a SQLite URL (`sqlite://roster.db` → `roster.db`); `None` for Postgres.
pub fn sqlite_path(url: &str) -> Option<&str> {
    if Backend::from_url(url).ok()? != Backend::Sqlite {
        return None;
    }
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    Some(path.split('?').next().unwrap_or(path))
}

fn ensure_sqlite_parent_dir(url: &str) {
    let Some(path) = sqlite_path(url) else {
        return;
    };
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(parent);
    }
    create_private(path);
}

/// Creates the database file readable by its owner only (it holds the directories' data and
/// webhook secrets), whatever the umask; SQLite gives its WAL and shared-memory files the
/// same mode. An existing file keeps the mode its operator chose.
fn create_private(path: &str) {
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // Already there (the usual case after the first run): nothing to do.
    let _ = options.open(path);
}

/// Applies pending migrations, then brings stored comparison forms up to date (see
/// `renormalize`); on Postgres under an advisory lock so that several instances starting
/// together do not race.
pub fn migrate(conn: &mut DbConn) -> Result<(), DbError> {
    let postgres = matches!(conn, DbConn::Postgres(_));
    if postgres {
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    }
    let result = apply_migrations(conn).and_then(|()| {
        renormalize::run(conn)
            .map(|_| ())
            .map_err(|e| DbError::Migration(format!("bringing comparison forms up to date: {e}")))
    });
    if postgres {
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
    }
    result
}

fn apply_migrations(conn: &mut DbConn) -> Result<(), DbError> {
    match conn {
        DbConn::Postgres(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|_| ()),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    }
    .map_err(|e| DbError::Migration(e.to_string()))
}

/// `%`, `_` and `\` in a LIKE operand made literal (use with `ESCAPE '\'`).
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A LIKE pattern matching values that contain `needle` literally.
pub fn contains_pattern(needle: &str) -> String {
    format!("%{}%", like_escape(needle))
}

/// Now, in UTC, truncated to microseconds so both backends round-trip it exactly.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A new time-ordered id (UUID v7): lowercase hex and hyphens only, safe in any URL.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when a diesel error is a unique-constraint violation.
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[derive(QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = Text)]
        compile_options: String,
    }

    /// `.cargo/config.toml` builds SQLite with the query planner stability guarantee; without
    /// it every cached statement with a `LIMIT ?` is re-prepared on each use.
    #[test]
    fn sqlite_plans_are_stable() {
        let mut c = diesel::SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<CompileOption> = diesel::sql_query("PRAGMA compile_options")
            .load(&mut c)
            .unwrap();
        assert!(
            options.iter().any(|o| o.compile_options == "ENABLE_QPSG"),
            "SQLite was built without SQLITE_ENABLE_QPSG"
        );
    }

    /// `.cargo/config.toml` also builds SQLite without the locks its connections would share:
    /// every connection takes one mutex per allocation with memory statistics on, and one
    /// page-cache mutex for all connections with memory management on; and, as a diesel
    /// connection is never used by two threads at once, no mutex per connection call
    /// (multi-thread mode). Together 7 % of a SCIM read's CPU time on two cores.
    #[test]
    fn sqlite_connections_share_no_locks() {
        let mut c = diesel::SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut c)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        for wanted in ["DEFAULT_MEMSTATUS=0", "THREADSAFE=2"] {
            assert!(options.iter().any(|o| o == wanted), "{wanted}: {options:?}");
        }
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
