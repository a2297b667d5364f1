//! The owner account and its one-time setup links.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{owner_setup_links, owners};
use super::{DbConn, new_id, now, write_tx};
use crate::auth::tokens::{self, NewSecret, SecretKind};

/// How long an owner setup link stays valid.
pub const SETUP_LINK_TTL_HOURS: i64 = 24;

pub fn exists(conn: &mut DbConn) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(owners::table.select(owners::id))).get_result(conn)
}

/// The owner's id and password hash (there is one owner account).
pub fn get(conn: &mut DbConn) -> QueryResult<Option<(String, String)>> {
    owners::table
        .select((owners::id, owners::password_hash))
        .order(owners::created_at.asc())
        .first(conn)
        .optional()
}

/// A fresh one-time setup link secret.
pub fn create_setup_link(conn: &mut DbConn) -> QueryResult<String> {
    let secret = NewSecret::generate(SecretKind::OwnerSetup);
    let created = now();
    write_tx(conn, |c| {
        diesel::insert_into(owner_setup_links::table)
            .values((
                owner_setup_links::id.eq(new_id()),
                owner_setup_links::sha256.eq(&secret.sha256),
                owner_setup_links::created_at.eq(created),
                owner_setup_links::expires_at.eq(created + Duration::hours(SETUP_LINK_TTL_HOURS)),
            ))
            .execute(c)
    })?;
    Ok(secret.plaintext)
}

fn find_setup_link(conn: &mut DbConn, presented: &str) -> QueryResult<Option<String>> {
    if !tokens::plausible(SecretKind::OwnerSetup, presented) {
        return Ok(None);
    }
    let hash = tokens::hash(presented);
    let found: Option<(String, Vec<u8>, NaiveDateTime, Option<NaiveDateTime>)> =
        owner_setup_links::table
            .filter(owner_setup_links::sha256.eq(&hash))
            .select((
                owner_setup_links::id,
                owner_setup_links::sha256,
                owner_setup_links::expires_at,
                owner_setup_links::used_at,
            ))
            .first(conn)
            .optional()?;
    Ok(found.and_then(|(id, stored, expires, used)| {
        (tokens::ct_eq(&stored, &hash) && used.is_none() && expires > now()).then_some(id)
    }))
}

/// True when a setup link is valid and unused.
pub fn setup_link_valid(conn: &mut DbConn, presented: &str) -> QueryResult<bool> {
    Ok(find_setup_link(conn, presented)?.is_some())
}

/// Uses a setup link to set the owner password (creating the owner on first use). Returns the
/// owner id, or None if the link is unknown, used or expired.
pub fn claim_setup_link(
    conn: &mut DbConn,
    presented: &str,
    password_hash: &str,
) -> QueryResult<Option<String>> {
    write_tx(conn, |c| {
        let Some(link_id) = find_setup_link(c, presented)? else {
            return Ok(None);
        };
        diesel::update(owner_setup_links::table.find(&link_id))
            .set(owner_setup_links::used_at.eq(now()))
            .execute(c)?;
        let owner_id = match get(c)? {
            Some((id, _)) => {
                diesel::update(owners::table.find(&id))
                    .set(owners::password_hash.eq(password_hash))
                    .execute(c)?;
                id
            }
            None => {
                let id = new_id();
                diesel::insert_into(owners::table)
                    .values((
                        owners::id.eq(&id),
                        owners::password_hash.eq(password_hash),
                        owners::created_at.eq(now()),
                    ))
                    .execute(c)?;
                id
            }
        };
        Ok(Some(owner_id))
    })
}
