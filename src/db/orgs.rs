//! Organizations and their Admin Portal links.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{organizations, portal_links};
use super::{DbConn, new_id, now, write_tx};
use crate::auth::tokens::{self, NewSecret, SecretKind};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub scim_enabled: bool,
    pub created_at: NaiveDateTime,
}

pub fn create(conn: &mut DbConn, name: &str, scim_enabled: bool) -> QueryResult<Org> {
    let org = Org {
        id: new_id(),
        name: name.to_string(),
        scim_enabled,
        created_at: now(),
    };
    write_tx(conn, |c| {
        diesel::insert_into(organizations::table)
            .values((
                organizations::id.eq(&org.id),
                organizations::name.eq(&org.name),
                organizations::scim_enabled.eq(org.scim_enabled),
                organizations::created_at.eq(org.created_at),
            ))
            .execute(c)
    })?;
    Ok(org)
}

pub fn get(conn: &mut DbConn, org_id: &str) -> QueryResult<Option<Org>> {
    organizations::table
        .find(org_id)
        .select(Org::as_select())
        .first(conn)
        .optional()
}

/// Organizations whose name contains `search` (case-insensitively), newest first.
pub fn list(conn: &mut DbConn, search: &str, limit: i64) -> QueryResult<Vec<Org>> {
    let all: Vec<Org> = organizations::table
        .select(Org::as_select())
        .order(organizations::created_at.desc())
        .load(conn)?;
    // Organizations are few; filtering here keeps Unicode case-folding exact on both backends.
    let needle = search.trim().to_lowercase();
    Ok(all
        .into_iter()
        .filter(|o| needle.is_empty() || o.name.to_lowercase().contains(&needle))
        .take(usize::try_from(limit).unwrap_or(0))
        .collect())
}

/// Finds an organization by id or by exact name (for the CLI).
pub fn find(conn: &mut DbConn, id_or_name: &str) -> QueryResult<Option<Org>> {
    if let Some(org) = get(conn, id_or_name)? {
        return Ok(Some(org));
    }
    let mut by_name: Vec<Org> = organizations::table
        .filter(organizations::name.eq(id_or_name))
        .select(Org::as_select())
        .limit(2)
        .load(conn)?;
    Ok(if by_name.len() == 1 {
        by_name.pop()
    } else {
        None
    })
}

pub fn set_scim_enabled(conn: &mut DbConn, org_id: &str, enabled: bool) -> QueryResult<bool> {
    write_tx(conn, |c| {
        diesel::update(organizations::table.find(org_id))
            .set(organizations::scim_enabled.eq(enabled))
            .execute(c)
    })
    .map(|n| n == 1)
    .inspect(|_| super::directories::forget_token_rows())
}

/// A new portal link; the plaintext is returned once and only its hash is stored.
pub fn create_portal_link(
    conn: &mut DbConn,
    org_id: &str,
    ttl: Duration,
) -> QueryResult<(String, NaiveDateTime)> {
    let secret = NewSecret::generate(SecretKind::PortalLink);
    let created = now();
    let expires = created + ttl;
    write_tx(conn, |c| {
        diesel::insert_into(portal_links::table)
            .values((
                portal_links::id.eq(new_id()),
                portal_links::org_id.eq(org_id),
                portal_links::sha256.eq(&secret.sha256),
                portal_links::created_at.eq(created),
                portal_links::expires_at.eq(expires),
            ))
            .execute(c)
    })?;
    Ok((secret.plaintext, expires))
}

/// How long an embed link opens: it is fetched by the vendor's backend just before the page
/// that frames it loads.
pub const EMBED_LINK_SECONDS: i64 = 60;

/// A new embed link for the Admin Portal framed by a page of `origin`: opens once, within
/// `EMBED_LINK_SECONDS`. The plaintext is returned once and only its hash is stored.
pub fn create_embed_link(
    conn: &mut DbConn,
    org_id: &str,
    origin: &str,
) -> QueryResult<(String, NaiveDateTime)> {
    let secret = NewSecret::generate(SecretKind::PortalLink);
    let created = now();
    let expires = created + Duration::seconds(EMBED_LINK_SECONDS);
    write_tx(conn, |c| {
        diesel::insert_into(portal_links::table)
            .values((
                portal_links::id.eq(new_id()),
                portal_links::org_id.eq(org_id),
                portal_links::sha256.eq(&secret.sha256),
                portal_links::created_at.eq(created),
                portal_links::expires_at.eq(expires),
                portal_links::embed_origin.eq(origin),
            ))
            .execute(c)
    })?;
    Ok((secret.plaintext, expires))
}

/// What a portal link opens: the organization, the link's id and, for an embed link, the
/// origin of the page that frames the portal.
pub struct Redeemed {
    pub org: Org,
    pub link_id: String,
    pub embed_origin: Option<String>,
}

/// Why a portal link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    Unknown,
    Expired,
    Revoked,
    /// An embed link opened before (embed links open once).
    Used,
}

/// id, org_id, sha256, expires_at, used_at, revoked_at, embed_origin of a portal link.
type LinkRow = (
    String,
    String,
    Vec<u8>,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<String>,
);

/// What a presented portal link opens, recording its first use (an embed link's only one).
pub fn redeem_portal_link(
    conn: &mut DbConn,
    presented: &str,
) -> QueryResult<Result<Redeemed, LinkProblem>> {
    if !tokens::plausible(SecretKind::PortalLink, presented) {
        return Ok(Err(LinkProblem::Unknown));
    }
    let hash = tokens::hash(presented);
    let found: Option<LinkRow> = portal_links::table
        .filter(portal_links::sha256.eq(&hash))
        .select((
            portal_links::id,
            portal_links::org_id,
            portal_links::sha256,
            portal_links::expires_at,
            portal_links::used_at,
            portal_links::revoked_at,
            portal_links::embed_origin,
        ))
        .first(conn)
        .optional()?;
    let Some((link_id, org_id, stored, expires_at, used_at, revoked_at, embed_origin)) = found
    else {
        return Ok(Err(LinkProblem::Unknown));
    };
    if !tokens::ct_eq(&stored, &hash) {
        return Ok(Err(LinkProblem::Unknown));
    }
    if revoked_at.is_some() {
        return Ok(Err(LinkProblem::Revoked));
    }
    if expires_at <= now() {
        return Ok(Err(LinkProblem::Expired));
    }
    if embed_origin.is_some() {
        // Claimed by a conditional update, so two concurrent opens cannot both succeed.
        let claimed = write_tx(conn, |c| {
            diesel::update(
                portal_links::table
                    .find(&link_id)
                    .filter(portal_links::used_at.is_null()),
            )
            .set(portal_links::used_at.eq(now()))
            .execute(c)
        })?;
        if claimed == 0 {
            return Ok(Err(LinkProblem::Used));
        }
    } else if used_at.is_none() {
        write_tx(conn, |c| {
            diesel::update(portal_links::table.find(&link_id))
                .set(portal_links::used_at.eq(now()))
                .execute(c)
        })?;
    }
    Ok(get(conn, &org_id)?
        .map(|org| Redeemed {
            org,
            link_id,
            embed_origin,
        })
        .ok_or(LinkProblem::Unknown))
}

/// A portal link as the owner console lists it (never the link itself).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = portal_links)]
pub struct PortalLink {
    pub id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn portal_links(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<PortalLink>> {
    portal_links::table
        .filter(portal_links::org_id.eq(org_id))
        .order(portal_links::created_at.desc())
        .limit(50)
        .select(PortalLink::as_select())
        .load(conn)
}

/// Whether `link_id` is one of the organization's portal links.
pub fn link_of_org(conn: &mut DbConn, org_id: &str, link_id: &str) -> QueryResult<bool> {
    let found: i64 = portal_links::table
        .filter(portal_links::org_id.eq(org_id))
        .filter(portal_links::id.eq(link_id))
        .count()
        .get_result(conn)?;
    Ok(found > 0)
}

pub fn revoke_portal_link(conn: &mut DbConn, org_id: &str, link_id: &str) -> QueryResult<bool> {
    write_tx(conn, |c| {
        diesel::update(
            portal_links::table
                .filter(portal_links::org_id.eq(org_id))
                .filter(portal_links::id.eq(link_id))
                .filter(portal_links::revoked_at.is_null()),
        )
        .set(portal_links::revoked_at.eq(now()))
        .execute(c)
        .map(|n| n == 1)
    })
}

/// Directory API: organizations in id order after `after`.
pub fn api_list(conn: &mut DbConn, after: Option<&str>, limit: i64) -> QueryResult<Vec<Org>> {
    let mut q = organizations::table
        .select(Org::as_select())
        .order(organizations::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(organizations::id.gt(a.to_string()));
    }
    q.load(conn)
}

pub fn rename(conn: &mut DbConn, org_id: &str, name: &str) -> QueryResult<bool> {
    write_tx(conn, |c| {
        diesel::update(organizations::table.find(org_id))
            .set(organizations::name.eq(name))
            .execute(c)
            .map(|n| n == 1)
    })
}
