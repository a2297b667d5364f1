//! SCIM groups of a directory (every function takes the directory id first), and the
//! portal's and the directory API's views of groups. Memberships are in `db::memberships`.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::memberships::member_count;
use super::schema::{directories, group_members, scim_groups, scim_users};
use super::scim_filter::GroupCond;
use super::{DbConn, new_id, now};
use crate::scim::resource::{GroupInput, normalize};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scim_groups)]
pub struct GroupRow {
    pub id: String,
    pub directory_id: String,
    pub display_name: String,
    pub display_name_norm: String,
    pub external_id: Option<String>,
    pub resource: String,
    pub version: i64,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

/// Ids per statement when looking groups up in bulk.
const CHUNK: usize = 500;

pub fn get(conn: &mut DbConn, directory_id: &str, id: &str) -> QueryResult<Option<GroupRow>> {
    scim_groups::table
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::id.eq(id))
        .filter(scim_groups::deleted_at.is_null())
        .select(GroupRow::as_select())
        .first(conn)
        .optional()
}

/// The live group, locked for the rest of the transaction so concurrent membership writes to
/// one group are serialized (on SQLite, `BEGIN IMMEDIATE` already serializes writers). On
/// Postgres the lock comes with the row, in one statement.
pub fn get_locked(
    conn: &mut DbConn,
    directory_id: &str,
    id: &str,
) -> QueryResult<Option<GroupRow>> {
    match conn {
        DbConn::Postgres(c) => scim_groups::table
            .filter(scim_groups::directory_id.eq(directory_id))
            .filter(scim_groups::id.eq(id))
            .filter(scim_groups::deleted_at.is_null())
            .select(GroupRow::as_select())
            .for_update()
            .first(c)
            .optional(),
        DbConn::Sqlite(_) => get(conn, directory_id, id),
    }
}

/// Which of `ids` are live groups of the directory.
pub fn known_group_ids(
    conn: &mut DbConn,
    directory_id: &str,
    ids: &BTreeSet<String>,
) -> QueryResult<BTreeSet<String>> {
    let ids: Vec<&String> = ids.iter().collect();
    let mut found = BTreeSet::new();
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<String> = scim_groups::table
            .filter(scim_groups::directory_id.eq(directory_id))
            .filter(scim_groups::deleted_at.is_null())
            .filter(scim_groups::id.eq_any(chunk))
            .select(scim_groups::id)
            .load(conn)?;
        found.extend(rows);
    }
    Ok(found)
}

/// The first `limit` live groups of a directory by name, as (id, name): what a picker lists.
pub fn names(
    conn: &mut DbConn,
    directory_id: &str,
    limit: i64,
) -> QueryResult<Vec<(String, String)>> {
    scim_groups::table
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::deleted_at.is_null())
        .order((scim_groups::display_name_norm.asc(), scim_groups::id.asc()))
        .limit(limit)
        .select((scim_groups::id, scim_groups::display_name))
        .load(conn)
}

/// Live groups of the directory with ids after `after`, in id order (document evaluation).
pub fn chunk_after(
    conn: &mut DbConn,
    directory_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<GroupRow>> {
    let mut q = scim_groups::table
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::deleted_at.is_null())
        .select(GroupRow::as_select())
        .order(scim_groups::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(scim_groups::id.gt(after.to_string()));
    }
    q.load(conn)
}

pub fn id_by_display_name(
    conn: &mut DbConn,
    directory_id: &str,
    display_name: &str,
) -> QueryResult<Option<String>> {
    scim_groups::table
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::display_name_norm.eq(normalize(display_name)))
        .filter(scim_groups::deleted_at.is_null())
        .select(scim_groups::id)
        .first(conn)
        .optional()
}

/// Columns a group list can be sorted by in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSort {
    Id,
    DisplayName,
    Created,
    Modified,
}

impl GroupSort {
    pub fn for_group(attr: &crate::scim::filter::AttrPath) -> Option<GroupSort> {
        Some(if attr.is("id") {
            GroupSort::Id
        } else if attr.is("displayName") {
            GroupSort::DisplayName
        } else if attr.is_sub("meta", "created") {
            GroupSort::Created
        } else if attr.is_sub("meta", "lastModified") {
            GroupSort::Modified
        } else {
            return None;
        })
    }
}

pub fn search(
    conn: &mut DbConn,
    directory_id: &str,
    cond: Option<(GroupCond, GroupCond)>,
    sort: Option<(GroupSort, bool)>,
    offset: i64,
    limit: i64,
) -> QueryResult<(i64, Vec<GroupRow>)> {
    let mut count = scim_groups::table
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::deleted_at.is_null())
        .count()
        .into_boxed();
    let mut page = scim_groups::table
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::deleted_at.is_null())
        .select(GroupRow::as_select())
        .offset(offset)
        .limit(limit)
        .into_boxed();
    if let Some((c1, c2)) = cond {
        count = count.filter(c1);
        page = page.filter(c2);
    }
    let total: i64 = count.get_result(conn)?;
    // As for users: no page query when it would be empty, no ORDER BY for one match (a
    // `displayName eq` lookup must use the unique index whatever the planner's statistics).
    if limit == 0 || offset >= total {
        return Ok((total, Vec::new()));
    }
    if total > 1 {
        page = match sort {
            None | Some((GroupSort::Id, false)) => page.order(scim_groups::id.asc()),
            Some((GroupSort::Id, true)) => page.order(scim_groups::id.desc()),
            Some((GroupSort::DisplayName, false)) => {
                page.order((scim_groups::display_name_norm.asc(), scim_groups::id.asc()))
            }
            Some((GroupSort::DisplayName, true)) => {
                page.order((scim_groups::display_name_norm.desc(), scim_groups::id.asc()))
            }
            Some((GroupSort::Created, false)) => {
                page.order((scim_groups::created_at.asc(), scim_groups::id.asc()))
            }
            Some((GroupSort::Created, true)) => {
                page.order((scim_groups::created_at.desc(), scim_groups::id.asc()))
            }
            Some((GroupSort::Modified, false)) => {
                page.order((scim_groups::updated_at.asc(), scim_groups::id.asc()))
            }
            Some((GroupSort::Modified, true)) => {
                page.order((scim_groups::updated_at.desc(), scim_groups::id.asc()))
            }
        };
    }
    Ok((total, page.load(conn)?))
}

pub fn insert(conn: &mut DbConn, directory_id: &str, input: &GroupInput) -> QueryResult<GroupRow> {
    let id = new_id();
    let at = now();
    diesel::insert_into(scim_groups::table)
        .values((
            scim_groups::id.eq(&id),
            scim_groups::directory_id.eq(directory_id),
            scim_groups::display_name.eq(&input.display_name),
            scim_groups::display_name_norm.eq(normalize(&input.display_name)),
            scim_groups::external_id.eq(&input.external_id),
            scim_groups::resource.eq(input.document.to_string()),
            scim_groups::version.eq(1i64),
            scim_groups::created_at.eq(at),
            scim_groups::updated_at.eq(at),
        ))
        .execute(conn)?;
    get(conn, directory_id, &id)?.ok_or(diesel::result::Error::NotFound)
}

/// Replaces a group's attributes (not its members) and bumps its version.
pub fn update(
    conn: &mut DbConn,
    directory_id: &str,
    id: &str,
    input: &GroupInput,
) -> QueryResult<()> {
    diesel::update(
        scim_groups::table
            .filter(scim_groups::directory_id.eq(directory_id))
            .filter(scim_groups::id.eq(id))
            .filter(scim_groups::deleted_at.is_null()),
    )
    .set((
        scim_groups::display_name.eq(&input.display_name),
        scim_groups::display_name_norm.eq(normalize(&input.display_name)),
        scim_groups::external_id.eq(&input.external_id),
        scim_groups::resource.eq(input.document.to_string()),
        scim_groups::version.eq(scim_groups::version + 1i64),
        scim_groups::updated_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConn, directory_id: &str, id: &str) -> QueryResult<bool> {
    let n = diesel::update(
        scim_groups::table
            .filter(scim_groups::directory_id.eq(directory_id))
            .filter(scim_groups::id.eq(id))
            .filter(scim_groups::deleted_at.is_null()),
    )
    .set((
        scim_groups::deleted_at.eq(now()),
        scim_groups::updated_at.eq(now()),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    diesel::delete(group_members::table.filter(group_members::group_id.eq(id))).execute(conn)?;
    Ok(true)
}

/// Portal: one page of an organization's live groups with member counts.
pub fn org_page(
    conn: &mut DbConn,
    org_id: &str,
    search: &str,
    offset: i64,
    limit: i64,
) -> QueryResult<(i64, Vec<(GroupRow, i64)>)> {
    let needle = normalize(search);
    let base = || {
        let mut q = scim_groups::table
            .inner_join(directories::table)
            .filter(directories::org_id.eq(org_id))
            .filter(scim_groups::deleted_at.is_null())
            .into_boxed();
        if !needle.is_empty() {
            let pattern = super::contains_pattern(&needle);
            q = q.filter(scim_groups::display_name_norm.like(pattern).escape('\\'));
        }
        q
    };
    let total: i64 = base().count().get_result(conn)?;
    let rows: Vec<GroupRow> = base()
        .select(GroupRow::as_select())
        .order(scim_groups::display_name_norm.asc())
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for g in rows {
        let n = member_count(conn, &g.id)?;
        out.push((g, n));
    }
    Ok((total, out))
}

pub fn org_get(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<Option<GroupRow>> {
    scim_groups::table
        .inner_join(directories::table)
        .filter(directories::org_id.eq(org_id))
        .filter(scim_groups::id.eq(id))
        .filter(scim_groups::deleted_at.is_null())
        .select(GroupRow::as_select())
        .first(conn)
        .optional()
}

/// Ids and names of an organization's live groups, by name (for the Users view's group filter).
pub fn org_names(
    conn: &mut DbConn,
    org_id: &str,
    limit: i64,
) -> QueryResult<Vec<(String, String)>> {
    scim_groups::table
        .inner_join(directories::table)
        .filter(directories::org_id.eq(org_id))
        .filter(scim_groups::deleted_at.is_null())
        .order(scim_groups::display_name_norm.asc())
        .limit(limit)
        .select((scim_groups::id, scim_groups::display_name))
        .load(conn)
}

/// Directory API: live groups of an organization and/or directory, in id order after `after`.
pub fn api_list(
    conn: &mut DbConn,
    organization_id: Option<&str>,
    directory_id: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<GroupRow>> {
    let mut q = scim_groups::table
        .inner_join(directories::table)
        .filter(scim_groups::deleted_at.is_null())
        .select(GroupRow::as_select())
        .order(scim_groups::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(o) = organization_id {
        q = q.filter(directories::org_id.eq(o.to_string()));
    }
    if let Some(d) = directory_id {
        q = q.filter(scim_groups::directory_id.eq(d.to_string()));
    }
    if let Some(a) = after {
        q = q.filter(scim_groups::id.gt(a.to_string()));
    }
    q.load(conn)
}

/// Directory API: a live group by id.
pub fn api_get(conn: &mut DbConn, id: &str) -> QueryResult<Option<GroupRow>> {
    scim_groups::table
        .filter(scim_groups::id.eq(id))
        .filter(scim_groups::deleted_at.is_null())
        .select(GroupRow::as_select())
        .first(conn)
        .optional()
}

/// Directory API: members of a group after a user id, in id order.
pub fn api_members(
    conn: &mut DbConn,
    group_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<super::users::UserRow>> {
    let mut q = group_members::table
        .inner_join(scim_users::table)
        .filter(group_members::group_id.eq(group_id))
        .filter(scim_users::deleted_at.is_null())
        .select(super::users::UserRow::as_select())
        .order(scim_users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(scim_users::id.gt(a.to_string()));
    }
    q.load(conn)
}
