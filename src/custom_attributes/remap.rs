//! A change of the paths custom attributes are read from (a declaration added or removed by
//! the owner, a directory's path set or reset by its IT admin), applied to the users it
//! reaches: the change commits in one job, which also reads each reached directory's paths
//! before and after it (jobs run one at a time, so nothing comes between); then each
//! directory whose paths moved is gone through in steps of `USERS_PER_STEP` users, each a job
//! committed alone (`Writer::run_alone`), recording one `user.updated` per user whose values
//! moved. A directory of 10 000 users is thus 40 short jobs, between which other directories'
//! writes go through.

use std::sync::Arc;

use crate::custom_attributes::Mappings;
use crate::db::writer::WriteError;
use crate::db::{self, Batch};
use crate::scim_endpoint::ops;
use crate::state::AppState;

/// Users gone through per step.
pub const USERS_PER_STEP: i64 = 250;

/// What a change of paths reaches.
#[derive(Debug, Clone)]
pub enum Reach {
    /// Every directory of the organization (a declaration).
    Organization(String),
    /// One directory (its own paths).
    Directory(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RemapError {
    #[error("the writer is unavailable")]
    Writer(#[source] WriteError),
    #[error("the change could not be applied")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Runs `change` (a job of the writer; its `Err` undoes it and is returned as is), then
/// applies the moved paths to the reached users. Returns what `change` returned and how many
/// users' values moved.
pub async fn apply<T, E, F>(
    state: &AppState,
    reach: Reach,
    mut change: F,
) -> Result<Result<(T, usize), E>, RemapError>
where
    F: FnMut(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<diesel::result::Error> + Send + 'static,
{
    let outcome = state
        .writer
        .run(move |b| {
            let dirs = match &reach {
                Reach::Organization(org) => db::roles::org_directories(b, org)?,
                Reach::Directory(d) => vec![d.clone()],
            };
            let mut before = Vec::with_capacity(dirs.len());
            for d in &dirs {
                before.push(db::attributes::mappings(b, d)?);
            }
            let out = change(b)?;
            let mut moved = Vec::new();
            for (d, before) in dirs.into_iter().zip(before) {
                let after = db::attributes::mappings(b, &d)?;
                if after != before {
                    moved.push((d, before, after));
                }
            }
            Ok((out, moved))
        })
        .await
        .map_err(RemapError::Writer)?;
    let (out, moved) = match outcome {
        Ok(done) => done,
        Err(refused) => return Ok(Err(refused)),
    };
    let mut users = 0;
    for (directory_id, before, after) in moved {
        users += in_steps(state, &directory_id, before, after).await?;
    }
    Ok(Ok((out, users)))
}

/// Goes through one directory's users, `USERS_PER_STEP` per job.
async fn in_steps(
    state: &AppState,
    directory_id: &str,
    before: Mappings,
    after: Mappings,
) -> Result<usize, RemapError> {
    let base_url = state.config.scim_base(directory_id);
    let (before, after) = (Arc::new(before), Arc::new(after));
    let mut from = String::new();
    let mut moved = 0;
    loop {
        let (dir, base, b, a, f) = (
            directory_id.to_string(),
            base_url.clone(),
            before.clone(),
            after.clone(),
            from.clone(),
        );
        let (last, n) = state
            .writer
            .run_alone(move |batch| {
                let ctx = ops::Ctx::for_directory(&dir, &base);
                ops::refresh_custom_attributes(batch, &ctx, &b, &a, &f, USERS_PER_STEP)
            })
            .await
            .map_err(RemapError::Writer)?
            .map_err(|e| RemapError::Failed(Box::new(e)))?;
        moved += n;
        match last {
            Some(last) => from = last,
            None => return Ok(moved),
        }
    }
}
