//! SCIM operations of one directory: the pure core (`crate::scim`) applied to storage
//! (`crate::db`). Reads take a connection; writes take the writer's `Batch`, queue their
//! events in it (`db::events::emit`) and return an error to have their change undone alone.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::db::events::{self as db_events, EventType};
use crate::events;

use crate::brake::{self, Deprovision};
use crate::custom_attributes::{self, Mappings, Values};
use crate::db::attributes;
use crate::db::directories;
use crate::db::groups::{self, GroupRow};
use crate::db::memberships;
use crate::db::roles;
use crate::db::scim_filter::{CompileError, group_condition};
use crate::db::user_pages::Bookmarks;
use crate::db::users::{self, ListedUser, UserRow};
use crate::db::{Batch, DbConn, is_unique_violation};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::list::{ListQuery, list_response, list_response_text, project};
use crate::scim::patch::{self, MemberChanges};
use crate::scim::resource::{
    self, GROUP_READ_ONLY, GroupInput, Reference, Rendering, Stored, USER_READ_ONLY, UserInput,
    etag,
};
use crate::scim::{ResourceType, ScimError};

/// The directory a request is for, its SCIM base URL (for `meta.location` and `$ref`), and
/// the request's `If-Match` precondition.
pub struct Ctx<'a> {
    pub directory_id: &'a str,
    pub base_url: &'a str,
    pub if_match: Option<&'a str>,
    /// Bookmarks for paging users in id order (reads only).
    pub user_pages: Option<&'a Bookmarks>,
    /// What a write changed, noted while applying it, for the request log.
    pub notes: std::cell::RefCell<Vec<String>>,
    /// Memberships one job changes at most (`MEMBER_STEP`, smaller in tests).
    pub member_step: usize,
    /// Member ids of a large body found to be live users of the directory just before the
    /// write's job (`live_members`): the job checks only the others.
    pub live_members: Option<&'a BTreeSet<String>>,
    /// Set by a write whose membership change is too large for one job: the part it left for
    /// the steps that follow (see `MEMBER_STEP`).
    pub backlog: std::cell::RefCell<Option<MemberBacklog>>,
}

impl<'a> Ctx<'a> {
    /// A write of Roster's own (not a SCIM request's) to the directory whose SCIM base URL
    /// is `base_url`: a recomputation of its users' roles.
    pub fn for_directory(directory_id: &'a str, base_url: &'a str) -> Ctx<'a> {
        Ctx {
            directory_id,
            base_url,
            if_match: None,
            user_pages: None,
            member_step: MEMBER_STEP,
            live_members: None,
            notes: Default::default(),
            backlog: Default::default(),
        }
    }

    fn note(&self, what: String) {
        self.notes.borrow_mut().push(what);
    }

    /// Whether this write left part of its membership change to later steps.
    fn continues(&self) -> bool {
        self.backlog.borrow().is_some()
    }

    /// The notes as one line ("familyName Gonzalez → Nakamura; +3 −1 members"), if any.
    pub fn change_summary(&self) -> Option<String> {
        let notes = self.notes.borrow();
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// Attributes never described in a change summary (secrets, bookkeeping, or summarised apart).
const UNDESCRIBED: &[&str] = &["password", "meta", "id", "schemas", "members", "groups"];

/// What changed between two versions of a resource, attribute by attribute: `familyName
/// Gonzalez → Nakamura`, `emails changed`; at most five, then `and N more`.
pub fn describe_changes(before: &Value, after: &Value) -> Vec<String> {
    fn shown(v: Option<&Value>) -> String {
        let text = match v {
            None | Some(Value::Null) => "(none)".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if text.chars().count() > 40 {
            format!("{}…", text.chars().take(39).collect::<String>())
        } else {
            text
        }
    }
    fn walk(before: Option<&Value>, after: Option<&Value>, name: &str, out: &mut Vec<String>) {
        match (before, after) {
            (Some(Value::Object(b)), Some(Value::Object(a))) => {
                let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    if UNDESCRIBED.iter().any(|u| u.eq_ignore_ascii_case(k)) {
                        continue;
                    }
                    walk(b.get(k), a.get(k), k, out);
                }
            }
            (b, a) if b == a => {}
            (Some(Value::Null) | None, Some(Value::Null) | None) => {}
            (Some(Value::Array(_)) | Some(Value::Object(_)), _)
            | (_, Some(Value::Array(_)) | Some(Value::Object(_))) => {
                out.push(format!("{name} changed"))
            }
            (b, a) => out.push(format!("{name} {} → {}", shown(b), shown(a))),
        }
    }
    let mut out = Vec::new();
    walk(Some(before), Some(after), "", &mut out);
    if out.len() > 5 {
        let more = out.len() - 5;
        out.truncate(5);
        out.push(format!("and {more} more"));
    }
    out
}

/// Rows loaded per round when a filter or sort is evaluated on the documents.
const SCAN_CHUNK: i64 = 1000;

/// True when an `If-Match`/`If-None-Match` value names this ETag (`*` names any; weak and
/// strong forms compare equal).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    let bare = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    header
        .split(',')
        .any(|h| h.trim() == "*" || bare(h) == bare(etag))
}

/// 412 unless the request's `If-Match` (if any) names the stored version.
fn check_if_match(ctx: &Ctx<'_>, version: i64) -> Result<(), ScimError> {
    match ctx.if_match {
        Some(h) if !etag_matches(h, &etag(version)) => Err(ScimError::new(
            412,
            None,
            format!(
                "the resource changed: its version is {}, not {h}",
                etag(version)
            ),
        )),
        _ => Ok(()),
    }
}

impl From<crate::db::scim_filter::CompileError> for ScimError {
    fn from(e: crate::db::scim_filter::CompileError) -> Self {
        match e {
            crate::db::scim_filter::CompileError::Invalid(e) => e,
            // Callers fall back to document evaluation before this can happen.
            crate::db::scim_filter::CompileError::NeedsScan => ScimError::internal(),
        }
    }
}

impl From<diesel::result::Error> for ScimError {
    fn from(e: diesel::result::Error) -> Self {
        if is_unique_violation(&e) {
            return ScimError::uniqueness("a resource with this unique attribute already exists");
        }
        // Two concurrent changes locked the same rows in opposite orders (several instances
        // on one Postgres); this one gave way and may simply be sent again.
        if let diesel::result::Error::DatabaseError(kind, info) = &e
            && (matches!(
                kind,
                diesel::result::DatabaseErrorKind::SerializationFailure
            ) || info.message().contains("deadlock detected"))
        {
            log::warn!("SCIM change gave way to a concurrent one, to be run again: {e}");
            return ScimError::concurrent_conflict();
        }
        // The directory (or a user or group the change refers to) was deleted between the
        // request's authentication and its write.
        if let diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        ) = e
        {
            return ScimError::not_found(
                "this directory, or a resource the request refers to, was deleted meanwhile",
            );
        }
        log::error!("database error in SCIM request: {e}");
        ScimError::internal()
    }
}

/// A user as read for rendering: the whole row, or a listing's (`ListedUser`).
trait StoredUser {
    fn stored(&self) -> Stored<'_>;
}

impl StoredUser for UserRow {
    fn stored(&self) -> Stored<'_> {
        Stored {
            id: &self.id,
            document: &self.resource,
            version: self.version,
            created: self.created_at,
            last_modified: self.updated_at,
        }
    }
}

impl StoredUser for ListedUser {
    fn stored(&self) -> Stored<'_> {
        Stored {
            id: &self.id,
            document: &self.resource,
            version: self.version,
            created: self.created_at,
            last_modified: self.updated_at,
        }
    }
}

/// A user as SCIM JSON, ready to serialize (see `Rendering`).
fn user_rendering<'a>(
    ctx: &Ctx<'a>,
    row: &'a impl StoredUser,
    groups: &'a [Reference],
) -> Rendering<'a> {
    Rendering {
        kind: ResourceType::User,
        stored: row.stored(),
        base_url: ctx.base_url,
        references: Some(groups),
    }
}

fn render_user(ctx: &Ctx<'_>, row: &impl StoredUser, groups: &[Reference]) -> Value {
    resource::render(
        ResourceType::User,
        &row.stored(),
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
        memberships::groups_of(conn, ctx.directory_id, &[user_id.to_string()])?
            .into_iter()
            .map(|(_, r)| r)
            .collect(),
    )
}

/// The ids of a user's groups.
fn group_ids(conn: &mut DbConn, ctx: &Ctx<'_>, user_id: &str) -> Result<Vec<String>, ScimError> {
    Ok(user_groups(conn, ctx, user_id)?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

fn ensure_user_name_free(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    input: &UserInput,
    except: Option<&str>,
) -> Result<(), ScimError> {
    match users::id_by_user_name(conn, ctx.directory_id, &input.user_name)? {
        Some(id) if Some(id.as_str()) != except => Err(user_name_taken(&input.user_name)),
        _ => Ok(()),
    }
}

pub fn user_name_taken(user_name: &str) -> ScimError {
    ScimError::uniqueness(format!(
        "a user with userName `{user_name}` already exists in this directory"
    ))
}

/// Applies `groups` sent on a user (Okta AIW, PingOne): ids must be groups of this directory.
/// Additive only: Okta echoes `"groups":[]` on PUT, which must not drop memberships.
fn apply_user_groups(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    user: &UserRow,
    groups: Option<&Vec<String>>,
) -> Result<(), ScimError> {
    let Some(ids) = groups else {
        return Ok(());
    };
    let ids: BTreeSet<String> = ids.iter().cloned().collect();
    let known = groups::known_group_ids(c, ctx.directory_id, &ids)?;
    if let Some(unknown) = ids.difference(&known).next() {
        return Err(ScimError::invalid_value(format!(
            "`groups`: no group with id `{unknown}` in this directory"
        )));
    }
    for group_id in memberships::add_to_groups(c, &user.id, &ids)? {
        if let Some(group) = groups::get(c, ctx.directory_id, &group_id)? {
            emit_memberships(c, ctx, &group, std::slice::from_ref(user), &BTreeSet::new())?;
        }
    }
    Ok(())
}

/// The `data` of a user event: Roster's view of the user, and its SCIM resource (`raw`)
/// without groups, which have events of their own.
#[derive(serde::Serialize)]
struct UserEvent<'a> {
    user: events::UserView<'a>,
    raw: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<Vec<String>>,
}

/// A user's resource as its events carry it (see `UserEvent`).
fn user_event_raw(ctx: &Ctx<'_>, row: &UserRow) -> Result<String, ScimError> {
    user_text(ctx, row, &[])
}

/// A user event's data, with the user's `roles` (effective, sorted) and custom attributes.
fn user_event<'a>(
    row: &'a UserRow,
    raw: &'a str,
    roles: Vec<String>,
    values: Values,
) -> Result<UserEvent<'a>, ScimError> {
    Ok(UserEvent {
        user: events::UserView::of(row)
            .with_roles(roles)
            .with_custom_attributes(values),
        raw: serde_json::from_str(raw).map_err(|_| ScimError::internal())?,
        changed: None,
    })
}

/// A user's effective roles, for its events.
fn roles_of(conn: &mut DbConn, row: &UserRow) -> Result<Vec<String>, ScimError> {
    Ok(roles::effective(conn, &row.directory_id, &[&row.id])?
        .remove(&row.id)
        .unwrap_or_default())
}

/// Recomputes the roles of users whose groups changed (or whose groups' roles changed), and
/// records one `user.updated` event (`changed: ["roles"]`) per user whose effective roles
/// moved, in the same transaction. `default_before`: the organization's default role before
/// the change, when the change is to the default.
pub fn refresh_roles(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    user_ids: &[&String],
    default_before: Option<Option<String>>,
) -> Result<usize, ScimError> {
    let moved = roles::refresh(c, ctx.directory_id, user_ids, default_before)?;
    if moved.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&String> = moved.iter().map(|m| &m.user_id).collect();
    let rows = users::get_many(c, ctx.directory_id, &ids)?;
    let mappings = attributes::mappings(c, ctx.directory_id)?;
    let mut after: BTreeMap<String, Vec<String>> =
        moved.into_iter().map(|m| (m.user_id, m.after)).collect();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows.iter().filter(|r| r.deleted_at.is_none()) {
        let raw = user_event_raw(ctx, row)?;
        let values = mappings.values_of_text(&row.resource);
        let data = UserEvent {
            changed: Some(vec!["roles".to_string()]),
            ..user_event(row, &raw, after.remove(&row.id).unwrap_or_default(), values)?
        };
        items.push((
            EventType::UserUpdated,
            serde_json::to_value(data).map_err(|_| ScimError::internal())?,
        ));
    }
    let n = items.len();
    db_events::emit_many(c, ctx.directory_id, items)?;
    Ok(n)
}

/// One step of a change of the paths custom attributes are read from (`before` to `after`):
/// the directory's live users after `after_id` in id order, at most `limit`, with one
/// `user.updated` event (`changed: ["custom_attributes"]`) per user whose values moved.
/// Returns the last user seen (`None`: no user was left) and how many moved.
pub fn refresh_custom_attributes(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    before: &Mappings,
    after: &Mappings,
    after_id: &str,
    limit: i64,
) -> Result<(Option<String>, usize), ScimError> {
    let rows = attributes::users_after(c, ctx.directory_id, after_id, limit)?;
    let Some(last) = rows.last().map(|r| r.id.clone()) else {
        return Ok((None, 0));
    };
    let mut moved: Vec<(&UserRow, Values)> = Vec::new();
    for row in &rows {
        let doc: Value = serde_json::from_str(&row.resource).unwrap_or(Value::Null);
        let new = after.values(&doc);
        if custom_attributes::moved(&before.values(&doc), &new) {
            moved.push((row, new));
        }
    }
    if moved.is_empty() {
        return Ok((Some(last), 0));
    }
    let ids: Vec<&String> = moved.iter().map(|(r, _)| &r.id).collect();
    let mut roles = roles::effective(c, ctx.directory_id, &ids)?;
    let mut items = Vec::with_capacity(moved.len());
    for (row, values) in moved {
        let raw = user_event_raw(ctx, row)?;
        let data = UserEvent {
            changed: Some(vec!["custom_attributes".to_string()]),
            ..user_event(row, &raw, roles.remove(&row.id).unwrap_or_default(), values)?
        };
        items.push((
            EventType::UserUpdated,
            serde_json::to_value(data).map_err(|_| ScimError::internal())?,
        ));
    }
    let n = items.len();
    db_events::emit_many(c, ctx.directory_id, items)?;
    Ok((Some(last), n))
}

/// The `data` of a group event (members are not included: they have their own events).
fn group_event(ctx: &Ctx<'_>, row: &GroupRow) -> Value {
    json!({"group": events::group_json(row), "raw": render_group(ctx, row, None)})
}

/// One `group.user_added` / `group.user_removed` event per changed membership.
fn emit_memberships(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    group: &GroupRow,
    added: &[UserRow],
    removed: &BTreeSet<String>,
) -> Result<(), ScimError> {
    let group_json = &events::group_json(group);
    let removed_ids = removed;
    let ids: Vec<&String> = removed.iter().collect();
    let removed = users::get_many(c, ctx.directory_id, &ids)?;
    let items = [
        (added, EventType::GroupUserAdded),
        (&removed, EventType::GroupUserRemoved),
    ]
    .into_iter()
    .flat_map(|(users, kind)| {
        users.iter().map(move |user| {
            (
                kind,
                json!({"group": group_json, "user": events::user_json(user)}),
            )
        })
    })
    .collect();
    db_events::emit_many(c, ctx.directory_id, items)?;
    if roles::group_is_mapped(c, &group.id)? {
        let ids: Vec<&String> = added.iter().map(|u| &u.id).chain(removed_ids).collect();
        refresh_roles(c, ctx, &ids, None)?;
    }
    Ok(())
}

/// A resource a POST created, serialized.
pub struct Created {
    pub id: String,
    pub location: String,
    pub etag: String,
    pub text: String,
}

/// A user create, parsed and validated before the write (the writer's time is what every
/// change waits for).
pub struct PreparedUser {
    pub user: users::NewUser,
    /// The groups it joins, if it names any.
    pub groups: Option<Vec<String>>,
    /// The reply once it went in, unless it joins groups (the reply then lists them).
    pub created: Created,
}

/// Parses and validates a `POST /Users` body into the user to create.
pub fn prepare_user(ctx: &Ctx<'_>, body: &Value) -> Result<PreparedUser, ScimError> {
    let mut input = resource::user_from_json(body)?;
    let (user, raw) = new_user(ctx, &input)?;
    let created = created(ctx, &user.row, raw);
    let groups = input.groups.take().filter(|g| !g.is_empty());
    Ok(PreparedUser {
        user,
        groups,
        created,
    })
}

/// Stores a prepared user in the batch: its insert (unless the batch made it already:
/// `inserted`), its `user.created` event and the groups it joins. Returns its reply when it
/// joined groups (otherwise the reply is `prepared.created`).
pub fn create_user(
    batch: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    user: &users::NewUser,
    groups: Option<&Vec<String>>,
    inserted: Option<bool>,
) -> Result<Option<Created>, ScimError> {
    let inserted = match inserted {
        Some(inserted) => inserted,
        None => users::insert(batch, &[user])?.first() == Some(&true),
    };
    if !inserted {
        return Err(user_name_taken(&user.row.user_name));
    }
    let default = roles::default_slug(batch, ctx.directory_id)?;
    let mappings = attributes::mappings(batch, ctx.directory_id)?;
    if default.is_none() && mappings.is_empty() {
        users::record_created(batch, user)?;
    } else {
        users::record_created_with(batch, user, |data| {
            if let Some(default) = default {
                data["user"]["roles"] = json!([default]);
            }
            data["user"]["custom_attributes"] = json!(mappings.values_of_text(&user.row.resource));
        })?;
    }
    if groups.is_none() {
        return Ok(None);
    }
    apply_user_groups(batch, ctx, &user.row, groups)?;
    let text = user_text(ctx, &user.row, &user_groups(batch, ctx, &user.row.id)?)?;
    Ok(Some(created(ctx, &user.row, text)))
}

/// A new user's row and `user.created` event, and its resource as the event carries it.
fn new_user(ctx: &Ctx<'_>, input: &UserInput) -> Result<(users::NewUser, String), ScimError> {
    let mut raw = String::new();
    let user = users::NewUser::new(ctx.directory_id, input, |row| {
        raw = user_event_raw(ctx, row)?;
        // A new user's groups give no role yet: the default, if any, is set by the write
        // (`create_user`), which can read it.
        let data = serde_json::to_string(&user_event(row, &raw, Vec::new(), Values::new())?);
        data.ok()
            .and_then(|d| RawValue::from_string(d).ok())
            .ok_or_else(ScimError::internal)
    })?;
    Ok((user, raw))
}

fn created(ctx: &Ctx<'_>, row: &UserRow, text: String) -> Created {
    Created {
        location: resource::location(ctx.base_url, ResourceType::User, &row.id),
        etag: etag(row.version),
        id: row.id.clone(),
        text,
    }
}

/// A live user of the directory with its groups.
fn find_user(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<(ListedUser, Vec<Reference>), ScimError> {
    memberships::user_with_groups(conn, ctx.directory_id, memberships::UserKey::Id(id))?
        .ok_or_else(|| user_not_found(id))
}

pub fn get_user(conn: &mut DbConn, ctx: &Ctx<'_>, id: &str) -> Result<Value, ScimError> {
    let (row, groups) = find_user(conn, ctx, id)?;
    Ok(render_user(ctx, &row, &groups))
}

/// A user as its JSON text and ETag (serialized straight from the stored text).
pub fn get_user_text(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<(String, String), ScimError> {
    let (row, groups) = find_user(conn, ctx, id)?;
    Ok((user_text(ctx, &row, &groups)?, etag(row.version)))
}

/// A user as SCIM JSON text.
fn user_text(
    ctx: &Ctx<'_>,
    row: &impl StoredUser,
    groups: &[Reference],
) -> Result<String, ScimError> {
    serde_json::to_string(&user_rendering(ctx, row, groups)).map_err(|_| ScimError::internal())
}

/// Pages through documents matching `filter`, sorted by `sort_by`: the fallback for filters
/// and sorts on attributes without a column. Correct for any attribute, slower than SQL.
fn scan<R>(
    q: &ListQuery,
    mut next_chunk: impl FnMut(Option<&str>) -> Result<Vec<(String, Value, R)>, ScimError>,
) -> Result<(i64, Vec<R>), ScimError> {
    let mut matched: Vec<(Value, R)> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let chunk = next_chunk(after.as_deref())?;
        let Some((last, _, _)) = chunk.last() else {
            break;
        };
        after = Some(last.clone());
        for (_, doc, row) in chunk {
            if q.filter.as_ref().is_none_or(|f| f.matches(&doc)) {
                // Only the sort key is kept for sorting, not the whole document.
                let key = q
                    .sort_by
                    .as_ref()
                    .and_then(|s| crate::scim::filter::first_value(&doc, s).cloned())
                    .unwrap_or(Value::Null);
                matched.push((key, row));
            }
        }
    }
    if q.sort_by.is_some() {
        matched.sort_by(|(a, _), (b, _)| {
            let o = crate::scim::filter::sort_cmp(
                (!a.is_null()).then_some(a),
                (!b.is_null()).then_some(b),
            );
            if q.sort_descending && !a.is_null() && !b.is_null() {
                o.reverse()
            } else {
                o
            }
        });
    }
    let total = matched.len() as i64;
    let start = usize::try_from(q.start_index - 1).unwrap_or(usize::MAX);
    let page = matched
        .into_iter()
        .skip(start)
        .take(usize::try_from(q.count).unwrap_or(0))
        .map(|(_, r)| r)
        .collect();
    Ok((total, page))
}

fn groups_by_user(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    rows: &[impl StoredUser],
) -> Result<BTreeMap<String, Vec<Reference>>, ScimError> {
    let ids: Vec<String> = rows.iter().map(|r| r.stored().id.to_string()).collect();
    let mut groups: BTreeMap<String, Vec<Reference>> = BTreeMap::new();
    for (user_id, r) in memberships::groups_of(conn, ctx.directory_id, &ids)? {
        groups.entry(user_id).or_default().push(r);
    }
    Ok(groups)
}

/// A page of users, as the ListResponse's text.
pub fn list_users(conn: &mut DbConn, ctx: &Ctx<'_>, q: &ListQuery) -> Result<String, ScimError> {
    if let Some(user_name) = user_name_lookup(q) {
        return list_by_user_name(conn, ctx, q, &user_name);
    }
    let compiled = match &q.filter {
        None => Ok(None),
        Some(f) => users::UserFilter::compile(ctx.directory_id, f).map(Some),
    };
    let sort = match &q.sort_by {
        None => Ok(None),
        Some(attr) => users::SortColumn::for_user(attr)
            .map(|c| Some((c, q.sort_descending)))
            .ok_or(()),
    };
    let (total, rows) = match (compiled, sort, ctx.user_pages) {
        // Unfiltered, in id order: a provider paging through the whole directory.
        (Ok(None), Ok(None | Some((users::SortColumn::Id, false))), Some(pages)) => {
            // Read first: bookmarks tagged with it describe at least what the page sees.
            let event_seq = directories::event_seq(conn, ctx.directory_id)?;
            pages.page(
                conn,
                ctx.directory_id,
                event_seq,
                q.start_index - 1,
                q.count,
            )?
        }
        (Ok(cond), Ok(sort), _) => users::search(
            conn,
            ctx.directory_id,
            cond,
            sort,
            q.start_index - 1,
            q.count,
        )?,
        (Err(CompileError::Invalid(e)), _, _) => return Err(e),
        _ => scan(q, |after| {
            let rows = users::chunk_after(conn, ctx.directory_id, after, SCAN_CHUNK)?;
            let groups = groups_by_user(conn, ctx, &rows)?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let doc =
                        render_user(ctx, &r, groups.get(&r.id).map(Vec::as_slice).unwrap_or(&[]));
                    (r.id.clone(), doc, ListedUser::from(r))
                })
                .collect())
        })?,
    };
    let groups = groups_by_user(conn, ctx, &rows)?;
    Ok(users_list_text(ctx, q, total, &rows, &groups))
}

/// The normalised userName of a `userName eq "…"` filter: the lookup every provider makes
/// before it creates a user.
fn user_name_lookup(q: &ListQuery) -> Option<String> {
    match q.filter.as_ref()? {
        Filter::Compare {
            attr,
            op: CompareOp::Eq,
            value: CompValue::Str(name),
        } if attr.is("userName") => Some(resource::normalize(name)),
        _ => None,
    }
}

/// A userName lookup's ListResponse: at most one user (live userNames are unique), found with
/// its groups in one statement on Postgres.
fn list_by_user_name(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    q: &ListQuery,
    user_name: &str,
) -> Result<String, ScimError> {
    let found = memberships::user_with_groups(
        conn,
        ctx.directory_id,
        memberships::UserKey::UserName(user_name),
    )?;
    let total = i64::from(found.is_some());
    let on_page = q.start_index == 1 && q.count > 0;
    let (rows, groups): (Vec<ListedUser>, BTreeMap<String, Vec<Reference>>) = found
        .filter(|_| on_page)
        .map(|(user, groups)| {
            let id = user.id.clone();
            (vec![user], BTreeMap::from([(id, groups)]))
        })
        .unwrap_or_default();
    Ok(users_list_text(ctx, q, total, &rows, &groups))
}

/// A page of users with their groups, as the ListResponse's text.
fn users_list_text(
    ctx: &Ctx<'_>,
    q: &ListQuery,
    total: i64,
    rows: &[ListedUser],
    groups: &BTreeMap<String, Vec<Reference>>,
) -> String {
    let groups_of = |r: &ListedUser| groups.get(&r.id).map(Vec::as_slice).unwrap_or(&[]);
    if q.attributes.is_empty() && q.excluded_attributes.is_empty() {
        // Whole resources: serialized straight from the stored text.
        let resources: Vec<Rendering<'_>> = rows
            .iter()
            .map(|r| user_rendering(ctx, r, groups_of(r)))
            .collect();
        return list_response_text(total, q.start_index, &resources);
    }
    let resources: Vec<Value> = rows
        .iter()
        .map(|r| project(render_user(ctx, r, groups_of(r)), q))
        .collect();
    list_response_text(total, q.start_index, &resources)
}

/// Writes a validated user over an existing one (PUT and PATCH), checking `If-Match`.
fn save_user(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    existing: &UserRow,
    input: &UserInput,
) -> Result<Value, ScimError> {
    let id = existing.id.as_str();
    ensure_user_name_free(c, ctx, input, Some(id))?;
    let row = users::update(c, ctx.directory_id, id, input)?;
    if existing.active && !row.active {
        let (roles, groups) = (roles_of(c, existing)?, group_ids(c, ctx, id)?);
        brake::hook::on_deprovision(c, existing, roles, groups, Deprovision::Deactivated)?;
    }
    // Events: (de)activation, and the other attributes that changed.
    let before: Value = serde_json::from_str(&existing.resource).unwrap_or(Value::Null);
    let described = describe_changes(&before, &input.document);
    ctx.note(if described.is_empty() {
        "no change".to_string()
    } else {
        described.join(", ")
    });
    let mut changed = events::changed_attributes(&before, &input.document);
    changed.retain(|a| a != "active");
    let raw = user_event_raw(ctx, &row)?;
    let activation = existing.active != row.active;
    let (roles, values) = if activation || !changed.is_empty() {
        let mappings = attributes::mappings(c, ctx.directory_id)?;
        let values = mappings.values(&input.document);
        if custom_attributes::moved(&mappings.values(&before), &values) {
            changed.push("custom_attributes".to_string());
            changed.sort();
        }
        (roles_of(c, &row)?, values)
    } else {
        (Vec::new(), Values::new())
    };
    if activation {
        let kind = if row.active {
            EventType::UserReactivated
        } else {
            EventType::UserDeactivated
        };
        db_events::emit(
            c,
            ctx.directory_id,
            kind,
            user_event(&row, &raw, roles.clone(), values.clone())?,
        )?;
    }
    if !changed.is_empty() {
        let data = UserEvent {
            changed: Some(changed),
            ..user_event(&row, &raw, roles, values)?
        };
        db_events::emit(c, ctx.directory_id, EventType::UserUpdated, data)?;
    }
    apply_user_groups(c, ctx, &row, input.groups.as_ref())?;
    let groups = user_groups(c, ctx, id)?;
    Ok(render_user(ctx, &row, &groups))
}

pub fn replace_user(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
) -> Result<Value, ScimError> {
    let existing = users::get(c, ctx.directory_id, id)?.ok_or_else(|| user_not_found(id))?;
    check_if_match(ctx, existing.version)?;
    let existing_doc: Value = serde_json::from_str(&existing.resource).unwrap_or(Value::Null);
    let input = resource::user_from_json(&resource::merge_put(&existing_doc, body)?)?;
    save_user(c, ctx, &existing, &input)
}

pub fn patch_user(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
) -> Result<Value, ScimError> {
    let ops = patch::parse_request(body)?;
    let existing = users::get(c, ctx.directory_id, id)?.ok_or_else(|| user_not_found(id))?;
    check_if_match(ctx, existing.version)?;
    let doc: Value = serde_json::from_str(&existing.resource).map_err(|_| ScimError::internal())?;
    let patched = patch::apply(&doc, &ops, None, USER_READ_ONLY)?;
    if patched == doc {
        // Nothing changed (e.g. Okta re-sending the same values): no new version.
        ctx.note("no change".to_string());
        let groups = user_groups(c, ctx, id)?;
        return Ok(render_user(ctx, &existing, &groups));
    }
    let input = user_after_patch(&patched, existing.active)?;
    save_user(c, ctx, &existing, &input)
}

/// The user a patched document describes. A PATCH that removes `active` leaves it unassigned
/// in the resource, but never reactivates (or deactivates) the user for the application: its
/// state stays what it was, as when a PUT omits `active`.
fn user_after_patch(patched: &Value, was_active: bool) -> Result<resource::UserInput, ScimError> {
    if crate::scim::filter::get_ci(patched, "active").is_some() {
        return resource::user_from_json(patched);
    }
    let mut with_state = patched.clone();
    if let Some(obj) = with_state.as_object_mut() {
        obj.insert("active".into(), Value::Bool(was_active));
    }
    let mut input = resource::user_from_json(&with_state)?;
    if let Some(doc) = input.document.as_object_mut() {
        doc.remove("active");
    }
    Ok(input)
}

pub fn delete_user(c: &mut Batch<'_>, ctx: &Ctx<'_>, id: &str) -> Result<(), ScimError> {
    let existing = users::get(c, ctx.directory_id, id)?.ok_or_else(|| user_not_found(id))?;
    check_if_match(ctx, existing.version)?;
    let roles = roles_of(c, &existing)?;
    let values = attributes::mappings(c, ctx.directory_id)?.values_of_text(&existing.resource);
    let groups = group_ids(c, ctx, id)?;
    users::delete(c, ctx.directory_id, id)?;
    brake::hook::on_deprovision(c, &existing, roles.clone(), groups, Deprovision::Deleted)?;
    let raw = user_event_raw(ctx, &existing)?;
    db_events::emit(
        c,
        ctx.directory_id,
        EventType::UserDeleted,
        user_event(&existing, &raw, roles, values)?,
    )?;
    Ok(())
}

/// Undoes a held deactivation or deletion the application never saw (the brake's held
/// changes were rejected): the user is live and active again, back in the groups it was in
/// (those that still exist), and one `user.updated` tells the application about what else
/// changed meanwhile. A deleted user whose userName a new user has taken stays deleted, and
/// the application gets its `user.deleted`. Returns whether the user was restored.
pub fn restore_user(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    seen: &UserRow,
    seen_roles: Vec<String>,
    seen_groups: &[String],
) -> Result<bool, ScimError> {
    let id = seen.id.as_str();
    if users::get(c, ctx.directory_id, id)?.is_none() {
        let taken = users::id_by_user_name(c, ctx.directory_id, &seen.user_name)?;
        if taken.is_some() || !users::undelete(c, ctx.directory_id, id)? {
            let raw = user_event_raw(ctx, seen)?;
            let values = attributes::mappings(c, ctx.directory_id)?.values_of_text(&seen.resource);
            let data = user_event(seen, &raw, seen_roles, values)?;
            db_events::emit(c, ctx.directory_id, EventType::UserDeleted, data)?;
            return Ok(false);
        }
    }
    let current = users::get(c, ctx.directory_id, id)?.ok_or_else(|| user_not_found(id))?;
    let mut doc: Value =
        serde_json::from_str(&current.resource).map_err(|_| ScimError::internal())?;
    if let Some(obj) = doc.as_object_mut() {
        for (key, value) in obj.iter_mut() {
            if key.eq_ignore_ascii_case("active") {
                *value = Value::Bool(true);
            }
        }
    }
    let input = user_after_patch(&doc, true)?;
    let row = users::update(c, ctx.directory_id, id, &input)?;
    let groups: BTreeSet<String> = seen_groups.iter().cloned().collect();
    let live = groups::known_group_ids(c, ctx.directory_id, &groups)?;
    memberships::add_to_groups(c, id, &live)?;
    let before: Value = serde_json::from_str(&seen.resource).unwrap_or(Value::Null);
    let mut changed = events::changed_attributes(&before, &input.document);
    changed.retain(|a| a != "active");
    if !changed.is_empty() {
        let raw = user_event_raw(ctx, &row)?;
        let values = attributes::mappings(c, ctx.directory_id)?.values(&input.document);
        let data = UserEvent {
            changed: Some(changed),
            ..user_event(&row, &raw, roles_of(c, &row)?, values)?
        };
        db_events::emit(c, ctx.directory_id, EventType::UserUpdated, data)?;
    }
    Ok(true)
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
/// The refusal of members that are not live users of the directory (at most five named).
fn unknown_members(ids: &BTreeSet<String>, known: &BTreeSet<String>) -> Result<(), ScimError> {
    let unknown: Vec<&String> = ids.difference(known).take(5).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ScimError::invalid_value(format!(
        "members must be ids of users in this directory; unknown: {}",
        unknown
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Membership changes larger than this are applied in steps of this many, each a job of its
/// own: the writer serves every directory, and one request replacing a 30 000-member group in
/// one job held every other directory's writes for more than a second. (`Ctx::member_step`.)
pub const MEMBER_STEP: usize = 250;

/// Memberships per step while other directories are active too (`RequestLimits::member_step`):
/// every directory's writes wait behind a step, and a step of 250 (8–14 ms of the writer)
/// put a quiet directory's create at 6–9× its p99 at rest during a large sync's group
/// `PUT`s; steps of 64 kept it near 3×. A directory alone still changes 250 at a time.
pub const MEMBER_STEP_BESIDE_OTHERS: usize = 64;

/// The part of a large membership change still to apply, one `MEMBER_STEP` at a time
/// (`apply_member_step`), and what the steps so far did.
#[derive(Debug, Clone)]
pub struct MemberBacklog {
    pub group_id: String,
    /// Still to add and to remove, in the order they are applied (removals first).
    add: Vec<String>,
    remove: Vec<String>,
    /// Memberships added and removed so far.
    added: usize,
    removed: usize,
    /// Whether a step that changes memberships moves the group's version (see
    /// `apply_member_changes`).
    touch: bool,
    /// Memberships per step.
    step: usize,
}

/// One step of a `MemberBacklog`: the memberships one job adds and removes.
#[derive(Debug, Clone)]
pub struct MemberStep {
    pub group_id: String,
    add: BTreeSet<String>,
    remove: BTreeSet<String>,
    touch: bool,
}

impl MemberBacklog {
    pub fn is_done(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// The next step's memberships (at most `MEMBER_STEP`).
    pub fn next_step(&self) -> MemberStep {
        let remove: BTreeSet<String> = self.remove.iter().take(self.step).cloned().collect();
        let room = self.step - remove.len();
        MemberStep {
            group_id: self.group_id.clone(),
            add: self.add.iter().take(room).cloned().collect(),
            remove,
            touch: self.touch,
        }
    }

    /// Records that `step` (the last `next_step`) was applied, with what it changed.
    pub fn applied(&mut self, step: &MemberStep, (added, removed): (usize, usize)) {
        self.remove.drain(..step.remove.len());
        self.add.drain(..step.add.len());
        self.added += added;
        self.removed += removed;
    }

    /// The request log's summary of the whole change ("+34 224 members").
    pub fn summary(&self) -> String {
        members_summary(self.added, self.removed)
    }
}

fn members_summary(added: usize, removed: usize) -> String {
    match (added, removed) {
        (0, 0) => "members unchanged".to_string(),
        (a, 0) => format!("+{a} member{}", if a == 1 { "" } else { "s" }),
        (0, r) => format!("−{r} member{}", if r == 1 { "" } else { "s" }),
        (a, r) => format!("+{a} −{r} members"),
    }
}

/// What to do with member ids that are not live users of the directory.
#[derive(Clone, Copy, PartialEq)]
enum Unknown {
    /// Refuse the change (nothing of it applies).
    Refuse,
    /// Leave them out: a later step of a change whose ids were all checked at its start (the
    /// user was deleted since, as if the deletion had come after the change).
    Skip,
}

/// Applies membership changes, touching only changed rows, with one event per changed
/// membership. With `touch` (nothing else moved the group's version), a change moves it. A
/// change larger than `MEMBER_STEP` is checked whole here (every added id a live user) and
/// left in `ctx.backlog` for the steps that follow.
/// (Removals come first: the order does not matter to the result.)
fn apply_member_changes(
    conn: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    group: &GroupRow,
    changes: &MemberChanges,
    touch: bool,
) -> Result<(), ScimError> {
    let group_id = group.id.as_str();
    let (add, remove) = match &changes.replace_all {
        Some(target) => {
            let current = memberships::member_ids(conn, group_id)?;
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
    let step = ctx.member_step.max(1);
    if add.len() + remove.len() <= step {
        let (added, removed) =
            change_members(conn, ctx, group, &add, &remove, touch, Unknown::Refuse)?;
        ctx.note(members_summary(added, removed));
        return Ok(());
    }
    let unchecked: BTreeSet<String> = match ctx.live_members {
        Some(live) => add.difference(live).cloned().collect(),
        None => add.clone(),
    };
    unknown_members(
        &unchecked,
        &memberships::known_user_ids(conn, ctx.directory_id, &unchecked)?,
    )?;
    // Not even a first step here: this job is any write's, and the steps commit alone (see
    // `Writer::run_alone`).
    *ctx.backlog.borrow_mut() = Some(MemberBacklog {
        group_id: group.id.clone(),
        add: add.into_iter().collect(),
        remove: remove.into_iter().collect(),
        added: 0,
        removed: 0,
        touch,
        step,
    });
    Ok(())
}

/// The members a group `POST` or `PUT` names, when there are more than a step's worth, checked
/// before its job on a connection of its own (the writer's time is every directory's): every
/// one a live user of the directory, or the refusal the job would give. `None`: no large
/// member list to check.
pub fn live_members(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    body: &Value,
) -> Result<Option<BTreeSet<String>>, ScimError> {
    if !names_many_members(body, ctx.member_step) {
        return Ok(None);
    }
    let Some(members) = resource::group_from_json(body)?.members else {
        return Ok(None);
    };
    let members: BTreeSet<String> = members.into_iter().collect();
    let live = memberships::known_user_ids(conn, ctx.directory_id, &members)?;
    unknown_members(&members, &live)?;
    Ok(Some(live))
}

/// Whether a group body names more than `step` members (a check worth making before its job:
/// see `live_members`).
pub fn names_many_members(body: &Value, step: usize) -> bool {
    body.get("members")
        .and_then(Value::as_array)
        .is_some_and(|m| m.len() > step)
}

/// Applies one step of a large membership change (see `MemberBacklog`) in its own job;
/// returns how many memberships it added and removed. The group may have been deleted since
/// the change began: then 404.
pub fn apply_member_step(
    conn: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    step: &MemberStep,
) -> Result<(usize, usize), ScimError> {
    let group = groups::get(conn, ctx.directory_id, &step.group_id)?
        .ok_or_else(|| group_not_found(&step.group_id))?;
    change_members(
        conn,
        ctx,
        &group,
        &step.add,
        &step.remove,
        step.touch,
        Unknown::Skip,
    )
}

/// Adds and removes the given members (see `apply_member_changes`), with their events;
/// returns how many were added and removed.
fn change_members(
    conn: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    group: &GroupRow,
    add: &BTreeSet<String>,
    remove: &BTreeSet<String>,
    touch: bool,
    unknown: Unknown,
) -> Result<(usize, usize), ScimError> {
    let group_id = group.id.as_str();
    // The add touches the group itself when it added anyone: a round trip less on Postgres.
    let (known, mut added) =
        memberships::add_known_members(conn, ctx.directory_id, group_id, add, touch)?;
    if known.len() < add.len() {
        match unknown {
            Unknown::Refuse => unknown_members(add, &known)?,
            // Nothing went in (see `add_known_members`): the live ones alone, then.
            Unknown::Skip => {
                added =
                    memberships::add_known_members(conn, ctx.directory_id, group_id, &known, touch)?
                        .1
            }
        }
    }
    let removed = memberships::remove_members(conn, group_id, remove)?;
    if touch && added.is_empty() && !removed.is_empty() {
        memberships::touch_group(conn, ctx.directory_id, group_id)?;
    }
    emit_memberships(conn, ctx, group, &added, &removed)?;
    Ok((added.len(), removed.len()))
}

fn full_group(conn: &mut DbConn, ctx: &Ctx<'_>, id: &str) -> Result<Value, ScimError> {
    let row = groups::get(conn, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
    let members = memberships::member_refs(conn, id)?;
    Ok(render_group(ctx, &row, Some(&members)))
}

/// Creates a group; returns it, or `None` while its members are still being added (see
/// `MemberBacklog`).
pub fn create_group(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    body: &Value,
) -> Result<Option<Value>, ScimError> {
    let input = resource::group_from_json(body)?;
    ensure_display_name_free(c, ctx, &input, None)?;
    let row = groups::insert(c, ctx.directory_id, &input)?;
    db_events::emit(
        c,
        ctx.directory_id,
        EventType::GroupCreated,
        group_event(ctx, &row),
    )?;
    if let Some(members) = &input.members {
        let changes = MemberChanges {
            replace_all: Some(members.iter().cloned().collect()),
            ..Default::default()
        };
        apply_member_changes(c, ctx, &row, &changes, false)?;
    }
    rendered_unless_continued(c, ctx, &row.id)
}

/// The group as it is now, unless the write left part of its membership change to later
/// steps: it is rendered once they are done.
fn rendered_unless_continued(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<Option<Value>, ScimError> {
    if ctx.continues() {
        return Ok(None);
    }
    full_group(conn, ctx, id).map(Some)
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
    let compiled = match &q.filter {
        None => Ok(None),
        Some(f) => group_condition(f).and_then(|a| Ok(Some((a, group_condition(f)?)))),
    };
    let sort = match &q.sort_by {
        None => Ok(None),
        Some(attr) => groups::GroupSort::for_group(attr)
            .map(|c| Some((c, q.sort_descending)))
            .ok_or(()),
    };
    let (total, rows) = match (compiled, sort) {
        (Ok(cond), Ok(sort)) => groups::search(
            conn,
            ctx.directory_id,
            cond,
            sort,
            q.start_index - 1,
            q.count,
        )?,
        (Err(CompileError::Invalid(e)), _) => return Err(e),
        _ => scan(q, |after| {
            let rows = groups::chunk_after(conn, ctx.directory_id, after, SCAN_CHUNK)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                // Members are part of the document only when the filter or sort needs them.
                let members = if q.exclude_members {
                    None
                } else {
                    Some(memberships::member_refs(conn, &r.id)?)
                };
                let doc = render_group(ctx, &r, members.as_deref());
                out.push((r.id.clone(), doc, r));
            }
            Ok(out)
        })?,
    };
    let mut resources = Vec::with_capacity(rows.len());
    for row in &rows {
        let members = if q.exclude_members {
            None
        } else {
            Some(memberships::member_refs(conn, &row.id)?)
        };
        resources.push(project(render_group(ctx, row, members.as_deref()), q));
    }
    Ok(list_response(total, q.start_index, resources))
}

/// Replaces a group; returns it, or `None` while its members are still being replaced (see
/// `MemberBacklog`).
pub fn replace_group(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
) -> Result<Option<Value>, ScimError> {
    let input = resource::group_from_json(body)?;
    let existing =
        groups::get_locked(c, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
    check_if_match(ctx, existing.version)?;
    ensure_display_name_free(c, ctx, &input, Some(id))?;
    let before: Value = serde_json::from_str(&existing.resource).unwrap_or(Value::Null);
    let group = if before != input.document {
        let described = describe_changes(&before, &input.document);
        if !described.is_empty() {
            ctx.note(described.join(", "));
        }
        groups::update(c, ctx.directory_id, id, &input)?;
        let row = groups::get(c, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
        let mut data = group_event(ctx, &row);
        data["changed"] = json!(events::changed_attributes(&before, &input.document));
        db_events::emit(c, ctx.directory_id, EventType::GroupUpdated, data)?;
        row
    } else {
        existing
    };
    // A PUT without `members` keeps them (PingOne cannot clear; Okta echoes our GET).
    if let Some(members) = &input.members {
        let changes = MemberChanges {
            replace_all: Some(members.iter().cloned().collect()),
            ..Default::default()
        };
        apply_member_changes(c, ctx, &group, &changes, before == input.document)?;
    }
    rendered_unless_continued(c, ctx, id)
}

/// Applies a PATCH to a group: its attributes and its members, in one transaction.
pub fn patch_group(
    c: &mut Batch<'_>,
    ctx: &Ctx<'_>,
    id: &str,
    body: &Value,
) -> Result<(), ScimError> {
    let ops = patch::parse_request(body)?;
    let existing =
        groups::get_locked(c, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
    check_if_match(ctx, existing.version)?;
    let doc: Value = serde_json::from_str(&existing.resource).map_err(|_| ScimError::internal())?;
    let mut changes = MemberChanges::default();
    let patched = patch::apply(&doc, &ops, Some(&mut changes), GROUP_READ_ONLY)?;
    let attributes_changed = patched != doc;
    let group = if attributes_changed {
        let described = describe_changes(&doc, &patched);
        if !described.is_empty() {
            ctx.note(described.join(", "));
        }
        let input = resource::group_from_json(&patched)?;
        ensure_display_name_free(c, ctx, &input, Some(id))?;
        groups::update(c, ctx.directory_id, id, &input)?;
        let row = groups::get(c, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
        let mut data = group_event(ctx, &row);
        data["changed"] = json!(events::changed_attributes(&doc, &patched));
        db_events::emit(c, ctx.directory_id, EventType::GroupUpdated, data)?;
        row
    } else {
        existing
    };
    if !changes.is_empty() {
        apply_member_changes(c, ctx, &group, &changes, !attributes_changed)?;
    }
    Ok(())
}

pub fn delete_group(c: &mut Batch<'_>, ctx: &Ctx<'_>, id: &str) -> Result<(), ScimError> {
    let existing =
        groups::get_locked(c, ctx.directory_id, id)?.ok_or_else(|| group_not_found(id))?;
    check_if_match(ctx, existing.version)?;
    let mapped = roles::group_is_mapped(c, id)?;
    let members = if mapped {
        memberships::member_ids(c, id)?
    } else {
        BTreeSet::new()
    };
    groups::delete(c, ctx.directory_id, id)?;
    db_events::emit(
        c,
        ctx.directory_id,
        EventType::GroupDeleted,
        group_event(ctx, &existing),
    )?;
    if mapped {
        // Its members lose the roles it gave (the mappings go with it).
        roles::unmap_group(c, id)?;
        let ids: Vec<&String> = members.iter().collect();
        refresh_roles(c, ctx, &ids, None)?;
    }
    Ok(())
}
