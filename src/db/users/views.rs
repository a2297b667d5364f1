//! Users as the portal (org-wide pages, one user, names for the request log) and the
//! directory API see them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::UserRow;
use super::pages::Bookmarks;
use super::search_index::trigram_prefilter;
use crate::db::DbConn;
use crate::db::schema::{directories, group_members, held_users, scim_users};
use crate::scim::resource::normalize;

/// How the portal's Users view sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewSort {
    Name,
    UserName,
    Status,
    Updated,
}

/// What the portal's Users view asks for.
#[derive(Debug, Clone)]
pub struct ViewQuery {
    pub search: String,
    /// Only active (true) or inactive (false) users.
    pub active: Option<bool>,
    /// Only members of this group.
    pub group_id: Option<String>,
    pub sort: ViewSort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// Portal: one page of an organization's live users, searched by name, userName or email,
/// filtered by status and group, sorted by an indexed column (ties broken by id).
/// `counts` remembers each directory's number of live users per version (see
/// `user_pages::Bookmarks::live_users`): the unfiltered view's total.
pub fn org_page(
    conn: &mut DbConn,
    org_id: &str,
    v: &ViewQuery,
    counts: &Bookmarks,
) -> QueryResult<(i64, Vec<UserRow>)> {
    let needle = normalize(&v.search);
    // The org's directories first (usually one), so each sort walks an index of
    // `(directory_id, sort key)` instead of sorting every user of the org.
    let versions: Vec<(String, i64)> = directories::table
        .filter(directories::org_id.eq(org_id))
        .select((directories::id, directories::event_seq))
        .load(conn)?;
    let dirs: Vec<String> = versions.iter().map(|(id, _)| id.clone()).collect();
    let trigram_filter = trigram_prefilter(conn, &needle)?;
    let postgres = matches!(conn, DbConn::Postgres(_));
    let base = || {
        // The directory's condition first: with `deleted_at IS NULL` before it, SQLite
        // planned the count differently (the first page took 12–19 ms instead of 4–5 at
        // 48 000 users in the harness).
        let mut q = match dirs.as_slice() {
            // On Postgres an equality, not `= ANY(array)`: with the array it sorted every user
            // of the organization instead of walking the index (14 ms instead of 0.1 at
            // 28 000). SQLite's `IN (?)` walks it already.
            [one] if postgres => scim_users::table
                .filter(scim_users::directory_id.eq(one.clone()))
                .into_boxed(),
            _ => scim_users::table
                .filter(scim_users::directory_id.eq_any(dirs.clone()))
                .into_boxed(),
        };
        q = q.filter(scim_users::deleted_at.is_null());
        if let Some((before, bound, after)) = &trigram_filter {
            q = q.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(before)
                    .bind::<diesel::sql_types::Text, _>(bound.clone())
                    .sql(after),
            );
        }
        if !needle.is_empty() {
            let pattern = crate::db::contains_pattern(&needle);
            // Nullable columns: NULL LIKE … is NULL, which `OR` treats as false here.
            q = q.filter(
                scim_users::user_name_norm
                    .like(pattern.clone())
                    .escape('\\')
                    .or(scim_users::display_name_norm
                        .like(pattern.clone())
                        .escape('\\')
                        .assume_not_null())
                    .or(scim_users::full_name_norm
                        .like(pattern.clone())
                        .escape('\\')
                        .assume_not_null())
                    .or(scim_users::primary_email
                        .like(pattern.clone())
                        .escape('\\')
                        .assume_not_null()),
            );
        }
        if let Some(active) = v.active {
            q = q.filter(scim_users::active.eq(active));
        }
        if let Some(g) = &v.group_id {
            q = q.filter(
                scim_users::id.eq_any(
                    group_members::table
                        .filter(group_members::group_id.eq(g.clone()))
                        .select(group_members::user_id),
                ),
            );
        }
        q
    };
    let unfiltered = needle.is_empty() && v.active.is_none() && v.group_id.is_none();
    let total: i64 = if unfiltered {
        let versions: Vec<(&str, i64)> = versions
            .iter()
            .map(|(id, seq)| (id.as_str(), *seq))
            .collect();
        counts.live_users_of(conn, &versions)?.iter().sum()
    } else {
        base().count().get_result(conn)?
    };
    let q = base()
        .select(UserRow::as_select())
        .offset(v.offset)
        .limit(v.limit);
    let q = match (v.sort, v.descending) {
        (ViewSort::Name, false) => q.order((diesel::dsl::sql::<diesel::sql_types::Text>("COALESCE(scim_users.display_name_norm, scim_users.full_name_norm, scim_users.user_name_norm)").asc(), scim_users::id.asc())),
        (ViewSort::Name, true) => q.order((diesel::dsl::sql::<diesel::sql_types::Text>("COALESCE(scim_users.display_name_norm, scim_users.full_name_norm, scim_users.user_name_norm)").desc(), scim_users::id.desc())),
        (ViewSort::UserName, false) => q.order((scim_users::user_name_norm.asc(), scim_users::id.asc())),
        (ViewSort::UserName, true) => q.order((scim_users::user_name_norm.desc(), scim_users::id.desc())),
        (ViewSort::Status, false) => q.order((scim_users::active.desc(), scim_users::id.desc())),
        (ViewSort::Status, true) => q.order((scim_users::active.asc(), scim_users::id.desc())),
        (ViewSort::Updated, false) => q.order((scim_users::updated_at.asc(), scim_users::id.asc())),
        (ViewSort::Updated, true) => q.order((scim_users::updated_at.desc(), scim_users::id.desc())),
    };
    Ok((total, q.load(conn)?))
}

/// Portal: a live user of the organization.
pub fn org_get(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<Option<UserRow>> {
    scim_users::table
        .inner_join(directories::table)
        .filter(directories::org_id.eq(org_id))
        .filter(scim_users::id.eq(id))
        .filter(scim_users::deleted_at.is_null())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// A deleted user of the organization (its tombstone) and when it was deleted.
pub fn org_get_deleted(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
) -> QueryResult<Option<(UserRow, NaiveDateTime)>> {
    let found: Option<(UserRow, Option<NaiveDateTime>)> = scim_users::table
        .inner_join(directories::table)
        .filter(directories::org_id.eq(org_id))
        .filter(scim_users::id.eq(id))
        .filter(scim_users::deleted_at.is_not_null())
        .select((UserRow::as_select(), scim_users::deleted_at))
        .first(conn)
        .optional()?;
    Ok(found.and_then(|(row, at)| at.map(|at| (row, at))))
}

/// Current names (displayName, else full name, else userName) of users, deleted ones included.
pub fn labels(
    conn: &mut DbConn,
    directory_id: &str,
    ids: &[String],
) -> QueryResult<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String, Option<String>, Option<String>)> = scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .filter(scim_users::id.eq_any(chunk))
            .select((
                scim_users::id,
                scim_users::user_name,
                scim_users::display_name,
                scim_users::full_name,
            ))
            .load(conn)?;
        for (id, user_name, display, full) in rows {
            let label = [display, full]
                .into_iter()
                .flatten()
                .find(|d| !d.trim().is_empty())
                .unwrap_or(user_name);
            out.insert(id, label);
        }
    }
    let groups: Vec<(String, String)> = crate::db::schema::scim_groups::table
        .filter(crate::db::schema::scim_groups::directory_id.eq(directory_id))
        .filter(crate::db::schema::scim_groups::id.eq_any(ids))
        .select((
            crate::db::schema::scim_groups::id,
            crate::db::schema::scim_groups::display_name,
        ))
        .load(conn)?;
    out.extend(groups);
    Ok(out)
}

/// What the directory API's user list filters by.
#[derive(Debug, Clone, Default)]
pub struct ApiFilter {
    pub organization_id: Option<String>,
    pub directory_id: Option<String>,
    pub group_id: Option<String>,
    pub active: Option<bool>,
    pub updated_after: Option<NaiveDateTime>,
}

type HeldIds = diesel::dsl::Select<held_users::table, held_users::user_id>;

/// Ids of the users the deprovisioning brake holds.
fn held_ids() -> HeldIds {
    held_users::table.select(held_users::user_id)
}

/// Live users, and deleted ones whose deletion the brake holds from the application.
fn live_for_the_app() -> diesel::dsl::Or<
    diesel::dsl::IsNull<scim_users::deleted_at>,
    diesel::dsl::EqAny<scim_users::id, HeldIds>,
> {
    scim_users::deleted_at
        .is_null()
        .or(scim_users::id.eq_any(held_ids()))
}

/// Directory API: live users matching `f`, in id order after `after` (keyset paging).
pub fn api_list(
    conn: &mut DbConn,
    f: &ApiFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut q = scim_users::table
        .inner_join(directories::table)
        .filter(live_for_the_app())
        .select(UserRow::as_select())
        .order(scim_users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(o) = &f.organization_id {
        q = q.filter(directories::org_id.eq(o.clone()));
    }
    if let Some(d) = &f.directory_id {
        q = q.filter(scim_users::directory_id.eq(d.clone()));
    }
    if let Some(g) = &f.group_id {
        q = q.filter(
            scim_users::id.eq_any(
                group_members::table
                    .filter(group_members::group_id.eq(g.clone()))
                    .select(group_members::user_id),
            ),
        );
    }
    if let Some(a) = f.active {
        // A held user's state is the one the application saw (the caller applies it).
        q = q.filter(
            scim_users::active
                .eq(a)
                .or(scim_users::id.eq_any(held_ids())),
        );
    }
    if let Some(t) = f.updated_after {
        q = q.filter(scim_users::updated_at.gt(t));
    }
    if let Some(a) = after {
        q = q.filter(scim_users::id.gt(a.to_string()));
    }
    q.load(conn)
}

/// Directory API: a live user by id.
pub fn api_get(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserRow>> {
    scim_users::table
        .filter(scim_users::id.eq(id))
        .filter(live_for_the_app())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}
