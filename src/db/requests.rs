//! The SCIM request log of each directory (the request inspector reads it), with bounded
//! retention: the newest `KEEP_PER_DIRECTORY` rows, none older than `KEEP_DAYS`.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::scim_requests;
use super::{DbConn, now};

/// Rows kept per directory.
pub const KEEP_PER_DIRECTORY: i64 = 10_000;
/// Days a row is kept at most.
pub const KEEP_DAYS: i64 = 30;
/// Pruning runs on every this many inserts (by row id), so it costs nothing per request (it
/// reads past the newest `KEEP_PER_DIRECTORY` rows of the directory each time).
const PRUNE_EVERY: i64 = 2_000;

/// One logged request, already redacted.
#[derive(Debug, Clone, Default, Insertable)]
#[diesel(table_name = scim_requests)]
pub struct NewRequest {
    pub directory_id: String,
    pub at: NaiveDateTime,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub duration_us: i64,
    pub request_body: Option<String>,
    pub response_excerpt: Option<String>,
    pub error_kind: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

impl NewRequest {
    /// A refused request is logged as it came, and its path or body may hold U+0000, which
    /// PostgreSQL text cannot store (the whole batch of rows would be lost): it is kept as
    /// U+FFFD instead, on both backends.
    fn replace_nul(&mut self) {
        let fix = |s: &mut String| {
            if s.contains('\0') {
                *s = s.replace('\0', "\u{FFFD}");
            }
        };
        for s in [&mut self.directory_id, &mut self.method, &mut self.path] {
            fix(s);
        }
        for s in [
            &mut self.request_body,
            &mut self.response_excerpt,
            &mut self.error_kind,
            &mut self.resource_type,
            &mut self.resource_id,
        ]
        .into_iter()
        .flatten()
        {
            fix(s);
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scim_requests)]
pub struct Request {
    pub id: i64,
    pub directory_id: String,
    pub at: NaiveDateTime,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub duration_us: i64,
    pub request_body: Option<String>,
    pub response_excerpt: Option<String>,
    pub error_kind: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

/// Records the writer's batch of rows (changes' rows and queued ones) and prunes when due. Rows
/// of directories deleted meanwhile are dropped (their log went with them).
pub fn insert_many(conn: &mut DbConn, mut rows: Vec<NewRequest>) -> QueryResult<()> {
    use super::schema::directories;
    rows.iter_mut().for_each(NewRequest::replace_nul);
    let mut dirs: Vec<&str> = rows.iter().map(|r| r.directory_id.as_str()).collect();
    dirs.sort_unstable();
    dirs.dedup();
    let live: Vec<String> = directories::table
        .filter(directories::id.eq_any(&dirs))
        .select(directories::id)
        .load(conn)?;
    rows.retain(|r| live.contains(&r.directory_id));
    if rows.is_empty() {
        return Ok(());
    }
    let (first, last) = match conn {
        // One cached single-row statement per row: a multi-row INSERT would be prepared anew
        // each time and, modifying many rows, keep a statement journal that SQLite spent
        // two thirds of the insert's time releasing.
        DbConn::Sqlite(c) => {
            for row in &rows {
                diesel::insert_into(scim_requests::table)
                    .values(row)
                    .execute(c)?;
            }
            let last = diesel::select(last_insert_rowid()).get_result::<i64>(c)?;
            (last - i64::try_from(rows.len()).unwrap_or(0) + 1, last)
        }
        DbConn::Postgres(c) => {
            let mut ids: Vec<i64> = Vec::with_capacity(rows.len());
            // 11 bound values a row: 200 rows stay far below the parameter limit.
            for chunk in rows.chunks(200) {
                ids.extend(
                    diesel::insert_into(scim_requests::table)
                        .values(chunk)
                        .returning(scim_requests::id)
                        .get_results::<i64>(c)?,
                );
            }
            let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) else {
                return Ok(());
            };
            (*first, *last)
        }
    };
    if first / PRUNE_EVERY != last / PRUNE_EVERY || first % PRUNE_EVERY == 0 {
        for dir in &live {
            prune(conn, dir, last)?;
        }
    }
    Ok(())
}

diesel::define_sql_function! {
    /// SQLite's rowid of this connection's last insert.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

fn prune(conn: &mut DbConn, directory_id: &str, last_id: i64) -> QueryResult<usize> {
    let cutoff = now() - Duration::days(KEEP_DAYS);
    // Ids grow across directories, so this keeps at most (not exactly) the newest rows.
    let beyond_count: Option<i64> = scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .filter(scim_requests::id.le(last_id))
        .order(scim_requests::id.desc())
        .offset(KEEP_PER_DIRECTORY)
        .select(scim_requests::id)
        .first(conn)
        .optional()?;
    // Every row before the directory's oldest young one is old. Walked from the oldest, this
    // stops at once when nothing is old (an `at < cutoff OR …` condition visited every row of
    // the directory instead: a tenth of Postgres's work while creates streamed in).
    let first_young: Option<i64> = scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .filter(scim_requests::id.le(last_id))
        .filter(scim_requests::at.ge(cutoff))
        .order(scim_requests::id.asc())
        .select(scim_requests::id)
        .first(conn)
        .optional()?;
    let beyond_age = first_young.map_or(last_id, |young| young - 1);
    let floor = beyond_count.unwrap_or(0).max(beyond_age);
    diesel::delete(
        scim_requests::table
            .filter(scim_requests::directory_id.eq(directory_id))
            .filter(scim_requests::id.le(floor)),
    )
    .execute(conn)
}

/// The newest requests of a directory, newest first.
pub fn recent(conn: &mut DbConn, directory_id: &str, limit: i64) -> QueryResult<Vec<Request>> {
    scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .order(scim_requests::id.desc())
        .limit(limit)
        .select(Request::as_select())
        .load(conn)
}

/// Requests that touched a user or group, newest first.
pub fn for_resource(
    conn: &mut DbConn,
    directory_id: &str,
    resource_id: &str,
    limit: i64,
) -> QueryResult<Vec<Request>> {
    scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .filter(scim_requests::resource_id.eq(resource_id))
        .order(scim_requests::id.desc())
        .limit(limit)
        .select(Request::as_select())
        .load(conn)
}

/// The newest failed request (status 400 or more) of a directory.
pub fn last_error(conn: &mut DbConn, directory_id: &str) -> QueryResult<Option<Request>> {
    scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .filter(scim_requests::status.ge(400))
        .order(scim_requests::id.desc())
        .select(Request::as_select())
        .first(conn)
        .optional()
}

/// Filters of the request inspector.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub errors_only: bool,
    pub method: Option<String>,
    /// Requests that touched this user or group.
    pub resource_id: Option<String>,
}

/// A page of a directory's requests, newest first, before `before_id` (keyset paging).
pub fn search(
    conn: &mut DbConn,
    directory_id: &str,
    f: &Filter,
    before_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Request>> {
    let mut q = scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .order(scim_requests::id.desc())
        .limit(limit)
        .select(Request::as_select())
        .into_boxed();
    if f.errors_only {
        q = q.filter(scim_requests::status.ge(400));
    }
    if let Some(m) = &f.method {
        q = q.filter(scim_requests::method.eq(m.clone()));
    }
    if let Some(r) = &f.resource_id {
        q = q.filter(scim_requests::resource_id.eq(r.clone()));
    }
    if let Some(b) = before_id {
        q = q.filter(scim_requests::id.lt(b));
    }
    q.load(conn)
}
