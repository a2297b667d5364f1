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
///
/// On SQLite the step follows the rows the tables held when they were last analyzed (as
/// `sqlite_stat1` recorded them, read once at the first change): a database that already holds
/// a thousand customers is not analyzed again 500 changes after every start. That first
/// `ANALYZE` held the writer for 3–6 s on a 1.7 GB database, and every tenant's writes with it,
/// for statistics that 500 more users could not change.
#[derive(Default)]
pub(super) struct Statistics {
    changes: usize,
    /// Changes after which the next look is due; `None` until the first change.
    next: Option<usize>,
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
                if self.changes < self.next.unwrap_or(0) {
                    return;
                }
                self.next = Some(self.changes + Self::POSTGRES_STEP);
                analyze_grown_tables(pg)
            }
            DbConn::Sqlite(_) => {
                let next = *self.next.get_or_insert_with(|| {
                    forget_other_tables(conn);
                    Self::sqlite_step(sqlite_analyzed_rows(conn))
                });
                if self.changes < next {
                    return;
                }
                let analyzed = write_tx(conn, |c| c.batch_execute(&sqlite_analyze()));
                self.next = Some(self.changes + Self::sqlite_step(sqlite_analyzed_rows(conn)));
                analyzed
            }
        };
        if let Err(e) = analyzed {
            log::warn!("could not refresh planner statistics: {e}");
        }
    }

    /// Changes until SQLite's next `ANALYZE`: as many as the largest SCIM table held when last
    /// analyzed (it may have doubled by then), from `FIRST`, at most `MAX_STEP`.
    fn sqlite_step(analyzed_rows: u64) -> usize {
        usize::try_from(analyzed_rows)
            .unwrap_or(usize::MAX)
            .clamp(Self::FIRST, Self::MAX_STEP)
    }
}

/// Drops the statistics a bare `ANALYZE` (before only the SCIM tables were analyzed) left
/// for the other tables: frozen at whatever size those tables had then, they would mislead the
/// planner more than none (the request log and the events grow far past any such sample).
fn forget_other_tables(c: &mut DbConn) {
    use diesel::RunQueryDsl;
    let tables = scim_tables_sql();
    for stat in ["sqlite_stat1", "sqlite_stat4"] {
        // Missing until the first `ANALYZE`: nothing to forget then.
        let _ = diesel::sql_query(format!("DELETE FROM {stat} WHERE tbl NOT IN ({tables})"))
            .execute(c)
            .map(|forgotten| {
                if forgotten > 0 {
                    // Loads the statistics anew, without the rows just deleted.
                    let _ = c.batch_execute("ANALYZE sqlite_schema");
                }
            });
    }
}

/// The rows of the largest SCIM table at its last `ANALYZE` (the first number of its
/// `sqlite_stat1` rows); 0 when it never was (the table `sqlite_stat1` is then missing).
pub(super) fn sqlite_analyzed_rows(c: &mut DbConn) -> u64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Rows {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let tables = scim_tables_sql();
    diesel::sql_query(format!(
        "SELECT coalesce(max(CAST(stat AS INTEGER)), 0) AS n FROM sqlite_stat1 \
         WHERE tbl IN ({tables})"
    ))
    .get_result::<Rows>(c)
    .map_or(0, |r| u64::try_from(r.n).unwrap_or(0))
}

/// `SCIM_TABLES` as a list of SQL strings, for `tbl IN (…)`.
fn scim_tables_sql() -> String {
    SCIM_TABLES.map(|t| format!("'{t}'")).join(", ")
}

/// SQLite's sampled `ANALYZE` of the SCIM tables only. A bare `ANALYZE` also samples every
/// other table and index, the request log and the events among them: on a database holding a
/// thousand customers (1.7 GB) it held the writer, and every tenant's writes, for 150–360 ms
/// each time, and for 6 s the first time after a start.
fn sqlite_analyze() -> String {
    let tables: String = SCIM_TABLES
        .iter()
        .map(|t| format!(" ANALYZE {t};"))
        .collect();
    format!("PRAGMA analysis_limit = 1000;{tables}")
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
