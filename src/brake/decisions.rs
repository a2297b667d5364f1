//! What an admin decides about an engaged brake, and the release of settled deprovisions.
//! Each decision is one job of the writer (all of it or nothing, and a restart midway loses
//! nothing): the API, the Admin Portal and the owner console all decide through here.
//!
//! - `release`: the held events are delivered, in the order they were held.
//! - `reject`: the held users are restored (`ops::restore_user`), their events dropped, and the
//!   directory paused: SCIM is refused (503) until `resume`.
//! - `release_settled`: deprovisions whose settling time is over, in directories whose brake
//!   stayed clear, reach the application.

use std::time::Duration;

use diesel::QueryResult;
use serde_json::json;
use serde_json::value::RawValue;

use super::BrakeState;
use crate::db::brake::{self as store};
use crate::db::events::{self as db_events, EventType};
use crate::db::{Batch, now};
use crate::scim::ScimError;
use crate::scim_endpoint::ops::{self, Ctx};
use crate::state::AppState;

/// Why a decision was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// The brake is not where the decision applies ("the brake is clear: nothing to release").
    #[error("{0}")]
    Refused(String),
    #[error("no database connection")]
    Pool(#[from] r2d2::Error),
    #[error("the writer is unavailable")]
    Writer(#[source] crate::db::writer::WriteError),
    #[error("database error")]
    Db(#[from] diesel::result::Error),
    #[error("internal error")]
    Scim(#[source] ScimError),
    #[error("internal error")]
    Internal(#[source] actix_web::error::BlockingError),
}

impl From<actix_web::error::BlockingError> for DecisionError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        DecisionError::Internal(e)
    }
}

impl From<ScimError> for DecisionError {
    fn from(e: ScimError) -> Self {
        DecisionError::Scim(e)
    }
}

/// What a decision did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Users whose held changes were released or rejected.
    pub users: usize,
    /// Events delivered (release) or dropped (reject).
    pub events: usize,
}

/// The brake of `directory_id`, which must be `expected` for the decision `what`.
fn expect(
    b: &mut Batch<'_>,
    directory_id: &str,
    expected: BrakeState,
    what: &str,
) -> Result<(), DecisionError> {
    let state = store::of_directory(b, directory_id)?
        .map(|d| d.state)
        .ok_or_else(|| DecisionError::Refused(format!("no directory `{directory_id}`")))?;
    if state == expected {
        return Ok(());
    }
    Err(DecisionError::Refused(match state {
        BrakeState::Clear => format!("the brake is clear: there is nothing to {what}"),
        BrakeState::Engaged => {
            format!("the brake is engaged: release or reject its held changes before you {what}")
        }
        BrakeState::Paused => format!(
            "the directory is paused (its held changes were rejected): resume it before you {what}"
        ),
    }))
}

/// Delivers the held events of a directory's users (all when `users` is `None`) in their
/// order, and stops holding those users.
fn deliver_held(
    b: &mut Batch<'_>,
    directory_id: &str,
    users: Option<&[String]>,
) -> QueryResult<Outcome> {
    let held = match users {
        Some(users) => users.len(),
        None => store::held_ids(b, directory_id)?.len(),
    };
    store::unhold(b, directory_id, users)?;
    b.unhold_users(directory_id, users);
    let events = store::take_held_events(b, directory_id, users)?;
    let n = events.len();
    let items = events
        .into_iter()
        .filter_map(|(event_type, data)| {
            // A held event is one Roster wrote: its type and data always read back.
            let event_type = event_type.parse::<EventType>().ok()?;
            let data = RawValue::from_string(data).ok()?;
            Some((event_type, data))
        })
        .collect();
    db_events::emit_many(b, directory_id, items)?;
    Ok(Outcome {
        users: held,
        events: n,
    })
}

/// Releases an engaged brake: every held change reaches the application, in order.
pub async fn release(state: &AppState, directory_id: &str) -> Result<Outcome, DecisionError> {
    let dir = directory_id.to_string();
    state
        .writer
        .run_alone(move |b| {
            expect(b, &dir, BrakeState::Engaged, "release")?;
            store::set_state(b, &dir, BrakeState::Engaged, BrakeState::Clear, None)?;
            let outcome = deliver_held(b, &dir, None)?;
            store::clear_window(b, &dir)?;
            db_events::emit(
                b,
                &dir,
                EventType::DirectoryBrakeReleased,
                json!({"brake": {"state": "clear", "released_users": outcome.users, "released_events": outcome.events}}),
            )?;
            log::info!(
                "deprovisioning brake released directory={dir}: {} users, {} events",
                outcome.users,
                outcome.events
            );
            Ok(outcome)
        })
        .await
        .map_err(DecisionError::Writer)?
}

/// Rejects an engaged brake's held changes: the held users are restored for SCIM as the
/// application still sees them, their events are dropped, and the directory is paused.
pub async fn reject(state: &AppState, directory_id: &str) -> Result<Outcome, DecisionError> {
    let dir = directory_id.to_string();
    let base_url = state.config.scim_base(directory_id);
    state
        .writer
        .run_alone(move |b| {
            expect(b, &dir, BrakeState::Engaged, "reject")?;
            let held = store::held_users(b, &dir)?;
            store::unhold(b, &dir, None)?;
            b.unhold_users(&dir, None);
            let dropped = store::take_held_events(b, &dir, None)?.len();
            let ctx = Ctx::for_directory(&dir, &base_url);
            let mut restored = 0;
            for h in &held {
                let Some(view) = h.app_view() else { continue };
                if ops::restore_user(b, &ctx, &view.row, view.roles, &h.app_groups())? {
                    restored += 1;
                }
            }
            store::clear_window(b, &dir)?;
            store::set_state(b, &dir, BrakeState::Engaged, BrakeState::Paused, None)?;
            db_events::emit(
                b,
                &dir,
                EventType::DirectoryPaused,
                json!({"brake": {"state": "paused", "restored_users": restored}}),
            )?;
            log::warn!(
                "deprovisioning brake rejected directory={dir}: {restored} users restored, {dropped} held events dropped; SCIM is paused until an admin resumes"
            );
            Ok(Outcome {
                users: held.len(),
                events: dropped,
            })
        })
        .await
        .map_err(DecisionError::Writer)?
}

/// Resumes a paused directory: SCIM requests are accepted again. Returns where the brake
/// stands after.
pub async fn resume(state: &AppState, directory_id: &str) -> Result<BrakeState, DecisionError> {
    let dir = directory_id.to_string();
    state
        .writer
        .run(move |b| {
            expect(b, &dir, BrakeState::Paused, "resume")?;
            // Deprovisions Roster itself made while paused (a resync's) wait for a decision.
            let next = if store::held_ids(b, &dir)?.is_empty() {
                BrakeState::Clear
            } else {
                BrakeState::Engaged
            };
            store::set_state(b, &dir, BrakeState::Paused, next, None)?;
            db_events::emit(
                b,
                &dir,
                EventType::DirectoryResumed,
                json!({"brake": {"state": next.as_str()}}),
            )?;
            log::info!("directory resumed directory={dir}");
            Ok(next)
        })
        .await
        .map_err(DecisionError::Writer)?
}

/// Delivers the changes whose settling time is over, in directories whose brake is clear;
/// returns how many users' changes it delivered.
pub async fn release_settled(state: &AppState) -> Result<usize, DecisionError> {
    let directories = crate::db::on_pool(&state.pool, |c| {
        Ok::<_, DecisionError>(store::directories_with_settled(c, now())?)
    })
    .await?;
    let mut released = 0;
    for dir in directories {
        released += state
            .writer
            .run(move |b| {
                let clear =
                    store::of_directory(b, &dir)?.is_some_and(|d| d.state == BrakeState::Clear);
                if !clear {
                    return Ok::<_, DecisionError>(0);
                }
                let users = store::settled(b, &dir, now())?;
                Ok(deliver_held(b, &dir, Some(&users))?.users)
            })
            .await
            .map_err(DecisionError::Writer)??;
    }
    Ok(released)
}

/// How often settled changes are looked for.
const SETTLED_EVERY: Duration = Duration::from_secs(1);

/// Releases settled changes for as long as the process runs.
pub async fn release_settled_forever(state: actix_web::web::Data<AppState>) {
    loop {
        if let Err(e) = release_settled(&state).await {
            log::warn!("releasing settled deprovisions: {e}");
        }
        actix_web::rt::time::sleep(SETTLED_EVERY).await;
    }
}
