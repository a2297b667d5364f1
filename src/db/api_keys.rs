//! API keys of the vendor's application (`roster_key_…`): shown once, stored as SHA-256.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::api_keys;
use super::{DbConn, new_id, now, write_tx};
use crate::auth::tokens::{self, NewSecret, SecretKind};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub suffix: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// The one organization the key may reach; `None`: every organization.
    pub org_id: Option<String>,
}

/// Creates a vendor-wide key; returns its id and the key itself (shown once).
pub fn create(conn: &mut DbConn, name: &str) -> QueryResult<(String, String)> {
    create_scoped(conn, name, None)
}

/// Creates a key that reaches only `org_id` (every organization when `None`).
pub fn create_scoped(
    conn: &mut DbConn,
    name: &str,
    org_id: Option<&str>,
) -> QueryResult<(String, String)> {
    let secret = NewSecret::generate(SecretKind::ApiKey);
    let id = new_id();
    write_tx(conn, |c| {
        diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(&id),
                api_keys::name.eq(name),
                api_keys::sha256.eq(&secret.sha256),
                api_keys::suffix.eq(secret.suffix()),
                api_keys::created_at.eq(now()),
                api_keys::org_id.eq(org_id),
            ))
            .execute(c)
    })?;
    Ok((id, secret.plaintext))
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .order(api_keys::created_at.desc())
        .select(ApiKey::as_select())
        .load(conn)
}

pub fn revoke(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    write_tx(conn, |c| {
        diesel::update(
            api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(now()))
        .execute(c)
        .map(|n| n == 1)
    })
}

/// id, sha256, revoked_at, last_used_at, org_id of a key.
type KeyRow = (
    String,
    Vec<u8>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<String>,
);

/// A live key: its id and the organization it is scoped to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedKey {
    pub id: String,
    pub org_id: Option<String>,
}

/// The live key presented, if any (lookup by hash, constant-time compare).
pub fn check(conn: &mut DbConn, presented: &str) -> QueryResult<Option<CheckedKey>> {
    if !tokens::plausible(SecretKind::ApiKey, presented) {
        return Ok(None);
    }
    let hash = tokens::hash(presented);
    let found: Option<KeyRow> = api_keys::table
        .filter(api_keys::sha256.eq(&hash))
        .select((
            api_keys::id,
            api_keys::sha256,
            api_keys::revoked_at,
            api_keys::last_used_at,
            api_keys::org_id,
        ))
        .first(conn)
        .optional()?;
    let Some((id, stored, revoked, last_used, org_id)) = found else {
        return Ok(None);
    };
    if !tokens::ct_eq(&stored, &hash) || revoked.is_some() {
        return Ok(None);
    }
    if last_used.is_none_or(|t| t < now() - chrono::Duration::seconds(60)) {
        write_tx(conn, |c| {
            diesel::update(api_keys::table.find(&id))
                .set(api_keys::last_used_at.eq(now()))
                .execute(c)
        })?;
    }
    Ok(Some(CheckedKey { id, org_id }))
}
