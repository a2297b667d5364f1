//! Directories (one identity provider connection each) and their bearer tokens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::events::EventType;
use super::schema::{
    directories, directory_arrivals, directory_tokens, organizations, scim_groups, scim_users,
};
use super::{Batch, DbConn, new_id, now, write_tx};
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
    /// The last event sequence number of this directory.
    pub event_seq: i64,
    /// Its deprovisioning brake: `clear`, `engaged` or `paused` (see `crate::brake`).
    pub brake_state: String,
    /// Why the brake last engaged.
    pub brake_reason: Option<String>,
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
        event_seq: 0,
        brake_state: crate::brake::BrakeState::Clear.as_str().to_string(),
        brake_reason: None,
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

pub fn list_for_org(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<Directory>> {
    directories::table
        .filter(directories::org_id.eq(org_id))
        .order(directories::created_at.asc())
        .select(Directory::as_select())
        .load(conn)
}

/// The directories of several organizations (the owner console's list), each organization's
/// in creation order: one query for all, not one per organization.
pub fn list_for_orgs(
    conn: &mut DbConn,
    org_ids: &[&str],
) -> QueryResult<HashMap<String, Vec<Directory>>> {
    let mut out: HashMap<String, Vec<Directory>> = HashMap::new();
    for chunk in org_ids.chunks(500) {
        let dirs: Vec<Directory> = directories::table
            .filter(directories::org_id.eq_any(chunk))
            .order((directories::org_id, directories::created_at.asc()))
            .select(Directory::as_select())
            .load(conn)?;
        for d in dirs {
            out.entry(d.org_id.clone()).or_default().push(d);
        }
    }
    Ok(out)
}

/// How many live groups a directory has. (Its users are counted once per version of the
/// directory: `user_pages::Bookmarks::live_users`.)
pub fn live_groups(conn: &mut DbConn, directory_id: &str) -> QueryResult<i64> {
    scim_groups::table
        .filter(scim_groups::directory_id.eq(directory_id))
        .filter(scim_groups::deleted_at.is_null())
        .count()
        .get_result(conn)
}

/// What a bearer token authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Valid for this directory; SCIM is enabled for its organization.
    Ok {
        token_id: String,
        last_used_at: Option<NaiveDateTime>,
        dir_last_request: Option<NaiveDateTime>,
        /// The directory's provider slug (for the metrics' labels).
        provider: String,
    },
    /// Unknown, or for another directory (indistinguishable to the caller).
    Invalid,
    /// A token of this directory that was revoked (the inspector explains the 401).
    Revoked(NaiveDateTime),
    /// Valid, but the directory is disabled.
    Disabled,
    /// Valid, but the organization's SCIM Provisioning is switched off.
    ScimOff,
    /// Valid, but the directory is paused: an admin rejected a burst of deprovisions the brake
    /// held, and requests wait until an admin resumes it.
    Paused,
}

/// A token's row with what decides whether it may be used.
#[derive(Clone, Queryable)]
struct FoundToken {
    token_id: String,
    directory_id: String,
    sha256: Vec<u8>,
    last_used_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
    status: String,
    scim_enabled: bool,
    dir_last_request: Option<NaiveDateTime>,
    provider: String,
    brake_state: String,
}

/// Token rows read in the last `TokenRows::TTL`, by hash: every SCIM request presents its
/// token, and reading it was a third of a Postgres read's round trips. A revocation, a disabled
/// directory or SCIM switched off in this process is seen at once (`forget_token_rows`);
/// made by another instance or the CLI, within `TTL`.
struct TokenRows {
    /// Each row with when it was read and the generation it was read in.
    rows: Mutex<HashMap<Vec<u8>, (Instant, u64, FoundToken)>>,
    /// Raised by every change of what the rows hold: a row read before it is not used after.
    generation: AtomicU64,
}

impl TokenRows {
    const TTL: std::time::Duration = std::time::Duration::from_secs(1);
    /// Tokens remembered at most (all are forgotten past this; only found tokens get in).
    const CAPACITY: usize = 4096;

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, (Instant, u64, FoundToken)>> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, hash: &[u8]) -> Option<FoundToken> {
        let generation = self.generation();
        self.lock()
            .get(hash)
            .filter(|(read, g, _)| *g == generation && read.elapsed() < Self::TTL)
            .map(|(_, _, row)| row.clone())
    }

    /// Keeps `row`, read in `generation`.
    fn keep(&self, generation: u64, row: FoundToken) {
        let mut rows = self.lock();
        if rows.len() >= Self::CAPACITY {
            rows.clear();
        }
        rows.insert(row.sha256.clone(), (Instant::now(), generation, row));
    }
}

static TOKEN_ROWS: LazyLock<TokenRows> = LazyLock::new(|| TokenRows {
    rows: Mutex::default(),
    generation: AtomicU64::default(),
});

/// Called after a committed change to a token, a directory's status or an organization's SCIM
/// switch: no token check of this process uses a row read before it.
pub(super) fn forget_token_rows() {
    TOKEN_ROWS.generation.fetch_add(1, Ordering::SeqCst);
}

fn find_token(conn: &mut DbConn, hash: &[u8]) -> QueryResult<Option<FoundToken>> {
    if let Some(row) = TOKEN_ROWS.get(hash) {
        return Ok(Some(row));
    }
    // Taken before the read: a change committed meanwhile outdates this row.
    let generation = TOKEN_ROWS.generation();
    let found: Option<FoundToken> = crate::on_backend!(conn, |c| directory_tokens::table
        .inner_join(directories::table.inner_join(organizations::table))
        .filter(directory_tokens::sha256.eq(hash))
        .select((
            directory_tokens::id,
            directory_tokens::directory_id,
            directory_tokens::sha256,
            directory_tokens::last_used_at,
            directory_tokens::revoked_at,
            directories::status,
            organizations::scim_enabled,
            directories::last_request_at,
            directories::provider,
            directories::brake_state,
        ))
        .first(c)
        .optional())?;
    if let Some(row) = &found {
        TOKEN_ROWS.keep(generation, row.clone());
    }
    Ok(found)
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
    let Some(found) = find_token(conn, &hash)? else {
        return Ok(TokenCheck::Invalid);
    };
    if !tokens::ct_eq(&found.sha256, &hash) || found.directory_id != directory_id {
        return Ok(TokenCheck::Invalid);
    }
    if let Some(at) = found.revoked_at {
        return Ok(TokenCheck::Revoked(at));
    }
    if !found.scim_enabled {
        return Ok(TokenCheck::ScimOff);
    }
    if found.status != "active" {
        return Ok(TokenCheck::Disabled);
    }
    if found.brake_state == crate::brake::BrakeState::Paused.as_str() {
        return Ok(TokenCheck::Paused);
    }
    Ok(TokenCheck::Ok {
        token_id: found.token_id,
        last_used_at: found.last_used_at,
        dir_last_request: found.dir_last_request,
        provider: found.provider,
    })
}

/// The directory's event sequence: it rises with every change of its users (see
/// `db::user_pages`).
pub fn event_seq(conn: &mut DbConn, directory_id: &str) -> QueryResult<i64> {
    directories::table
        .find(directory_id)
        .select(directories::event_seq)
        .first(conn)
}

/// Records that the directory received a request (throttled), and that the token was used
/// (throttled to once a minute).
pub fn touch(
    batch: &mut Batch<'_>,
    directory_id: &str,
    token_id: &str,
    token_last_used: Option<NaiveDateTime>,
) -> QueryResult<()> {
    let at = now();
    // This updates the directory row: the event-order lock comes first, as for every
    // writer of that row, so that concurrent transactions take the two in one order.
    super::events::order_lock(batch.conn())?;
    let first = diesel::update(directories::table.find(directory_id))
        .filter(directories::first_request_at.is_null())
        .set(directories::first_request_at.eq(at))
        .execute(batch.conn())?;
    if first == 1 {
        super::events::emit(
            batch,
            directory_id,
            EventType::DirectoryConnected,
            serde_json::json!({"first_request_at": crate::scim::resource::rfc3339(at)}),
        )?;
    }
    diesel::update(directories::table.find(directory_id))
        .filter(directories::last_request_at.is_null().or(
            directories::last_request_at.lt(at - Duration::milliseconds(TOUCH_INTERVAL_MS)),
        ))
        .set(directories::last_request_at.eq(at))
        .execute(batch.conn())?;
    if token_last_used.is_none_or(|t| t < at - Duration::seconds(TOKEN_TOUCH_INTERVAL_S)) {
        diesel::update(directory_tokens::table.find(token_id))
            .set(directory_tokens::last_used_at.eq(at))
            .execute(batch.conn())?;
    }
    Ok(())
}

/// Remembers when this process last recorded each token's use. At thousands of requests a
/// second, every request that arrives before a due touch has committed finds it due; the gate
/// lets one of them write it (the others' touches would change nothing).
#[derive(Default)]
pub struct TouchGate {
    last: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl TouchGate {
    /// True when this process has not recorded `token_id`'s use within the touch interval
    /// (and now counts as having done so).
    pub fn claim(&self, token_id: &str) -> bool {
        let interval = std::time::Duration::from_millis(TOUCH_INTERVAL_MS.unsigned_abs());
        let now = std::time::Instant::now();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last
            .get(token_id)
            .is_some_and(|t| now.duration_since(*t) < interval)
        {
            return false;
        }
        if last.len() >= 4096 {
            last.retain(|_, t| now.duration_since(*t) < interval);
        }
        last.insert(token_id.to_string(), now);
        true
    }
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

/// Live bearer tokens a directory may have at once: two, so rotation never breaks a sync.
pub const MAX_LIVE_TOKENS: i64 = 2;

/// A bearer token as the portal lists it (never the token itself).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = directory_tokens)]
pub struct TokenInfo {
    pub id: String,
    pub suffix: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn tokens(conn: &mut DbConn, directory_id: &str) -> QueryResult<Vec<TokenInfo>> {
    directory_tokens::table
        .filter(directory_tokens::directory_id.eq(directory_id))
        .order(directory_tokens::created_at.desc())
        .select(TokenInfo::as_select())
        .load(conn)
}

/// A second token for rotation; `None` when the directory already has two live tokens.
pub fn create_token(conn: &mut DbConn, directory_id: &str) -> QueryResult<Option<String>> {
    write_tx(conn, |c| {
        let live: i64 = directory_tokens::table
            .filter(directory_tokens::directory_id.eq(directory_id))
            .filter(directory_tokens::revoked_at.is_null())
            .count()
            .get_result(c)?;
        if live >= MAX_LIVE_TOKENS {
            return Ok(None);
        }
        let secret = NewSecret::generate(SecretKind::ScimToken);
        diesel::insert_into(directory_tokens::table)
            .values((
                directory_tokens::id.eq(new_id()),
                directory_tokens::directory_id.eq(directory_id),
                directory_tokens::sha256.eq(&secret.sha256),
                directory_tokens::suffix.eq(secret.suffix()),
                directory_tokens::created_at.eq(now()),
            ))
            .execute(c)?;
        Ok(Some(secret.plaintext))
    })
}

/// Revokes one token of the directory; false if it was unknown or already revoked.
pub fn revoke_token(conn: &mut DbConn, directory_id: &str, token_id: &str) -> QueryResult<bool> {
    write_tx(conn, |c| {
        diesel::update(
            directory_tokens::table
                .filter(directory_tokens::directory_id.eq(directory_id))
                .filter(directory_tokens::id.eq(token_id))
                .filter(directory_tokens::revoked_at.is_null()),
        )
        .set(directory_tokens::revoked_at.eq(now()))
        .execute(c)
        .map(|n| n == 1)
    })
    .inspect(|_| forget_token_rows())
}

/// Enables (`active`) or disables (`disabled`) a directory of the organization.
pub fn set_status(
    conn: &mut DbConn,
    org_id: &str,
    directory_id: &str,
    active: bool,
) -> QueryResult<bool> {
    Batch::run(conn, |batch| {
        let c = batch.conn();
        if !active {
            super::events::order_lock(c)?;
        }
        let n = diesel::update(
            directories::table
                .filter(directories::org_id.eq(org_id))
                .filter(directories::id.eq(directory_id)),
        )
        .set(directories::status.eq(if active { "active" } else { "disabled" }))
        .execute(c)?;
        if n == 1 && !active {
            super::events::emit(
                batch,
                directory_id,
                EventType::DirectoryDisabled,
                serde_json::json!({}),
            )?;
        }
        Ok(n == 1)
    })
    .inspect(|_| forget_token_rows())
}

/// Deletes a directory with its tokens, users, groups, memberships and request log.
pub fn delete(conn: &mut DbConn, org_id: &str, directory_id: &str) -> QueryResult<bool> {
    use super::schema::{group_members, scim_requests, user_emails};
    Batch::run(conn, |batch| {
        let Some(dir) = get(batch.conn(), org_id, directory_id)? else {
            return Ok(false);
        };
        // Recorded before the rows go; events outlive their directory until retention.
        super::events::emit(
            batch,
            &dir.id,
            EventType::DirectoryDeleted,
            serde_json::json!({}),
        )?;
        batch.write_events()?;
        let c = batch.conn();
        let user_ids = scim_users::table
            .filter(scim_users::directory_id.eq(&dir.id))
            .select(scim_users::id);
        diesel::delete(group_members::table.filter(group_members::user_id.eq_any(user_ids)))
            .execute(c)?;
        diesel::delete(user_emails::table.filter(user_emails::directory_id.eq(&dir.id)))
            .execute(c)?;
        diesel::delete(scim_users::table.filter(scim_users::directory_id.eq(&dir.id)))
            .execute(c)?;
        diesel::delete(scim_groups::table.filter(scim_groups::directory_id.eq(&dir.id)))
            .execute(c)?;
        diesel::delete(scim_requests::table.filter(scim_requests::directory_id.eq(&dir.id)))
            .execute(c)?;
        diesel::delete(directory_tokens::table.filter(directory_tokens::directory_id.eq(&dir.id)))
            .execute(c)?;
        diesel::delete(directories::table.find(&dir.id)).execute(c)?;
        Ok(true)
    })
    .inspect(|_| forget_token_rows())
}

/// What the connection-health checklist shows.
#[derive(Debug, Clone)]
pub struct Health {
    pub first_request_at: Option<NaiveDateTime>,
    pub last_request_at: Option<NaiveDateTime>,
    pub first_user_at: Option<NaiveDateTime>,
    pub first_group_at: Option<NaiveDateTime>,
    /// First arrivals found by this view and not kept yet (see `keep_first_arrivals`).
    pub new_arrivals: Option<FirstArrivals>,
    pub users: i64,
    pub groups: i64,
    pub last_error: Option<super::requests::Request>,
}

/// `user_counts` remembers the directory's number of live users per version. First arrivals
/// found here and not kept yet are the caller's to keep (`keep_first_arrivals`).
pub fn health(
    conn: &mut DbConn,
    dir: &Directory,
    user_counts: &super::user_pages::Bookmarks,
) -> QueryResult<Health> {
    let first = first_arrivals(conn, &dir.id)?;
    let users = user_counts.live_users(conn, &dir.id, dir.event_seq)?;
    let groups = live_groups(conn, &dir.id)?;
    Ok(Health {
        first_request_at: dir.first_request_at,
        last_request_at: dir.last_request_at,
        first_user_at: first.found.user,
        first_group_at: first.found.group,
        new_arrivals: first.not_kept_yet(),
        users,
        groups,
        last_error: super::requests::last_error(conn, &dir.id)?,
    })
}

/// When a directory's first user and first group arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FirstArrivals {
    pub user: Option<NaiveDateTime>,
    pub group: Option<NaiveDateTime>,
}

/// A directory's first arrivals, and which of them were kept before.
struct Arrivals {
    kept: FirstArrivals,
    found: FirstArrivals,
}

impl Arrivals {
    /// What was found and is not kept yet.
    fn not_kept_yet(&self) -> Option<FirstArrivals> {
        let new = FirstArrivals {
            user: self.found.user.filter(|_| self.kept.user.is_none()),
            group: self.found.group.filter(|_| self.kept.group.is_none()),
        };
        (new != FirstArrivals::default()).then_some(new)
    }
}

/// The directory's first arrivals: as `directory_arrivals` keeps them, else found
/// (`min(created_at)`, which no index serves: a read of the whole directory, 27 ms at 112 000
/// users on Postgres, a quarter of a second on SQLite right after a restart).
fn first_arrivals(conn: &mut DbConn, directory_id: &str) -> QueryResult<Arrivals> {
    let kept = directory_arrivals::table
        .find(directory_id)
        .select((
            directory_arrivals::first_user_at,
            directory_arrivals::first_group_at,
        ))
        .first::<(Option<NaiveDateTime>, Option<NaiveDateTime>)>(conn)
        .optional()?
        .map(|(user, group)| FirstArrivals { user, group })
        .unwrap_or_default();
    let user = match kept.user {
        Some(at) => Some(at),
        None => scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .select(diesel::dsl::min(scim_users::created_at))
            .first::<Option<NaiveDateTime>>(conn)?,
    };
    let group = match kept.group {
        Some(at) => Some(at),
        None => scim_groups::table
            .filter(scim_groups::directory_id.eq(directory_id))
            .select(diesel::dsl::min(scim_groups::created_at))
            .first::<Option<NaiveDateTime>>(conn)?,
    };
    Ok(Arrivals {
        kept,
        found: FirstArrivals { user, group },
    })
}

/// Queues, on `writer`, the keeping of the first arrivals `health` found and that were not
/// kept yet, so that no later view, in this process or after a restart, reads the directory
/// for them again.
pub fn keep_first_arrivals(writer: &super::writer::Writer, directory_id: &str, health: &Health) {
    if let Some(new) = health.new_arrivals {
        let id = directory_id.to_string();
        writer.spawn("keeping a directory's first arrivals", move |batch| {
            remember_first_arrivals(batch.conn(), &id, new)
        });
    }
}

/// Keeps first arrivals in `directory_arrivals` (those it does not keep already).
fn remember_first_arrivals(
    conn: &mut DbConn,
    directory_id: &str,
    found: FirstArrivals,
) -> QueryResult<()> {
    crate::on_backend!(conn, |c| diesel::insert_into(directory_arrivals::table)
        .values(directory_arrivals::directory_id.eq(directory_id))
        .on_conflict(directory_arrivals::directory_id)
        .do_nothing()
        .execute(c))?;
    let row = || directory_arrivals::table.find(directory_id);
    if let Some(at) = found.user {
        diesel::update(row())
            .filter(directory_arrivals::first_user_at.is_null())
            .set(directory_arrivals::first_user_at.eq(at))
            .execute(conn)?;
    }
    if let Some(at) = found.group {
        diesel::update(row())
            .filter(directory_arrivals::first_group_at.is_null())
            .set(directory_arrivals::first_group_at.eq(at))
            .execute(conn)?;
    }
    Ok(())
}

/// Directory API: directories, optionally of one organization, in id order.
pub fn api_list(
    conn: &mut DbConn,
    org_id: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Directory>> {
    let mut q = directories::table
        .select(Directory::as_select())
        .order(directories::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(o) = org_id {
        q = q.filter(directories::org_id.eq(o.to_string()));
    }
    if let Some(a) = after {
        q = q.filter(directories::id.gt(a.to_string()));
    }
    q.load(conn)
}

pub fn api_get(conn: &mut DbConn, id: &str) -> QueryResult<Option<Directory>> {
    directories::table
        .find(id)
        .select(Directory::as_select())
        .first(conn)
        .optional()
}
