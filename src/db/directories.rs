//! Directories (one identity provider connection each) and their bearer tokens.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{directories, directory_tokens, organizations, scim_groups, scim_users};
use super::{DbConn, new_id, now, write_tx};
use crate::auth::tokens::{self, NewSecret, SecretKind};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = directories)]
pub struct Directory {
    pub id: String,
    pub org_id: String,
    pub provider: String,
    pub name: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub first_request_at: Option<NaiveDateTime>,
    pub last_request_at: Option<NaiveDateTime>,
}

/// `last_request_at` is refreshed at most this often, so reads do not write on every request.
const TOUCH_INTERVAL_MS: i64 = 1000;
/// `last_used_at` of a token is refreshed at most this often.
const TOKEN_TOUCH_INTERVAL_S: i64 = 60;

/// Creates a directory with its first bearer token; returns the directory and the token
/// plaintext (shown once).
pub fn create(
    conn: &mut DbConn,
    org_id: &str,
    provider: &str,
    name: &str,
) -> QueryResult<(Directory, String)> {
    let dir = Directory {
        id: new_id(),
        org_id: org_id.to_string(),
        provider: provider.to_string(),
        name: name.to_string(),
        status: "active".into(),
        created_at: now(),
        first_request_at: None,
        last_request_at: None,
    };
    let secret = NewSecret::generate(SecretKind::ScimToken);
    write_tx(conn, |c| {
        diesel::insert_into(directories::table)
            .values((
                directories::id.eq(&dir.id),
                directories::org_id.eq(&dir.org_id),
                directories::provider.eq(&dir.provider),
                directories::name.eq(&dir.name),
                directories::status.eq(&dir.status),
                directories::created_at.eq(dir.created_at),
            ))
            .execute(c)?;
        diesel::insert_into(directory_tokens::table)
            .values((
                directory_tokens::id.eq(new_id()),
                directory_tokens::directory_id.eq(&dir.id),
                directory_tokens::sha256.eq(&secret.sha256),
                directory_tokens::suffix.eq(secret.suffix()),
                directory_tokens::created_at.eq(dir.created_at),
            ))
            .execute(c)
    })?;
    Ok((dir, secret.plaintext))
}

pub fn get(conn: &mut DbConn, org_id: &str, directory_id: &str) -> QueryResult<Option<Directory>> {
    directories::table
        .filter(directories::org_id.eq(org_id))
        .filter(directories::id.eq(directory_id))
        .select(Directory::as_select())
        .first(conn)
        .optional()
}

/// Whether a directory with this id exists (to log refused requests against real directories only).
pub fn exists(conn: &mut DbConn, directory_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(directories::table.find(directory_id))).get_result(conn)
}

pub fn list_for_org(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<Directory>> {
    directories::table
        .filter(directories::org_id.eq(org_id))
        .order(directories::created_at.asc())
        .select(Directory::as_select())
        .load(conn)
}

/// User and group counts of a directory.
pub fn counts(conn: &mut DbConn, directory_id: &str) -> QueryResult<(i64, i64)> {
    let users = scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .count()
        .get_result(conn)?;
    let groups = scim_groups::table
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::deleted_at.is_null())
        .count()
        .get_result(conn)?;
    Ok((users, groups))
}

/// What a bearer token authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Valid for this directory; SCIM is enabled for its organization.
    Ok {
        token_id: String,
        last_used_at: Option<NaiveDateTime>,
        dir_last_request: Option<NaiveDateTime>,
    },
    /// Unknown, revoked, or for another directory (indistinguishable to the caller).
    Invalid,
    /// Valid, but the organization's SCIM Provisioning is switched off, or the directory is
    /// disabled.
    Disabled,
}

/// Checks a presented bearer token against a directory: lookup by hash, constant-time compare.
pub fn check_token(
    conn: &mut DbConn,
    directory_id: &str,
    presented: &str,
) -> QueryResult<TokenCheck> {
    if !tokens::plausible(SecretKind::ScimToken, presented) {
        return Ok(TokenCheck::Invalid);
    }
    let hash = tokens::hash(presented);
    type Found = (
        String,
        String,
        Vec<u8>,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        String,
        bool,
        Option<NaiveDateTime>,
    );
    let found: Option<Found> = directory_tokens::table
        .inner_join(directories::table.inner_join(organizations::table))
        .filter(directory_tokens::sha256.eq(&hash))
        .select((
            directory_tokens::id,
            directory_tokens::directory_id,
            directory_tokens::sha256,
            directory_tokens::last_used_at,
            directory_tokens::revoked_at,
            directories::status,
            organizations::scim_enabled,
            directories::last_request_at,
        ))
        .first(conn)
        .optional()?;
    let Some((
        token_id,
        token_dir,
        stored,
        last_used_at,
        revoked_at,
        status,
        scim_enabled,
        dir_last_request,
    )) = found
    else {
        return Ok(TokenCheck::Invalid);
    };
    if !tokens::ct_eq(&stored, &hash) || revoked_at.is_some() || token_dir != directory_id {
        return Ok(TokenCheck::Invalid);
    }
    if !scim_enabled || status != "active" {
        return Ok(TokenCheck::Disabled);
    }
    Ok(TokenCheck::Ok {
        token_id,
        last_used_at,
        dir_last_request,
    })
}

/// Records that the directory received a request (throttled), and that the token was used
/// (throttled to once a minute).
pub fn touch(
    conn: &mut DbConn,
    directory_id: &str,
    token_id: &str,
    token_last_used: Option<NaiveDateTime>,
) -> QueryResult<()> {
    let at = now();
    write_tx(conn, |c| {
        diesel::update(directories::table.find(directory_id))
            .filter(directories::first_request_at.is_null())
            .set(directories::first_request_at.eq(at))
            .execute(c)?;
        diesel::update(directories::table.find(directory_id))
            .filter(directories::last_request_at.is_null().or(
                directories::last_request_at.lt(at - Duration::milliseconds(TOUCH_INTERVAL_MS)),
            ))
            .set(directories::last_request_at.eq(at))
            .execute(c)?;
        if token_last_used.is_none_or(|t| t < at - Duration::seconds(TOKEN_TOUCH_INTERVAL_S)) {
            diesel::update(directory_tokens::table.find(token_id))
                .set(directory_tokens::last_used_at.eq(at))
                .execute(c)?;
        }
        Ok(())
    })
}

/// True when `touch` would write: lets read requests skip the write transaction.
pub fn needs_touch(
    dir_last_request: Option<NaiveDateTime>,
    token_last_used: Option<NaiveDateTime>,
) -> bool {
    let at = now();
    dir_last_request.is_none_or(|t| t < at - Duration::milliseconds(TOUCH_INTERVAL_MS))
        || token_last_used.is_none_or(|t| t < at - Duration::seconds(TOKEN_TOUCH_INTERVAL_S))
}
