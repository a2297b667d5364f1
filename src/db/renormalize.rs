//! Brings the stored comparison forms (`…_norm` columns) of a database made by an older
//! `normalize` up to date, once, at start: otherwise a look-alike of an existing userName
//! could still become a second user, and filters would miss rows stored in the old form.

use diesel::prelude::*;

use super::schema::{scim_groups, scim_users, user_emails};
use super::{DbConn, settings, write_tx};
use crate::scim::resource::{NORMALIZATION_VERSION, normalize};

const SETTING: &str = "normalization_version";
const CHUNK: i64 = 1_000;

/// What the pass changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Renormalized {
    pub rows: usize,
    /// Users or groups whose new form is already another live one's: they keep the old form
    /// (two accounts the old comparison kept apart stay apart; an admin may merge them).
    pub kept_apart: usize,
}

/// Runs the pass unless this database is already at `NORMALIZATION_VERSION`.
pub fn run(conn: &mut DbConn) -> QueryResult<Renormalized> {
    if settings::get(conn, SETTING)?.as_deref() == Some(NORMALIZATION_VERSION) {
        return Ok(Renormalized::default());
    }
    let mut done = Renormalized::default();
    users(conn, &mut done)?;
    groups(conn, &mut done)?;
    emails(conn, &mut done)?;
    settings::set(conn, SETTING, NORMALIZATION_VERSION)?;
    if done.rows > 0 || done.kept_apart > 0 {
        log::warn!(
            "text comparison forms brought up to date: {} rows changed, {} users or groups kept \
             their old form because another already has the new one",
            done.rows,
            done.kept_apart
        );
    }
    Ok(done)
}

type UserForms = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

fn users(conn: &mut DbConn, done: &mut Renormalized) -> QueryResult<()> {
    let mut after = String::new();
    loop {
        let chunk: Vec<UserForms> = scim_users::table
            .filter(scim_users::id.gt(&after))
            .order(scim_users::id.asc())
            .limit(CHUNK)
            .select((
                scim_users::id,
                scim_users::directory_id,
                scim_users::user_name,
                scim_users::user_name_norm,
                scim_users::display_name,
                scim_users::display_name_norm,
                scim_users::full_name,
                scim_users::full_name_norm,
                scim_users::deleted_at.is_null(),
            ))
            .load(conn)?;
        let Some(last) = chunk.last() else {
            return Ok(());
        };
        after = last.0.clone();
        write_tx(conn, |c| {
            for (id, dir, name, name_norm, display, display_norm, full, full_norm, live) in &chunk {
                let mut new_name = normalize(name);
                if new_name != *name_norm && *live {
                    let taken: i64 = scim_users::table
                        .filter(scim_users::directory_id.eq(dir))
                        .filter(scim_users::user_name_norm.eq(&new_name))
                        .filter(scim_users::deleted_at.is_null())
                        .filter(scim_users::id.ne(id))
                        .count()
                        .get_result(c)?;
                    if taken > 0 {
                        done.kept_apart += 1;
                        new_name = name_norm.clone();
                    }
                }
                let new_display = display.as_deref().map(normalize);
                let new_full = full.as_deref().map(normalize);
                if new_name != *name_norm || new_display != *display_norm || new_full != *full_norm
                {
                    diesel::update(scim_users::table.find(id))
                        .set((
                            scim_users::user_name_norm.eq(&new_name),
                            scim_users::display_name_norm.eq(&new_display),
                            scim_users::full_name_norm.eq(&new_full),
                        ))
                        .execute(c)?;
                    done.rows += 1;
                }
            }
            Ok::<_, diesel::result::Error>(())
        })?;
    }
}

fn groups(conn: &mut DbConn, done: &mut Renormalized) -> QueryResult<()> {
    let mut after = String::new();
    loop {
        let chunk: Vec<(String, String, String, String, bool)> = scim_groups::table
            .filter(scim_groups::id.gt(&after))
            .order(scim_groups::id.asc())
            .limit(CHUNK)
            .select((
                scim_groups::id,
                scim_groups::directory_id,
                scim_groups::display_name,
                scim_groups::display_name_norm,
                scim_groups::deleted_at.is_null(),
            ))
            .load(conn)?;
        let Some(last) = chunk.last() else {
            return Ok(());
        };
        after = last.0.clone();
        write_tx(conn, |c| {
            for (id, dir, name, norm, live) in &chunk {
                let new = normalize(name);
                if new == *norm {
                    continue;
                }
                let taken: i64 = scim_groups::table
                    .filter(scim_groups::directory_id.eq(dir))
                    .filter(scim_groups::display_name_norm.eq(&new))
                    .filter(scim_groups::deleted_at.is_null())
                    .filter(scim_groups::id.ne(id))
                    .count()
                    .get_result(c)?;
                if *live && taken > 0 {
                    done.kept_apart += 1;
                    continue;
                }
                diesel::update(scim_groups::table.find(id))
                    .set(scim_groups::display_name_norm.eq(&new))
                    .execute(c)?;
                done.rows += 1;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
    }
}

fn emails(conn: &mut DbConn, done: &mut Renormalized) -> QueryResult<()> {
    let mut after = (String::new(), -1);
    loop {
        let chunk: Vec<(String, i32, String, Option<String>)> = user_emails::table
            .filter(
                user_emails::user_id.gt(&after.0).or(user_emails::user_id
                    .eq(&after.0)
                    .and(user_emails::position.gt(after.1))),
            )
            .order((user_emails::user_id.asc(), user_emails::position.asc()))
            .limit(CHUNK)
            .select((
                user_emails::user_id,
                user_emails::position,
                user_emails::value_norm,
                user_emails::type_norm,
            ))
            .load(conn)?;
        let Some(last) = chunk.last() else {
            return Ok(());
        };
        after = (last.0.clone(), last.1);
        write_tx(conn, |c| {
            // The stored forms were made by lowercasing; normalizing them again is the same
            // as normalizing the values they came from.
            for (user_id, position, value, kind) in &chunk {
                let (new_value, new_kind) = (normalize(value), kind.as_deref().map(normalize));
                if new_value != *value || new_kind != *kind {
                    diesel::update(user_emails::table.find((user_id, position)))
                        .set((
                            user_emails::value_norm.eq(&new_value),
                            user_emails::type_norm.eq(&new_kind),
                        ))
                        .execute(c)?;
                    done.rows += 1;
                }
            }
            Ok::<_, diesel::result::Error>(())
        })?;
    }
}
