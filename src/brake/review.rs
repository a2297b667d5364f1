//! What the Admin Portal and the owner console show of a directory's brake: its state and
//! why, the held changes (oldest first), and the thresholds in force. Both surfaces render it
//! with `templates/brake_review.html` and decide through `decisions`.

use diesel::QueryResult;

use super::{BrakeState, Deprovision, Thresholds, Tightened};
use crate::db::{self, DbConn, brake as store, directories::Directory};

/// A held change as listed.
pub struct HeldRow {
    pub name: String,
    pub user_name: String,
    pub deleted: bool,
    pub held_at: String,
    /// When it reaches the application on its own (settling), if it does.
    pub settles_at: Option<String>,
}

/// A directory's brake, for review.
pub struct Review {
    pub directory: Directory,
    pub provider_name: String,
    pub state: BrakeState,
    pub reason: Option<String>,
    pub held: Vec<HeldRow>,
    pub thresholds: Thresholds,
    pub org_thresholds: Thresholds,
    pub tightened: Tightened,
}

impl Review {
    pub fn engaged(&self) -> bool {
        self.state == BrakeState::Engaged
    }

    pub fn paused(&self) -> bool {
        self.state == BrakeState::Paused
    }

    /// A tightened value for the form ("" when the organization's applies).
    pub fn own(value: &Option<i32>) -> String {
        value.map(|v| v.to_string()).unwrap_or_default()
    }
}

/// The brake of an organization's directory (`None`: not the organization's).
pub fn load(conn: &mut DbConn, org_id: &str, directory_id: &str) -> QueryResult<Option<Review>> {
    let Some(directory) = db::directories::get(conn, org_id, directory_id)? else {
        return Ok(None);
    };
    let Some(brake) = store::of_directory(conn, directory_id)? else {
        return Ok(None);
    };
    let held = store::held_users(conn, directory_id)?
        .into_iter()
        .map(|h| {
            let view = h.app_view();
            HeldRow {
                name: view.as_ref().map(|v| v.row.label()).unwrap_or_default(),
                user_name: view.map(|v| v.row.user_name).unwrap_or_default(),
                deleted: h.kind() == Deprovision::Deleted,
                held_at: crate::pages::when(&h.held_at),
                settles_at: h.release_at.as_ref().map(crate::pages::when),
            }
        })
        .collect();
    Ok(Some(Review {
        provider_name: crate::providers::by_slug(&directory.provider)
            .map_or(directory.provider.clone(), |p| p.name.to_string()),
        directory,
        state: brake.state,
        reason: brake.reason.clone(),
        held,
        thresholds: brake.thresholds(),
        org_thresholds: brake.org,
        tightened: brake.tightened,
    }))
}

/// A directory's tightening as a form sends it: each field a number or empty (the
/// organization's), checked against the bounds and the organization's thresholds.
pub fn tightened_from_form(fields: [&str; 4], org: Thresholds) -> Result<Tightened, String> {
    let parse = |s: &str, what: &str| -> Result<Option<i32>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<i32>()
            .map(Some)
            .map_err(|_| format!("{what} must be a whole number (or empty for the organization's)"))
    };
    let t = Tightened {
        min_users: parse(fields[0], "the number of users")?,
        min_percent: parse(fields[1], "the share of users (%)")?,
        window_minutes: parse(fields[2], "the window (minutes)")?,
        settle_seconds: parse(fields[3], "the settling time (seconds)")?,
    };
    t.checked(org)
}

/// An organization's thresholds as the owner's form sends them.
pub fn thresholds_from_form(fields: [&str; 4]) -> Result<Thresholds, String> {
    let parse = |s: &str, what: &str| {
        s.trim()
            .parse::<i32>()
            .map_err(|_| format!("{what} must be a whole number"))
    };
    Thresholds {
        min_users: parse(fields[0], "the number of users")?,
        min_percent: parse(fields[1], "the share of users (%)")?,
        window_minutes: parse(fields[2], "the window (minutes)")?,
        settle_seconds: parse(fields[3], "the settling time (seconds)")?,
    }
    .validated()
}
