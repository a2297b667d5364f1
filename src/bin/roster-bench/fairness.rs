//! `--scenario fairness`: does one directory's heavy work slow another directory down?
//!
//! Directory B (another organization's) sends single requests, a `POST /Users` then a
//! `GET /Users/{id}`, one at a time, as a quiet tenant does. They are timed three times in the
//! same run: at rest, while directory A replaces a large group's members again and again (the
//! largest change one request can make), and while A runs a PingOne-style initial sync at full
//! speed (`--sync-users` users by POST, then `--sync-groups` groups each by POST and a
//! full-member PUT; `--full` for 100 000 and 1 000). Each figure is printed with B's p99 over its
//! p99 at rest: the goal is at most 3×.
//!
//! The vendor's application takes every `user.created` by webhook (A's as well as B's), and the
//! time from each of B's 201s to its webhook's arrival is reported per phase against the
//! real-time goals (see `realtime`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::realtime::{
    GOAL_P50_MS, GOAL_P99_MS, POSTGRES_FACTOR, SharedClock, add_webhook, lock, percentile,
    start_receiver,
};
use crate::{
    Figures, Opts, agent, all_users, cli, okta_directory, pingone_groups, run, send, user_body,
    writer_times,
};

/// The most B's p99 may grow while A works, over B's p99 at rest.
const GOAL_RATIO: f64 = 3.0;
/// Whole-group replacements A makes while B is timed (full, then empty, and so on).
const GROUP_REPLACEMENTS: usize = 6;

/// B's latencies over one phase, in ms.
#[derive(Default)]
pub(crate) struct Probe {
    post: Vec<f64>,
    get: Vec<f64>,
    errors: usize,
    /// B's users, in order of creation.
    users: Vec<String>,
}

impl Probe {
    fn p(values: &[f64], q: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Times B's requests, a create then a read, until `done` (at least `min` pairs, at most
/// `max`).
pub(crate) fn probe(
    scim_b: &str,
    token_b: &str,
    tag: &str,
    min: usize,
    max: usize,
    done: &AtomicBool,
    clock: &SharedClock,
) -> Probe {
    let a = agent();
    let mut out = Probe::default();
    for i in 0..max {
        if i >= min && done.load(Ordering::SeqCst) {
            break;
        }
        let t = Instant::now();
        let (status, body) = send(
            &a,
            "POST",
            &format!("{scim_b}/Users"),
            token_b,
            Some(&user_body(i, tag)),
        );
        out.post.push(t.elapsed().as_secs_f64() * 1000.0);
        if status == 201 {
            let name = format!("{tag}{i}@bench.example");
            lock(clock).replied.insert(name.clone(), Instant::now());
            out.users.push(name);
        }
        let id = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string));
        let Some(id) = id.filter(|_| status == 201) else {
            out.errors += 1;
            continue;
        };
        let t = Instant::now();
        if send(&a, "GET", &format!("{scim_b}/Users/{id}"), token_b, None).0 != 200 {
            out.errors += 1;
        }
        out.get.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

pub(crate) fn report(name: &str, p: &Probe, rest: &Probe) {
    for (verb, v, r) in [("POST", &p.post, &rest.post), ("GET ", &p.get, &rest.get)] {
        let p99 = Probe::p(v, 0.99);
        let ratio = p99 / Probe::p(r, 0.99).max(1e-9);
        println!(
            "B {verb} {name:<40} n {:>5}  p50 {:>7.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  p99 ÷ at rest {:>6.2}× (goal ≤ {GOAL_RATIO}×){}",
            v.len(),
            Probe::p(v, 0.5),
            p99,
            Probe::p(v, 1.0),
            ratio,
            if ratio <= GOAL_RATIO { "" } else { "  MISSED" }
        );
    }
    if p.errors > 0 {
        println!("B {name}: {} errors", p.errors);
    }
}

/// Prints the time from each of B's 201s to its webhook's arrival over one phase.
fn report_webhooks(name: &str, p: &Probe, clock: &SharedClock, factor: f64) {
    let c = lock(clock);
    let mut delays = Vec::new();
    let mut missing = 0;
    for user in &p.users {
        let replied = c.replied.get(user);
        match (replied, c.arrived.get(&("app".to_string(), user.clone()))) {
            (Some(r), Some(at)) => {
                delays.push(at.saturating_duration_since(*r).as_secs_f64() * 1e3)
            }
            _ => missing += 1,
        }
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
    let (g50, g99) = (GOAL_P50_MS * factor, GOAL_P99_MS * factor);
    println!(
        "B webhook {name:<36} n {:>5}  p50 {p50:>7.2} ms (goal ≤ {g50:.0})  p99 {p99:>8.2} ms (goal ≤ {g99:.0})  max {:>8.2} ms  missing {missing}{}",
        delays.len(),
        percentile(&delays, 1.0),
        if p50 <= g50 && p99 <= g99 && missing == 0 {
            ""
        } else {
            "  MISSED"
        }
    );
}

/// Waits (bounded) until every one of `users` has reached the application's receiver.
fn drain(clock: &SharedClock, users: &[String]) {
    let until = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < until {
        let c = lock(clock);
        if users
            .iter()
            .all(|u| c.arrived.contains_key(&("app".to_string(), u.clone())))
        {
            return;
        }
        drop(c);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The longest the harness waits for a phase's webhooks to B before it counts them missing
/// (A's backlog shares the receiver).
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// A PingOne-style initial sync of directory A: `users` users created by POST at `concurrency`,
/// then `groups` groups, each by POST and a PUT of its members (consecutive runs of the users).
fn pingone_sync(
    scim_a: &str,
    token_a: &str,
    users: usize,
    groups: usize,
    concurrency: usize,
) -> (Figures, Figures) {
    let created = run("A: sync POST users", users, concurrency, |a, i| {
        send(
            a,
            "POST",
            &format!("{scim_a}/Users"),
            token_a,
            Some(&user_body(i, "s-")),
        )
        .0 == 201
    });
    // A provider knows its ids; the harness learns them from a listing, taken between the two
    // phases and not counted (B is timed through it all the same).
    let ids: Vec<String> = all_users(scim_a, token_a, Some("userName%20sw%20%22s-%22"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let grouped = pingone_groups(
        "A: sync POST + PUT groups",
        scim_a,
        token_a,
        &ids,
        "Sync group",
        groups,
        concurrency,
    );
    (created, grouped)
}

/// Runs the scenario on the server at `base`, with directory A at `scim_a` (in organization
/// `org_id`) and B in an organization of its own.
pub fn run_scenario(o: &Opts, db: &str, base: &str, org_id: &str, scim_a: &str, token_a: &str) {
    let factor = if o.backend == "postgres" {
        POSTGRES_FACTOR
    } else {
        1.0
    };
    let quiet: Value = serde_json::from_str(&cli(
        db,
        base,
        &["org", "create", "Quiet", "--scim-enabled", "--json"],
    ))
    .unwrap_or(Value::Null);
    let (scim_b, token_b) = okta_directory(db, base, quiet["id"].as_str().unwrap_or_default());
    let clock = SharedClock::default();
    let receiver = start_receiver(clock.clone());
    let _ = org_id;

    let members = o.group_members;
    println!("fairness: directory A gets {members} users and a group of all of them");
    let created = run("A: POST users", members, o.concurrency, |a, i| {
        send(
            a,
            "POST",
            &format!("{scim_a}/Users"),
            token_a,
            Some(&user_body(i, "a-")),
        )
        .0 == 201
    });
    println!("  {} users in {:.1} s", created.requests, created.seconds);
    let ids: Vec<Value> = all_users(scim_a, token_a, None)
        .into_iter()
        .map(|(id, _)| json!({"value": id}))
        .collect();
    let a = agent();
    let (_, body) = send(
        &a,
        "POST",
        &format!("{scim_a}/Groups"),
        token_a,
        Some(&json!({"displayName": "Everyone"})),
    );
    let group = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .unwrap_or_default();
    // From here on the vendor's application takes every user.created, A's as well as B's.
    add_webhook(db, base, &format!("{receiver}/hooks/app"));

    let never = AtomicBool::new(true);
    let writer_before_rest = writer_times::scrape(base);
    let rest = probe(&scim_b, &token_b, "rest-", 300, 300, &never, &clock);
    drain(&clock, &rest.users);
    let writer_before_put = writer_times::scrape(base);

    // A replaces the whole group's members, alternately with everyone and with no one.
    let done = AtomicBool::new(false);
    let mut replacements = Vec::new();
    let during_put = std::thread::scope(|s| {
        let b = s.spawn(|| probe(&scim_b, &token_b, "put-", 50, 100_000, &done, &clock));
        let a = agent();
        for round in 0..GROUP_REPLACEMENTS {
            let value: &[Value] = if round % 2 == 0 { &ids } else { &[] };
            let body = json!({"displayName": "Everyone", "members": value});
            let t = Instant::now();
            let (status, _) = send(
                &a,
                "PUT",
                &format!("{scim_a}/Groups/{group}"),
                token_a,
                Some(&body),
            );
            replacements.push((value.len(), status, t.elapsed().as_secs_f64()));
        }
        done.store(true, Ordering::SeqCst);
        b.join().unwrap_or_default()
    });
    drain(&clock, &during_put.users);
    let writer_before_sync = writer_times::scrape(base);

    // A's initial sync at full speed.
    println!(
        "fairness: A's PingOne-style initial sync, {} users and {} groups, concurrency {}",
        o.sync_users, o.sync_groups, o.concurrency
    );
    let done = AtomicBool::new(false);
    let (during_sync, (users, groups)) = std::thread::scope(|s| {
        let b = s.spawn(|| probe(&scim_b, &token_b, "sync-", 50, 1_000_000, &done, &clock));
        let sync = pingone_sync(scim_a, token_a, o.sync_users, o.sync_groups, o.concurrency);
        done.store(true, Ordering::SeqCst);
        (b.join().unwrap_or_default(), sync)
    });
    let writer_after_sync = writer_times::scrape(base);
    drain(&clock, &during_sync.users);

    println!();
    for (n, status, secs) in &replacements {
        println!(
            "A: PUT group with {n:>6} members (from the other extreme): {status} in {secs:.2} s"
        );
    }
    for (what, f) in [("users by POST", &users), ("groups by POST + PUT", &groups)] {
        println!(
            "A: sync, {} {what}: {:.1} s, {:.0}/s, {} errors",
            f.requests,
            f.seconds,
            f.rate(),
            f.errors
        );
    }
    println!();
    report("at rest", &rest, &rest);
    report("during A's whole-group PUTs", &during_put, &rest);
    report("during A's initial sync", &during_sync, &rest);
    report_webhooks("at rest", &rest, &clock, factor);
    report_webhooks("during A's whole-group PUTs", &during_put, &clock, factor);
    report_webhooks("during A's initial sync", &during_sync, &clock, factor);
    writer_times::report("at rest", &writer_before_rest, &writer_before_put);
    writer_times::report(
        "during A's whole-group PUTs",
        &writer_before_put,
        &writer_before_sync,
    );
    writer_times::report(
        "during A's initial sync",
        &writer_before_sync,
        &writer_after_sync,
    );
}
