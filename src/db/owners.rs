//! The owner account and its one-time setup links.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{login_attempts, owner_setup_links, owners};
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

/// Failures allowed before sign-in is locked for a while.
pub const FREE_ATTEMPTS: i32 = 5;
/// Longest lockout, in seconds.
const MAX_LOCK_SECONDS: i64 = 15 * 60;

/// When sign-in for `key` is locked, until when.
pub fn locked_until(conn: &mut DbConn, key: &str) -> QueryResult<Option<NaiveDateTime>> {
    let until: Option<Option<NaiveDateTime>> = login_attempts::table
        .find(key)
        .select(login_attempts::locked_until)
        .first(conn)
        .optional()?;
    Ok(until.flatten().filter(|t| *t > now()))
}

/// Records a failed sign-in; after `FREE_ATTEMPTS`, each failure doubles the lockout (1 s, 2 s,
/// 4 s … up to 15 min). Returns the new lock, if any.
pub fn record_failure(conn: &mut DbConn, key: &str) -> QueryResult<Option<NaiveDateTime>> {
    write_tx(conn, |c| {
        let failures: i32 = login_attempts::table
            .find(key)
            .select(login_attempts::failures)
            .first(c)
            .optional()?
            .unwrap_or(0)
            + 1;
        let over = i64::from(failures - FREE_ATTEMPTS);
        let lock = (over > 0)
            .then(|| now() + Duration::seconds((1i64 << (over - 1).min(20)).min(MAX_LOCK_SECONDS)));
        let n = diesel::update(login_attempts::table.find(key))
            .set((
                login_attempts::failures.eq(failures),
                login_attempts::locked_until.eq(lock),
                login_attempts::updated_at.eq(now()),
            ))
            .execute(c)?;
        if n == 0 {
            diesel::insert_into(login_attempts::table)
                .values((
                    login_attempts::key.eq(key),
                    login_attempts::failures.eq(failures),
                    login_attempts::locked_until.eq(lock),
                    login_attempts::updated_at.eq(now()),
                ))
                .execute(c)?;
        }
        Ok(lock)
    })
}

/// Clears the failure count after a successful sign-in.
pub fn record_success(conn: &mut DbConn, key: &str) -> QueryResult<()> {
    write_tx(conn, |c| {
        diesel::delete(login_attempts::table.find(key)).execute(c)?;
        Ok(())
    })
}
