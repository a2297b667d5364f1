//! The SCIM request log of each directory (the request inspector reads it), with bounded
//! retention: the newest `KEEP_PER_DIRECTORY` rows, none older than `KEEP_DAYS`. Requests
//! refused for their credentials (401: anyone can send them) are bounded apart, to
//! `KEEP_UNAUTHENTICATED_PER_DIRECTORY`, so they can never evict authenticated history.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::scim_requests;
use super::{DbConn, now};

/// Rows kept per directory.
pub const KEEP_PER_DIRECTORY: i64 = 10_000;
/// Rows of requests refused for their credentials (401) kept per directory, besides the others.
pub const KEEP_UNAUTHENTICATED_PER_DIRECTORY: i64 = 500;
/// The status of a request refused for its credentials.
const UNAUTHENTICATED: i32 = 401;
/// The condition of the `scim_requests_unauthenticated` partial index, as SQL.
const UNAUTHENTICATED_CONDITION: &str = "status = 401";

/// Failed requests: the condition of the `scim_requests_errors` partial index, written into
/// the SQL. As a bound parameter (`status >= ?`) neither SQLite nor a generic Postgres plan can
/// prove the index's condition, and finding a directory's last error walked its whole log, row
/// by row, when none had failed: 14 of a directory page's 17 ms at 10 000 logged requests.
fn failed_condition() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>("status >= 400")
}

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
    /// What the write changed, as recorded while applying it (see `ChangeNotes`).
    pub change_summary: Option<String>,
    /// The id sent back as `X-Request-Id`, which the IT admin quotes to support.
    pub request_id: Option<String>,
}

impl NewRequest {
    /// Every column as `column = value`, `NULL`s bound: one statement text whatever is
    /// missing, which the connection keeps prepared and finds without rebuilding its SQL (with
    /// the derived `Insertable`, a missing value left its column out: a statement per shape,
    /// its SQL built anew for every row to look it up).
    #[allow(clippy::type_complexity)]
    fn every_column(
        &self,
    ) -> (
        diesel::dsl::Eq<scim_requests::directory_id, &String>,
        diesel::dsl::Eq<scim_requests::at, &NaiveDateTime>,
        diesel::dsl::Eq<scim_requests::method, &String>,
        diesel::dsl::Eq<scim_requests::path, &String>,
        diesel::dsl::Eq<scim_requests::status, &i32>,
        diesel::dsl::Eq<scim_requests::duration_us, &i64>,
        diesel::dsl::Eq<scim_requests::request_body, &Option<String>>,
        diesel::dsl::Eq<scim_requests::response_excerpt, &Option<String>>,
        diesel::dsl::Eq<scim_requests::error_kind, &Option<String>>,
        diesel::dsl::Eq<scim_requests::resource_type, &Option<String>>,
        diesel::dsl::Eq<scim_requests::resource_id, &Option<String>>,
        diesel::dsl::Eq<scim_requests::change_summary, &Option<String>>,
        diesel::dsl::Eq<scim_requests::request_id, &Option<String>>,
    ) {
        use scim_requests::*;
        (
            directory_id.eq(&self.directory_id),
            at.eq(&self.at),
            method.eq(&self.method),
            path.eq(&self.path),
            status.eq(&self.status),
            duration_us.eq(&self.duration_us),
            request_body.eq(&self.request_body),
            response_excerpt.eq(&self.response_excerpt),
            error_kind.eq(&self.error_kind),
            resource_type.eq(&self.resource_type),
            resource_id.eq(&self.resource_id),
            change_summary.eq(&self.change_summary),
            request_id.eq(&self.request_id),
        )
    }

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
            &mut self.change_summary,
            &mut self.request_id,
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
    /// What the write changed, as recorded while applying it (see `ChangeNotes`).
    pub change_summary: Option<String>,
    /// The id sent back as `X-Request-Id`, which the IT admin quotes to support.
    pub request_id: Option<String>,
}

/// Records the writer's batch of rows (changes' rows and queued ones) and prunes when due. Rows
/// of directories deleted meanwhile are dropped (their log went with them).
pub fn insert_many(conn: &mut DbConn, mut rows: Vec<NewRequest>) -> QueryResult<()> {
    use super::schema::directories;
    rows.iter_mut().for_each(NewRequest::replace_nul);
    let (first, last, live) = match conn {
        // One cached single-row statement per row: a multi-row INSERT would be prepared anew
        // each time and, modifying many rows, keep a statement journal that SQLite spent
        // two thirds of the insert's time releasing.
        DbConn::Sqlite(c) => {
            let mut dirs: Vec<&str> = rows.iter().map(|r| r.directory_id.as_str()).collect();
            dirs.sort_unstable();
            dirs.dedup();
            let live: Vec<String> = directories::table
                .filter(directories::id.eq_any(&dirs))
                .select(directories::id)
                .load(c)?;
            rows.retain(|r| live.contains(&r.directory_id));
            for row in &rows {
                diesel::insert_into(scim_requests::table)
                    .values(row.every_column())
                    .execute(c)?;
            }
            let last = diesel::select(last_insert_rowid()).get_result::<i64>(c)?;
            (
                last - i64::try_from(rows.len()).unwrap_or(0) + 1,
                last,
                live,
            )
        }
        // One prepared statement for the whole batch, which drops the rows of deleted
        // directories itself (a round trip less than looking them up first).
        DbConn::Postgres(c) => {
            let mut inserted: Vec<(i64, String)> = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(1000) {
                inserted.extend(InsertRows::new(chunk).load::<(i64, String)>(c)?);
            }
            let (Some(first), Some(last)) = (
                inserted.iter().map(|(id, _)| *id).min(),
                inserted.iter().map(|(id, _)| *id).max(),
            ) else {
                return Ok(());
            };
            let mut live: Vec<String> = inserted.into_iter().map(|(_, dir)| dir).collect();
            live.sort_unstable();
            live.dedup();
            (first, last, live)
        }
    };
    if live.is_empty() {
        return Ok(());
    }
    if first / PRUNE_EVERY != last / PRUNE_EVERY || first % PRUNE_EVERY == 0 {
        // Bookkeeping, in a savepoint of its own: failing to prune (say, a deadlock with
        // another instance pruning the same rows) must not fail the writer's batch.
        let pruned = super::write_tx(conn, |c| {
            live.iter()
                .try_for_each(|dir| prune(c, dir, last).map(|_| ()))
        });
        if let Err(e) = pruned {
            log::warn!("the request log was not pruned this time: {e}");
        }
    }
    Ok(())
}

/// `INSERT INTO scim_requests … SELECT … FROM unnest(…) JOIN directories … RETURNING id,
/// directory_id`: rows as one array per column, in their order (ids are the log's order),
/// kept prepared by the connection (its text never changes). Locking the directories' rows (`FOR KEY SHARE`) makes a directory deleted
/// meanwhile drop its rows rather than fail the batch on the foreign key.
struct InsertRows<'a> {
    directory_id: Vec<&'a str>,
    at: Vec<NaiveDateTime>,
    method: Vec<&'a str>,
    path: Vec<&'a str>,
    status: Vec<i32>,
    duration_us: Vec<i64>,
    /// request_body, response_excerpt, error_kind, resource_type, resource_id,
    /// change_summary, request_id.
    optional: [Vec<Option<&'a str>>; 7],
}

impl<'a> InsertRows<'a> {
    fn new(rows: &'a [NewRequest]) -> Self {
        let text = |f: fn(&NewRequest) -> &String| rows.iter().map(|r| f(r).as_str()).collect();
        let optional =
            |f: fn(&NewRequest) -> &Option<String>| rows.iter().map(|r| f(r).as_deref()).collect();
        InsertRows {
            directory_id: text(|r| &r.directory_id),
            at: rows.iter().map(|r| r.at).collect(),
            method: text(|r| &r.method),
            path: text(|r| &r.path),
            status: rows.iter().map(|r| r.status).collect(),
            duration_us: rows.iter().map(|r| r.duration_us).collect(),
            optional: [
                optional(|r| &r.request_body),
                optional(|r| &r.response_excerpt),
                optional(|r| &r.error_kind),
                optional(|r| &r.resource_type),
                optional(|r| &r.resource_id),
                optional(|r| &r.change_summary),
                optional(|r| &r.request_id),
            ],
        }
    }
}

super::prepared_statement!(
    InsertRows,
    (diesel::sql_types::BigInt, diesel::sql_types::Text)
);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for InsertRows<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};
        out.push_sql(
            "INSERT INTO scim_requests (directory_id, at, method, path, status, duration_us, \
             request_body, response_excerpt, error_kind, resource_type, resource_id, \
             change_summary, request_id) \
             SELECT r.directory_id, r.at, r.method, r.path, r.status, r.duration_us, \
             r.request_body, r.response_excerpt, r.error_kind, r.resource_type, r.resource_id, \
             r.change_summary, r.request_id \
             FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.directory_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.at)?;
        for column in [&self.method, &self.path] {
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(column)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.duration_us)?;
        for column in &self.optional {
            out.push_sql(", ");
            out.push_bind_param::<Array<Nullable<Text>>, _>(column)?;
        }
        out.push_sql(
            ") WITH ORDINALITY AS r (directory_id, at, method, path, status, duration_us, \
             request_body, response_excerpt, error_kind, resource_type, resource_id, \
             change_summary, request_id, ord) \
             JOIN directories d ON d.id = r.directory_id ORDER BY r.ord FOR KEY SHARE OF d \
             RETURNING id, directory_id",
        );
        Ok(())
    }
}

diesel::define_sql_function! {
    /// SQLite's rowid of this connection's last insert.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

fn prune(conn: &mut DbConn, directory_id: &str, last_id: i64) -> QueryResult<usize> {
    let cutoff = now() - Duration::days(KEEP_DAYS);
    let of_directory = || {
        scim_requests::table
            .filter(scim_requests::directory_id.eq(directory_id))
            .filter(scim_requests::id.le(last_id))
    };
    // The refused-for-credentials rows, newest first, on their own partial index. The status
    // is written into the SQL: the planners use a partial index only for a literal that
    // matches its condition, never for a bound parameter (with one, SQLite walked the whole
    // directory's log at every prune: a sixth of a GET's throughput).
    let unauthenticated = || {
        of_directory().filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            UNAUTHENTICATED_CONDITION,
        ))
    };
    let unauthenticated_count: i64 = unauthenticated().count().get_result(conn)?;
    let beyond_unauthenticated: Option<i64> = unauthenticated()
        .order(scim_requests::id.desc())
        .offset(KEEP_UNAUTHENTICATED_PER_DIRECTORY)
        .select(scim_requests::id)
        .first(conn)
        .optional()?;
    // Ids grow across directories, so this keeps at most (not exactly) the newest rows. Past
    // this many rows of any kind, at least `KEEP_PER_DIRECTORY` authenticated ones are newer.
    let beyond_count: Option<i64> = of_directory()
        .order(scim_requests::id.desc())
        .offset(KEEP_PER_DIRECTORY + unauthenticated_count)
        .select(scim_requests::id)
        .first(conn)
        .optional()?;
    // Every row before the directory's oldest young one is old. Walked from the oldest, this
    // stops at once when nothing is old (an `at < cutoff OR …` condition visited every row of
    // the directory instead: a tenth of Postgres's work while creates streamed in).
    let first_young: Option<i64> = of_directory()
        .filter(scim_requests::at.ge(cutoff))
        .order(scim_requests::id.asc())
        .select(scim_requests::id)
        .first(conn)
        .optional()?;
    let beyond_age = first_young.map_or(last_id, |young| young - 1);
    let floor = beyond_count.unwrap_or(0).max(beyond_age);
    let unauthenticated_floor = beyond_unauthenticated.unwrap_or(0).max(beyond_age);
    let mut deleted = diesel::delete(
        scim_requests::table
            .filter(scim_requests::directory_id.eq(directory_id))
            .filter(scim_requests::id.le(floor))
            .filter(scim_requests::status.ne(UNAUTHENTICATED)),
    )
    .execute(conn)?;
    if unauthenticated_floor > 0 {
        deleted += diesel::delete(
            scim_requests::table
                .filter(scim_requests::directory_id.eq(directory_id))
                .filter(scim_requests::id.le(unauthenticated_floor))
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    UNAUTHENTICATED_CONDITION,
                )),
        )
        .execute(conn)?;
    }
    Ok(deleted)
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

/// The first successful write to a resource logged at or after `since`: for a membership, the
/// request that added it (a request's row is stamped after its write is applied, and writes to
/// one group take turns).
pub fn first_write_since(
    conn: &mut DbConn,
    directory_id: &str,
    resource_id: &str,
    since: NaiveDateTime,
) -> QueryResult<Option<Request>> {
    scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .filter(scim_requests::resource_id.eq(resource_id))
        .filter(scim_requests::method.eq_any(["POST", "PUT", "PATCH"]))
        .filter(scim_requests::status.lt(300))
        .filter(scim_requests::at.ge(since))
        .order(scim_requests::id.asc())
        .select(Request::as_select())
        .first(conn)
        .optional()
}

/// The newest failed request (status 400 or more) of a directory.
pub fn last_error(conn: &mut DbConn, directory_id: &str) -> QueryResult<Option<Request>> {
    scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .filter(failed_condition())
        .order(scim_requests::id.desc())
        .select(Request::as_select())
        .first(conn)
        .optional()
}

struct FailingDirectories;

/// Which of `directory_ids` are failing: their latest logged request failed (no success since
/// their last error). In one statement, and from the indexes alone: each directory's latest
/// request id and latest failed request id are the last entries of its two request-log
/// indexes. Reading the latest row's status instead cost a table page per directory, most of a
/// thousand customers' organization list.
pub fn failing_directories(
    conn: &mut DbConn,
    directory_ids: &[&str],
) -> QueryResult<std::collections::HashSet<String>> {
    use diesel::sql_types::Text;
    // `status >= 400` written out, as the partial index's own condition.
    let sql = match conn {
        DbConn::Sqlite(_) => {
            "SELECT ids.value FROM json_each(?) AS ids \
             WHERE (SELECT max(r.id) FROM scim_requests r \
                    WHERE r.directory_id = ids.value AND r.status >= 400) \
                 = (SELECT max(r.id) FROM scim_requests r WHERE r.directory_id = ids.value)"
        }
        DbConn::Postgres(_) => {
            "SELECT ids.value FROM json_array_elements_text(CAST(? AS json)) AS ids(value) \
             WHERE (SELECT max(r.id) FROM scim_requests r \
                    WHERE r.directory_id = ids.value AND r.status >= 400) \
                 = (SELECT max(r.id) FROM scim_requests r WHERE r.directory_id = ids.value)"
        }
    };
    let mut out = std::collections::HashSet::new();
    for chunk in directory_ids.chunks(500) {
        let rows: Vec<String> =
            super::FixedSql::<FailingDirectories, Text>::new(sql, vec![super::json_array(chunk)])
                .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
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
        q = q.filter(failed_condition());
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

/// How many requests after `after_id` succeeded (status below 400), counted up to `cap`.
pub fn successes_after(
    conn: &mut DbConn,
    directory_id: &str,
    after_id: i64,
    cap: i64,
) -> QueryResult<i64> {
    let ids: Vec<i64> = scim_requests::table
        .filter(scim_requests::directory_id.eq(directory_id))
        .filter(scim_requests::id.gt(after_id))
        .filter(scim_requests::status.lt(400))
        .order(scim_requests::id.asc())
        .limit(cap)
        .select(scim_requests::id)
        .load(conn)?;
    Ok(i64::try_from(ids.len()).unwrap_or(cap))
}

/// A directory's logged requests since `since`: how many in all, and how many failed.
pub fn counts_since(
    conn: &mut DbConn,
    directory_id: &str,
    since: NaiveDateTime,
) -> QueryResult<(i64, i64)> {
    let before = last_id_before(conn, directory_id, since)?;
    let after = before.unwrap_or(0);
    let of_period = || {
        scim_requests::table
            .filter(scim_requests::directory_id.eq(directory_id))
            .filter(scim_requests::id.gt(after))
    };
    let total: i64 = of_period().count().get_result(conn)?;
    let failed: i64 = of_period()
        .filter(failed_condition())
        .count()
        .get_result(conn)?;
    Ok((total, failed))
}

/// The id of the directory's newest logged request before `since`, if any.
///
/// Ids follow time, so it is found by halving the directory's range of ids: each step one
/// index seek and one row, about `log2` of the range in all (some 24 at ten million logged
/// requests), however many of the directory's rows fall in the period. Walking back from
/// the newest row read every row of the period: a directory whose whole log is recent (any
/// busy one: the log keeps its last 10 000 requests) cost its page 30 ms, and each alert
/// evaluation as much, every time.
fn last_id_before(
    conn: &mut DbConn,
    directory_id: &str,
    since: NaiveDateTime,
) -> QueryResult<Option<i64>> {
    let of_directory = || scim_requests::table.filter(scim_requests::directory_id.eq(directory_id));
    let newest: Option<(i64, NaiveDateTime)> = of_directory()
        .order(scim_requests::id.desc())
        .select((scim_requests::id, scim_requests::at))
        .first(conn)
        .optional()?;
    let mut high = match newest {
        None => return Ok(None),
        Some((id, at)) if at < since => return Ok(Some(id)),
        Some((id, _)) => id,
    };
    let oldest: (i64, NaiveDateTime) = of_directory()
        .order(scim_requests::id.asc())
        .select((scim_requests::id, scim_requests::at))
        .first(conn)?;
    // From here on, `low` is a row before `since`, and no row from `high` on is.
    let mut low = match oldest {
        (id, at) if at < since => id,
        _ => return Ok(None),
    };
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        let first_from_middle: Option<(i64, NaiveDateTime)> = of_directory()
            .filter(scim_requests::id.ge(middle))
            .filter(scim_requests::id.lt(high))
            .order(scim_requests::id.asc())
            .select((scim_requests::id, scim_requests::at))
            .first(conn)
            .optional()?;
        match first_from_middle {
            Some((id, at)) if at < since => low = id,
            // A row of the period, or none from `middle` to `high`.
            _ => high = middle,
        }
    }
    Ok(Some(low))
}

/// Requests refused for their credentials (401) since `since`, counted among the rows kept
/// (at most `KEEP_UNAUTHENTICATED_PER_DIRECTORY`), and the newest of them.
pub fn refused_for_credentials_since(
    conn: &mut DbConn,
    directory_id: &str,
    since: NaiveDateTime,
) -> QueryResult<(i64, Option<Request>)> {
    // The status is literal SQL so that the partial index of these rows serves both queries.
    let refused = || {
        scim_requests::table
            .filter(scim_requests::directory_id.eq(directory_id))
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                UNAUTHENTICATED_CONDITION,
            ))
            .filter(scim_requests::at.ge(since))
    };
    let count: i64 = refused().count().get_result(conn)?;
    if count == 0 {
        return Ok((0, None));
    }
    let newest = refused()
        .order(scim_requests::id.desc())
        .select(Request::as_select())
        .first(conn)
        .optional()?;
    Ok((count, newest))
}

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::sqlite::Sqlite;

    use super::{NewRequest, scim_requests};

    /// A read's row and a refused write's row (other columns missing) insert with one
    /// statement text: the SQLite connection finds it prepared without building its SQL.
    #[test]
    fn every_row_inserts_with_one_statement() {
        let read = NewRequest {
            method: "GET".into(),
            response_excerpt: Some("{}".into()),
            resource_type: Some("User".into()),
            ..NewRequest::default()
        };
        let refused = NewRequest {
            method: "POST".into(),
            request_body: Some("{".into()),
            error_kind: Some("invalidSyntax".into()),
            ..NewRequest::default()
        };
        let sql = |row: &NewRequest| {
            let insert = diesel::insert_into(scim_requests::table).values(row.every_column());
            debug_query::<Sqlite, _>(&insert)
                .to_string()
                .split(" -- binds")
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(sql(&read), sql(&refused));
        assert!(sql(&read).contains("`request_id`"), "{}", sql(&read));
    }
}
