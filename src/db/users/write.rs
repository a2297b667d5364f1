//! SCIM changes to users: a new user prepared before the write (`NewUser`) and inserted by the
//! writer's batch with the batch's other new users (`insert`), its `user.created` event
//! (`record_created`), and `update` and `delete`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::search_index::queue_for_search_index;
use super::{UserRow, get};
use crate::db::events::EventType;
use crate::db::schema::{group_members, scim_users, user_emails};
use crate::db::{Batch, DbConn, new_id, now};
use crate::scim::resource::{EmailEntry, UserInput, normalize};

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
pub fn record_created(batch: &mut Batch<'_>, user: &NewUser) -> QueryResult<()> {
    crate::db::events::emit(
        batch,
        &user.row.directory_id,
        EventType::UserCreated,
        &user.created_event,
    )
}

/// `record_created`, with the user's effective roles set in the event (`data.user.roles`):
/// its data was rendered before the write, when they were not known.
pub fn record_created_with_roles(
    batch: &mut Batch<'_>,
    user: &NewUser,
    roles: &[String],
) -> QueryResult<()> {
    let mut data: serde_json::Value = serde_json::from_str(user.created_event.get())
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
    data["user"]["roles"] = serde_json::json!(roles);
    crate::db::events::emit(batch, &user.row.directory_id, EventType::UserCreated, &data)
}

/// `record_created`, with the event's data changed by `patch` first (values its data, rendered
/// before the write, could not know: the default role, custom attributes).
pub fn record_created_with(
    batch: &mut Batch<'_>,
    user: &NewUser,
    patch: impl FnOnce(&mut serde_json::Value),
) -> QueryResult<()> {
    let mut data: serde_json::Value = serde_json::from_str(user.created_event.get())
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
    patch(&mut data);
    crate::db::events::emit(batch, &user.row.directory_id, EventType::UserCreated, &data)
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

crate::db::prepared_statement!(InsertUsers, Text);

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

/// Brings a deleted user back (its tombstone becomes live again, without memberships); false
/// when it is not deleted. The caller checks that its userName is still free.
pub fn undelete(conn: &mut DbConn, directory_id: &str, id: &str) -> QueryResult<bool> {
    let n = diesel::update(
        scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .filter(scim_users::id.eq(id))
            .filter(scim_users::deleted_at.is_not_null()),
    )
    .set(scim_users::deleted_at.eq(None::<chrono::NaiveDateTime>))
    .execute(conn)?;
    Ok(n == 1)
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
