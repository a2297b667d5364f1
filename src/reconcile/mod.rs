//! Resync of a directory without recreating it: the IT admin starts one, has the provider push
//! everything again, and finishes it; the users and groups that existed at the start and that
//! the provider never named are listed, then deactivated (users) and deleted (groups), or
//! kept. The SCIM endpoint confirms what the provider names (`scim_endpoint::resync`); the API and the
//! Admin Portal both act through here.
//!
//! A deactivation goes through `ops::patch_user` with `active: false`, and a deletion through
//! `ops::delete_group`, in writer jobs of `USERS_PER_STEP` users: events, roles and every rule
//! of those functions apply exactly as if the provider had sent the request.

use actix_web::web;
use chrono::Duration;
use serde_json::{Value, json};

use crate::db::events::EventType;
use crate::db::resyncs::{self, Action, Resync, State};
use crate::db::{self, DbConn};
use crate::scim::ScimError;
use crate::scim_endpoint::ops;
use crate::state::AppState;

/// Users deactivated per writer job.
pub const USERS_PER_STEP: usize = 250;
/// Groups deleted per writer job (each may hold many memberships).
pub const GROUPS_PER_STEP: usize = 50;
/// How long a resync runs unless finished before, and the longest allowed.
pub const DEFAULT_RUNS_FOR: Duration = Duration::hours(24);
pub const LONGEST_RUN_MINUTES: i64 = 7 * 24 * 60;

/// Why a resync operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    #[error("a resync of this directory is already running; finish it first")]
    AlreadyRunning,
    #[error("no resync of this directory is running")]
    NotRunning,
    #[error("this directory has no finished resync waiting for a choice")]
    NothingToApply,
    #[error("this directory is disabled: enable it before starting a resync")]
    Disabled,
    #[error(
        "this directory is paused by the deprovisioning brake: resume it before starting a resync"
    )]
    Paused,
    #[error("no database connection")]
    Pool(#[from] r2d2::Error),
    #[error("the writer is unavailable")]
    Writer(#[source] db::writer::WriteError),
    #[error("database error")]
    Db(#[from] diesel::result::Error),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<ScimError> for ResyncError {
    fn from(e: ScimError) -> Self {
        ResyncError::Internal(Box::new(e))
    }
}

/// Starts a resync of the directory (whose organization the caller checked), finished
/// automatically after `runs_for`.
pub async fn start(
    state: &AppState,
    directory_id: &str,
    runs_for: Duration,
) -> Result<Resync, ResyncError> {
    let dir = directory_id.to_string();
    let started = state
        .writer
        .run(move |b| {
            let found = db::directories::api_get(b, &dir)?;
            if found.as_ref().is_none_or(|d| d.status != "active") {
                return Ok(Err(ResyncError::Disabled));
            }
            // A paused directory refuses the provider's pushes: nothing could be confirmed.
            if found.is_some_and(|d| d.brake_state == "paused") {
                return Ok(Err(ResyncError::Paused));
            }
            let Some(resync) = resyncs::start(b, &dir, runs_for)? else {
                return Ok(Err(ResyncError::AlreadyRunning));
            };
            db::events::emit(
                b,
                &dir,
                EventType::DirectoryResyncStarted,
                json!({
                    "resync_id": resync.id,
                    "finish_by": crate::scim::resource::rfc3339(resync.finish_by),
                }),
            )?;
            Ok::<_, diesel::result::Error>(Ok(resync))
        })
        .await
        .map_err(ResyncError::Writer)??;
    state.delivery_wake.notify();
    started
}

/// Finishes the directory's running resync: its stale users and groups are listed.
pub async fn finish(state: &AppState, directory_id: &str) -> Result<Resync, ResyncError> {
    let dir = directory_id.to_string();
    let (running, active) = db::on_pool::<_, ResyncError, _>(&state.pool, move |c| {
        let active = db::directories::api_get(c, &dir)?.is_some_and(|d| d.status == "active");
        Ok((
            resyncs::latest(c, &dir)?.filter(|r| r.state == State::Running),
            active,
        ))
    })
    .await?;
    let running = running.ok_or(ResyncError::NotRunning)?;
    // A directory disabled meanwhile refused the provider's pushes: no list to trust.
    end(state, running.id, active)
        .await?
        .ok_or(ResyncError::NotRunning)
}

/// Ends a running resync: finished with its lists, or (`active` false: its directory was
/// disabled) cancelled without. `None` when another caller ended it first.
async fn end(
    state: &AppState,
    resync_id: String,
    active: bool,
) -> Result<Option<Resync>, ResyncError> {
    let ended = state
        .writer
        .run(move |b| {
            let ended = if active {
                resyncs::finish(b, &resync_id)?
            } else {
                resyncs::cancel(b, &resync_id)?
            };
            let Some(r) = ended else { return Ok(None) };
            let data = json!({
                "resync_id": r.id,
                "state": r.state.as_str(),
                "confirmed": r.confirmed,
                "stale_users": r.stale_users.len(),
                "stale_groups": r.stale_groups.len(),
            });
            db::events::emit(b, &r.directory_id, EventType::DirectoryResyncFinished, data)?;
            Ok::<_, diesel::result::Error>(Some(r))
        })
        .await
        .map_err(ResyncError::Writer)??;
    state.delivery_wake.notify();
    Ok(ended)
}

/// Applies the IT admin's choice to the directory's finished resync.
pub async fn apply(
    state: &AppState,
    directory_id: &str,
    action: Action,
) -> Result<Resync, ResyncError> {
    let dir = directory_id.to_string();
    let chosen = state
        .writer
        .run(move |b| resyncs::choose(b, &dir, action))
        .await
        .map_err(ResyncError::Writer)??
        .ok_or(ResyncError::NothingToApply)?;
    if action == Action::Deactivate {
        deactivate(state, &chosen).await?;
    }
    let (dir, id) = (directory_id.to_string(), chosen.id.clone());
    db::on_pool::<_, ResyncError, _>(&state.pool, move |c| {
        Ok(resyncs::latest(c, &dir)?.filter(|r| r.id == id))
    })
    .await?
    .ok_or(ResyncError::NothingToApply)
}

/// Deactivates the stale users and deletes the stale groups, in steps, then marks the resync
/// applied. Running it again after an interruption is harmless: a deactivated user's PATCH
/// changes nothing, and a deleted group is skipped.
async fn deactivate(state: &AppState, resync: &Resync) -> Result<(), ResyncError> {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    for chunk in resync.stale_users.chunks(USERS_PER_STEP) {
        let (ids, body) = (chunk.to_vec(), body.clone());
        step(state, &resync.directory_id, move |b, ctx| {
            for id in &ids {
                skip_gone(ops::patch_user(b, ctx, id, &body).map(|_| ()))?;
            }
            Ok(())
        })
        .await?;
    }
    for chunk in resync.stale_groups.chunks(GROUPS_PER_STEP) {
        let ids = chunk.to_vec();
        step(state, &resync.directory_id, move |b, ctx| {
            for id in &ids {
                skip_gone(ops::delete_group(b, ctx, id))?;
            }
            Ok(())
        })
        .await?;
    }
    let id = resync.id.clone();
    state
        .writer
        .run(move |b| resyncs::applied(b, &id))
        .await
        .map_err(ResyncError::Writer)??;
    state.delivery_wake.notify();
    Ok(())
}

/// A user or group deleted since the resync finished is no longer there to change.
fn skip_gone(result: Result<(), ScimError>) -> Result<(), ScimError> {
    match result {
        Err(e) if e.status == 404 => Ok(()),
        other => other,
    }
}

/// One writer job of Roster's own on the directory, committed alone.
async fn step<F>(state: &AppState, directory_id: &str, f: F) -> Result<(), ResyncError>
where
    F: Fn(&mut db::Batch<'_>, &ops::Ctx<'_>) -> Result<(), ScimError> + Send + 'static,
{
    let dir = directory_id.to_string();
    let base_url = state.config.scim_base(directory_id);
    state
        .writer
        .run_alone(move |b| f(b, &ops::Ctx::for_directory(&dir, &base_url)))
        .await
        .map_err(ResyncError::Writer)??;
    Ok(())
}

/// Ends the resyncs due (past their time, or of a disabled directory) and resumes the
/// deactivations an instance left midway. Returns how many it handled.
pub async fn finish_due(state: &AppState) -> Result<usize, ResyncError> {
    let due =
        db::on_pool::<_, ResyncError, _>(&state.pool, |c| Ok(resyncs::due(c, db::now())?)).await?;
    let mut handled = 0;
    for (id, active) in due {
        if end(state, id, active).await?.is_some() {
            handled += 1;
        }
    }
    loop {
        let claimed = state
            .writer
            .run(|b| resyncs::claim_abandoned(b, db::now()))
            .await
            .map_err(ResyncError::Writer)??;
        let Some(resync) = claimed else {
            return Ok(handled);
        };
        deactivate(state, &resync).await?;
        handled += 1;
    }
}

/// How often an instance looks for resyncs due.
const DUE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `finish_due` at start and then every `DUE_EVERY`, for as long as the server runs.
pub async fn finish_due_forever(state: web::Data<AppState>) {
    loop {
        if let Err(e) = finish_due(&state).await {
            log::warn!("finishing due resyncs: {e}");
        }
        actix_web::rt::time::sleep(DUE_EVERY).await;
    }
}

/// The directory's latest resync with the names of its stale users and groups.
pub struct Report {
    pub resync: Resync,
    pub users: Vec<resyncs::StaleUser>,
    /// (id, displayName)
    pub groups: Vec<(String, String)>,
}

/// Reads the directory's latest resync and names what it found stale.
pub fn report(c: &mut DbConn, directory_id: &str) -> diesel::QueryResult<Option<Report>> {
    let Some(resync) = resyncs::latest(c, directory_id)? else {
        return Ok(None);
    };
    let users = resyncs::user_names(c, directory_id, &resync.stale_users)?;
    let groups = resyncs::group_names(c, directory_id, &resync.stale_groups)?;
    Ok(Some(Report {
        resync,
        users,
        groups,
    }))
}

impl Report {
    /// The API's view of it.
    pub fn to_json(&self) -> Value {
        let r = &self.resync;
        let at = crate::scim::resource::rfc3339;
        json!({
            "id": r.id,
            "directory_id": r.directory_id,
            "state": r.state.as_str(),
            "started_at": at(r.started_at),
            "finish_by": at(r.finish_by),
            "finished_at": r.finished_at.map(at),
            "confirmed": r.confirmed,
            "stale_user_count": r.stale_users.len(),
            "stale_group_count": r.stale_groups.len(),
            "stale_users": self.users.iter().map(|u| json!({
                "id": u.id, "userName": u.user_name, "displayName": u.display_name,
            })).collect::<Vec<_>>(),
            "stale_groups": self.groups.iter().map(|(id, display_name)| json!({
                "id": id, "displayName": display_name,
            })).collect::<Vec<_>>(),
            "action": r.action.map(Action::as_str),
            "applied_at": r.applied_at.map(at),
        })
    }
}

/// One line on where a resync is, for the owner console.
pub fn summary(r: &Resync) -> String {
    let when = crate::pages::when;
    let counts = || {
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        format!(
            "{} and {}",
            plural(r.stale_users.len(), "user"),
            plural(r.stale_groups.len(), "group")
        )
    };
    match (r.state, r.action) {
        (State::Running, _) => format!(
            "running since {}: {} confirmed so far",
            when(&r.started_at),
            r.confirmed
        ),
        (State::Finished, _) => format!(
            "finished: {} no longer known to the provider, waiting for the IT admin's choice",
            counts()
        ),
        (State::Applying, _) => format!("deactivating {}", counts()),
        (State::Applied, Some(Action::Keep)) => format!("finished: {} kept", counts()),
        (State::Applied, _) => format!("finished: {} deactivated or deleted", counts()),
        (State::Cancelled, _) => "ended without a result: the directory was disabled".into(),
    }
}

impl From<actix_web::error::BlockingError> for ResyncError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ResyncError::Internal(Box::new(e))
    }
}
