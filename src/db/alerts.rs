//! Directory alerts (see `crate::alerts`): at most one open alert per directory and kind (a
//! partial unique index), raised and cleared with conditional statements so that instances
//! evaluating together on one database never raise or clear one twice; each raise and clear
//! records its event in the same transaction. Also what the evaluation observes of a
//! directory.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::events::{self, EventType};
use super::schema::{directories, directory_alerts, organizations, scim_requests};
use super::{Batch, DbConn, new_id, write_tx};
use crate::alerts::rules::{self, AlertKind, Observations, TokenSeen};
use crate::scim::resource::rfc3339;

/// How long a cleared alert stays listed.
pub const CLEARED_KEPT: Duration = Duration::days(7);
/// Accepted requests read to learn a directory's rhythm.
const HISTORY_ROWS: i64 = 1000;
/// How far back the rhythm is learned (the request log keeps no older rows).
const HISTORY_DAYS: i64 = 30;
/// Statuses of requests refused before their token was accepted: for its credentials (401),
/// a disabled directory or SCIM turned off (403), too many failed attempts (429).
const NOT_ACCEPTED: [i32; 3] = [401, 403, 429];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = directory_alerts)]
pub struct Alert {
    pub id: String,
    pub directory_id: String,
    pub kind: String,
    /// The sentence: what happened and what to do.
    pub detail: String,
    pub raised_at: NaiveDateTime,
    pub cleared_at: Option<NaiveDateTime>,
}

impl Alert {
    /// The kind's short title.
    pub fn title(&self) -> &'static str {
        AlertKind::parse(&self.kind).map_or("Alert", AlertKind::title)
    }
}

/// A directory the evaluation looks at.
#[derive(Debug, Clone, Queryable)]
pub struct Candidate {
    pub id: String,
    pub provider: String,
    pub status: String,
    pub scim_enabled: bool,
    /// The deprovisioning brake's state: `paused` refuses requests on purpose.
    pub brake_state: String,
    pub first_request_at: Option<NaiveDateTime>,
    pub last_request_at: Option<NaiveDateTime>,
}

/// Directories that were ever connected or have an open alert (to clear it).
pub fn candidates(conn: &mut DbConn) -> QueryResult<Vec<Candidate>> {
    let with_open = directory_alerts::table
        .filter(directory_alerts::cleared_at.is_null())
        .select(directory_alerts::directory_id);
    directories::table
        .inner_join(organizations::table)
        .filter(
            directories::first_request_at
                .is_not_null()
                .or(directories::id.eq_any(with_open)),
        )
        .order(directories::id.asc())
        .select((
            directories::id,
            directories::provider,
            directories::status,
            organizations::scim_enabled,
            directories::brake_state,
            directories::first_request_at,
            directories::last_request_at,
        ))
        .load(conn)
}

/// What the evaluation at `now` needs to know of a directory.
pub fn observe(conn: &mut DbConn, d: &Candidate, now: NaiveDateTime) -> QueryResult<Observations> {
    // Refused on purpose (disabled, SCIM off, paused by the brake): nothing to alert about.
    let live = d.status == "active" && d.scim_enabled && d.brake_state != "paused";
    let mut o = Observations {
        provider: d.provider.clone(),
        live,
        first_request_at: d.first_request_at,
        last_accepted: d.last_request_at,
        ..Default::default()
    };
    if !live || d.first_request_at.is_none() {
        return Ok(o);
    }
    // `last_request_at` is refreshed at most every second: the log says to the request whether
    // one was accepted after the newest refused ones.
    let newest_logged: Option<NaiveDateTime> = scim_requests::table
        .filter(scim_requests::directory_id.eq(&d.id))
        .filter(scim_requests::status.ne_all(NOT_ACCEPTED))
        .order(scim_requests::id.desc())
        .select(scim_requests::at)
        .first(conn)
        .optional()?;
    o.last_accepted = o.last_accepted.max(newest_logged);
    if rules::needs_history(&d.provider, o.last_accepted, now) {
        let times: Vec<NaiveDateTime> = scim_requests::table
            .filter(scim_requests::directory_id.eq(&d.id))
            .filter(scim_requests::status.ne_all(NOT_ACCEPTED))
            .order(scim_requests::id.desc())
            .limit(HISTORY_ROWS)
            .select(scim_requests::at)
            .load(conn)?;
        let since = now - Duration::days(HISTORY_DAYS);
        o.history = times
            .into_iter()
            .filter(|t| *t >= since && *t <= now)
            .collect();
    }
    let (rejected, newest) =
        super::requests::refused_for_credentials_since(conn, &d.id, now - rules::REJECTED_WINDOW)?;
    o.rejected = rejected;
    o.last_rejected = newest.map(|r| r.at);
    // Counted from the first request of the window on; 401s have their own alert.
    let (total, failed) = super::requests::counts_since(conn, &d.id, now - rules::ERRORS_WINDOW)?;
    o.recent = (total - rejected).max(0);
    o.recent_failed = (failed - rejected).max(0);
    o.tokens = super::directories::tokens(conn, &d.id)?
        .into_iter()
        .map(|t| TokenSeen {
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        })
        .collect();
    Ok(o)
}

/// The directory's open alerts, oldest first.
pub fn open_for_directory(conn: &mut DbConn, directory_id: &str) -> QueryResult<Vec<Alert>> {
    directory_alerts::table
        .filter(directory_alerts::directory_id.eq(directory_id))
        .filter(directory_alerts::cleared_at.is_null())
        .order((
            directory_alerts::raised_at.asc(),
            directory_alerts::id.asc(),
        ))
        .select(Alert::as_select())
        .load(conn)
}

/// The directory's open alerts and those cleared since `since`, newest first.
pub fn recent_for_directory(
    conn: &mut DbConn,
    directory_id: &str,
    since: NaiveDateTime,
) -> QueryResult<Vec<Alert>> {
    directory_alerts::table
        .filter(directory_alerts::directory_id.eq(directory_id))
        .filter(
            directory_alerts::cleared_at
                .is_null()
                .or(directory_alerts::cleared_at.ge(since)),
        )
        .order((
            directory_alerts::raised_at.desc(),
            directory_alerts::id.desc(),
        ))
        .limit(100)
        .select(Alert::as_select())
        .load(conn)
}

/// The open alerts of an organization's directories, oldest first.
pub fn open_for_org(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<Alert>> {
    directory_alerts::table
        .inner_join(directories::table)
        .filter(directories::org_id.eq(org_id))
        .filter(directory_alerts::cleared_at.is_null())
        .order((
            directory_alerts::raised_at.asc(),
            directory_alerts::id.asc(),
        ))
        .select(Alert::as_select())
        .load(conn)
}

/// How many open alerts each organization has (organizations without any are absent).
pub fn open_counts_by_org(conn: &mut DbConn) -> QueryResult<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = directory_alerts::table
        .inner_join(directories::table)
        .filter(directory_alerts::cleared_at.is_null())
        .group_by(directories::org_id)
        .select((directories::org_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Raises an alert unless one of its kind is open for the directory; records
/// `directory.alert_raised` with it. Returns whether this call raised it.
pub fn raise(
    conn: &mut DbConn,
    directory_id: &str,
    kind: AlertKind,
    detail: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    Batch::run(conn, |batch| {
        events::order_lock(batch.conn())?;
        let row = (
            directory_alerts::id.eq(new_id()),
            directory_alerts::directory_id.eq(directory_id),
            directory_alerts::kind.eq(kind.as_str()),
            directory_alerts::detail.eq(detail),
            directory_alerts::raised_at.eq(at),
        );
        // The partial unique index decides: another instance's open alert makes this a no-op.
        let inserted = crate::on_backend!(batch.conn(), |c| diesel::insert_into(
            directory_alerts::table
        )
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
        if inserted == 1 {
            events::emit(
                batch,
                directory_id,
                EventType::DirectoryAlertRaised,
                serde_json::json!({
                    "kind": kind.as_str(),
                    "sentence": detail,
                    "raised_at": rfc3339(at),
                }),
            )?;
        }
        Ok(inserted == 1)
    })
}

/// Clears an open alert; records `directory.alert_cleared` with it. Returns whether this
/// call cleared it.
pub fn clear(conn: &mut DbConn, alert: &Alert, at: NaiveDateTime) -> QueryResult<bool> {
    Batch::run(conn, |batch| {
        events::order_lock(batch.conn())?;
        let cleared = diesel::update(
            directory_alerts::table
                .filter(directory_alerts::id.eq(&alert.id))
                .filter(directory_alerts::cleared_at.is_null()),
        )
        .set(directory_alerts::cleared_at.eq(at))
        .execute(batch.conn())?;
        if cleared == 1 {
            events::emit(
                batch,
                &alert.directory_id,
                EventType::DirectoryAlertCleared,
                serde_json::json!({
                    "kind": alert.kind,
                    "sentence": alert.detail,
                    "raised_at": rfc3339(alert.raised_at),
                    "cleared_at": rfc3339(at),
                }),
            )?;
        }
        Ok(cleared == 1)
    })
}

/// Brings an open alert's sentence up to date ("nothing for 3 hours" becomes "4 hours").
pub fn update_detail(conn: &mut DbConn, alert_id: &str, detail: &str) -> QueryResult<()> {
    write_tx(conn, |c| {
        diesel::update(
            directory_alerts::table
                .filter(directory_alerts::id.eq(alert_id))
                .filter(directory_alerts::cleared_at.is_null()),
        )
        .set(directory_alerts::detail.eq(detail))
        .execute(c)
        .map(|_| ())
    })
}
