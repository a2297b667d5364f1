//! Custom attributes as stored: the organization's declarations (`custom_attributes`, each
//! with its default source path) and the directories' own paths for them
//! (`attribute_mappings`). The paths in force for a directory are read in one statement
//! (`mappings`): SCIM writes read them for their events.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{attribute_mappings, custom_attributes, directories, scim_users};
use super::users::UserRow;
use super::{DbConn, now};
use crate::custom_attributes::Mappings;

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = custom_attributes)]
pub struct Declared {
    pub name: String,
    pub source: String,
    pub created_at: NaiveDateTime,
}

/// The organization's declared attributes, by name.
pub fn list(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<Declared>> {
    custom_attributes::table
        .filter(custom_attributes::org_id.eq(org_id))
        .order(custom_attributes::name.asc())
        .select(Declared::as_select())
        .load(conn)
}

/// Whether the organization declared any attribute.
pub fn any(conn: &mut DbConn, org_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        custom_attributes::table.filter(custom_attributes::org_id.eq(org_id)),
    ))
    .get_result(conn)
}

/// Declares an attribute; `None` when the name is taken.
pub fn insert(
    conn: &mut DbConn,
    org_id: &str,
    name: &str,
    source: &str,
) -> QueryResult<Option<Declared>> {
    let taken: bool = diesel::select(diesel::dsl::exists(
        custom_attributes::table
            .filter(custom_attributes::org_id.eq(org_id))
            .filter(custom_attributes::name.eq(name)),
    ))
    .get_result(conn)?;
    if taken {
        return Ok(None);
    }
    let row = Declared {
        name: name.to_string(),
        source: source.to_string(),
        created_at: now(),
    };
    diesel::insert_into(custom_attributes::table)
        .values((
            custom_attributes::org_id.eq(org_id),
            custom_attributes::name.eq(&row.name),
            custom_attributes::source.eq(&row.source),
            custom_attributes::created_at.eq(row.created_at),
        ))
        .execute(conn)?;
    Ok(Some(row))
}

/// Removes a declaration and the directories' paths for it; false when there was none.
pub fn delete(conn: &mut DbConn, org_id: &str, name: &str) -> QueryResult<bool> {
    let dirs = directories::table
        .filter(directories::org_id.eq(org_id))
        .select(directories::id);
    diesel::delete(
        attribute_mappings::table
            .filter(attribute_mappings::name.eq(name))
            .filter(attribute_mappings::directory_id.eq_any(dirs)),
    )
    .execute(conn)?;
    let n = diesel::delete(
        custom_attributes::table
            .filter(custom_attributes::org_id.eq(org_id))
            .filter(custom_attributes::name.eq(name)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Each declared attribute of the directory's organization: (name, default path, the
/// directory's own path if it set one), by name.
pub fn for_directory(
    conn: &mut DbConn,
    directory_id: &str,
) -> QueryResult<Vec<(String, String, Option<String>)>> {
    custom_attributes::table
        .inner_join(directories::table.on(directories::org_id.eq(custom_attributes::org_id)))
        .left_join(
            attribute_mappings::table.on(attribute_mappings::directory_id
                .eq(directories::id)
                .and(attribute_mappings::name.eq(custom_attributes::name))),
        )
        .filter(directories::id.eq(directory_id))
        .order(custom_attributes::name.asc())
        .select((
            custom_attributes::name,
            custom_attributes::source,
            attribute_mappings::source.nullable(),
        ))
        .load(conn)
}

/// The paths in force for the directory (its own, else the defaults).
pub fn mappings(conn: &mut DbConn, directory_id: &str) -> QueryResult<Mappings> {
    Ok(Mappings::from_rows(
        for_directory(conn, directory_id)?
            .into_iter()
            .map(|(name, default, own)| (name, own.unwrap_or(default))),
    ))
}

/// The directory's own paths, by attribute name.
pub fn overrides(conn: &mut DbConn, directory_id: &str) -> QueryResult<BTreeMap<String, String>> {
    Ok(attribute_mappings::table
        .filter(attribute_mappings::directory_id.eq(directory_id))
        .select((attribute_mappings::name, attribute_mappings::source))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// Replaces the directory's own paths with `wanted`.
pub fn replace_overrides(
    conn: &mut DbConn,
    directory_id: &str,
    wanted: &BTreeMap<String, String>,
) -> QueryResult<()> {
    diesel::delete(
        attribute_mappings::table.filter(attribute_mappings::directory_id.eq(directory_id)),
    )
    .execute(conn)?;
    let at = now();
    for (name, source) in wanted {
        diesel::insert_into(attribute_mappings::table)
            .values((
                attribute_mappings::directory_id.eq(directory_id),
                attribute_mappings::name.eq(name),
                attribute_mappings::source.eq(source),
                attribute_mappings::updated_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Sets (`Some`) or removes (`None`) the directory's own path for one attribute.
pub fn set_override(
    conn: &mut DbConn,
    directory_id: &str,
    name: &str,
    source: Option<&str>,
) -> QueryResult<()> {
    let mut all = overrides(conn, directory_id)?;
    match source {
        Some(s) => all.insert(name.to_string(), s.to_string()),
        None => all.remove(name),
    };
    replace_overrides(conn, directory_id, &all)
}

/// The directory's live users in id order after `after`, at most `limit` (a remap's step).
pub fn users_after(
    conn: &mut DbConn,
    directory_id: &str,
    after: &str,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .filter(scim_users::id.gt(after))
        .order(scim_users::id.asc())
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)
}

/// The directory's most recently changed live users, at most `limit` (the portal's preview).
pub fn recent_users(
    conn: &mut DbConn,
    directory_id: &str,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .order((scim_users::updated_at.desc(), scim_users::id.asc()))
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)
}
