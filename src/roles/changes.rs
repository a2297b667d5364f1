//! Changes to roles that reach many users: a role defined or removed, a directory's group →
//! role mappings replaced. The change itself is one job of the shared writer; the users it
//! reaches are then recomputed in steps (`USERS_PER_STEP` per job, each committed alone, each
//! with its users' `user.updated` events), so a change that reaches 10 000 users neither
//! times out its request nor holds other directories' writes for long. The change's own job
//! also records that its users are being recomputed (`db::role_refreshes`), and the last step
//! clears it: a change cut short by a stopped instance is finished by the next instance that
//! finds it (`finish_abandoned`), so no user is left with roles their groups no longer give.
//! The API and the HTML surfaces both apply changes through here.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::{self, DbConn, role_refreshes, roles};
use crate::scim_endpoint::ops;
use crate::state::AppState;

/// Users recomputed per step.
pub const USERS_PER_STEP: usize = 250;

/// Why a change could not be completed (what was applied before stays applied, and each step
/// recomputes from what is stored, so trying again finishes it).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no database connection")]
    Pool(#[from] r2d2::Error),
    #[error("the writer is unavailable")]
    Writer(#[source] db::writer::WriteError),
    #[error("database error")]
    Db(#[from] diesel::result::Error),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<crate::scim::error::ScimError> for ChangeError {
    fn from(e: crate::scim::error::ScimError) -> Self {
        ChangeError::Internal(Box::new(e))
    }
}

/// Defines a role in an organization; `None` when its slug is taken. A new default role
/// reaches every user whose groups give no role.
pub async fn create_role(
    state: &AppState,
    org_id: &str,
    role: roles::NewRole,
) -> Result<Option<roles::Role>, ChangeError> {
    let org = org_id.to_string();
    let (created, default_before, pending) = state
        .writer
        .run(move |b| {
            let before = default_of(b, &org)?;
            let created = roles::insert(b, &org, &role)?;
            // A new default reaches every user whose groups give no role.
            let mut pending = Vec::new();
            if created.as_ref().is_some_and(|r| r.is_default) {
                for directory_id in roles::org_directories(b, &org)? {
                    let id = role_refreshes::begin(b, &directory_id, &Some(before.clone()))?;
                    pending.push((directory_id, id));
                }
            }
            Ok::<_, diesel::result::Error>((created, before, pending))
        })
        .await
        .map_err(ChangeError::Writer)??;
    for (directory_id, pending_id) in pending {
        refresh_roleless(state, &directory_id, default_before.clone()).await?;
        done(state, pending_id).await?;
    }
    Ok(created)
}

fn default_of(c: &mut DbConn, org_id: &str) -> diesel::QueryResult<Option<String>> {
    Ok(roles::list(c, org_id)?
        .into_iter()
        .find(|r| r.is_default)
        .map(|r| r.slug))
}

/// Removes a role and its mappings; the users who had it are recomputed.
pub async fn delete_role(state: &AppState, role: roles::Role) -> Result<(), ChangeError> {
    let removed = role.clone();
    // The role and its mappings go in one job; the users who had it are recomputed after.
    let (mapped, pending) = state
        .writer
        .run(move |b| {
            let groups = roles::groups_of_role(b, &removed.id)?;
            let mut members = Vec::new();
            for (directory_id, group_id) in &groups {
                for user in db::memberships::member_ids(b, group_id)? {
                    members.push((directory_id.clone(), user));
                }
            }
            let default_before = removed.is_default.then(|| Some(removed.slug.clone()));
            let mut pending = Vec::new();
            for directory_id in roles::org_directories(b, &removed.org_id)? {
                let id = role_refreshes::begin(b, &directory_id, &default_before)?;
                pending.push((directory_id, id));
            }
            roles::delete(b, &removed.id)?;
            Ok::<_, diesel::result::Error>((members, pending))
        })
        .await
        .map_err(ChangeError::Writer)??;
    let mut by_directory: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (directory_id, user) in mapped {
        by_directory.entry(directory_id).or_default().push(user);
    }
    for (directory_id, pending_id) in pending {
        let users = by_directory.remove(&directory_id).unwrap_or_default();
        refresh_in_steps(state, &directory_id, users, None).await?;
        if role.is_default {
            refresh_roleless(state, &directory_id, Some(role.slug.clone())).await?;
        }
        done(state, pending_id).await?;
    }
    Ok(())
}

/// What a replaced mapping set did.
#[derive(Debug, Clone)]
pub struct Replaced {
    /// The directory's mappings now, as (group id, role slug).
    pub mappings: Vec<(String, String)>,
    /// How many users' effective roles moved.
    pub users_changed: usize,
}

/// Replaces a directory's mappings with `wanted` (group id, role id), then recomputes the
/// members of every group whose roles changed.
pub async fn replace_mappings(
    state: &AppState,
    directory_id: &str,
    wanted: BTreeSet<(String, String)>,
) -> Result<Replaced, ChangeError> {
    let dir = directory_id.to_string();
    let (affected, mappings, pending_id) = state
        .writer
        .run(move |b| {
            let changed = roles::replace_mappings(b, &dir, &wanted)?;
            let mut users = BTreeSet::new();
            for group_id in &changed {
                users.extend(db::memberships::member_ids(b, group_id)?);
            }
            let pending_id = role_refreshes::begin(b, &dir, &None)?;
            Ok::<_, diesel::result::Error>((users, roles::mappings(b, &dir)?, pending_id))
        })
        .await
        .map_err(ChangeError::Writer)??;
    let users_changed =
        refresh_in_steps(state, directory_id, affected.into_iter().collect(), None).await?;
    done(state, pending_id).await?;
    Ok(Replaced {
        mappings,
        users_changed,
    })
}

/// Marks a change's recomputation finished.
async fn done(state: &AppState, pending_id: String) -> Result<(), ChangeError> {
    state
        .writer
        .run(move |b| role_refreshes::done(b, &pending_id))
        .await
        .map_err(ChangeError::Writer)??;
    Ok(())
}

/// Finishes the changes other instances (or this one, before a restart) left midway: each
/// directory's users are all recomputed, in steps. Returns how many changes it finished.
pub async fn finish_abandoned(state: &AppState) -> Result<usize, ChangeError> {
    let mut finished = 0;
    loop {
        let claimed = state
            .writer
            .run(|b| role_refreshes::claim_abandoned(b, db::now()))
            .await
            .map_err(ChangeError::Writer)??;
        let Some(pending) = claimed else {
            return Ok(finished);
        };
        let mut after = String::new();
        loop {
            let (dir, from) = (pending.directory_id.clone(), after.clone());
            let users = db::on_pool::<_, ChangeError, _>(&state.pool, move |c| {
                Ok(roles::live_users_after(
                    c,
                    &dir,
                    &from,
                    USERS_PER_STEP as i64,
                )?)
            })
            .await?;
            let Some(last) = users.last() else { break };
            after = last.clone();
            refresh_step(
                state,
                &pending.directory_id,
                users,
                pending.default_before(),
            )
            .await?;
        }
        done(state, pending.id.clone()).await?;
        log::info!(
            "finished recomputing the roles of directory {} after an interrupted change",
            pending.directory_id
        );
        finished += 1;
    }
}

/// How often an instance looks for changes left midway.
const ABANDONED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `finish_abandoned` at start and then every minute, for as long as the server runs.
pub async fn finish_abandoned_forever(state: actix_web::web::Data<AppState>) {
    loop {
        if let Err(e) = finish_abandoned(&state).await {
            log::warn!("finishing interrupted role changes: {e}");
        }
        actix_web::rt::time::sleep(ABANDONED_EVERY).await;
    }
}

/// Recomputes the roles of the given users of a directory, `USERS_PER_STEP` per job; returns
/// how many users' effective roles moved.
async fn refresh_in_steps(
    state: &AppState,
    directory_id: &str,
    users: Vec<String>,
    default_before: Option<Option<String>>,
) -> Result<usize, ChangeError> {
    let mut moved = 0;
    for chunk in users.chunks(USERS_PER_STEP) {
        moved += refresh_step(state, directory_id, chunk.to_vec(), default_before.clone()).await?;
    }
    Ok(moved)
}

/// After a change of the default role: the directory's users whose groups give no role,
/// in steps (they stay without given roles, so paging by id sees each once).
async fn refresh_roleless(
    state: &AppState,
    directory_id: &str,
    default_before: Option<String>,
) -> Result<usize, ChangeError> {
    let mut after = String::new();
    let mut moved = 0;
    loop {
        let (dir, from) = (directory_id.to_string(), after.clone());
        let users = db::on_pool::<_, ChangeError, _>(&state.pool, move |c| {
            Ok(roles::users_without_given_roles(
                c,
                &dir,
                &from,
                USERS_PER_STEP as i64,
            )?)
        })
        .await?;
        let Some(last) = users.last() else {
            return Ok(moved);
        };
        after = last.clone();
        moved += refresh_step(state, directory_id, users, Some(default_before.clone())).await?;
    }
}

async fn refresh_step(
    state: &AppState,
    directory_id: &str,
    users: Vec<String>,
    default_before: Option<Option<String>>,
) -> Result<usize, ChangeError> {
    let dir = directory_id.to_string();
    let base_url = state.config.scim_base(directory_id);
    Ok(state
        .writer
        .run_alone(move |b| {
            let ctx = ops::Ctx::for_directory(&dir, &base_url);
            let ids: Vec<&String> = users.iter().collect();
            ops::refresh_roles(b, &ctx, &ids, default_before.clone())
        })
        .await
        .map_err(ChangeError::Writer)??)
}

impl From<actix_web::error::BlockingError> for ChangeError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ChangeError::Internal(Box::new(e))
    }
}
