//! The SCIM endpoint's reads of users: one by id, a userName's id, a filtered and sorted
//! page, chunks for filters evaluated on the documents, and users by id for event payloads.
//! (A user with its groups is `memberships::user_with_groups`.)

use diesel::prelude::*;

use super::{ListedUser, UserRow};
use crate::db::DbConn;
use crate::db::schema::scim_users;
use crate::db::scim_filter::{CompileError, UserCond, user_condition};
use crate::scim::filter::Filter;
use crate::scim::resource::normalize;

/// A live (not deleted) user of the directory.
pub fn get(conn: &mut DbConn, directory_id: &str, id: &str) -> QueryResult<Option<UserRow>> {
    crate::on_backend!(conn, |c| scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::id.eq(id))
        .filter(scim_users::deleted_at.is_null())
        .select(UserRow::as_select())
        .first(c)
        .optional())
}

/// The id of the live user holding `user_name` (case-insensitively), if any.
pub fn id_by_user_name(
    conn: &mut DbConn,
    directory_id: &str,
    user_name: &str,
) -> QueryResult<Option<String>> {
    let user_name_norm = normalize(user_name);
    crate::on_backend!(conn, |c| scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::user_name_norm.eq(&user_name_norm))
        .filter(scim_users::deleted_at.is_null())
        .select(scim_users::id)
        .first(c)
        .optional())
}

/// Columns a user list can be sorted by in SQL (other `sortBy` attributes sort in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Id,
    UserName,
    DisplayName,
    ExternalId,
    Created,
    Modified,
}

impl SortColumn {
    /// The column behind a SCIM `sortBy` attribute, if it has one.
    pub fn for_user(attr: &crate::scim::filter::AttrPath) -> Option<SortColumn> {
        Some(if attr.is("id") {
            SortColumn::Id
        } else if attr.is("userName") {
            SortColumn::UserName
        } else if attr.is("displayName") {
            SortColumn::DisplayName
        } else if attr.is("externalId") {
            SortColumn::ExternalId
        } else if attr.is_sub("meta", "created") {
            SortColumn::Created
        } else if attr.is_sub("meta", "lastModified") {
            SortColumn::Modified
        } else {
            return None;
        })
    }
}

/// A SCIM filter that compiles to SQL on users (others are evaluated on the documents).
pub struct UserFilter<'f> {
    directory_id: &'f str,
    filter: &'f Filter,
    compiled: UserCond,
}

impl<'f> UserFilter<'f> {
    pub fn compile(directory_id: &'f str, filter: &'f Filter) -> Result<Self, CompileError> {
        Ok(UserFilter {
            directory_id,
            filter,
            compiled: user_condition(directory_id, filter)?,
        })
    }
}

/// One page of live users matching `filter`, and how many match. The order is `sort` (missing
/// values last), then creation order (ids are time-ordered), so pages are stable. The filter
/// is compiled for the page; the count, taken only when the page cannot tell it, compiles its
/// own copy (a compiled condition belongs to one query).
pub fn search(
    conn: &mut DbConn,
    directory_id: &str,
    filter: Option<UserFilter<'_>>,
    sort: Option<(SortColumn, bool)>,
    offset: i64,
    limit: i64,
) -> QueryResult<(i64, Vec<ListedUser>)> {
    let (source, compiled) = match filter {
        Some(f) => (Some((f.directory_id, f.filter)), Some(f.compiled)),
        None => (None, None),
    };
    let count = |conn: &mut DbConn| -> QueryResult<i64> {
        let mut count = scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .filter(scim_users::deleted_at.is_null())
            .count()
            .into_boxed();
        if let Some((directory_id, filter)) = source {
            // Cannot fail: the same filter compiled for the page.
            let cond = user_condition(directory_id, filter)
                .map_err(|_| diesel::result::Error::QueryBuilderError("filter".into()))?;
            count = count.filter(cond);
        }
        count.get_result(conn)
    };
    let mut page = scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .select(ListedUser::as_select())
        .offset(offset)
        .limit(limit)
        .into_boxed();
    if let Some(c) = compiled {
        page = page.filter(c);
    }
    // (A lookup's ORDER BY costs nothing now that the writer keeps planner statistics: before,
    // Postgres walked the directory in id order rather than use the unique index.)
    page = match sort {
        None | Some((SortColumn::Id, false)) => page.order(scim_users::id.asc()),
        Some((SortColumn::Id, true)) => page.order(scim_users::id.desc()),
        Some((SortColumn::UserName, false)) => {
            page.order((scim_users::user_name_norm.asc(), scim_users::id.asc()))
        }
        Some((SortColumn::UserName, true)) => {
            page.order((scim_users::user_name_norm.desc(), scim_users::id.asc()))
        }
        Some((SortColumn::DisplayName, false)) => page.order((
            scim_users::display_name_norm.is_null().asc(),
            scim_users::display_name_norm.asc(),
            scim_users::id.asc(),
        )),
        Some((SortColumn::DisplayName, true)) => page.order((
            scim_users::display_name_norm.is_null().asc(),
            scim_users::display_name_norm.desc(),
            scim_users::id.asc(),
        )),
        Some((SortColumn::ExternalId, false)) => page.order((
            scim_users::external_id.is_null().asc(),
            scim_users::external_id.asc(),
            scim_users::id.asc(),
        )),
        Some((SortColumn::ExternalId, true)) => page.order((
            scim_users::external_id.is_null().asc(),
            scim_users::external_id.desc(),
            scim_users::id.asc(),
        )),
        Some((SortColumn::Created, false)) => {
            page.order((scim_users::created_at.asc(), scim_users::id.asc()))
        }
        Some((SortColumn::Created, true)) => {
            page.order((scim_users::created_at.desc(), scim_users::id.asc()))
        }
        Some((SortColumn::Modified, false)) => {
            page.order((scim_users::updated_at.asc(), scim_users::id.asc()))
        }
        Some((SortColumn::Modified, true)) => {
            page.order((scim_users::updated_at.desc(), scim_users::id.asc()))
        }
    };
    if limit <= 0 {
        return Ok((count(conn)?, Vec::new()));
    }
    if offset > 0 {
        // Counted first: no page query when nothing can be on it.
        let total = count(conn)?;
        if offset >= total {
            return Ok((total, Vec::new()));
        }
        return Ok((total, page.load(conn)?));
    }
    // A first page that is not full tells the total itself (every lookup by userName or
    // externalId, hits and misses alike): the count is taken only for a full one.
    let rows: Vec<ListedUser> = page.load(conn)?;
    let total = match i64::try_from(rows.len()) {
        Ok(n) if n < limit => n,
        _ => count(conn)?,
    };
    Ok((total, rows))
}

/// Live users of the directory with ids after `after`, in id order: for filters and sorts that
/// are evaluated on the documents, a chunk at a time.
pub fn chunk_after(
    conn: &mut DbConn,
    directory_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut q = scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .select(UserRow::as_select())
        .order(scim_users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(scim_users::id.gt(after.to_string()));
    }
    q.load(conn)
}

/// Users by id (deleted ones included), for event payloads.
pub fn get_many(
    conn: &mut DbConn,
    directory_id: &str,
    ids: &[&String],
) -> QueryResult<Vec<UserRow>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        out.extend(match &mut *conn {
            // The ids as one JSON array: the statement stays prepared whatever their number.
            DbConn::Sqlite(c) => crate::db::FixedSql::<
                UsersOf,
                diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<UserRow, diesel::sqlite::Sqlite>>,
            >::new(
                "SELECT s.id, s.directory_id, s.user_name, s.user_name_norm, s.external_id, \
                 s.active, s.display_name, s.display_name_norm, s.full_name, s.full_name_norm, \
                 s.primary_email, s.resource, s.version, s.created_at, s.updated_at, \
                 s.deleted_at FROM json_each(?) AS ids CROSS JOIN scim_users AS s \
                 ON s.id = ids.value WHERE s.directory_id = ?",
                vec![crate::db::json_array(chunk), directory_id.to_string()],
            )
            .load::<UserRow>(c)?,
            conn => scim_users::table
                .filter(scim_users::directory_id.eq(directory_id))
                .filter(scim_users::id.eq_any(chunk))
                .select(UserRow::as_select())
                .load(conn)?,
        });
    }
    Ok(out)
}

/// Query id of `get_many`'s SQLite statement.
struct UsersOf;
