//! Sign-ins kept on the server: the session cookie names one of these rows, and a request is
//! signed in only while its row is live. Ending a row ends the session on every instance.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::sessions;
use super::{DbConn, now, write_tx};
use crate::auth::session::MAX_AGE_SECONDS;

/// Who a session signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Owner,
    Portal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Owner => "owner",
            Kind::Portal => "portal",
        }
    }
}

/// A fresh random session id (128 bits, hex): the cookie is encrypted, but the id must not
/// be guessable either.
fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// Records a sign-in of `subject` (the owner's id, or the organization a portal link opened)
/// and returns the session id for the cookie.
pub fn open(
    conn: &mut DbConn,
    kind: Kind,
    subject: &str,
    portal_link_id: Option<&str>,
) -> QueryResult<String> {
    let id = new_session_id();
    write_tx(conn, |c| {
        // Rows of sessions long over are of no use: drop them as new ones come.
        diesel::delete(sessions::table.filter(sessions::created_at.lt(oldest_live())))
            .execute(c)?;
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(&id),
                sessions::kind.eq(kind.as_str()),
                sessions::subject.eq(subject),
                sessions::portal_link_id.eq(portal_link_id),
                sessions::created_at.eq(now()),
            ))
            .execute(c)
    })?;
    Ok(id)
}

fn oldest_live() -> NaiveDateTime {
    now() - Duration::seconds(MAX_AGE_SECONDS)
}

/// Whether the session `id` still signs `subject` in as `kind`.
pub fn is_live(conn: &mut DbConn, id: &str, kind: Kind, subject: &str) -> QueryResult<bool> {
    let found: Option<String> = sessions::table
        .find(id)
        .filter(sessions::kind.eq(kind.as_str()))
        .filter(sessions::subject.eq(subject))
        .filter(sessions::ended_at.is_null())
        .filter(sessions::created_at.ge(oldest_live()))
        .select(sessions::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Ends one session (sign-out).
pub fn end(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    write_tx(conn, |c| {
        diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::ended_at.is_null()),
        )
        .set(sessions::ended_at.eq(now()))
        .execute(c)
        .map(|_| ())
    })
}

/// Ends every owner session (the owner's password changed); returns how many were live.
pub fn end_owner_sessions(conn: &mut DbConn) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::kind.eq(Kind::Owner.as_str()))
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now()))
    .execute(conn)
}

/// Ends the Admin Portal sessions a portal link opened; returns how many were live.
pub fn end_for_portal_link(conn: &mut DbConn, portal_link_id: &str) -> QueryResult<usize> {
    write_tx(conn, |c| {
        diesel::update(
            sessions::table
                .filter(sessions::portal_link_id.eq(portal_link_id))
                .filter(sessions::ended_at.is_null()),
        )
        .set(sessions::ended_at.eq(now()))
        .execute(c)
    })
}
