//! The alert rules: which alerts a directory deserves, as a pure function of what was observed
//! of it (`Observations`) and the time of the evaluation. Each finding carries the sentence
//! shown to the IT admin and sent with the alert's events: what happened and what to do.
//!
//! The numbers, and why:
//! - **quiet**: a directory's rhythm is the median gap between its syncs over its last accepted
//!   requests (requests less than `BURST` apart are one sync: a cycle sends many at once); it
//!   needs `MIN_GAPS` gaps to have one. Silence is alarming past `QUIET_FACTOR` times that gap,
//!   and never before the provider's floor (`Profile::floor`): Microsoft Entra ID pushes every
//!   40 minutes whether or not anything changed, so 2 hours is three missed cycles; PingOne
//!   adds a periodic sync to its changes (a day); Okta and the others send only when something
//!   changes, so a quiet weekend is normal (3 days).
//! - **rejected tokens**: at least `REJECTED_MIN` requests refused for their bearer token (401)
//!   in the last `REJECTED_WINDOW`, with none accepted since the newest: a provider retrying
//!   a revoked or wrong token, typically right after a rotation. A stray 401 among accepted
//!   requests (someone probing) raises nothing.
//! - **old token**: a live token last used at least `OLD_TOKEN_AFTER` after a newer live token
//!   was created, and within the last `OLD_TOKEN_RECENT`: the provider was never switched.
//! - **errors**: at least `ERRORS_MIN_REQUESTS` authenticated requests in the last
//!   `ERRORS_WINDOW`, of which at least `ERRORS_PERCENT` % failed (4xx or 5xx; 401s have their
//!   own alert). A few 404s and 409s are part of normal provisioning; a fifth is not.
//!
//! An alert clears when its condition no longer holds. A directory never connected, disabled,
//! paused by the deprovisioning brake, or whose organization turned SCIM Provisioning off gets
//! none.

use chrono::{Duration, NaiveDateTime};

use crate::providers;

/// Requests closer together than this belong to one sync.
pub const BURST: Duration = Duration::minutes(5);
/// Gaps between syncs needed to know a directory's rhythm.
pub const MIN_GAPS: usize = 3;
/// Silence longer than this many typical gaps is alarming (above the provider's floor).
pub const QUIET_FACTOR: i32 = 4;
/// The period in which refused requests are counted.
pub const REJECTED_WINDOW: Duration = Duration::hours(1);
/// Refused requests in `REJECTED_WINDOW` that make a spike.
pub const REJECTED_MIN: i64 = 10;
/// How long after a newer token was created the use of an older one is alarming.
pub const OLD_TOKEN_AFTER: Duration = Duration::days(3);
/// An older token counts as still in use when it was used this recently.
pub const OLD_TOKEN_RECENT: Duration = Duration::hours(24);
/// The period whose failed requests are counted.
pub const ERRORS_WINDOW: Duration = Duration::hours(1);
/// Requests in `ERRORS_WINDOW` needed for their failures to mean something.
pub const ERRORS_MIN_REQUESTS: i64 = 20;
/// The share of failed requests, in percent, that raises the alert.
pub const ERRORS_PERCENT: i64 = 20;

/// What an alert is about. Stored and sent as its text (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    Quiet,
    RejectedTokens,
    OldToken,
    Errors,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [
        AlertKind::Quiet,
        AlertKind::RejectedTokens,
        AlertKind::OldToken,
        AlertKind::Errors,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AlertKind::Quiet => "quiet",
            AlertKind::RejectedTokens => "rejected_tokens",
            AlertKind::OldToken => "old_token",
            AlertKind::Errors => "errors",
        }
    }

    /// A short title for lists.
    pub const fn title(self) -> &'static str {
        match self {
            AlertKind::Quiet => "No requests",
            AlertKind::RejectedTokens => "Token refused",
            AlertKind::OldToken => "Old token still in use",
            AlertKind::Errors => "Many failed requests",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A bearer token of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSeen {
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// What the evaluation knows of one directory.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// The provider's slug.
    pub provider: String,
    /// Active, not paused by the brake, in an organization with SCIM Provisioning on.
    pub live: bool,
    /// When its first request was accepted (`None`: never connected).
    pub first_request_at: Option<NaiveDateTime>,
    /// When its newest request was accepted.
    pub last_accepted: Option<NaiveDateTime>,
    /// Times of its newest accepted requests, in any order (only needed, and loaded, when the
    /// silence reached the provider's floor: see `needs_history`).
    pub history: Vec<NaiveDateTime>,
    /// Requests refused for their token in the `REJECTED_WINDOW` before now.
    pub rejected: i64,
    /// The newest request refused for its token.
    pub last_rejected: Option<NaiveDateTime>,
    /// Authenticated requests in the `ERRORS_WINDOW` before now, and how many failed.
    pub recent: i64,
    pub recent_failed: i64,
    pub tokens: Vec<TokenSeen>,
}

/// An alert the directory deserves now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: AlertKind,
    pub sentence: String,
}

/// How a provider usually behaves, and where its admin looks.
struct Profile {
    name: &'static str,
    /// Silence shorter than this is never alarming.
    floor: Duration,
    /// "pushes" or "sends something".
    habit: &'static str,
    /// What to check when it went quiet.
    check: String,
}

fn profile(slug: &str) -> Profile {
    let name = providers::by_slug(slug).map_or("The identity provider", |p| p.name);
    match slug {
        "entra" => Profile {
            name,
            floor: Duration::hours(2),
            habit: "pushes",
            check: "Check the provisioning status and the provisioning logs of the enterprise \
                    app in the Microsoft Entra admin center: a paused or quarantined job stops \
                    every push."
                .into(),
        },
        "pingidentity" => Profile {
            name,
            floor: Duration::hours(24),
            habit: "sends something",
            check: "Check in the PingOne admin console that the SCIM connection and its rule \
                    are both still turned on."
                .into(),
        },
        "okta" => Profile {
            name,
            floor: Duration::days(3),
            habit: "sends something",
            check: "Check the app's Provisioning tab in the Okta Admin Console: provisioning \
                    to the app still enabled, and its connection test passing."
                .into(),
        },
        _ => Profile {
            name,
            floor: Duration::days(3),
            habit: "sends something",
            check: format!("Check that provisioning is still turned on in {name}'s admin console."),
        },
    }
}

/// Whether the evaluation needs the directory's request history (its silence reached the
/// provider's floor): below it, no rhythm can make the silence alarming.
pub fn needs_history(
    provider: &str,
    last_accepted: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> bool {
    last_accepted.is_some_and(|t| now - t >= profile(provider).floor)
}

/// The alerts the directory deserves at `now`, in `AlertKind` order.
pub fn evaluate(o: &Observations, now: NaiveDateTime) -> Vec<Finding> {
    if !o.live || o.first_request_at.is_none() {
        return Vec::new();
    }
    let p = profile(&o.provider);
    [
        quiet(o, &p, now),
        rejected(o, &p, now),
        old_token(o, &p, now),
        errors(o, &p),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The median gap between syncs, when there are enough of them.
pub fn typical_gap(history: &[NaiveDateTime]) -> Option<Duration> {
    let mut times = history.to_vec();
    times.sort_unstable();
    let mut starts: Vec<NaiveDateTime> = Vec::new();
    let mut previous: Option<NaiveDateTime> = None;
    for t in times {
        if previous.is_none_or(|p| t - p > BURST) {
            starts.push(t);
        }
        previous = Some(t);
    }
    let mut gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.len() < MIN_GAPS {
        return None;
    }
    gaps.sort_unstable();
    Some(gaps[gaps.len() / 2])
}

fn quiet(o: &Observations, p: &Profile, now: NaiveDateTime) -> Option<Finding> {
    let last = o.last_accepted?;
    let silence = now - last;
    if silence < p.floor {
        return None;
    }
    let gap = typical_gap(&o.history)?;
    if silence <= (gap * QUIET_FACTOR).max(p.floor) {
        return None;
    }
    Some(Finding {
        kind: AlertKind::Quiet,
        sentence: format!(
            "{} {} for {}; it usually {} every {}. {}",
            p.name,
            // Requests refused for their token are not silence (`rejected_tokens` says why).
            if o.last_rejected.is_some_and(|r| r > last) {
                "has had no request accepted"
            } else {
                "has sent nothing"
            },
            span(silence),
            p.habit,
            span(gap),
            p.check
        ),
    })
}

fn rejected(o: &Observations, p: &Profile, now: NaiveDateTime) -> Option<Finding> {
    let newest = o.last_rejected?;
    if o.rejected < REJECTED_MIN || o.last_accepted.is_some_and(|a| a >= newest) {
        return None;
    }
    // A rotation in the last week explains it: the provider still sends the old token.
    let rotated = (o.tokens.len() > 1)
        .then(|| o.tokens.iter().map(|t| t.created_at).max())
        .flatten()
        .filter(|at| now - *at <= Duration::days(7));
    let advice = match rotated {
        Some(at) => format!(
            "The token was rotated {} ago and {} probably still sends the old one: paste the \
             current bearer token into {}.",
            span(now - at),
            p.name,
            p.name
        ),
        None => format!(
            "Paste the directory's current bearer token into {} (or create a new one under \
             Bearer tokens and paste that).",
            p.name
        ),
    };
    Some(Finding {
        kind: AlertKind::RejectedTokens,
        sentence: format!(
            "{} was refused {} times in the last hour because its bearer token is not accepted. {}",
            p.name, o.rejected, advice
        ),
    })
}

fn old_token(o: &Observations, p: &Profile, now: NaiveDateTime) -> Option<Finding> {
    let live: Vec<&TokenSeen> = o.tokens.iter().filter(|t| t.revoked_at.is_none()).collect();
    live.iter().find_map(|old| {
        let used = old.last_used_at?;
        if now - used > OLD_TOKEN_RECENT {
            return None;
        }
        let newer = live
            .iter()
            .filter(|t| t.created_at > old.created_at && used - t.created_at >= OLD_TOKEN_AFTER)
            .map(|t| t.created_at)
            .min()?;
        Some(Finding {
            kind: AlertKind::OldToken,
            sentence: format!(
                "{} still uses the bearer token created {}, {} after a newer one was created \
                 ({}). Paste the newer token into {}, check that its requests succeed, then \
                 revoke the old token under Bearer tokens.",
                p.name,
                newer_date(old.created_at),
                span(now - newer),
                newer_date(newer),
                p.name
            ),
        })
    })
}

fn errors(o: &Observations, p: &Profile) -> Option<Finding> {
    if o.recent < ERRORS_MIN_REQUESTS || o.recent_failed * 100 < ERRORS_PERCENT * o.recent {
        return None;
    }
    Some(Finding {
        kind: AlertKind::Errors,
        sentence: format!(
            "{} of {} requests from {} failed in the last hour ({} %). Open the request \
             inspector in the Admin Portal with \"Errors only\" to see why each one failed and \
             what to fix.",
            o.recent_failed,
            o.recent,
            p.name,
            o.recent_failed * 100 / o.recent
        ),
    })
}

fn newer_date(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A duration in words: "40 minutes", "3 hours", "4 days".
pub fn span(d: Duration) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    let minutes = d.num_minutes();
    if minutes < 120 {
        plural(minutes.max(1), "minute")
    } else if d.num_hours() < 48 {
        plural(d.num_hours(), "hour")
    } else {
        plural(d.num_days(), "day")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap()
    }

    fn min(n: i64) -> Duration {
        Duration::minutes(n)
    }

    /// An Entra directory that synced every 40 minutes, each sync three requests, the last
    /// sync at `t0`.
    fn entra() -> Observations {
        let mut history = Vec::new();
        for cycle in 0..10 {
            let start = t0() - min(40 * cycle);
            history.extend([
                start,
                start + Duration::seconds(5),
                start + Duration::seconds(9),
            ]);
        }
        Observations {
            provider: "entra".into(),
            live: true,
            first_request_at: Some(t0() - Duration::days(1)),
            last_accepted: Some(t0() + Duration::seconds(9)),
            history,
            ..Default::default()
        }
    }

    fn kinds(o: &Observations, now: NaiveDateTime) -> Vec<AlertKind> {
        evaluate(o, now).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn the_rhythm_is_the_median_gap_between_syncs() {
        assert_eq!(typical_gap(&entra().history), Some(min(40)));
        // Three syncs are two gaps: not yet a rhythm.
        let few = vec![t0(), t0() + min(40), t0() + min(80)];
        assert_eq!(typical_gap(&few), None);
        let enough = vec![t0(), t0() + min(40), t0() + min(80), t0() + min(200)];
        assert_eq!(typical_gap(&enough), Some(min(40)));
    }

    #[test]
    fn quiet_is_raised_past_the_floor_and_the_rhythm_and_clears_on_a_request() {
        let o = entra();
        let last = o.last_accepted.unwrap();
        // Four gaps of 40 minutes are 160 minutes, above Entra's 2-hour floor.
        assert!(kinds(&o, last + min(160)).is_empty());
        let found = evaluate(&o, last + min(161));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AlertKind::Quiet);
        assert!(
            found[0].sentence.starts_with(
                "Microsoft Entra ID has sent nothing for 2 hours; it usually pushes every 40 minutes. Check"
            ),
            "{}",
            found[0].sentence
        );
        let mut refused = o.clone();
        refused.last_rejected = Some(last + min(100));
        assert!(
            evaluate(&refused, last + min(161))[0]
                .sentence
                .starts_with("Microsoft Entra ID has had no request accepted for 2 hours;"),
        );
        let mut answered = o.clone();
        answered.last_accepted = Some(last + min(170));
        assert!(kinds(&answered, last + min(171)).is_empty());
    }

    #[test]
    fn quiet_never_comes_before_the_providers_floor() {
        let mut o = entra();
        // Syncs every 10 minutes: four gaps are 40 minutes, but Entra's floor is 2 hours.
        o.history = (0..10).map(|i| t0() - min(10 * i)).collect();
        o.last_accepted = Some(t0());
        assert!(kinds(&o, t0() + min(120)).is_empty());
        assert_eq!(kinds(&o, t0() + min(121)), vec![AlertKind::Quiet]);
        // Okta sends on change: a quiet weekend is normal.
        o.provider = "okta".into();
        assert!(kinds(&o, t0() + Duration::days(3)).is_empty());
        assert_eq!(
            kinds(&o, t0() + Duration::days(3) + min(1)),
            vec![AlertKind::Quiet]
        );
    }

    #[test]
    fn no_alert_without_a_rhythm_a_first_request_or_a_live_directory() {
        let mut o = entra();
        let later = t0() + Duration::days(2);
        o.history.truncate(6);
        assert!(kinds(&o, later).is_empty(), "two syncs are no rhythm");
        let mut o = entra();
        o.live = false;
        assert!(kinds(&o, later).is_empty(), "disabled");
        let mut o = entra();
        o.first_request_at = None;
        o.rejected = 50;
        o.last_rejected = Some(later);
        assert!(kinds(&o, later).is_empty(), "never connected");
    }

    #[test]
    fn needs_history_only_past_the_floor() {
        assert!(!needs_history("entra", Some(t0()), t0() + min(119)));
        assert!(needs_history("entra", Some(t0()), t0() + min(120)));
        assert!(!needs_history("entra", None, t0()));
    }

    fn rejecting(n: i64) -> Observations {
        let mut o = entra();
        o.last_accepted = Some(t0());
        o.rejected = n;
        o.last_rejected = Some(t0() + min(30));
        o.tokens = vec![
            TokenSeen {
                created_at: t0() - Duration::days(30),
                last_used_at: Some(t0()),
                revoked_at: Some(t0() + min(1)),
            },
            TokenSeen {
                created_at: t0() - min(10),
                last_used_at: None,
                revoked_at: None,
            },
        ];
        o
    }

    #[test]
    fn rejected_tokens_from_ten_refusals_until_one_is_accepted() {
        let now = t0() + min(31);
        assert!(kinds(&rejecting(9), now).is_empty());
        let found = evaluate(&rejecting(10), now);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AlertKind::RejectedTokens);
        assert!(
            found[0].sentence.contains("refused 10 times")
                && found[0].sentence.contains("rotated 41 minutes ago"),
            "{}",
            found[0].sentence
        );
        let mut fixed = rejecting(10);
        fixed.last_accepted = Some(t0() + min(30));
        assert!(kinds(&fixed, now).is_empty());
    }

    /// A token created a month ago and last used at `old_used`; a newer one created 3 days
    /// before `t0`.
    fn rotated(old_used: NaiveDateTime) -> Observations {
        let mut o = entra();
        o.tokens = vec![
            TokenSeen {
                created_at: t0() - Duration::days(30),
                last_used_at: Some(old_used),
                revoked_at: None,
            },
            TokenSeen {
                created_at: t0() - Duration::days(3),
                last_used_at: None,
                revoked_at: None,
            },
        ];
        o
    }

    fn has_old_token(o: &Observations, now: NaiveDateTime) -> bool {
        kinds(o, now).contains(&AlertKind::OldToken)
    }

    #[test]
    fn old_token_used_three_days_after_a_newer_one() {
        let now = t0() + min(1);
        let found = evaluate(&rotated(t0()), now);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AlertKind::OldToken);
        assert!(
            found[0]
                .sentence
                .contains("3 days after a newer one was created"),
            "{}",
            found[0].sentence
        );
        assert!(!has_old_token(&rotated(t0() - min(1)), now));
        // Unused for a day: the provider was switched after all.
        assert!(has_old_token(&rotated(t0()), t0() + OLD_TOKEN_RECENT));
        assert!(!has_old_token(
            &rotated(t0()),
            t0() + OLD_TOKEN_RECENT + min(1)
        ));
        // Revoked: nothing left to switch.
        let mut revoked = rotated(t0());
        revoked.tokens[0].revoked_at = Some(t0());
        assert!(!has_old_token(&revoked, now));
    }

    fn failing(recent: i64, failed: i64) -> Observations {
        let mut o = entra();
        o.recent = recent;
        o.recent_failed = failed;
        o
    }

    #[test]
    fn errors_from_a_fifth_of_twenty_requests() {
        let now = t0() + min(1);
        assert!(kinds(&failing(19, 19), now).is_empty(), "too few requests");
        assert!(kinds(&failing(20, 3), now).is_empty());
        let found = evaluate(&failing(20, 4), now);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, AlertKind::Errors);
        assert!(
            found[0].sentence.starts_with(
                "4 of 20 requests from Microsoft Entra ID failed in the last hour (20 %)."
            ),
            "{}",
            found[0].sentence
        );
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(min(40)), "40 minutes");
        assert_eq!(span(min(1)), "1 minute");
        assert_eq!(span(Duration::hours(3)), "3 hours");
        assert_eq!(span(Duration::days(4)), "4 days");
    }
}
