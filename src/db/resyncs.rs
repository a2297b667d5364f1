//! Resyncs of a directory (`directory_resyncs`, `resync_confirmations`): one runs at a time
//! per directory; while it runs the SCIM endpoint records the ids the provider names, and
//! finishing it keeps the users and groups that existed at its start and were never named.
//! Every change of state is a conditional update, so two instances never both finish or both
//! apply one resync.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Instant;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{directory_resyncs, resync_confirmations, scim_groups, scim_users};
use super::{DbConn, new_id, now};

/// Where a resync is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The provider's pushes are being confirmed.
    Running,
    /// The stale users and groups are listed, waiting for the IT admin's choice.
    Finished,
    /// Deactivating the stale users (in steps).
    Applying,
    /// The IT admin chose (`action`); nothing is left to do.
    Applied,
    /// Ended without a list: the directory was disabled while it ran.
    Cancelled,
}

impl State {
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Finished => "finished",
            State::Applying => "applying",
            State::Applied => "applied",
            State::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "running" => State::Running,
            "finished" => State::Finished,
            "applying" => State::Applying,
            "applied" => State::Applied,
            _ => State::Cancelled,
        }
    }
}

/// What the IT admin does with a finished resync's stale users and groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Deactivate the users, delete the groups (as the provider would have).
    Deactivate,
    /// Change nothing.
    Keep,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Deactivate => "deactivate",
            Action::Keep => "keep",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "deactivate" => Some(Action::Deactivate),
            "keep" => Some(Action::Keep),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = directory_resyncs)]
struct Row {
    id: String,
    directory_id: String,
    state: String,
    started_at: NaiveDateTime,
    finish_by: NaiveDateTime,
    finished_at: Option<NaiveDateTime>,
    confirmed: i64,
    stale_users: Option<String>,
    stale_groups: Option<String>,
    action: Option<String>,
    applied_at: Option<NaiveDateTime>,
}

/// A resync as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Resync {
    pub id: String,
    pub directory_id: String,
    pub state: State,
    pub started_at: NaiveDateTime,
    pub finish_by: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    /// Users and groups confirmed (counted live while it runs).
    pub confirmed: i64,
    /// Ids of the users and groups never confirmed (empty until finished).
    pub stale_users: Vec<String>,
    pub stale_groups: Vec<String>,
    pub action: Option<Action>,
    pub applied_at: Option<NaiveDateTime>,
}

fn ids(text: Option<&str>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

impl From<Row> for Resync {
    fn from(r: Row) -> Self {
        Resync {
            state: State::parse(&r.state),
            stale_users: ids(r.stale_users.as_deref()),
            stale_groups: ids(r.stale_groups.as_deref()),
            action: r.action.as_deref().and_then(Action::parse),
            id: r.id,
            directory_id: r.directory_id,
            started_at: r.started_at,
            finish_by: r.finish_by,
            finished_at: r.finished_at,
            confirmed: r.confirmed,
            applied_at: r.applied_at,
        }
    }
}

/// Starts a resync of the directory; `None` when one runs already.
pub fn start(
    conn: &mut DbConn,
    directory_id: &str,
    runs_for: Duration,
) -> QueryResult<Option<Resync>> {
    if running_id(conn, directory_id)?.is_some() {
        return Ok(None);
    }
    let (id, at) = (new_id(), now());
    // In a savepoint of its own: on Postgres a failed statement would spoil the whole batch.
    let inserted = super::write_tx(conn, |c| {
        diesel::insert_into(directory_resyncs::table)
            .values((
                directory_resyncs::id.eq(&id),
                directory_resyncs::directory_id.eq(directory_id),
                directory_resyncs::state.eq(State::Running.as_str()),
                directory_resyncs::started_at.eq(at),
                directory_resyncs::finish_by.eq(at + runs_for),
                directory_resyncs::confirmed.eq(0_i64),
            ))
            .execute(c)
    });
    match inserted {
        // Another instance started one between the check and the insert (the unique index).
        Err(e) if super::is_unique_violation(&e) => return Ok(None),
        other => other?,
    };
    forget_running();
    get(conn, &id)
}

fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<Resync>> {
    let row: Option<Row> = directory_resyncs::table
        .find(id)
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let mut resync = Resync::from(row);
    if resync.state == State::Running {
        resync.confirmed = confirmed_count(conn, &resync.id)?;
    }
    Ok(Some(resync))
}

fn confirmed_count(conn: &mut DbConn, id: &str) -> QueryResult<i64> {
    resync_confirmations::table
        .filter(resync_confirmations::resync_id.eq(id))
        .count()
        .get_result(conn)
}

/// The directory's newest resync, if it ever had one.
pub fn latest(conn: &mut DbConn, directory_id: &str) -> QueryResult<Option<Resync>> {
    let id: Option<String> = directory_resyncs::table
        .filter(directory_resyncs::directory_id.eq(directory_id))
        .order((
            directory_resyncs::started_at.desc(),
            directory_resyncs::id.desc(),
        ))
        .select(directory_resyncs::id)
        .first(conn)
        .optional()?;
    match id {
        Some(id) => get(conn, &id),
        None => Ok(None),
    }
}

/// The id of the directory's running resync, if any.
fn running_id(conn: &mut DbConn, directory_id: &str) -> QueryResult<Option<String>> {
    directory_resyncs::table
        .filter(directory_resyncs::directory_id.eq(directory_id))
        .filter(directory_resyncs::state.eq(State::Running.as_str()))
        .select(directory_resyncs::id)
        .first(conn)
        .optional()
}

/// Which directories have a running resync, remembered for `RunningCache::TTL`: the SCIM
/// endpoint asks on every request, and a query per read would cost a round trip. A resync
/// started or finished in this process is seen at once; by another instance, within `TTL`.
struct RunningCache {
    /// By directory id: when it was read, in which generation, and the running resync's id.
    rows: Mutex<HashMap<String, Remembered>>,
    generation: std::sync::atomic::AtomicU64,
}

type Remembered = (Instant, u64, Option<String>);

impl RunningCache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(1);
    const CAPACITY: usize = 4096;
}

static RUNNING: LazyLock<RunningCache> = LazyLock::new(|| RunningCache {
    rows: Mutex::default(),
    generation: Default::default(),
});

fn forget_running() {
    RUNNING
        .generation
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// The directory's running resync (cheap: see `RunningCache`).
pub fn running(conn: &mut DbConn, directory_id: &str) -> QueryResult<Option<String>> {
    let generation = RUNNING.generation.load(std::sync::atomic::Ordering::SeqCst);
    {
        let rows = RUNNING.rows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((read, g, id)) = rows.get(directory_id)
            && *g == generation
            && read.elapsed() < RunningCache::TTL
        {
            return Ok(id.clone());
        }
    }
    let id = running_id(conn, directory_id)?;
    let mut rows = RUNNING.rows.lock().unwrap_or_else(PoisonError::into_inner);
    if rows.len() >= RunningCache::CAPACITY {
        rows.clear();
    }
    rows.insert(
        directory_id.to_string(),
        (Instant::now(), generation, id.clone()),
    );
    Ok(id)
}

/// What the provider named, to confirm in a running resync.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Named {
    /// Ids of users or groups.
    pub ids: Vec<String>,
    /// A userName whose POST conflicted (the user exists already).
    pub user_name: Option<String>,
    /// A group displayName whose POST conflicted.
    pub group_name: Option<String>,
}

impl Named {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.user_name.is_none() && self.group_name.is_none()
    }
}

/// Records what the provider named in the directory's resync `resync_id` (nothing once it is
/// no longer running).
pub fn confirm(
    conn: &mut DbConn,
    resync_id: &str,
    directory_id: &str,
    named: &Named,
) -> QueryResult<()> {
    let still_running: Option<String> = directory_resyncs::table
        .filter(directory_resyncs::id.eq(resync_id))
        .filter(directory_resyncs::state.eq(State::Running.as_str()))
        .select(directory_resyncs::id)
        .first(conn)
        .optional()?;
    if still_running.is_none() {
        return Ok(());
    }
    let mut ids: HashSet<String> = named.ids.iter().cloned().collect();
    if let Some(name) = &named.user_name {
        let found: Option<String> = scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .filter(scim_users::user_name_norm.eq(crate::scim::resource::normalize(name)))
            .filter(scim_users::deleted_at.is_null())
            .select(scim_users::id)
            .first(conn)
            .optional()?;
        ids.extend(found);
    }
    if let Some(name) = &named.group_name {
        let found: Option<String> = scim_groups::table
            .filter(scim_groups::directory_id.eq(directory_id))
            .filter(scim_groups::display_name_norm.eq(crate::scim::resource::normalize(name)))
            .filter(scim_groups::deleted_at.is_null())
            .select(scim_groups::id)
            .first(conn)
            .optional()?;
        ids.extend(found);
    }
    let rows: Vec<_> = ids
        .iter()
        .map(|id| {
            (
                resync_confirmations::resync_id.eq(resync_id),
                resync_confirmations::resource_id.eq(id),
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    crate::on_backend!(conn, |c| diesel::insert_into(resync_confirmations::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// Finishes the resync if it still runs (one caller wins): the live users and groups created
/// before its start and never confirmed are kept as its stale lists. `None`: it was not
/// running.
pub fn finish(conn: &mut DbConn, resync_id: &str) -> QueryResult<Option<Resync>> {
    let Some(resync) = get(conn, resync_id)?.filter(|r| r.state == State::Running) else {
        return Ok(None);
    };
    let confirmed = resync_confirmations::table
        .filter(resync_confirmations::resync_id.eq(resync_id))
        .select(resync_confirmations::resource_id);
    let users: Vec<String> = scim_users::table
        .filter(scim_users::directory_id.eq(&resync.directory_id))
        .filter(scim_users::deleted_at.is_null())
        .filter(scim_users::created_at.le(resync.started_at))
        .filter(scim_users::id.ne_all(confirmed))
        .order(scim_users::id.asc())
        .select(scim_users::id)
        .load(conn)?;
    let groups: Vec<String> = scim_groups::table
        .filter(scim_groups::directory_id.eq(&resync.directory_id))
        .filter(scim_groups::deleted_at.is_null())
        .filter(scim_groups::created_at.le(resync.started_at))
        .filter(scim_groups::id.ne_all(confirmed))
        .order(scim_groups::id.asc())
        .select(scim_groups::id)
        .load(conn)?;
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let won = diesel::update(
        directory_resyncs::table
            .filter(directory_resyncs::id.eq(resync_id))
            .filter(directory_resyncs::state.eq(State::Running.as_str())),
    )
    .set((
        directory_resyncs::state.eq(State::Finished.as_str()),
        directory_resyncs::finished_at.eq(now()),
        directory_resyncs::confirmed.eq(resync.confirmed),
        directory_resyncs::stale_users.eq(json(&users)),
        directory_resyncs::stale_groups.eq(json(&groups)),
    ))
    .execute(conn)?;
    if won != 1 {
        return Ok(None);
    }
    diesel::delete(
        resync_confirmations::table.filter(resync_confirmations::resync_id.eq(resync_id)),
    )
    .execute(conn)?;
    forget_running();
    get(conn, resync_id)
}

/// Ends a running resync without a list (its directory was disabled). `None`: it was not
/// running.
pub fn cancel(conn: &mut DbConn, resync_id: &str) -> QueryResult<Option<Resync>> {
    let n = diesel::update(
        directory_resyncs::table
            .filter(directory_resyncs::id.eq(resync_id))
            .filter(directory_resyncs::state.eq(State::Running.as_str())),
    )
    .set((
        directory_resyncs::state.eq(State::Cancelled.as_str()),
        directory_resyncs::finished_at.eq(now()),
    ))
    .execute(conn)?;
    if n != 1 {
        return Ok(None);
    }
    diesel::delete(
        resync_confirmations::table.filter(resync_confirmations::resync_id.eq(resync_id)),
    )
    .execute(conn)?;
    forget_running();
    get(conn, resync_id)
}

/// Running resyncs due to end: past their `finish_by`, or of a directory no longer active.
/// Each as (id, whether its directory is still active).
pub fn due(conn: &mut DbConn, at: NaiveDateTime) -> QueryResult<Vec<(String, bool)>> {
    use super::schema::directories;
    directory_resyncs::table
        .inner_join(directories::table)
        .filter(directory_resyncs::state.eq(State::Running.as_str()))
        .filter(
            directory_resyncs::finish_by
                .le(at)
                .or(directories::status.ne("active")),
        )
        .select((directory_resyncs::id, directories::status.eq("active")))
        .limit(100)
        .load(conn)
}

/// How long an instance may take to apply a choice before another one resumes it.
pub const CLAIM: Duration = Duration::minutes(10);

/// Records the IT admin's choice on the directory's latest resync if it is finished (one
/// caller wins). `Keep` closes it; `Deactivate` claims it for applying. `None`: nothing to
/// apply.
pub fn choose(
    conn: &mut DbConn,
    directory_id: &str,
    action: Action,
) -> QueryResult<Option<Resync>> {
    let Some(resync) = latest(conn, directory_id)?.filter(|r| r.state == State::Finished) else {
        return Ok(None);
    };
    let at = now();
    let (state, applied_at, claim) = match action {
        Action::Keep => (State::Applied, Some(at), None),
        Action::Deactivate => (State::Applying, None, Some(at + CLAIM)),
    };
    let won = diesel::update(
        directory_resyncs::table
            .filter(directory_resyncs::id.eq(&resync.id))
            .filter(directory_resyncs::state.eq(State::Finished.as_str())),
    )
    .set((
        directory_resyncs::state.eq(state.as_str()),
        directory_resyncs::action.eq(action.as_str()),
        directory_resyncs::applied_at.eq(applied_at),
        directory_resyncs::claimed_until.eq(claim),
    ))
    .execute(conn)?;
    if won != 1 {
        return Ok(None);
    }
    get(conn, &resync.id)
}

/// A deactivation is applied in full.
pub fn applied(conn: &mut DbConn, resync_id: &str) -> QueryResult<()> {
    diesel::update(
        directory_resyncs::table
            .filter(directory_resyncs::id.eq(resync_id))
            .filter(directory_resyncs::state.eq(State::Applying.as_str())),
    )
    .set((
        directory_resyncs::state.eq(State::Applied.as_str()),
        directory_resyncs::applied_at.eq(now()),
        directory_resyncs::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Claims a deactivation whose instance stopped midway (its claim ran out), if any.
pub fn claim_abandoned(conn: &mut DbConn, at: NaiveDateTime) -> QueryResult<Option<Resync>> {
    let candidates: Vec<String> = directory_resyncs::table
        .filter(directory_resyncs::state.eq(State::Applying.as_str()))
        .filter(directory_resyncs::claimed_until.lt(at))
        .select(directory_resyncs::id)
        .limit(10)
        .load(conn)?;
    for id in candidates {
        let won = diesel::update(
            directory_resyncs::table
                .filter(directory_resyncs::id.eq(&id))
                .filter(directory_resyncs::state.eq(State::Applying.as_str()))
                .filter(directory_resyncs::claimed_until.lt(at)),
        )
        .set(directory_resyncs::claimed_until.eq(at + CLAIM))
        .execute(conn)?;
        if won == 1 {
            return get(conn, &id);
        }
    }
    Ok(None)
}

/// A user a resync found stale, as its lists show it.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct StaleUser {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub full_name: Option<String>,
}

impl StaleUser {
    /// The name people know them by: the display name, else the full name.
    pub fn name(&self) -> Option<&str> {
        self.display_name.as_deref().or(self.full_name.as_deref())
    }
}

/// The given users of the directory, by userName.
pub fn user_names(
    conn: &mut DbConn,
    directory_id: &str,
    ids: &[String],
) -> QueryResult<Vec<StaleUser>> {
    let mut rows: Vec<StaleUser> = Vec::new();
    for chunk in ids.chunks(500) {
        rows.extend(
            scim_users::table
                .filter(scim_users::directory_id.eq(directory_id))
                .filter(scim_users::id.eq_any(chunk))
                .select((
                    scim_users::id,
                    scim_users::user_name,
                    scim_users::display_name,
                    scim_users::full_name,
                ))
                .load::<StaleUser>(conn)?,
        );
    }
    rows.sort_by(|a, b| a.user_name.cmp(&b.user_name));
    Ok(rows)
}

/// (id, displayName) of the given groups of the directory.
pub fn group_names(
    conn: &mut DbConn,
    directory_id: &str,
    ids: &[String],
) -> QueryResult<Vec<(String, String)>> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for chunk in ids.chunks(500) {
        rows.extend(
            scim_groups::table
                .filter(scim_groups::directory_id.eq(directory_id))
                .filter(scim_groups::id.eq_any(chunk))
                .select((scim_groups::id, scim_groups::display_name))
                .load::<(String, String)>(conn)?,
        );
    }
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(rows)
}
