//! SCIM groups and memberships of a directory (every function takes the directory id first),
//! and the portal's org-wide group views. Membership changes touch only the changed rows.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{directories, group_members, scim_groups, scim_users};
use super::scim_filter::GroupCond;
use super::users::UserRow;
use super::{DbConn, new_id, now};
use crate::scim::resource::{GroupInput, Reference, normalize};

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

/// Rows per statement when inserting or deleting memberships in bulk.
const CHUNK: usize = 500;

/// Query ids of SQLite statements written out (see `FixedSql`).
struct KnownUsersOf;
struct RemoveMembersOf;

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

/// Marks a membership-only change on the group (version and lastModified).
pub fn touch(conn: &mut DbConn, directory_id: &str, id: &str) -> QueryResult<()> {
    let touch = TouchGroup {
        directory_id,
        id,
        at: now(),
    };
    crate::on_backend!(conn, |c| touch.execute(c))?;
    Ok(())
}

/// `UPDATE scim_groups SET version = version + 1, updated_at = … WHERE …`, written out so the
/// connection keeps it prepared (diesel re-prepares every UPDATE it builds): every membership
/// change of a group runs it.
struct TouchGroup<'a> {
    directory_id: &'a str,
    id: &'a str,
    at: NaiveDateTime,
}

// It returns no rows: the row type is never used.
super::prepared_statement!(TouchGroup, diesel::sql_types::BigInt);

impl<DB> diesel::query_builder::QueryFragment<DB> for TouchGroup<'_>
where
    DB: diesel::backend::Backend,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Text, Timestamp};
        out.push_sql("UPDATE scim_groups SET version = version + 1, updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" WHERE directory_id = ");
        out.push_bind_param::<Text, _>(self.directory_id)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        Ok(())
    }
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

/// Which of `ids` are live users of the directory.
pub fn known_user_ids(
    conn: &mut DbConn,
    directory_id: &str,
    ids: &BTreeSet<String>,
) -> QueryResult<BTreeSet<String>> {
    let ids: Vec<&String> = ids.iter().collect();
    let mut found = BTreeSet::new();
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<String> = match &mut *conn {
            // The ids as one JSON array: an `IN (…)` list is prepared anew for every size,
            // which was a ninth of a whole-group PUT's membership work.
            DbConn::Sqlite(c) => super::FixedSql::<KnownUsersOf, diesel::sql_types::Text>::new(
                "SELECT s.id FROM json_each(?) AS ids CROSS JOIN scim_users AS s \
                 ON s.id = ids.value WHERE s.directory_id = ? AND s.deleted_at IS NULL",
                vec![super::json_array(chunk), directory_id.to_string()],
            )
            .load(c)?,
            conn => scim_users::table
                .filter(scim_users::directory_id.eq(directory_id))
                .filter(scim_users::deleted_at.is_null())
                .filter(scim_users::id.eq_any(chunk))
                .select(scim_users::id)
                .load(conn)?,
        };
        found.extend(rows);
    }
    Ok(found)
}

/// Current member ids of a group.
pub fn member_ids(conn: &mut DbConn, group_id: &str) -> QueryResult<BTreeSet<String>> {
    Ok(group_members::table
        .filter(group_members::group_id.eq(group_id))
        .select(group_members::user_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Adds members, skipping those already present; returns the ones actually added.
pub fn add_members(
    conn: &mut DbConn,
    group_id: &str,
    user_ids: &BTreeSet<String>,
) -> QueryResult<BTreeSet<String>> {
    let ids: Vec<&String> = user_ids.iter().collect();
    let at = now();
    // One prepared statement per chunk, which also tells which were new (insert-or-ignore:
    // a concurrent writer may have added the same member meanwhile).
    let mut added = BTreeSet::new();
    for chunk in ids.chunks(CHUNK) {
        added.extend(match &mut *conn {
            DbConn::Postgres(c) => AddMembers {
                group_id,
                at,
                users: chunk.iter().map(|u| u.as_str()).collect(),
            }
            .load::<String>(c)?,
            DbConn::Sqlite(c) => AddMembersSqlite {
                group_id,
                at,
                users: super::json_array(chunk),
            }
            .load::<String>(c)?,
        });
    }
    Ok(added)
}

/// SQLite's `AddMembers`: the ids as one JSON array, so that the statement's text, and with
/// it the prepared statement, is the same for any number of members.
struct AddMembersSqlite<'a> {
    group_id: &'a str,
    at: NaiveDateTime,
    users: String,
}

super::prepared_statement!(AddMembersSqlite, diesel::sql_types::Text);

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for AddMembersSqlite<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Text, Timestamp};
        out.push_sql("INSERT INTO group_members (group_id, user_id, created_at) SELECT ");
        out.push_bind_param::<Text, _>(self.group_id)?;
        out.push_sql(", ids.value, ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" FROM json_each(");
        out.push_bind_param::<Text, _>(&self.users)?;
        // `WHERE true`: without it SQLite would read `ON CONFLICT` as a join's `ON`.
        out.push_sql(") AS ids WHERE true ON CONFLICT DO NOTHING RETURNING user_id");
        Ok(())
    }
}

/// `INSERT INTO group_members … SELECT … unnest(…) ON CONFLICT DO NOTHING RETURNING user_id`,
/// with a query type of its own so the connection keeps it prepared.
struct AddMembers<'a> {
    group_id: &'a str,
    at: NaiveDateTime,
    users: Vec<&'a str>,
}

super::prepared_statement!(AddMembers, diesel::sql_types::Text);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for AddMembers<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, Text, Timestamp};
        out.push_sql("INSERT INTO group_members (group_id, user_id, created_at) SELECT ");
        out.push_bind_param::<Text, _>(self.group_id)?;
        out.push_sql(", u, ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.users)?;
        out.push_sql(") AS u ON CONFLICT DO NOTHING RETURNING user_id");
        Ok(())
    }
}

/// Adds users to the group, skipping those already in it, but only when every one of them is
/// a live user of the directory. Returns the ids that are (all of them, unless some are
/// unknown: then nothing was added) and the users added. With `touch`, a group that gained
/// members is touched (see `touch`). On Postgres one statement: the check, the insert, the
/// touch and reading the added users (for their events) cost one round trip, where a single
/// member's add is mostly round trips.
pub fn add_known_members(
    conn: &mut DbConn,
    directory_id: &str,
    group_id: &str,
    user_ids: &BTreeSet<String>,
    touch: bool,
) -> QueryResult<(BTreeSet<String>, Vec<UserRow>)> {
    if user_ids.is_empty() {
        return Ok((BTreeSet::new(), Vec::new()));
    }
    match conn {
        DbConn::Postgres(c) => {
            let rows: Vec<(bool, UserRow)> = AddKnownMembers {
                directory_id,
                group_id,
                at: now(),
                touch,
                users: user_ids.iter().map(String::as_str).collect(),
            }
            .load(c)?;
            let known = rows.iter().map(|(_, u)| u.id.clone()).collect();
            let added = rows
                .into_iter()
                .filter_map(|(added, u)| added.then_some(u))
                .collect();
            Ok((known, added))
        }
        DbConn::Sqlite(_) => {
            let known = known_user_ids(conn, directory_id, user_ids)?;
            if known.len() < user_ids.len() {
                return Ok((known, Vec::new()));
            }
            let added = add_members(conn, group_id, &known)?;
            if touch && !added.is_empty() {
                self::touch(conn, directory_id, group_id)?;
            }
            let ids: Vec<&String> = added.iter().collect();
            Ok((known, super::users::get_many(conn, directory_id, &ids)?))
        }
    }
}

/// See `add_known_members`: `known` is the directory's live users among the ids; they are
/// inserted only when all were found.
struct AddKnownMembers<'a> {
    directory_id: &'a str,
    group_id: &'a str,
    at: NaiveDateTime,
    touch: bool,
    users: Vec<&'a str>,
}

super::prepared_statement!(
    AddKnownMembers,
    (
        diesel::sql_types::Bool,
        diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<UserRow, diesel::pg::Pg>>,
    )
);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for AddKnownMembers<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, Bool, Text, Timestamp};
        out.push_sql("WITH wanted AS (SELECT DISTINCT u FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.users)?;
        out.push_sql(
            ") AS u), known AS (SELECT s.* FROM scim_users s JOIN wanted w ON s.id = w.u \
             WHERE s.directory_id = ",
        );
        out.push_bind_param::<Text, _>(&self.directory_id)?;
        out.push_sql(
            " AND s.deleted_at IS NULL), added AS (INSERT INTO group_members (group_id, \
             user_id, created_at) SELECT ",
        );
        out.push_bind_param::<Text, _>(&self.group_id)?;
        out.push_sql(", k.id, ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(
            " FROM known k WHERE (SELECT count(*) FROM known) = (SELECT count(*) FROM wanted) \
             ORDER BY k.id ON CONFLICT DO NOTHING RETURNING user_id), \
             touched AS (UPDATE scim_groups SET version = version + 1, updated_at = ",
        );
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" WHERE ");
        out.push_bind_param::<Bool, _>(&self.touch)?;
        out.push_sql(" AND directory_id = ");
        out.push_bind_param::<Text, _>(&self.directory_id)?;
        out.push_sql(" AND id = ");
        out.push_bind_param::<Text, _>(&self.group_id)?;
        out.push_sql(
            " AND EXISTS (SELECT 1 FROM added)) \
             SELECT a.user_id IS NOT NULL, k.id, k.directory_id, k.user_name, \
             k.user_name_norm, k.external_id, k.active, k.display_name, k.display_name_norm, \
             k.full_name, k.full_name_norm, k.primary_email, k.resource, k.version, \
             k.created_at, k.updated_at, k.deleted_at \
             FROM known k LEFT JOIN added a ON a.user_id = k.id ORDER BY k.id",
        );
        Ok(())
    }
}

/// Removes members; returns the ones actually removed.
pub fn remove_members(
    conn: &mut DbConn,
    group_id: &str,
    user_ids: &BTreeSet<String>,
) -> QueryResult<BTreeSet<String>> {
    let ids: Vec<&String> = user_ids.iter().collect();
    // One statement per chunk, which also tells which were members.
    let mut removed = BTreeSet::new();
    for chunk in ids.chunks(CHUNK) {
        removed.extend(match &mut *conn {
            // The ids as one JSON array, so that the statement stays prepared (see
            // `known_user_ids`).
            DbConn::Sqlite(c) => super::FixedSql::<RemoveMembersOf, diesel::sql_types::Text>::new(
                "DELETE FROM group_members WHERE group_id = ? \
                 AND user_id IN (SELECT value FROM json_each(?)) RETURNING user_id",
                vec![group_id.to_string(), super::json_array(chunk)],
            )
            .load::<String>(c)?,
            // Postgres binds the list as one array: its statement is prepared once.
            DbConn::Postgres(c) => diesel::delete(
                group_members::table
                    .filter(group_members::group_id.eq(group_id))
                    .filter(group_members::user_id.eq_any(chunk)),
            )
            .returning(group_members::user_id)
            .load::<String>(c)?,
        });
    }
    Ok(removed)
}

/// A member as the portal and SCIM `members` show it.
#[derive(Debug, Clone, Queryable)]
pub struct Member {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub full_name: Option<String>,
    pub active: bool,
}

impl Member {
    /// displayName, else given + family name, else userName.
    pub fn label(&self) -> &str {
        [self.display_name.as_deref(), self.full_name.as_deref()]
            .into_iter()
            .flatten()
            .find(|d| !d.trim().is_empty())
            .unwrap_or(&self.user_name)
    }
}

/// Members of a group (live users), ordered by userName, one page.
pub fn members(
    conn: &mut DbConn,
    group_id: &str,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<Member>> {
    group_members::table
        .inner_join(scim_users::table)
        .filter(group_members::group_id.eq(group_id))
        .filter(scim_users::deleted_at.is_null())
        .select((
            scim_users::id,
            scim_users::user_name,
            scim_users::display_name,
            scim_users::full_name,
            scim_users::active,
        ))
        .order(scim_users::user_name_norm.asc())
        .offset(offset)
        .limit(limit)
        .load(conn)
}

/// All members as SCIM references (for rendering a group).
pub fn member_refs(conn: &mut DbConn, group_id: &str) -> QueryResult<Vec<Reference>> {
    Ok(members(conn, group_id, 0, i64::MAX)?
        .into_iter()
        .map(|m| Reference {
            display: Some(m.label().to_string()),
            id: m.id,
        })
        .collect())
}

pub fn member_count(conn: &mut DbConn, group_id: &str) -> QueryResult<i64> {
    group_members::table
        .inner_join(scim_users::table)
        .filter(group_members::group_id.eq(group_id))
        .filter(scim_users::deleted_at.is_null())
        .count()
        .get_result(conn)
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
