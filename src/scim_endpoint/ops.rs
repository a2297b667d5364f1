//! SCIM operations of one directory: the pure core (`crate::scim`) applied to storage
//! (`crate::db`), each write in one transaction.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::db::groups::{self, GroupRow};
use crate::db::scim_filter::{group_condition, user_condition};
use crate::db::users::{self, UserRow};
use crate::db::{DbConn, is_unique_violation, write_tx};
use crate::scim::list::{ListQuery, list_response};
use crate::scim::patch::{self, MemberChanges};
use crate::scim::resource::{
    self, GROUP_READ_ONLY, GroupInput, Reference, Stored, USER_READ_ONLY, UserInput,
};
use crate::scim::{ResourceType, ScimError};

/// The directory a request is for, and its SCIM base URL (for `meta.location` and `$ref`).
pub struct Ctx<'a> {
    pub directory_id: &'a str,
    pub base_url: &'a str,
}

impl From<diesel::result::Error> for ScimError {
    fn from(e: diesel::result::Error) -> Self {
        if is_unique_violation(&e) {
            return ScimError::uniqueness("a resource with this unique attribute already exists");
        }
        log::error!("database error in SCIM request: {e}");
        ScimError::internal()
    }
}

fn render_user(ctx: &Ctx<'_>, row: &UserRow, groups: &[Reference]) -> Value {
    resource::render(
        ResourceType::User,
        &Stored {
            id: &row.id,
            document: &row.resource,
            version: row.version,
            created: row.created_at,
            last_modified: row.updated_at,
        },
        ctx.base_url,
        Some(groups),
    )
}

fn render_group(ctx: &Ctx<'_>, row: &GroupRow, members: Option<&[Reference]>) -> Value {
    resource::render(
        ResourceType::Group,
        &Stored {
            id: &row.id,
            document: &row.resource,
            version: row.version,
            created: row.created_at,
            last_modified: row.updated_at,
        },
        ctx.base_url,
        members,
    )
}

fn user_not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no user with id `{id}` in this directory"))
}

fn group_not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no group with id `{id}` in this directory"))
}

fn user_groups(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    user_id: &str,
) -> Result<Vec<Reference>, ScimError> {
    Ok(
        users::groups_of(conn, ctx.directory_id, &[user_id.to_string()])?
            .into_iter()
            .map(|(_, r)| r)
            .collect(),
    )
}

fn ensure_user_name_free(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    input: &UserInput,
    except: Option<&str>,
) -> Result<(), ScimError> {
    match users::id_by_user_name(conn, ctx.directory_id, &input.user_name)? {
        Some(id) if Some(id.as_str()) != except => Err(ScimError::uniqueness(format!(
            "a user with userName `{}` already exists in this directory",
            input.user_name
        ))),
        _ => Ok(()),
    }
}

pub fn create_user(conn: &mut DbConn, ctx: &Ctx<'_>, body: &Value) -> Result<Value, ScimError> {
    let input = resource::user_from_json(body)?;
    let row = write_tx(conn, |c| {
        ensure_user_name_free(c, ctx, &input, None)?;
        Ok::<_, ScimError>(users::insert(c, ctx.directory_id, &input)?)
    })?;
    Ok(render_user(ctx, &row, &[]))
}

pub fn get_user(conn: &mut DbConn, ctx: &Ctx<'_>, id: &str) -> Result<Value, ScimError> {
    let row = users::get(conn, ctx.directory_id, id)?.ok_or_else(|| user_not_found(id))?;
    let groups = user_groups(conn, ctx, id)?;
    Ok(render_user(ctx, &row, &groups))
}

pub fn list_users(conn: &mut DbConn, ctx: &Ctx<'_>, q: &ListQuery) -> Result<Value, ScimError> {
    let cond = match &q.filter {
        Some(f) => Some((
            user_condition(ctx.directory_id, f)?,
            user_condition(ctx.directory_id, f)?,
        )),
        None => None,
    };
    let (total, rows) = users::search(conn, ctx.directory_id, cond, q.start_index - 1, q.count)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut groups: BTreeMap<String, Vec<Reference>> = BTreeMap::new();
    for (user_id, r) in users::groups_of(conn, ctx.directory_id, &ids)? {
        groups.entry(user_id).or_default().push(r);
    }
    let resources = rows
        .iter()
        .map(|r| render_user(ctx, r, groups.get(&r.id).map(Vec::as_slice).unwrap_or(&[])))
        .collect();
    Ok(list_response(total, q.start_index, resources))
}

fn save_user(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
    input: &UserInput,
) -> Result<Value, ScimError> {
    let row = write_tx(conn, |c| {
        if users::get(c, ctx.directory_id, id)?.is_none() {
            return Err(user_not_found(id));
        }
        ensure_user_name_free(c, ctx, input, Some(id))?;
        Ok(users::update(c, ctx.directory_id, id, input)?)
    })?;
    let groups = user_groups(conn, ctx, id)?;
    Ok(render_user(ctx, &row, &groups))
}

pub fn replace_user(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
) -> Result<Value, ScimError> {
    let existing = users::get(conn, ctx.directory_id, id)?.ok_or_else(|| user_not_found(id))?;
    let existing_doc: Value = serde_json::from_str(&existing.resource).unwrap_or(Value::Null);
    let input = resource::user_from_json(&resource::merge_put(&existing_doc, body)?)?;
    save_user(conn, ctx, id, &input)
}

pub fn patch_user(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
) -> Result<Value, ScimError> {
    let ops = patch::parse_request(body)?;
    let existing = users::get(conn, ctx.directory_id, id)?.ok_or_else(|| user_not_found(id))?;
    let doc: Value = serde_json::from_str(&existing.resource).map_err(|_| ScimError::internal())?;
    let patched = patch::apply(&doc, &ops, None, USER_READ_ONLY)?;
    let input = resource::user_from_json(&patched)?;
    save_user(conn, ctx, id, &input)
}

pub fn delete_user(conn: &mut DbConn, ctx: &Ctx<'_>, id: &str) -> Result<(), ScimError> {
    let deleted = write_tx(conn, |c| users::delete(c, ctx.directory_id, id))?;
    if deleted {
        Ok(())
    } else {
        Err(user_not_found(id))
    }
}

// ---- Groups ---------------------------------------------------------------------------------

fn ensure_display_name_free(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    input: &GroupInput,
    except: Option<&str>,
) -> Result<(), ScimError> {
    match groups::id_by_display_name(conn, ctx.directory_id, &input.display_name)? {
        Some(id) if Some(id.as_str()) != except => Err(ScimError::uniqueness(format!(
            "a group named `{}` already exists in this directory",
            input.display_name
        ))),
        _ => Ok(()),
    }
}

/// Refuses member ids that are not live users of this directory (never silently dropped).
fn ensure_known_users(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    ids: &BTreeSet<String>,
) -> Result<(), ScimError> {
    if ids.is_empty() {
        return Ok(());
    }
    let known = groups::known_user_ids(conn, ctx.directory_id, ids)?;
    let unknown: Vec<&String> = ids.difference(&known).take(5).collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "members must be ids of users in this directory; unknown: {}",
            unknown
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Applies membership changes, touching only changed rows. Returns whether anything changed.
fn apply_member_changes(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    group_id: &str,
    changes: &MemberChanges,
) -> Result<bool, ScimError> {
    let (add, remove) = match &changes.replace_all {
        Some(target) => {
            let current = groups::member_ids(conn, group_id)?;
            (
                target
                    .difference(&current)
                    .cloned()
                    .collect::<BTreeSet<_>>(),
                current.difference(target).cloned().collect::<BTreeSet<_>>(),
            )
        }
        None => (changes.add.clone(), changes.remove.clone()),
    };
    ensure_known_users(conn, ctx, &add)?;
    let added = groups::add_members(conn, group_id, &add)?;
    let removed = groups::remove_members(conn, group_id, &remove)?;
    Ok(added + removed > 0)
}

fn full_group(conn: &mut DbConn, ctx: &Ctx<'_>, id: &str) -> Result<Value, ScimError> {
    let row = groups::get(conn, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
    let members = groups::member_refs(conn, id)?;
    Ok(render_group(ctx, &row, Some(&members)))
}

pub fn create_group(conn: &mut DbConn, ctx: &Ctx<'_>, body: &Value) -> Result<Value, ScimError> {
    let input = resource::group_from_json(body)?;
    let id = write_tx(conn, |c| {
        ensure_display_name_free(c, ctx, &input, None)?;
        let row = groups::insert(c, ctx.directory_id, &input)?;
        if let Some(members) = &input.members {
            let changes = MemberChanges {
                replace_all: Some(members.iter().cloned().collect()),
                ..Default::default()
            };
            apply_member_changes(c, ctx, &row.id, &changes)?;
        }
        Ok::<_, ScimError>(row.id)
    })?;
    full_group(conn, ctx, &id)
}

pub fn get_group(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
    exclude_members: bool,
) -> Result<Value, ScimError> {
    if exclude_members {
        let row = groups::get(conn, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
        return Ok(render_group(ctx, &row, None));
    }
    full_group(conn, ctx, id)
}

pub fn list_groups(conn: &mut DbConn, ctx: &Ctx<'_>, q: &ListQuery) -> Result<Value, ScimError> {
    let cond = match &q.filter {
        Some(f) => Some((group_condition(f)?, group_condition(f)?)),
        None => None,
    };
    let (total, rows) = groups::search(conn, ctx.directory_id, cond, q.start_index - 1, q.count)?;
    let mut resources = Vec::with_capacity(rows.len());
    for row in &rows {
        if q.exclude_members {
            resources.push(render_group(ctx, row, None));
        } else {
            let members = groups::member_refs(conn, &row.id)?;
            resources.push(render_group(ctx, row, Some(&members)));
        }
    }
    Ok(list_response(total, q.start_index, resources))
}

pub fn replace_group(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
) -> Result<Value, ScimError> {
    let input = resource::group_from_json(body)?;
    write_tx(conn, |c| {
        if groups::get(c, ctx.directory_id, id)?.is_none() {
            return Err(group_not_found(id));
        }
        ensure_display_name_free(c, ctx, &input, Some(id))?;
        groups::update(c, ctx.directory_id, id, &input)?;
        // A PUT without `members` keeps them (PingOne cannot clear; Okta echoes our GET).
        if let Some(members) = &input.members {
            let changes = MemberChanges {
                replace_all: Some(members.iter().cloned().collect()),
                ..Default::default()
            };
            apply_member_changes(c, ctx, id, &changes)?;
        }
        Ok(())
    })?;
    full_group(conn, ctx, id)
}

/// Applies a PATCH to a group: its attributes and its members, in one transaction.
pub fn patch_group(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
) -> Result<(), ScimError> {
    let ops = patch::parse_request(body)?;
    write_tx(conn, |c| {
        let existing = groups::get(c, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
        let doc: Value =
            serde_json::from_str(&existing.resource).map_err(|_| ScimError::internal())?;
        let mut changes = MemberChanges::default();
        let patched = patch::apply(&doc, &ops, Some(&mut changes), GROUP_READ_ONLY)?;
        let attributes_changed = patched != doc;
        if attributes_changed {
            let input = resource::group_from_json(&patched)?;
            ensure_display_name_free(c, ctx, &input, Some(id))?;
            groups::update(c, ctx.directory_id, id, &input)?;
        }
        let members_changed = !changes.is_empty() && apply_member_changes(c, ctx, id, &changes)?;
        if members_changed && !attributes_changed {
            groups::touch(c, ctx.directory_id, id)?;
        }
        Ok(())
    })
}

pub fn delete_group(conn: &mut DbConn, ctx: &Ctx<'_>, id: &str) -> Result<(), ScimError> {
    let deleted = write_tx(conn, |c| groups::delete(c, ctx.directory_id, id))?;
    if deleted {
        Ok(())
    } else {
        Err(group_not_found(id))
    }
}
