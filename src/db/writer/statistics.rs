//! The planners' statistics, kept up by the writer while a directory is being filled (see
//! `Statistics`).

use diesel::QueryResult;
use diesel::connection::SimpleConnection;

use crate::db::{DbConn, write_tx};

/// Keeps the planner's statistics up with a directory that is being filled. Without them
/// both planners guess that a directory holds a handful of rows: Postgres then answers a
/// `userName eq` lookup by walking the whole directory instead of the unique index (10× slower
/// at a few thousand users), and SQLite walks every user of the organization in name order
/// for a portal search instead of starting from the few the trigram index found. Autovacuum
/// analyzes at most once a minute and SQLite never does on its own, so the writer does:
/// - SQLite after 500 changes, then each time the number of changes since has doubled (at
///   most every 100 000). It samples (`analysis_limit`), so this takes a few milliseconds.
///   (Measured on the 100 000-user sync: sampled statistics gave 36.5 s, full ones 50.3 s,
///   with group writes 4× slower; no statistics, 64.7 s.)
/// - Postgres table by table, each time a table's size has doubled since it was last
///   analyzed, looked at every 100 changes. Counting requests instead missed a table that
///   fills late: a PingOne sync sends every user before any group, so the memberships were
///   last analyzed empty, and Postgres kept a plan that read every membership to list one
///   group's members (9 ms a group write at 100 000 users; the 1 000-group sync took 26 s
///   instead of 4). Sizes, not Postgres's own counts of changed rows, because those reach
///   other sessions up to a second late, and a second is 5 000 users.
#[derive(Default)]
pub(super) struct Statistics {
    changes: usize,
    next: usize,
}

/// The tables whose statistics the writer keeps up.
const SCIM_TABLES: [&str; 4] = ["scim_users", "user_emails", "scim_groups", "group_members"];

impl Statistics {
    const FIRST: usize = 500;
    const MAX_STEP: usize = 100_000;
    const POSTGRES_STEP: usize = 100;

    pub(super) fn after(&mut self, conn: &mut DbConn, changes: usize) {
        self.changes += changes;
        let analyzed = match conn {
            DbConn::Postgres(pg) => {
                if self.changes < self.next {
                    return;
                }
                self.next = self.changes + Self::POSTGRES_STEP;
                analyze_grown_tables(pg)
            }
            DbConn::Sqlite(_) => {
                if self.changes < self.next.max(Self::FIRST) {
                    return;
                }
                self.next = self.changes + self.changes.min(Self::MAX_STEP);
                write_tx(conn, |c| {
                    c.batch_execute("PRAGMA analysis_limit = 1000; ANALYZE;")
                })
            }
        };
        if let Err(e) = analyzed {
            log::warn!("could not refresh planner statistics: {e}");
        }
    }
}

/// Analyzes the SCIM tables that have at least doubled in size since they were last analyzed
/// (or vacuumed), from 64 KB on. VACUUM too: it sets the visibility map, without which
/// counting a directory visits every row instead of only the index (52 ms at 100 000 users).
/// SKIP_LOCKED: another instance's writer may be at it already.
pub(super) fn analyze_grown_tables(pg: &mut diesel::PgConnection) -> QueryResult<()> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let grown: Vec<Table> = diesel::sql_query(
        "SELECT relname::text AS name FROM pg_class \
         WHERE relnamespace = current_schema()::regnamespace AND relname = ANY($1) \
         AND pg_relation_size(oid) >= \
             greatest(2 * relpages, 8) * current_setting('block_size')::bigint",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&SCIM_TABLES[..])
    .load(pg)?;
    // Names from the fixed list only, never text from the catalog.
    let tables: Vec<&str> = SCIM_TABLES
        .into_iter()
        .filter(|t| grown.iter().any(|g| g.name == *t))
        .collect();
    if tables.is_empty() {
        return Ok(());
    }
    pg.batch_execute(&format!(
        "VACUUM (ANALYZE, SKIP_LOCKED) {}",
        tables.join(", ")
    ))
}
