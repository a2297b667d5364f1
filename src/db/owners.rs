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
        // A new password ends every session the old one opened.
        super::sessions::end_owner_sessions(c)?;
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

/// The lockout after the `n`-th attempt in a row without success: none for the first
/// `FREE_ATTEMPTS - 1`, then 1 s, 2 s, 4 s … up to 15 min.
fn lock_after(n: i32) -> Option<NaiveDateTime> {
    let over = i64::from(n - FREE_ATTEMPTS + 1);
    (over > 0)
        .then(|| now() + Duration::seconds((1i64 << (over - 1).min(20)).min(MAX_LOCK_SECONDS)))
}

/// Whether a sign-in attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted as a failure until it succeeds ([`record_success`] clears the count).
    Reserved,
    /// Refused without checking the password, until then.
    Locked(NaiveDateTime),
}

/// Reserves a sign-in attempt for `key` before the password is checked: the count goes up and
/// the lock is set in the same transaction as the check, so concurrent attempts cannot all
/// pass a check made before any of them failed. At most `FREE_ATTEMPTS` attempts in a row get
/// to check a password; each one after a lock has expired doubles the next lock.
pub fn reserve_attempt(conn: &mut DbConn, key: &str) -> QueryResult<Attempt> {
    write_tx(conn, |c| {
        let counter = diesel::insert_into(login_attempts::table).values((
            login_attempts::key.eq(key),
            login_attempts::failures.eq(0),
            login_attempts::updated_at.eq(now()),
        ));
        // The counter's row, if this is the first attempt (each backend spells the upsert).
        match c {
            DbConn::Postgres(pg) => counter.on_conflict_do_nothing().execute(pg)?,
            DbConn::Sqlite(lite) => counter.on_conflict_do_nothing().execute(lite)?,
        };
        let t = now();
        // One statement, so that on PostgreSQL a concurrent attempt waits for this row and
        // then sees the lock this transaction sets.
        let reserved: Option<i32> = diesel::update(
            login_attempts::table.find(key).filter(
                login_attempts::locked_until
                    .is_null()
                    .or(login_attempts::locked_until.le(t)),
            ),
        )
        .set((
            login_attempts::failures.eq(login_attempts::failures + 1),
            login_attempts::updated_at.eq(t),
        ))
        .returning(login_attempts::failures)
        .get_result(c)
        .optional()?;
        let Some(n) = reserved else {
            let until = locked_until(c, key)?.unwrap_or(t);
            return Ok(Attempt::Locked(until));
        };
        if let Some(lock) = lock_after(n) {
            diesel::update(login_attempts::table.find(key))
                .set(login_attempts::locked_until.eq(lock))
                .execute(c)?;
        }
        Ok(Attempt::Reserved)
    })
}

/// Clears the failure count after a successful sign-in.
pub fn record_success(conn: &mut DbConn, key: &str) -> QueryResult<()> {
    write_tx(conn, |c| {
        diesel::delete(login_attempts::table.find(key)).execute(c)?;
        Ok(())
    })
}
