//! Memberships, in one place: a user's groups (`groups_of`, and `user_with_groups`, a user
//! with its groups), a group's members (`members`, `member_refs`, `member_count`,
//! `member_ids`), and the changes to them (`add_known_members`, `add_members`,
//! `remove_members`, `add_to_groups`, and `touch_group`, which moves the group's version).
//! Changes touch only the changed rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::schema::{group_members, scim_groups, scim_users};
use super::users::{self, ListedUser, UserRow};
use super::{DbConn, FixedSql, now};
use crate::scim::resource::Reference;

/// Rows per statement when inserting or deleting memberships in bulk.
const CHUNK: usize = 500;

/// Query ids of SQLite statements written out (see `FixedSql`).
struct KnownUsersOf;
struct RemoveMembersOf;
struct MembershipsOf;
struct GroupNamesOf;

/// The groups of each given user (live groups of the same directory).
pub fn groups_of(
    conn: &mut DbConn,
    directory_id: &str,
    user_ids: &[String],
) -> QueryResult<Vec<(String, Reference)>> {
    let mut out = Vec::new();
    // Two lookups joined here: as one SQL join, SQLite walks every group of the directory
    // and probes each against the users (groups × users lookups) to avoid a sort.
    for chunk in user_ids.chunks(500) {
        let memberships: Vec<(String, String)> = match (&mut *conn, chunk) {
            // One user (a GET, a create): `=` keeps the statement prepared, where `IN (…)` of
            // a list is prepared anew every time.
            (conn, [one]) => group_members::table
                .filter(group_members::user_id.eq(one))
                .select((group_members::user_id, group_members::group_id))
                .load(conn)?,
            // A page: the ids as one JSON array, for the same reason (preparing the `IN` list
            // was a sixteenth of a page's time). CROSS JOIN keeps the ids the outer loop, one
            // index probe each: the planner cannot tell how many there are.
            (DbConn::Sqlite(c), _) => super::FixedSql::<MembershipsOf, (Text, Text)>::new(
                "SELECT m.user_id, m.group_id FROM json_each(?) AS ids \
                 CROSS JOIN group_members AS m ON m.user_id = ids.value",
                vec![super::json_array(chunk)],
            )
            .load(c)?,
            // Postgres binds the list as one array: its statement is prepared once.
            (conn, _) => group_members::table
                .filter(group_members::user_id.eq_any(chunk))
                .select((group_members::user_id, group_members::group_id))
                .load(conn)?,
        };
        let mut group_ids: Vec<&str> = memberships.iter().map(|(_, g)| g.as_str()).collect();
        group_ids.sort_unstable();
        group_ids.dedup();
        let mut groups: BTreeMap<String, (String, String)> = BTreeMap::new();
        for ids in group_ids.chunks(500) {
            let rows: Vec<(String, String, String)> = match &mut *conn {
                DbConn::Sqlite(c) => super::FixedSql::<GroupNamesOf, (Text, Text, Text)>::new(
                    "SELECT g.id, g.display_name, g.display_name_norm FROM json_each(?) AS ids \
                     CROSS JOIN scim_groups AS g ON g.id = ids.value \
                     WHERE g.directory_id = ? AND g.deleted_at IS NULL",
                    vec![super::json_array(ids), directory_id.to_string()],
                )
                .load(c)?,
                conn => scim_groups::table
                    .filter(scim_groups::directory_id.eq(directory_id))
                    .filter(scim_groups::deleted_at.is_null())
                    .filter(scim_groups::id.eq_any(ids))
                    .select((
                        scim_groups::id,
                        scim_groups::display_name,
                        scim_groups::display_name_norm,
                    ))
                    .load(conn)?,
            };
            groups.extend(rows.into_iter().map(|(id, d, n)| (id, (d, n))));
        }
        let mut rows: Vec<(String, &str, &(String, String))> = memberships
            .iter()
            .filter_map(|(u, g)| {
                groups
                    .get_key_value(g)
                    .map(|(id, dn)| (u.clone(), id.as_str(), dn))
            })
            .collect();
        rows.sort_by(|a, b| (&a.2.1, a.1).cmp(&(&b.2.1, b.1)));
        out.extend(rows.into_iter().map(|(user_id, id, (display, _))| {
            (
                user_id,
                Reference {
                    id: id.to_string(),
                    display: Some(display.clone()),
                },
            )
        }));
    }
    Ok(out)
}

/// Adds a user to groups it is not yet in (when a provider sends `groups` on a user); returns
/// the groups it was added to.
pub fn add_to_groups(
    conn: &mut DbConn,
    user_id: &str,
    group_ids: &std::collections::BTreeSet<String>,
) -> QueryResult<Vec<String>> {
    let me = std::collections::BTreeSet::from([user_id.to_string()]);
    let mut added = Vec::new();
    for g in group_ids {
        if !add_members(conn, g, &me)?.is_empty() {
            added.push(g.clone());
        }
    }
    Ok(added)
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
/// members is touched (see `touch_group`). On Postgres one statement: the check, the insert, the
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
                touch_group(conn, directory_id, group_id)?;
            }
            let ids: Vec<&String> = added.iter().collect();
            Ok((known, users::get_many(conn, directory_id, &ids)?))
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

/// How `user_with_groups` finds a live user.
#[derive(Clone, Copy)]
pub enum UserKey<'a> {
    Id(&'a str),
    /// A userName, normalised (`resource::normalize`): live ones are unique per directory.
    UserName(&'a str),
}

/// A live user as rendered (see `ListedUser`) with its groups, sorted as `groups_of` sorts
/// them: a GET of one user, or a provider's lookup by userName before it creates one. On
/// Postgres in one statement (each statement is a round trip to the server, and these run
/// for every such request).
pub fn user_with_groups(
    conn: &mut DbConn,
    directory_id: &str,
    key: UserKey<'_>,
) -> QueryResult<Option<(ListedUser, Vec<Reference>)>> {
    use diesel::sql_types::{BigInt, Timestamp};
    type St = (Text, Text, BigInt, Timestamp, Timestamp, Text);
    let c = match conn {
        DbConn::Postgres(c) => c,
        DbConn::Sqlite(c) => {
            let live = scim_users::table
                .filter(scim_users::directory_id.eq(directory_id))
                .filter(scim_users::deleted_at.is_null())
                .select(ListedUser::as_select());
            let found = match key {
                UserKey::Id(id) => live.filter(scim_users::id.eq(id)).first(c).optional()?,
                UserKey::UserName(name) => live
                    .filter(scim_users::user_name_norm.eq(name))
                    .first(c)
                    .optional()?,
            };
            let Some(user) = found else {
                return Ok(None);
            };
            let groups = groups_of(conn, directory_id, std::slice::from_ref(&user.id))?;
            return Ok(Some((user, groups.into_iter().map(|(_, r)| r).collect())));
        }
    };
    // The user's columns as `ListedUser`, then its groups as `[[id, display, norm], …]`.
    macro_rules! with_groups {
        ($key:literal) => {
            concat!(
                "SELECT u.id, u.resource, u.version, u.created_at, u.updated_at, \
                 COALESCE((SELECT json_agg(json_build_array(g.id, g.display_name, \
                 g.display_name_norm))::text FROM group_members m \
                 JOIN scim_groups g ON g.id = m.group_id WHERE m.user_id = u.id \
                 AND g.directory_id = u.directory_id AND g.deleted_at IS NULL), '[]') \
                 FROM scim_users u WHERE u.directory_id = ? AND ",
                $key,
                " = ? AND u.deleted_at IS NULL"
            )
        };
    }
    type Row = (String, String, i64, NaiveDateTime, NaiveDateTime, String);
    let binds = |value: &str| vec![directory_id.to_string(), value.to_string()];
    let row: Option<Row> = match key {
        UserKey::Id(id) => FixedSql::<UserWithGroupsById, St>::new(with_groups!("u.id"), binds(id))
            .get_result(c)
            .optional()?,
        UserKey::UserName(name) => {
            FixedSql::<UserWithGroupsByName, St>::new(with_groups!("u.user_name_norm"), binds(name))
                .get_result(c)
                .optional()?
        }
    };
    let Some((id, resource, version, created_at, updated_at, groups)) = row else {
        return Ok(None);
    };
    let mut groups: Vec<(String, String, String)> = serde_json::from_str(&groups)
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
    groups.sort_by(|a, b| (&a.2, &a.0).cmp(&(&b.2, &b.0)));
    let user = ListedUser {
        id,
        resource,
        version,
        created_at,
        updated_at,
    };
    let groups = groups
        .into_iter()
        .map(|(id, display, _)| Reference {
            id,
            display: Some(display),
        })
        .collect();
    Ok(Some((user, groups)))
}

/// Query ids of `user_with_groups`'s Postgres statements.
struct UserWithGroupsById;
struct UserWithGroupsByName;

/// Marks a membership-only change on the group (version and lastModified).
pub fn touch_group(conn: &mut DbConn, directory_id: &str, id: &str) -> QueryResult<()> {
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
