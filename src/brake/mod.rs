//! The deprovisioning brake. A scope change in an identity provider can deactivate or delete
//! half a company in minutes; the brake notices such a burst and holds it from the
//! application until an admin decides.
//!
//! - Every deactivation or deletion of an active user is counted in a rolling window
//!   (`db::brake`). When, within the window, more than `min_users` users *and* more than
//!   `min_percent` % of the directory's active users were deprovisioned, the brake **engages**.
//! - From then on the SCIM state is still recorded (the provider sees nothing unusual), but the
//!   application does not see it: each deprovisioned user is **held** (`held_users`, with the
//!   user as the application last saw it) and every event about a held user is stored aside
//!   (`held_events`, diverted by the write's `Batch`) instead of being delivered. The directory
//!   API shows held users as the application last saw them.
//! - An admin then **releases** (the held events are delivered in their original order) or
//!   **rejects** (the held users are restored, their events dropped, and the directory is
//!   **paused**: SCIM answers 503 with `Retry-After` until an admin **resumes** it).
//! - Optionally each deprovision first **settles** for a few seconds (held, then released on
//!   its own if no burst engaged the brake meanwhile), so that a burst is held from its first
//!   change rather than from the one that crossed the threshold.
//!
//! This module holds the pure rules; `hook` applies them inside a SCIM write, `decisions`
//! carries out the admins' decisions and releases settled changes.

pub mod decisions;
pub mod hook;
pub mod review;

use std::fmt;

/// Where a directory's brake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrakeState {
    /// Changes reach the application as they come (or after settling).
    Clear,
    /// A burst of deprovisions is held, awaiting an admin's decision.
    Engaged,
    /// The held changes were rejected: SCIM is refused until an admin resumes.
    Paused,
}

impl BrakeState {
    pub fn as_str(self) -> &'static str {
        match self {
            BrakeState::Clear => "clear",
            BrakeState::Engaged => "engaged",
            BrakeState::Paused => "paused",
        }
    }

    /// The stored text; anything unknown reads as clear (the column's default).
    pub fn parse(s: &str) -> BrakeState {
        match s {
            "engaged" => BrakeState::Engaged,
            "paused" => BrakeState::Paused,
            _ => BrakeState::Clear,
        }
    }
}

impl fmt::Display for BrakeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to a held user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deprovision {
    Deactivated,
    Deleted,
}

impl Deprovision {
    pub fn as_str(self) -> &'static str {
        match self {
            Deprovision::Deactivated => "deactivated",
            Deprovision::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Deprovision {
        if s == "deleted" {
            Deprovision::Deleted
        } else {
            Deprovision::Deactivated
        }
    }
}

/// When the brake engages, and how long a deprovision settles first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// Engages only when more than this many users were deprovisioned in the window...
    pub min_users: i32,
    /// ...and more than this share (in %) of the directory's active users.
    pub min_percent: i32,
    /// The rolling window, in minutes.
    pub window_minutes: i32,
    /// How long each deprovision is held before the application sees it (0: not at all).
    pub settle_seconds: i32,
}

/// Bounds of each threshold (inclusive), as the forms and the API say them.
pub const MAX_USERS: i32 = 1_000_000;
pub const MAX_WINDOW_MINUTES: i32 = 1440;
pub const MAX_SETTLE_SECONDS: i32 = 3600;

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_users: 10,
            min_percent: 10,
            window_minutes: 10,
            settle_seconds: 0,
        }
    }
}

/// A directory's own thresholds, each tighter than its organization's or unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tightened {
    pub min_users: Option<i32>,
    pub min_percent: Option<i32>,
    pub window_minutes: Option<i32>,
    pub settle_seconds: Option<i32>,
}

impl Tightened {
    /// Checks a directory's own values, each in its bounds and none looser than the
    /// organization's `org` (an unset one is the organization's); the error says what to fix.
    pub fn checked(self, org: Thresholds) -> Result<Tightened, String> {
        let wanted = Thresholds {
            min_users: self.min_users.unwrap_or(org.min_users),
            min_percent: self.min_percent.unwrap_or(org.min_percent),
            window_minutes: self.window_minutes.unwrap_or(org.window_minutes),
            settle_seconds: self.settle_seconds.unwrap_or(org.settle_seconds),
        };
        wanted.validated()?.tightens(org)?;
        Ok(self)
    }
}

impl Thresholds {
    /// Checks each value against its bounds; the error says which and how to fix it.
    pub fn validated(self) -> Result<Thresholds, String> {
        let check = |value: i32, min: i32, max: i32, what: &str| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!("{what} must be between {min} and {max}"))
            }
        };
        check(self.min_users, 0, MAX_USERS, "the number of users")?;
        check(self.min_percent, 0, 100, "the share of users (%)")?;
        check(
            self.window_minutes,
            1,
            MAX_WINDOW_MINUTES,
            "the window (minutes)",
        )?;
        check(
            self.settle_seconds,
            0,
            MAX_SETTLE_SECONDS,
            "the settling time (seconds)",
        )?;
        Ok(self)
    }

    /// The organization's thresholds with a directory's tightening applied: fewer users, a
    /// smaller share, a longer window and a longer settling time are each tighter.
    pub fn tightened_by(self, t: Tightened) -> Thresholds {
        Thresholds {
            min_users: t
                .min_users
                .map_or(self.min_users, |v| v.min(self.min_users)),
            min_percent: t
                .min_percent
                .map_or(self.min_percent, |v| v.min(self.min_percent)),
            window_minutes: t
                .window_minutes
                .map_or(self.window_minutes, |v| v.max(self.window_minutes)),
            settle_seconds: t
                .settle_seconds
                .map_or(self.settle_seconds, |v| v.max(self.settle_seconds)),
        }
    }

    /// Whether `self` is at least as tight as `org` on every count (what an IT admin may
    /// set); otherwise what is looser.
    pub fn tightens(self, org: Thresholds) -> Result<(), String> {
        let mut looser = Vec::new();
        if self.min_users > org.min_users {
            looser.push(format!("at most {} users", org.min_users));
        }
        if self.min_percent > org.min_percent {
            looser.push(format!("at most {} %", org.min_percent));
        }
        if self.window_minutes < org.window_minutes {
            looser.push(format!(
                "a window of at least {} minutes",
                org.window_minutes
            ));
        }
        if self.settle_seconds < org.settle_seconds {
            looser.push(format!(
                "a settling time of at least {} seconds",
                org.settle_seconds
            ));
        }
        if looser.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "a directory can only tighten the organization's brake: use {}",
                looser.join(", ")
            ))
        }
    }

    /// Whether `deprovisioned` users in the window could exceed the thresholds at all (only
    /// then is the directory counted: counting a large directory costs).
    pub fn could_exceed(self, deprovisioned: i64) -> bool {
        deprovisioned > i64::from(self.min_users)
    }

    /// Whether `deprovisioned` users in the window exceed the thresholds for a directory that
    /// had `active_before` active users when the window began.
    pub fn exceeded(self, deprovisioned: i64, active_before: i64) -> bool {
        if !self.could_exceed(deprovisioned) {
            return false;
        }
        let base = active_before.max(deprovisioned).max(1);
        deprovisioned * 100 > i64::from(self.min_percent) * base
    }
}

/// The share `part` of `whole`, in whole percent (rounded to nearest).
pub fn percent(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    (part * 100 + whole / 2) / whole
}

/// Why the brake engaged, as the banner says it: "Okta deactivated 31 users in 4 minutes —
/// 62 % of the directory".
pub fn reason(
    provider: &str,
    deactivated: i64,
    deleted: i64,
    seconds: i64,
    active_before: i64,
) -> String {
    let users = |n: i64| {
        if n == 1 {
            "1 user".to_string()
        } else {
            format!("{n} users")
        }
    };
    let what = match (deactivated, deleted) {
        (d, 0) => format!("deactivated {}", users(d)),
        (0, x) => format!("deleted {}", users(x)),
        (d, x) => format!("deactivated {} and deleted {}", users(d), users(x)),
    };
    let minutes = (seconds + 59) / 60;
    let span = match minutes {
        0 | 1 => "within a minute".to_string(),
        m => format!("in {m} minutes"),
    };
    let share = percent(
        deactivated + deleted,
        active_before.max(deactivated + deleted),
    );
    format!("{provider} {what} {span} — {share} % of the directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engages_only_above_both_thresholds() {
        let t = Thresholds::default();
        // 10 users is not more than 10.
        assert!(!t.could_exceed(10));
        assert!(!t.exceeded(10, 20));
        // 11 of 50 is 22 %: both exceeded.
        assert!(t.exceeded(11, 50));
        // 11 of 1000 is 1.1 %: not more than 10 %.
        assert!(t.could_exceed(11));
        assert!(!t.exceeded(11, 1000));
        // 101 of 1000 is 10.1 %.
        assert!(t.exceeded(101, 1000));
        assert!(!t.exceeded(100, 1000));
    }

    #[test]
    fn zero_thresholds_engage_on_the_first_deprovision() {
        let t = Thresholds {
            min_users: 0,
            min_percent: 0,
            ..Thresholds::default()
        };
        assert!(t.exceeded(1, 50));
    }

    #[test]
    fn a_directory_only_tightens() {
        let org = Thresholds::default();
        let t = org.tightened_by(Tightened {
            min_users: Some(5),
            min_percent: Some(50),
            window_minutes: Some(5),
            settle_seconds: Some(30),
        });
        assert_eq!(
            t,
            Thresholds {
                min_users: 5,
                min_percent: 10,
                window_minutes: 10,
                settle_seconds: 30
            }
        );
        assert!(t.tightens(org).is_ok());
        let looser = Thresholds {
            min_users: 20,
            window_minutes: 5,
            ..org
        };
        assert_eq!(
            looser.tightens(org).unwrap_err(),
            "a directory can only tighten the organization's brake: use at most 10 users, a window of at least 10 minutes"
        );
    }

    #[test]
    fn bounds_are_checked() {
        let bad = Thresholds {
            min_percent: 101,
            ..Thresholds::default()
        };
        assert_eq!(
            bad.validated().unwrap_err(),
            "the share of users (%) must be between 0 and 100"
        );
        let bad = Thresholds {
            window_minutes: 0,
            ..Thresholds::default()
        };
        assert!(bad.validated().is_err());
        assert!(Thresholds::default().validated().is_ok());
    }

    #[test]
    fn the_reason_reads_as_a_sentence() {
        assert_eq!(
            reason("Okta", 312, 0, 230, 511),
            "Okta deactivated 312 users in 4 minutes — 61 % of the directory"
        );
        assert_eq!(
            reason("Microsoft Entra ID", 3, 28, 20, 50),
            "Microsoft Entra ID deactivated 3 users and deleted 28 users within a minute — 62 % of the directory"
        );
        assert_eq!(
            reason("PingIdentity", 0, 1, 0, 1),
            "PingIdentity deleted 1 user within a minute — 100 % of the directory"
        );
    }
}
