//! SCIM users of a directory (every function takes the directory id first), and the portal's
//! org-wide user views.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::schema::{directories, group_members, scim_groups, scim_users, user_emails};
use super::scim_filter::UserCond;
use super::{DbConn, new_id, now};
use crate::scim::resource::{EmailEntry, Reference, UserInput, normalize};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = scim_users)]
pub struct UserRow {
    pub id: String,
    pub directory_id: String,
    pub user_name: String,
    pub user_name_norm: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub display_name: Option<String>,
    pub display_name_norm: Option<String>,
    pub full_name: Option<String>,
    pub full_name_norm: Option<String>,
    pub primary_email: Option<String>,
    pub resource: String,
    pub version: i64,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

/// What a SCIM listing renders of a user: its stored document and meta. A page of 100
/// decodes these five columns instead of UserRow's sixteen (decoding and allocating those was
/// most of a page's query time).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scim_users)]
pub struct ListedUser {
    pub id: String,
    pub resource: String,
    pub version: i64,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub updated_at: NaiveDateTime,
}

impl From<UserRow> for ListedUser {
    fn from(row: UserRow) -> Self {
        ListedUser {
            id: row.id,
            resource: row.resource,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl UserRow {
    /// The best human name: displayName, else given + family name, else userName.
    pub fn label(&self) -> String {
        [self.display_name.as_deref(), self.full_name.as_deref()]
            .into_iter()
            .flatten()
            .find(|d| !d.trim().is_empty())
            .unwrap_or(&self.user_name)
            .to_string()
    }
}

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

/// How `one_with_groups` finds a live user.
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
pub fn one_with_groups(
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
        UserKey::Id(id) => {
            super::FixedSql::<UserWithGroupsById, St>::new(with_groups!("u.id"), binds(id))
                .get_result(c)
                .optional()?
        }
        UserKey::UserName(name) => super::FixedSql::<UserWithGroupsByName, St>::new(
            with_groups!("u.user_name_norm"),
            binds(name),
        )
        .get_result(c)
        .optional()?,
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

/// Query ids of `one_with_groups`'s Postgres statements.
struct UserWithGroupsById;
struct UserWithGroupsByName;

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

/// One page of live users matching `cond` (given twice: for the count and for the page). The
/// order is `sort` (missing values last), then creation order (ids are time-ordered), so pages
/// are stable.
pub fn search(
    conn: &mut DbConn,
    directory_id: &str,
    cond: Option<(UserCond, UserCond)>,
    sort: Option<(SortColumn, bool)>,
    offset: i64,
    limit: i64,
) -> QueryResult<(i64, Vec<ListedUser>)> {
    let (count_cond, page_cond) = match cond {
        Some((c1, c2)) => (Some(c1), Some(c2)),
        None => (None, None),
    };
    let count = |conn: &mut DbConn| -> QueryResult<i64> {
        let mut count = scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .filter(scim_users::deleted_at.is_null())
            .count()
            .into_boxed();
        if let Some(c) = count_cond {
            count = count.filter(c);
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
    if let Some(c) = page_cond {
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
        if !super::groups::add_members(conn, g, &me)?.is_empty() {
            added.push(g.clone());
        }
    }
    Ok(added)
}

/// "given family", as the portal shows it.
fn full_name(input: &UserInput) -> Option<String> {
    let full = [input.given_name.as_deref(), input.family_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!full.trim().is_empty()).then_some(full)
}

fn write_emails(
    conn: &mut DbConn,
    directory_id: &str,
    user_id: &str,
    input: &UserInput,
) -> QueryResult<()> {
    diesel::delete(user_emails::table.filter(user_emails::user_id.eq(user_id))).execute(conn)?;
    insert_emails(conn, directory_id, user_id, input)
}

fn insert_emails(
    conn: &mut DbConn,
    directory_id: &str,
    user_id: &str,
    input: &UserInput,
) -> QueryResult<()> {
    for (position, e) in input.emails.iter().enumerate() {
        let row = email_row(directory_id, user_id, position, e);
        crate::on_backend!(&mut *conn, |c| diesel::insert_into(user_emails::table)
            .values(&row)
            .execute(c))?;
    }
    Ok(())
}

#[derive(Insertable)]
#[diesel(table_name = user_emails)]
struct EmailRow<'a> {
    user_id: &'a str,
    position: i32,
    directory_id: &'a str,
    value_norm: &'a str,
    type_norm: Option<&'a str>,
    is_primary: bool,
}

/// The row of a user's email; `position`: its place in the user's `emails`.
fn email_row<'a>(
    directory_id: &'a str,
    user_id: &'a str,
    position: usize,
    e: &'a EmailEntry,
) -> EmailRow<'a> {
    EmailRow {
        user_id,
        position: i32::try_from(position).unwrap_or(i32::MAX),
        directory_id,
        value_norm: &e.value_norm,
        type_norm: e.type_norm.as_deref(),
        is_primary: e.primary,
    }
}

/// A user ready to be inserted: its row as it will be stored, its emails and its
/// `user.created` event. Built before the write transaction (the writer's time is what every
/// change waits for); the row is returned as is once inserted (one round trip less per create
/// than reading it back).
pub struct NewUser {
    pub row: UserRow,
    emails: Vec<EmailEntry>,
    /// The `data` of its `user.created` event, serialized.
    created_event: Box<serde_json::value::RawValue>,
}

impl NewUser {
    /// `event` renders the `data` of the user's `user.created` event from its row.
    pub fn new<E>(
        directory_id: &str,
        input: &UserInput,
        event: impl FnOnce(&UserRow) -> Result<Box<serde_json::value::RawValue>, E>,
    ) -> Result<NewUser, E> {
        let at = now();
        let full = full_name(input);
        let row = UserRow {
            id: new_id(),
            directory_id: directory_id.to_string(),
            user_name: input.user_name.clone(),
            user_name_norm: normalize(&input.user_name),
            external_id: input.external_id.clone(),
            active: input.active,
            display_name: input.display_name.clone(),
            display_name_norm: input.display_name.as_deref().map(normalize),
            full_name_norm: full.as_deref().map(normalize),
            full_name: full,
            primary_email: input.primary_email.clone(),
            resource: input.document.to_string(),
            version: 1,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        Ok(NewUser {
            created_event: event(&row)?,
            row,
            emails: input.emails.clone(),
        })
    }
}

/// Queues the `user.created` event of a user `insert` inserted.
pub fn record_created(batch: &mut super::Batch<'_>, user: &NewUser) -> QueryResult<()> {
    super::events::emit(
        batch,
        &user.row.directory_id,
        "user.created",
        &user.created_event,
    )
}

/// Inserts new users, leaving out each whose userName is taken (by a live user, or by an
/// earlier one of `users`); says for each whether it went in. Call inside a write
/// transaction. A taken userName is not an error: on Postgres a failed statement would spoil
/// the whole transaction, and with it the writer's batch.
///
/// On Postgres every user and email goes in with one statement: a create's round trip, not
/// the work in it, is most of what it costs the Postgres server.
pub fn insert(conn: &mut DbConn, users: &[&NewUser]) -> QueryResult<Vec<bool>> {
    match conn {
        DbConn::Sqlite(c) => users
            .iter()
            .map(|user| insert_one_sqlite(c, user))
            .collect(),
        DbConn::Postgres(c) => {
            if users.is_empty() {
                return Ok(Vec::new());
            }
            let inserted: std::collections::HashSet<String> = InsertUsers::new(users)
                .load::<String>(c)?
                .into_iter()
                .collect();
            Ok(users.iter().map(|u| inserted.contains(&u.row.id)).collect())
        }
    }
}

fn insert_one_sqlite(c: &mut diesel::SqliteConnection, user: &NewUser) -> QueryResult<bool> {
    let inserted = diesel::insert_into(scim_users::table)
        .values(&user.row)
        .on_conflict_do_nothing()
        .execute(c)?;
    if inserted == 0 {
        return Ok(false);
    }
    queue_for_search_index(c, &user.row.id)?;
    for (position, e) in user.emails.iter().enumerate() {
        diesel::insert_into(user_emails::table)
            .values(email_row(&user.row.directory_id, &user.row.id, position, e))
            .execute(c)?;
    }
    Ok(true)
}

/// `WITH new_users AS (INSERT INTO scim_users … unnest(…) ON CONFLICT DO NOTHING RETURNING id)
/// INSERT INTO user_emails …` for the emails of the users that went in, written out with a
/// type of its own so the connection keeps it prepared (diesel prepares a `sql_query` anew
/// each time: a third of its cost on the server).
struct InsertUsers<'a> {
    ids: Vec<&'a str>,
    directory_ids: Vec<&'a str>,
    user_names: Vec<&'a str>,
    user_name_norms: Vec<&'a str>,
    external_ids: Vec<Option<&'a str>>,
    actives: Vec<bool>,
    display_names: Vec<Option<&'a str>>,
    display_name_norms: Vec<Option<&'a str>>,
    full_names: Vec<Option<&'a str>>,
    full_name_norms: Vec<Option<&'a str>>,
    primary_emails: Vec<Option<&'a str>>,
    resources: Vec<&'a str>,
    ats: Vec<NaiveDateTime>,
    email_user_ids: Vec<&'a str>,
    email_positions: Vec<i32>,
    email_directory_ids: Vec<&'a str>,
    email_values: Vec<&'a str>,
    email_types: Vec<Option<&'a str>>,
    email_primaries: Vec<bool>,
}

impl<'a> InsertUsers<'a> {
    fn new(users: &[&'a NewUser]) -> InsertUsers<'a> {
        let rows = || users.iter().map(|u| &u.row);
        let emails = || {
            users.iter().flat_map(|u| {
                u.emails
                    .iter()
                    .enumerate()
                    .map(move |(position, e)| (&u.row, position, e))
            })
        };
        InsertUsers {
            ids: rows().map(|r| r.id.as_str()).collect(),
            directory_ids: rows().map(|r| r.directory_id.as_str()).collect(),
            user_names: rows().map(|r| r.user_name.as_str()).collect(),
            user_name_norms: rows().map(|r| r.user_name_norm.as_str()).collect(),
            external_ids: rows().map(|r| r.external_id.as_deref()).collect(),
            actives: rows().map(|r| r.active).collect(),
            display_names: rows().map(|r| r.display_name.as_deref()).collect(),
            display_name_norms: rows().map(|r| r.display_name_norm.as_deref()).collect(),
            full_names: rows().map(|r| r.full_name.as_deref()).collect(),
            full_name_norms: rows().map(|r| r.full_name_norm.as_deref()).collect(),
            primary_emails: rows().map(|r| r.primary_email.as_deref()).collect(),
            resources: rows().map(|r| r.resource.as_str()).collect(),
            ats: rows().map(|r| r.created_at).collect(),
            email_user_ids: emails().map(|(r, _, _)| r.id.as_str()).collect(),
            email_positions: emails()
                .map(|(_, p, _)| i32::try_from(p).unwrap_or(i32::MAX))
                .collect(),
            email_directory_ids: emails().map(|(r, _, _)| r.directory_id.as_str()).collect(),
            email_values: emails().map(|(_, _, e)| e.value_norm.as_str()).collect(),
            email_types: emails().map(|(_, _, e)| e.type_norm.as_deref()).collect(),
            email_primaries: emails().map(|(_, _, e)| e.primary).collect(),
        }
    }
}

super::prepared_statement!(InsertUsers, Text);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for InsertUsers<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, Bool, Integer, Nullable, Timestamp};
        // `ORDER BY ord`: of two new users with one userName, the first goes in.
        out.push_sql(
            "WITH new_users AS (INSERT INTO scim_users (id, directory_id, user_name, \
             user_name_norm, external_id, active, display_name, display_name_norm, full_name, \
             full_name_norm, primary_email, resource, version, created_at, updated_at) \
             SELECT id, directory_id, user_name, user_name_norm, external_id, active, \
             display_name, display_name_norm, full_name, full_name_norm, primary_email, \
             resource, 1, at, at FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        for texts in [&self.directory_ids, &self.user_names, &self.user_name_norms] {
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(texts)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.external_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bool>, _>(&self.actives)?;
        for texts in [
            &self.display_names,
            &self.display_name_norms,
            &self.full_names,
            &self.full_name_norms,
            &self.primary_emails,
        ] {
            out.push_sql(", ");
            out.push_bind_param::<Array<Nullable<Text>>, _>(texts)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.resources)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.ats)?;
        out.push_sql(
            ") WITH ORDINALITY AS u (id, directory_id, user_name, user_name_norm, external_id, \
             active, display_name, display_name_norm, full_name, full_name_norm, \
             primary_email, resource, at, ord) ORDER BY ord \
             ON CONFLICT DO NOTHING RETURNING id), \
             new_emails AS (INSERT INTO user_emails (user_id, position, directory_id, \
             value_norm, type_norm, is_primary) SELECT e.user_id, e.position, e.directory_id, \
             e.value_norm, e.type_norm, e.is_primary FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.email_user_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.email_positions)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.email_directory_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.email_values)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.email_types)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bool>, _>(&self.email_primaries)?;
        out.push_sql(
            ") AS e (user_id, position, directory_id, value_norm, type_norm, is_primary) \
             WHERE e.user_id IN (SELECT id FROM new_users)) SELECT id FROM new_users",
        );
        Ok(())
    }
}

/// SQLite's search-index bookkeeping (see the migrations `user_search` and
/// `search_once_per_commit`), not in `schema.rs`, which holds the tables both backends have.
mod search_tables {
    diesel::table! {
        user_search_keys (key) {
            key -> BigInt,
            user_id -> Text,
        }
    }
    diesel::table! {
        user_search_pending (key) {
            key -> BigInt,
            indexed -> Integer,
        }
    }
}

/// Gives a new user its search key and queues it for the trigram index (a trigger did this
/// until the `search_key_by_insert` migration).
fn queue_for_search_index(c: &mut diesel::SqliteConnection, user_id: &str) -> QueryResult<()> {
    use search_tables::{user_search_keys as keys, user_search_pending as pending};
    let key: i64 = diesel::insert_into(keys::table)
        .values(keys::user_id.eq(user_id))
        .returning(keys::key)
        .get_result(c)?;
    diesel::insert_into(pending::table)
        .values((pending::key.eq(key), pending::indexed.eq(0)))
        .execute(c)?;
    Ok(())
}

/// Replaces a user's attributes; call inside a write transaction.
pub fn update(
    conn: &mut DbConn,
    directory_id: &str,
    id: &str,
    input: &UserInput,
) -> QueryResult<UserRow> {
    diesel::update(
        scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .filter(scim_users::id.eq(id))
            .filter(scim_users::deleted_at.is_null()),
    )
    .set((
        scim_users::user_name.eq(&input.user_name),
        scim_users::user_name_norm.eq(normalize(&input.user_name)),
        scim_users::external_id.eq(&input.external_id),
        scim_users::active.eq(input.active),
        scim_users::display_name.eq(&input.display_name),
        scim_users::display_name_norm.eq(input.display_name.as_deref().map(normalize)),
        scim_users::full_name.eq(full_name(input)),
        scim_users::full_name_norm.eq(full_name(input).as_deref().map(normalize)),
        scim_users::primary_email.eq(&input.primary_email),
        scim_users::resource.eq(input.document.to_string()),
        scim_users::version.eq(scim_users::version + 1i64),
        scim_users::updated_at.eq(now()),
    ))
    .execute(conn)?;
    write_emails(conn, directory_id, id, input)?;
    get(conn, directory_id, id)?.ok_or(diesel::result::Error::NotFound)
}

/// Deletes a user: a tombstone stays (for audit), memberships and email index rows go.
pub fn delete(conn: &mut DbConn, directory_id: &str, id: &str) -> QueryResult<bool> {
    let n = diesel::update(
        scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .filter(scim_users::id.eq(id))
            .filter(scim_users::deleted_at.is_null()),
    )
    .set((
        scim_users::deleted_at.eq(now()),
        scim_users::updated_at.eq(now()),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    diesel::delete(group_members::table.filter(group_members::user_id.eq(id))).execute(conn)?;
    diesel::delete(user_emails::table.filter(user_emails::user_id.eq(id))).execute(conn)?;
    Ok(true)
}

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

/// Query ids of `groups_of`'s and `get_many`'s SQLite statements.
struct MembershipsOf;
struct GroupNamesOf;
struct UsersOf;

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
    counts: &super::user_pages::Bookmarks,
) -> QueryResult<(i64, Vec<UserRow>)> {
    let needle = normalize(&v.search);
    // The org's directories first (usually one), so each sort walks an index of
    // `(directory_id, sort key)` instead of sorting every user of the org.
    let versions: Vec<(String, i64)> = directories::table
        .filter(directories::org_id.eq(org_id))
        .select((directories::id, directories::event_seq))
        .load(conn)?;
    let dirs: Vec<String> = versions.iter().map(|(id, _)| id.clone()).collect();
    let trigram_filter = trigram_prefilter(conn, &needle);
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
            let pattern = super::contains_pattern(&needle);
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
        versions
            .iter()
            .map(|(id, seq)| counts.live_users(conn, id, *seq))
            .sum::<QueryResult<i64>>()?
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

/// Users noted in `user_search_pending` are indexed together once there are this many: FTS5
/// writes a new segment (and merges segments) at every flush, which cost a sixth of a create
/// when done at every commit of the writer's batches of a few users. Searches read the
/// pending users beside the index (see `trigram_prefilter`).
const SEARCH_PENDING_MAX: i64 = 256;

/// Brings SQLite's trigram index up to date with the users noted as changed (see the
/// `search_once_per_commit` migration) once `SEARCH_PENDING_MAX` of them are waiting; `Batch::commit`
/// calls it just before committing.
pub fn index_pending_search(conn: &mut DbConn) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::{BigInt, Bool};
    let DbConn::Sqlite(c) = conn else {
        return Ok(());
    };
    #[derive(QueryableByName)]
    struct Pending {
        #[diesel(sql_type = Bool)]
        due: bool,
    }
    let pending: Pending = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM user_search_pending LIMIT 1 OFFSET ?) AS due",
    )
    .bind::<BigInt, _>(SEARCH_PENDING_MAX - 1)
    .get_result(c)?;
    if !pending.due {
        return Ok(());
    }
    // CROSS JOIN fixes the join order, from the few pending rows out: the planner could
    // rather walk every user.
    c.batch_execute(
        "DELETE FROM user_search WHERE rowid IN \
             (SELECT key FROM user_search_pending WHERE indexed = 1); \
         INSERT INTO user_search (rowid, user_name, display_name, full_name, email) \
             SELECT p.key, u.user_name_norm, u.display_name_norm, u.full_name_norm, \
                    u.primary_email \
             FROM user_search_pending p \
             CROSS JOIN user_search_keys k ON k.key = p.key \
             CROSS JOIN scim_users u ON u.id = k.user_id; \
         DELETE FROM user_search_pending;",
    )
}

/// The portal search's trigram-index condition (SQL before its one bound value, the value,
/// SQL after it), for needles of three characters or more; shorter ones are matched by the LIKE
/// conditions alone. The LIKE conditions always apply too, so results are exactly theirs: on
/// SQLite the candidates are the index's matches and the users not indexed yet (or indexed in
/// an older version), at most `SEARCH_PENDING_MAX`.
fn trigram_prefilter(conn: &DbConn, needle: &str) -> Option<(&'static str, String, &'static str)> {
    if needle.chars().count() < 3 {
        return None;
    }
    Some(match conn {
        // A quoted FTS5 phrase: with the trigram tokenizer, any column containing it.
        DbConn::Sqlite(_) => (
            "scim_users.id IN (SELECT k.user_id FROM user_search_keys k WHERE k.key IN \
             (SELECT rowid FROM user_search WHERE user_search MATCH ",
            format!("\"{}\"", needle.replace('"', "\"\"")),
            " UNION ALL SELECT key FROM user_search_pending))",
        ),
        // The indexed expression of `scim_users_search`, exactly.
        DbConn::Postgres(_) => (
            "(scim_users.user_name_norm || ' ' || COALESCE(scim_users.display_name_norm, '') \
             || ' ' || COALESCE(scim_users.full_name_norm, '') || ' ' \
             || COALESCE(scim_users.primary_email, '')) LIKE (",
            super::contains_pattern(needle),
            ")",
        ),
    })
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
    let groups: Vec<(String, String)> = super::schema::scim_groups::table
        .filter(super::schema::scim_groups::directory_id.eq(directory_id))
        .filter(super::schema::scim_groups::id.eq_any(ids))
        .select((
            super::schema::scim_groups::id,
            super::schema::scim_groups::display_name,
        ))
        .load(conn)?;
    out.extend(groups);
    Ok(out)
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
            DbConn::Sqlite(c) => super::FixedSql::<
                UsersOf,
                diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<UserRow, diesel::sqlite::Sqlite>>,
            >::new(
                "SELECT s.id, s.directory_id, s.user_name, s.user_name_norm, s.external_id, \
                 s.active, s.display_name, s.display_name_norm, s.full_name, s.full_name_norm, \
                 s.primary_email, s.resource, s.version, s.created_at, s.updated_at, \
                 s.deleted_at FROM json_each(?) AS ids CROSS JOIN scim_users AS s \
                 ON s.id = ids.value WHERE s.directory_id = ?",
                vec![super::json_array(chunk), directory_id.to_string()],
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

/// What the directory API's user list filters by.
#[derive(Debug, Clone, Default)]
pub struct ApiFilter {
    pub organization_id: Option<String>,
    pub directory_id: Option<String>,
    pub group_id: Option<String>,
    pub active: Option<bool>,
    pub updated_after: Option<NaiveDateTime>,
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
        .filter(scim_users::deleted_at.is_null())
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
        q = q.filter(scim_users::active.eq(a));
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
        .filter(scim_users::deleted_at.is_null())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}
