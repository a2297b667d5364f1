//! The brake inside a SCIM write (`scim_endpoint::ops` calls it after writing a deactivation
//! or deletion, before emitting its events): the deprovision is counted in the directory's
//! window, and the user is held when the brake is engaged, engages now, or deprovisions
//! settle first. Holding the user makes the batch store its events aside (`Batch::hold_user`).

use chrono::Duration;
use diesel::QueryResult;
use serde_json::json;

use super::{BrakeState, Deprovision};
use crate::db::brake::{self as store, AppView};
use crate::db::events::{self as db_events, EventType};
use crate::db::users::UserRow;
use crate::db::{Batch, now};

/// A user was deactivated or deleted by a SCIM write. `before`: the user as the application
/// saw it (the row before the write, with its roles and groups then).
pub fn on_deprovision(
    c: &mut Batch<'_>,
    before: &UserRow,
    roles: Vec<String>,
    groups: Vec<String>,
    kind: Deprovision,
) -> QueryResult<()> {
    let directory_id = before.directory_id.as_str();
    let view = AppView {
        row: before.clone(),
        roles,
    };
    if c.held_users(directory_id)?.contains(&before.id) {
        // Already held (a held deactivation, now deleted): only its kind moves.
        return store::hold(c, directory_id, &before.id, kind, None, &view, &groups);
    }
    if !before.active {
        // Deleting a user that was already inactive takes no access away.
        return Ok(());
    }
    let Some(brake) = store::of_directory(c, directory_id)? else {
        return Ok(());
    };
    let at = now();
    store::record_deprovision(c, directory_id, &before.id, kind, at)?;
    let t = brake.thresholds();
    let window_length = Duration::minutes(t.window_minutes.into());
    let release_at = match brake.state {
        BrakeState::Engaged | BrakeState::Paused => {
            // The banner counts the whole burst: from the window that engaged the brake on.
            let since = brake.changed_at.unwrap_or(at) - window_length;
            let (reason, _) = burst(c, &brake, since, at)?;
            store::set_reason(c, directory_id, &reason)?;
            Some(None)
        }
        BrakeState::Clear => {
            let (reason, exceeded) = burst(c, &brake, at - window_length, at)?;
            let engages = exceeded && engage(c, directory_id, &reason, t)?;
            if engages {
                Some(None)
            } else if t.settle_seconds > 0 {
                Some(Some(at + Duration::seconds(t.settle_seconds.into())))
            } else {
                None
            }
        }
    };
    if let Some(release_at) = release_at {
        store::hold(
            c,
            directory_id,
            &before.id,
            kind,
            release_at,
            &view,
            &groups,
        )?;
        c.hold_user(directory_id, &before.id)?;
    }
    Ok(())
}

/// The deprovisions since `since`, in words, and whether they exceed the thresholds.
fn burst(
    c: &mut Batch<'_>,
    brake: &store::DirectoryBrake,
    since: chrono::NaiveDateTime,
    at: chrono::NaiveDateTime,
) -> QueryResult<(String, bool)> {
    let t = brake.thresholds();
    let window = store::window(c, &brake.directory_id, since)?;
    let n = window.total();
    if !t.could_exceed(n) && brake.state == BrakeState::Clear {
        return Ok((String::new(), false));
    }
    // Active users when the window began: those active now and those it took.
    let active_before = store::active_users(c, &brake.directory_id)? + n;
    let seconds = window
        .first_at
        .map_or(0, |first| (at - first).num_seconds());
    let provider =
        crate::providers::by_slug(&brake.provider).map_or(brake.provider.as_str(), |p| p.name);
    let reason = super::reason(
        provider,
        window.deactivated,
        window.deleted,
        seconds,
        active_before,
    );
    Ok((reason, t.exceeded(n, active_before)))
}

/// Engages the brake (settling users are held from now on) with its event.
fn engage(
    c: &mut Batch<'_>,
    directory_id: &str,
    reason: &str,
    t: super::Thresholds,
) -> QueryResult<bool> {
    if !store::set_state(
        c,
        directory_id,
        BrakeState::Clear,
        BrakeState::Engaged,
        Some(reason),
    )? {
        return Ok(false);
    }
    store::stop_settling(c, directory_id)?;
    log::warn!(
        "deprovisioning brake engaged directory={directory_id}: {reason}; deactivations and deletions are held until an admin releases or rejects them"
    );
    db_events::emit(
        c,
        directory_id,
        EventType::DirectoryBrakeEngaged,
        json!({"brake": {"state": "engaged", "reason": reason, "thresholds": t}}),
    )?;
    Ok(true)
}
