//! Storage of the deprovisioning brake (see `crate::brake`): each organization's thresholds
//! and each directory's tightening and state, the deprovisions of the rolling window, the held
//! users (as the application last saw them) and their held events.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{
    deprovisions, directories, held_events, held_users, organizations, scim_users,
};
use super::users::UserRow;
use super::{DbConn, now};
use crate::brake::{BrakeState, Deprovision, Thresholds, Tightened};

/// A directory's brake: its state, its thresholds and whose they are.
#[derive(Debug, Clone)]
pub struct DirectoryBrake {
    pub directory_id: String,
    pub org_id: String,
    pub provider: String,
    pub state: BrakeState,
    /// The organization's thresholds.
    pub org: Thresholds,
    /// The directory's own tightening.
    pub tightened: Tightened,
    pub changed_at: Option<NaiveDateTime>,
    /// Why it engaged (kept after a rejection, to say why the directory is paused).
    pub reason: Option<String>,
}

impl DirectoryBrake {
    /// The thresholds in force for this directory.
    pub fn thresholds(&self) -> Thresholds {
        self.org.tightened_by(self.tightened)
    }
}

type BrakeColumns = (
    String,
    String,
    String,
    String,
    i32,
    i32,
    i32,
    i32,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<NaiveDateTime>,
    Option<String>,
);

/// The brake of a directory, if the directory exists.
pub fn of_directory(conn: &mut DbConn, directory_id: &str) -> QueryResult<Option<DirectoryBrake>> {
    let row: Option<BrakeColumns> = directories::table
        .inner_join(organizations::table)
        .filter(directories::id.eq(directory_id))
        .select((
            directories::id,
            directories::org_id,
            directories::provider,
            directories::brake_state,
            organizations::brake_min_users,
            organizations::brake_min_percent,
            organizations::brake_window_minutes,
            organizations::brake_settle_seconds,
            directories::brake_min_users,
            directories::brake_min_percent,
            directories::brake_window_minutes,
            directories::brake_settle_seconds,
            directories::brake_changed_at,
            directories::brake_reason,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(id, org_id, provider, state, u, p, w, s, du, dp, dw, ds, changed_at, reason)| {
            DirectoryBrake {
                directory_id: id,
                org_id,
                provider,
                state: BrakeState::parse(&state),
                org: Thresholds {
                    min_users: u,
                    min_percent: p,
                    window_minutes: w,
                    settle_seconds: s,
                },
                tightened: Tightened {
                    min_users: du,
                    min_percent: dp,
                    window_minutes: dw,
                    settle_seconds: ds,
                },
                changed_at,
                reason,
            }
        },
    ))
}

/// An organization's thresholds.
pub fn org_thresholds(conn: &mut DbConn, org_id: &str) -> QueryResult<Option<Thresholds>> {
    let row: Option<(i32, i32, i32, i32)> = organizations::table
        .find(org_id)
        .select((
            organizations::brake_min_users,
            organizations::brake_min_percent,
            organizations::brake_window_minutes,
            organizations::brake_settle_seconds,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(u, p, w, s)| Thresholds {
        min_users: u,
        min_percent: p,
        window_minutes: w,
        settle_seconds: s,
    }))
}

/// Sets an organization's thresholds (already validated).
pub fn set_org_thresholds(conn: &mut DbConn, org_id: &str, t: Thresholds) -> QueryResult<bool> {
    let n = diesel::update(organizations::table.find(org_id))
        .set((
            organizations::brake_min_users.eq(t.min_users),
            organizations::brake_min_percent.eq(t.min_percent),
            organizations::brake_window_minutes.eq(t.window_minutes),
            organizations::brake_settle_seconds.eq(t.settle_seconds),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Sets a directory's tightening (already checked against its organization's thresholds).
pub fn set_tightened(conn: &mut DbConn, directory_id: &str, t: Tightened) -> QueryResult<bool> {
    let n = diesel::update(directories::table.find(directory_id))
        .set((
            directories::brake_min_users.eq(t.min_users),
            directories::brake_min_percent.eq(t.min_percent),
            directories::brake_window_minutes.eq(t.window_minutes),
            directories::brake_settle_seconds.eq(t.settle_seconds),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Deprovisions older than the longest window are of no use.
fn prune_before(at: NaiveDateTime) -> NaiveDateTime {
    at - Duration::minutes(i64::from(crate::brake::MAX_WINDOW_MINUTES))
}

/// Counts a deprovision of an active user in the directory's window.
pub fn record_deprovision(
    conn: &mut DbConn,
    directory_id: &str,
    user_id: &str,
    kind: Deprovision,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::delete(
        deprovisions::table
            .filter(deprovisions::directory_id.eq(directory_id))
            .filter(deprovisions::at.lt(prune_before(at))),
    )
    .execute(conn)?;
    diesel::insert_into(deprovisions::table)
        .values((
            deprovisions::directory_id.eq(directory_id),
            deprovisions::user_id.eq(user_id),
            deprovisions::kind.eq(kind.as_str()),
            deprovisions::at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The deprovisions of a directory's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub deactivated: i64,
    pub deleted: i64,
    /// When the window's first one happened.
    pub first_at: Option<NaiveDateTime>,
}

impl Window {
    pub fn total(&self) -> i64 {
        self.deactivated + self.deleted
    }
}

/// The deprovisions of the directory since `since`.
pub fn window(conn: &mut DbConn, directory_id: &str, since: NaiveDateTime) -> QueryResult<Window> {
    let rows: Vec<(String, i64, Option<NaiveDateTime>)> = deprovisions::table
        .filter(deprovisions::directory_id.eq(directory_id))
        .filter(deprovisions::at.ge(since))
        .group_by(deprovisions::kind)
        .select((
            deprovisions::kind,
            diesel::dsl::count_star(),
            diesel::dsl::min(deprovisions::at),
        ))
        .load(conn)?;
    let mut w = Window::default();
    for (kind, n, first) in rows {
        match Deprovision::parse(&kind) {
            Deprovision::Deactivated => w.deactivated += n,
            Deprovision::Deleted => w.deleted += n,
        }
        w.first_at = match (w.first_at, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(w)
}

/// Forgets the window's deprovisions (after an admin's decision, the count starts afresh).
pub fn clear_window(conn: &mut DbConn, directory_id: &str) -> QueryResult<()> {
    diesel::delete(deprovisions::table.filter(deprovisions::directory_id.eq(directory_id)))
        .execute(conn)?;
    Ok(())
}

/// The directory's active users now.
pub fn active_users(conn: &mut DbConn, directory_id: &str) -> QueryResult<i64> {
    scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .filter(scim_users::active.eq(true))
        .count()
        .get_result(conn)
}

/// Moves the brake from `from` to `to` (only if it is still at `from`: of two admins or two
/// instances deciding at once, one wins); `reason` replaces the stored one when given.
pub fn set_state(
    conn: &mut DbConn,
    directory_id: &str,
    from: BrakeState,
    to: BrakeState,
    reason: Option<&str>,
) -> QueryResult<bool> {
    let target = directories::table
        .filter(directories::id.eq(directory_id))
        .filter(directories::brake_state.eq(from.as_str()));
    let n = match reason {
        Some(reason) => diesel::update(target)
            .set((
                directories::brake_state.eq(to.as_str()),
                directories::brake_changed_at.eq(now()),
                directories::brake_reason.eq(reason),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                directories::brake_state.eq(to.as_str()),
                directories::brake_changed_at.eq(now()),
            ))
            .execute(conn)?,
    };
    if n == 1 && (from == BrakeState::Paused || to == BrakeState::Paused) {
        // The token check refuses requests to a paused directory (a check running meanwhile
        // may keep the old state for the token cache's second).
        super::directories::forget_token_rows();
    }
    Ok(n == 1)
}

/// Rewords why the brake engaged (the burst it holds grew).
pub fn set_reason(conn: &mut DbConn, directory_id: &str, reason: &str) -> QueryResult<()> {
    diesel::update(directories::table.find(directory_id))
        .set(directories::brake_reason.eq(reason))
        .execute(conn)?;
    Ok(())
}

/// A user whose deprovision the application has not seen.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = held_users)]
pub struct HeldUser {
    pub directory_id: String,
    pub user_id: String,
    kind: String,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub held_at: NaiveDateTime,
    pub release_at: Option<NaiveDateTime>,
    app_view: String,
    app_groups: String,
}

/// The user as the application last saw it: its row and its roles then.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AppView {
    pub row: UserRow,
    pub roles: Vec<String>,
}

impl HeldUser {
    pub fn kind(&self) -> Deprovision {
        Deprovision::parse(&self.kind)
    }

    /// The user as the application last saw it (`None` if the stored view is unreadable).
    pub fn app_view(&self) -> Option<AppView> {
        serde_json::from_str(&self.app_view).ok()
    }

    /// The user's groups as the application last saw them.
    pub fn app_groups(&self) -> Vec<String> {
        serde_json::from_str(&self.app_groups).unwrap_or_default()
    }
}

/// Holds a user: its deprovision and later events wait for a decision (`release_at: None`)
/// or until `release_at`. A user already held keeps what the application saw; only its kind
/// moves (a held deactivation followed by a deletion is a held deletion).
pub fn hold(
    conn: &mut DbConn,
    directory_id: &str,
    user_id: &str,
    kind: Deprovision,
    release_at: Option<NaiveDateTime>,
    view: &AppView,
    groups: &[String],
) -> QueryResult<()> {
    let app_view = serde_json::to_string(view)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let app_groups = serde_json::to_string(groups)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let row = (
        held_users::directory_id.eq(directory_id),
        held_users::user_id.eq(user_id),
        held_users::kind.eq(kind.as_str()),
        held_users::held_at.eq(now()),
        held_users::release_at.eq(release_at),
        held_users::app_view.eq(app_view),
        held_users::app_groups.eq(app_groups),
    );
    crate::on_backend!(conn, |c| diesel::insert_into(held_users::table)
        .values(row.clone())
        .on_conflict((held_users::directory_id, held_users::user_id))
        .do_update()
        .set(held_users::kind.eq(kind.as_str()))
        .execute(c))?;
    Ok(())
}

/// Whether the user is held.
pub fn is_held(conn: &mut DbConn, directory_id: &str, user_id: &str) -> QueryResult<bool> {
    let n: i64 = held_users::table
        .filter(held_users::directory_id.eq(directory_id))
        .filter(held_users::user_id.eq(user_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The held users of a directory (settling ones included).
pub fn held_ids(conn: &mut DbConn, directory_id: &str) -> QueryResult<HashSet<String>> {
    Ok(held_users::table
        .filter(held_users::directory_id.eq(directory_id))
        .select(held_users::user_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// The held users of a directory, oldest first.
pub fn held_users(conn: &mut DbConn, directory_id: &str) -> QueryResult<Vec<HeldUser>> {
    held_users::table
        .filter(held_users::directory_id.eq(directory_id))
        .order((held_users::held_at.asc(), held_users::user_id.asc()))
        .select(HeldUser::as_select())
        .load(conn)
}

/// How many users each of these directories holds.
pub fn held_counts(
    conn: &mut DbConn,
    directory_ids: &[String],
) -> QueryResult<HashMap<String, i64>> {
    Ok(held_users::table
        .filter(held_users::directory_id.eq_any(directory_ids))
        .group_by(held_users::directory_id)
        .select((held_users::directory_id, diesel::dsl::count_star()))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect())
}

/// The application's view of those of `user_ids` that are held, by user id.
pub fn app_views(conn: &mut DbConn, user_ids: &[String]) -> QueryResult<HashMap<String, AppView>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let held: Vec<HeldUser> = held_users::table
        .filter(held_users::user_id.eq_any(user_ids))
        .select(HeldUser::as_select())
        .load(conn)?;
    Ok(held
        .into_iter()
        .filter_map(|h| h.app_view().map(|v| (h.user_id, v)))
        .collect())
}

/// An event of a held user, kept until release.
pub struct HeldEvent {
    pub directory_id: String,
    pub user_id: String,
    pub event_type: String,
    pub data: String,
}

/// Stores held events (in the order given).
pub fn insert_held_events(conn: &mut DbConn, events: Vec<HeldEvent>) -> QueryResult<()> {
    let at = now();
    for chunk in events.chunks(200) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|e| {
                (
                    held_events::directory_id.eq(&e.directory_id),
                    held_events::user_id.eq(&e.user_id),
                    held_events::event_type.eq(&e.event_type),
                    held_events::data.eq(&e.data),
                    held_events::held_at.eq(at),
                )
            })
            .collect();
        crate::on_backend!(&mut *conn, |c| diesel::insert_into(held_events::table)
            .values(rows.clone())
            .execute(c))?;
    }
    Ok(())
}

/// Takes the held events of a directory (of `users` only, when given), in their order:
/// returned and deleted.
pub fn take_held_events(
    conn: &mut DbConn,
    directory_id: &str,
    users: Option<&[String]>,
) -> QueryResult<Vec<(String, String)>> {
    let mut q = held_events::table
        .filter(held_events::directory_id.eq(directory_id))
        .order(held_events::id.asc())
        .select((held_events::id, held_events::event_type, held_events::data))
        .into_boxed();
    if let Some(users) = users {
        q = q.filter(held_events::user_id.eq_any(users.to_vec()));
    }
    let rows: Vec<(i64, String, String)> = q.load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|(id, _, _)| *id).collect();
    for chunk in ids.chunks(500) {
        diesel::delete(held_events::table.filter(held_events::id.eq_any(chunk))).execute(conn)?;
    }
    Ok(rows.into_iter().map(|(_, t, d)| (t, d)).collect())
}

/// How many events a directory holds.
pub fn held_event_count(conn: &mut DbConn, directory_id: &str) -> QueryResult<i64> {
    held_events::table
        .filter(held_events::directory_id.eq(directory_id))
        .count()
        .get_result(conn)
}

/// Stops holding users of a directory (all of them when `users` is `None`).
pub fn unhold(conn: &mut DbConn, directory_id: &str, users: Option<&[String]>) -> QueryResult<()> {
    match users {
        Some(users) => diesel::delete(
            held_users::table
                .filter(held_users::directory_id.eq(directory_id))
                .filter(held_users::user_id.eq_any(users.to_vec())),
        )
        .execute(conn)?,
        None => diesel::delete(held_users::table.filter(held_users::directory_id.eq(directory_id)))
            .execute(conn)?,
    };
    Ok(())
}

/// Settling users stop settling: the engaged brake holds them until a decision.
pub fn stop_settling(conn: &mut DbConn, directory_id: &str) -> QueryResult<()> {
    diesel::update(held_users::table.filter(held_users::directory_id.eq(directory_id)))
        .set(held_users::release_at.eq(None::<NaiveDateTime>))
        .execute(conn)?;
    Ok(())
}

/// Directories (with a clear brake) that have settled users due at `at`.
pub fn directories_with_settled(conn: &mut DbConn, at: NaiveDateTime) -> QueryResult<Vec<String>> {
    held_users::table
        .inner_join(directories::table)
        .filter(held_users::release_at.le(at))
        .filter(directories::brake_state.eq(BrakeState::Clear.as_str()))
        .select(held_users::directory_id)
        .distinct()
        .load(conn)
}

/// The directory's users whose settling is over at `at`.
pub fn settled(
    conn: &mut DbConn,
    directory_id: &str,
    at: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    held_users::table
        .filter(held_users::directory_id.eq(directory_id))
        .filter(held_users::release_at.le(at))
        .select(held_users::user_id)
        .load(conn)
}

/// A directory of an organization whose brake is not clear, for the banners.
#[derive(Debug, Clone)]
pub struct NotClear {
    pub directory_id: String,
    pub directory_name: String,
    pub state: BrakeState,
    pub reason: Option<String>,
    pub held: i64,
}

impl NotClear {
    pub fn is_paused(&self) -> bool {
        self.state == BrakeState::Paused
    }
}

/// The organization's directories whose brake is engaged or paused.
pub fn not_clear_in_org(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<NotClear>> {
    let rows: Vec<(String, String, String, Option<String>)> = directories::table
        .filter(directories::org_id.eq(org_id))
        .filter(directories::brake_state.ne(BrakeState::Clear.as_str()))
        .order(directories::created_at.asc())
        .select((
            directories::id,
            directories::name,
            directories::brake_state,
            directories::brake_reason,
        ))
        .load(conn)?;
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let counts = held_counts(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, state, reason)| NotClear {
            held: counts.get(&id).copied().unwrap_or(0),
            directory_id: id,
            directory_name: name,
            state: BrakeState::parse(&state),
            reason,
        })
        .collect())
}

/// Organizations with a directory whose brake is engaged or paused (for the owner's list).
pub fn orgs_not_clear(conn: &mut DbConn) -> QueryResult<HashSet<String>> {
    Ok(directories::table
        .filter(directories::brake_state.ne(BrakeState::Clear.as_str()))
        .select(directories::org_id)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .collect())
}
