//! A write whose membership change is too large for one job of the shared writer (a PingOne
//! `PUT` of a 30 000-member group) ends here: its first job checked the whole change and
//! applied a first step (see `ops::MemberBacklog`); each further step is a job of its own, so
//! other directories' writes are committed between them. The reply, and the request's log
//! row, come once every step is committed: a 2xx still means the whole change is durable.
//!
//! A failure between steps (the group deleted, the database gone) answers with its error and
//! leaves the steps done so far: each was a whole, consistent change with its events, and the
//! provider sends the request again (a `PUT` or a member `PATCH` applies the same way twice).

use std::sync::Arc;

use actix_web::web;

use super::ops::{self, MemberBacklog};
use super::{Incoming, MAX_CONFLICT_TRIES, Rendered, Target, ctx, log_row, pooled, unavailable};
use crate::scim::ScimError;
use crate::state::AppState;

/// What the request answers once its steps are done.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// `200` with the group (`PUT`).
    Group,
    /// `201` with the new group (`POST /Groups`).
    CreatedGroup,
    /// `204` (`PATCH`).
    NoContent,
}

/// A write whose first job left part of its membership change to later steps.
pub struct Continued {
    pub backlog: MemberBacklog,
    /// What the first job noted it changed (attributes), for the request log.
    pub notes: Vec<String>,
    pub reply: Reply,
}

/// Applies the rest of the change step by step, then answers and logs the request.
pub async fn finish(
    state: &web::Data<AppState>,
    incoming: &Arc<Incoming>,
    target: &Arc<Target>,
    continued: Continued,
) -> Result<Rendered, ScimError> {
    let Continued {
        mut backlog,
        mut notes,
        reply,
    } = continued;
    while !backlog.is_done() {
        let step = backlog.next_step();
        let mut tries = 1;
        let done = loop {
            let (inc, this_step) = (incoming.clone(), step.clone());
            let result = state
                .writer
                .run_alone(move |batch| ops::apply_member_step(batch, &ctx(&inc, None), &this_step))
                .await
                .map_err(|e| unavailable(&e))?;
            // Gave way to another instance's change on the same rows (see `write`).
            match result {
                Err(e) if e.is_concurrent_conflict() && tries < MAX_CONFLICT_TRIES => tries += 1,
                other => break other?,
            }
        };
        backlog.applied(&step, done);
    }
    notes.push(backlog.summary());
    let rendered = Rendered {
        change_summary: Some(notes.join("; ")),
        ..render(state, incoming, &backlog.group_id, reply).await?
    };
    // The log row is part of the change: committed before the reply, as a one-job change's is.
    let row = log_row(incoming, target, &rendered, None);
    state
        .writer
        .run(move |batch| {
            batch.log(row.clone());
            Ok::<_, diesel::result::Error>(())
        })
        .await
        .map_err(|e| unavailable(&e))?
        .map_err(ScimError::from)?;
    Ok(rendered)
}

/// The reply, read from the committed group on a pooled connection (the writer's time is
/// every directory's).
async fn render(
    state: &web::Data<AppState>,
    incoming: &Arc<Incoming>,
    group_id: &str,
    reply: Reply,
) -> Result<Rendered, ScimError> {
    if let Reply::NoContent = reply {
        return Ok(Rendered::no_content());
    }
    let (pool, inc, id) = (state.pool.clone(), incoming.clone(), group_id.to_string());
    let group = web::block(move || {
        let mut conn = pooled(&pool)?;
        ops::get_group(&mut conn, &ctx(&inc, None), &id, false)
    })
    .await
    .map_err(|_| ScimError::internal())??;
    Ok(match reply {
        Reply::CreatedGroup => Rendered::created(group),
        _ => Rendered::ok(group),
    })
}
