//! Roles: what the app owner defines per organization (`roles`), which directory groups give
//! them (`role_mappings`), and each user's roles as their groups give them (`user_roles`, kept
//! by `refresh`). A user's *effective* roles are those, or the organization's default role
//! when their groups give none.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{directories, group_members, role_mappings, roles, scim_groups, user_roles};
use super::{DbConn, new_id, now};

/// Ids per statement when reading or writing many users' roles.
const CHUNK: usize = 500;

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = roles)]
pub struct Role {
    pub id: String,
    pub org_id: String,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub is_default: bool,
    pub created_at: NaiveDateTime,
}

/// A role as the owner defines it.
#[derive(Debug, Clone)]
pub struct NewRole {
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub is_default: bool,
}

/// Why a role definition is refused.
pub fn invalid_role(role: &NewRole) -> Option<String> {
    let slug_ok = (1..=64).contains(&role.slug.len())
        && role
            .slug
            .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && role
            .slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !slug_ok {
        return Some(
            "`slug` must be 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter or digit"
                .into(),
        );
    }
    if role.name.trim().is_empty() || role.name.chars().count() > 200 {
        return Some("`name` must be 1 to 200 characters".into());
    }
    if role
        .description
        .as_deref()
        .is_some_and(|d| d.chars().count() > 1000)
    {
        return Some("`description` must be at most 1 000 characters".into());
    }
    None
}

/// The organization's roles, by slug.
pub fn list(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<Role>> {
    roles::table
        .filter(roles::org_id.eq(org_id))
        .order(roles::slug.asc())
        .select(Role::as_select())
        .load(conn)
}

/// Whether the organization has any role (the portal's Roles tab shows only then).
pub fn any(conn: &mut DbConn, org_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        roles::table.filter(roles::org_id.eq(org_id)),
    ))
    .get_result(conn)
}

pub fn get(conn: &mut DbConn, org_id: &str, slug: &str) -> QueryResult<Option<Role>> {
    roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::slug.eq(slug))
        .select(Role::as_select())
        .first(conn)
        .optional()
}

/// Adds a role (a default one takes the place of the previous default). `None`: the slug
/// is taken.
pub fn insert(conn: &mut DbConn, org_id: &str, role: &NewRole) -> QueryResult<Option<Role>> {
    if get(conn, org_id, &role.slug)?.is_some() {
        return Ok(None);
    }
    if role.is_default {
        diesel::update(roles::table.filter(roles::org_id.eq(org_id)))
            .set(roles::is_default.eq(false))
            .execute(conn)?;
    }
    let row = Role {
        id: new_id(),
        org_id: org_id.to_string(),
        slug: role.slug.clone(),
        name: role.name.trim().to_string(),
        description: role.description.clone().filter(|d| !d.trim().is_empty()),
        is_default: role.is_default,
        created_at: now(),
    };
    diesel::insert_into(roles::table)
        .values((
            roles::id.eq(&row.id),
            roles::org_id.eq(&row.org_id),
            roles::slug.eq(&row.slug),
            roles::name.eq(&row.name),
            roles::description.eq(&row.description),
            roles::is_default.eq(row.is_default),
            roles::created_at.eq(row.created_at),
        ))
        .execute(conn)?;
    Ok(Some(row))
}

/// Removes a role and the mappings to it.
pub fn delete(conn: &mut DbConn, role_id: &str) -> QueryResult<()> {
    diesel::delete(role_mappings::table.filter(role_mappings::role_id.eq(role_id)))
        .execute(conn)?;
    diesel::delete(roles::table.filter(roles::id.eq(role_id))).execute(conn)?;
    Ok(())
}

/// The default role's slug of the directory's organization, if it has one.
pub fn default_slug(conn: &mut DbConn, directory_id: &str) -> QueryResult<Option<String>> {
    roles::table
        .inner_join(directories::table.on(directories::org_id.eq(roles::org_id)))
        .filter(directories::id.eq(directory_id))
        .filter(roles::is_default)
        .select(roles::slug)
        .first(conn)
        .optional()
}

/// The directories of an organization (role changes reach each of them).
pub fn org_directories(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<String>> {
    directories::table
        .filter(directories::org_id.eq(org_id))
        .select(directories::id)
        .order(directories::id.asc())
        .load(conn)
}

// ---- Mappings -------------------------------------------------------------------------------

/// A directory's mappings as (group id, role slug), sorted.
pub fn mappings(conn: &mut DbConn, directory_id: &str) -> QueryResult<Vec<(String, String)>> {
    role_mappings::table
        .inner_join(roles::table)
        .filter(role_mappings::directory_id.eq(directory_id))
        .order((role_mappings::group_id.asc(), roles::slug.asc()))
        .select((role_mappings::group_id, roles::slug))
        .load(conn)
}

/// Replaces a directory's mappings with `wanted` (group id, role id); returns the groups whose
/// roles changed.
pub fn replace_mappings(
    conn: &mut DbConn,
    directory_id: &str,
    wanted: &BTreeSet<(String, String)>,
) -> QueryResult<BTreeSet<String>> {
    let current: BTreeSet<(String, String)> = role_mappings::table
        .filter(role_mappings::directory_id.eq(directory_id))
        .select((role_mappings::group_id, role_mappings::role_id))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let mut changed = BTreeSet::new();
    for (group_id, role_id) in current.difference(wanted) {
        diesel::delete(
            role_mappings::table
                .filter(role_mappings::group_id.eq(group_id))
                .filter(role_mappings::role_id.eq(role_id)),
        )
        .execute(conn)?;
        changed.insert(group_id.clone());
    }
    let at = now();
    for (group_id, role_id) in wanted.difference(&current) {
        diesel::insert_into(role_mappings::table)
            .values((
                role_mappings::group_id.eq(group_id),
                role_mappings::role_id.eq(role_id),
                role_mappings::directory_id.eq(directory_id),
                role_mappings::created_at.eq(at),
            ))
            .execute(conn)?;
        changed.insert(group_id.clone());
    }
    Ok(changed)
}

/// The groups mapped to a role.
pub fn groups_of_role(conn: &mut DbConn, role_id: &str) -> QueryResult<Vec<(String, String)>> {
    role_mappings::table
        .filter(role_mappings::role_id.eq(role_id))
        .select((role_mappings::directory_id, role_mappings::group_id))
        .load(conn)
}

/// Removes a deleted group's mappings.
pub fn unmap_group(conn: &mut DbConn, group_id: &str) -> QueryResult<()> {
    diesel::delete(role_mappings::table.filter(role_mappings::group_id.eq(group_id)))
        .execute(conn)?;
    Ok(())
}

/// Whether a group gives any role (its membership changes can move roles only then).
pub fn group_is_mapped(conn: &mut DbConn, group_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        role_mappings::table.filter(role_mappings::group_id.eq(group_id)),
    ))
    .get_result(conn)
}

// ---- Users' roles ---------------------------------------------------------------------------

/// The roles each user's live groups give (users whose groups give none are left out).
fn mapped(
    conn: &mut DbConn,
    directory_id: &str,
    user_ids: &[&String],
) -> QueryResult<BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for chunk in user_ids.chunks(CHUNK) {
        let rows: Vec<(String, String)> = group_members::table
            .inner_join(scim_groups::table.on(scim_groups::id.eq(group_members::group_id)))
            .inner_join(
                role_mappings::table.on(role_mappings::group_id.eq(group_members::group_id)),
            )
            .inner_join(roles::table.on(roles::id.eq(role_mappings::role_id)))
            .filter(group_members::user_id.eq_any(chunk))
            .filter(scim_groups::directory_id.eq(directory_id))
            .filter(scim_groups::deleted_at.is_null())
            .select((group_members::user_id, roles::slug))
            .load(conn)?;
        for (user, slug) in rows {
            out.entry(user).or_default().insert(slug);
        }
    }
    Ok(out)
}

/// The roles stored for each user (see `refresh`).
fn stored(conn: &mut DbConn, user_ids: &[&String]) -> QueryResult<BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    for chunk in user_ids.chunks(CHUNK) {
        let rows: Vec<(String, String)> = user_roles::table
            .filter(user_roles::user_id.eq_any(chunk))
            .select((user_roles::user_id, user_roles::roles))
            .load(conn)?;
        for (user, roles) in rows {
            out.insert(user, serde_json::from_str(&roles).unwrap_or_default());
        }
    }
    Ok(out)
}

/// Effective roles: those the groups give, else the default (if any).
fn effective_of(given: &[String], default: Option<&String>) -> Vec<String> {
    match (given, default) {
        ([], Some(d)) => vec![d.clone()],
        (given, _) => given.to_vec(),
    }
}

/// Each user's effective roles, sorted (every id asked for has an entry).
pub fn effective(
    conn: &mut DbConn,
    directory_id: &str,
    user_ids: &[&String],
) -> QueryResult<BTreeMap<String, Vec<String>>> {
    let default = default_slug(conn, directory_id)?;
    let stored = stored(conn, user_ids)?;
    Ok(user_ids
        .iter()
        .map(|id| {
            let given = stored.get(*id).map(Vec::as_slice).unwrap_or_default();
            ((*id).clone(), effective_of(given, default.as_ref()))
        })
        .collect())
}

/// A user whose effective roles moved.
#[derive(Debug, Clone, PartialEq)]
pub struct RolesMoved {
    pub user_id: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// Recomputes the roles the given users' groups give, stores those that moved, and returns
/// the users whose effective roles moved (with the default before: `default_before`, when a
/// change of the default role is what moved them; otherwise the current default).
pub fn refresh(
    conn: &mut DbConn,
    directory_id: &str,
    user_ids: &[&String],
    default_before: Option<Option<String>>,
) -> QueryResult<Vec<RolesMoved>> {
    let default = default_slug(conn, directory_id)?;
    let default_before = default_before.unwrap_or_else(|| default.clone());
    let before = stored(conn, user_ids)?;
    let now_given = mapped(conn, directory_id, user_ids)?;
    let mut moved = Vec::new();
    for id in user_ids {
        let old: &[String] = before.get(*id).map(Vec::as_slice).unwrap_or_default();
        let new: Vec<String> = now_given
            .get(*id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if old != new.as_slice() {
            store(conn, directory_id, id, &new)?;
        }
        let (was, is) = (
            effective_of(old, default_before.as_ref()),
            effective_of(&new, default.as_ref()),
        );
        if was != is {
            moved.push(RolesMoved {
                user_id: (*id).clone(),
                before: was,
                after: is,
            });
        }
    }
    Ok(moved)
}

fn store(
    conn: &mut DbConn,
    directory_id: &str,
    user_id: &str,
    given: &[String],
) -> QueryResult<()> {
    diesel::delete(user_roles::table.filter(user_roles::user_id.eq(user_id))).execute(conn)?;
    if given.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(given)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    diesel::insert_into(user_roles::table)
        .values((
            user_roles::user_id.eq(user_id),
            user_roles::directory_id.eq(directory_id),
            user_roles::roles.eq(json),
        ))
        .execute(conn)?;
    Ok(())
}

/// The directory's live users whose groups give no role (those a default role reaches), in id
/// order, after `after`, at most `limit`.
pub fn users_without_given_roles(
    conn: &mut DbConn,
    directory_id: &str,
    after: &str,
    limit: i64,
) -> QueryResult<Vec<String>> {
    use super::schema::scim_users;
    scim_users::table
        .left_join(user_roles::table.on(user_roles::user_id.eq(scim_users::id)))
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .filter(user_roles::user_id.is_null())
        .filter(scim_users::id.gt(after))
        .order(scim_users::id.asc())
        .limit(limit)
        .select(scim_users::id)
        .load(conn)
}

/// The memberships (user, group) of the given live groups of a directory.
pub fn memberships_in(
    conn: &mut DbConn,
    directory_id: &str,
    group_ids: &[&String],
) -> QueryResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for chunk in group_ids.chunks(CHUNK) {
        out.extend(
            group_members::table
                .inner_join(scim_groups::table.on(scim_groups::id.eq(group_members::group_id)))
                .filter(group_members::group_id.eq_any(chunk))
                .filter(scim_groups::directory_id.eq(directory_id))
                .filter(scim_groups::deleted_at.is_null())
                .select((group_members::user_id, group_members::group_id))
                .load::<(String, String)>(conn)?,
        );
    }
    Ok(out)
}

/// A group that gives a user a role: which group, since when the user is its member, and
/// since when the group gives the role.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenBy {
    pub role: String,
    pub group_id: String,
    pub group_name: String,
    pub member_since: NaiveDateTime,
    pub mapped_since: NaiveDateTime,
}

/// Each group of the user's that gives a role, by role slug then group name.
pub fn given_by(conn: &mut DbConn, directory_id: &str, user_id: &str) -> QueryResult<Vec<GivenBy>> {
    let rows: Vec<(String, String, String, NaiveDateTime, NaiveDateTime)> = group_members::table
        .inner_join(scim_groups::table.on(scim_groups::id.eq(group_members::group_id)))
        .inner_join(role_mappings::table.on(role_mappings::group_id.eq(group_members::group_id)))
        .inner_join(roles::table.on(roles::id.eq(role_mappings::role_id)))
        .filter(group_members::user_id.eq(user_id))
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::deleted_at.is_null())
        .order((roles::slug.asc(), scim_groups::display_name.asc()))
        .select((
            roles::slug,
            scim_groups::id,
            scim_groups::display_name,
            group_members::created_at,
            role_mappings::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(role, group_id, group_name, member_since, mapped_since)| GivenBy {
                role,
                group_id,
                group_name,
                member_since,
                mapped_since,
            },
        )
        .collect())
}

/// The directory's live users after `after` in id order, at most `limit` (a whole directory's
/// recomputation, in steps).
pub fn live_users_after(
    conn: &mut DbConn,
    directory_id: &str,
    after: &str,
    limit: i64,
) -> QueryResult<Vec<String>> {
    use super::schema::scim_users;
    scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .filter(scim_users::id.gt(after))
        .order(scim_users::id.asc())
        .limit(limit)
        .select(scim_users::id)
        .load(conn)
}
