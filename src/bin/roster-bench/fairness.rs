//! `--scenario fairness`: does one directory's heavy work slow another directory down?
//!
//! Directory B's single requests (a `POST /Users` then a `GET /Users/{id}`, one at a time, as a
//! quiet tenant sends them) are timed three times in the same run: at rest, while directory A
//! replaces a large group's members again and again (the largest change one request can make),
//! and while A runs a PingOne-style initial sync (users created at full speed). Each figure is
//! printed with B's p99 over its p99 at rest: the goal is at most 3×.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::{Opts, agent, all_users, okta_directory, run, send, user_body};

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

/// Runs the scenario on the server at `base`, in organization `org_id`, with directory A at
/// `scim_a`.
pub fn run_scenario(o: &Opts, db: &str, base: &str, org_id: &str, scim_a: &str, token_a: &str) {
    let (scim_b, token_b) = okta_directory(db, base, org_id);

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

    let never = AtomicBool::new(true);
    let rest = probe(&scim_b, &token_b, "rest-", 300, 300, &never);

    // A replaces the whole group's members, alternately with everyone and with no one.
    let done = AtomicBool::new(false);
    let mut replacements = Vec::new();
    let during_put = std::thread::scope(|s| {
        let b = s.spawn(|| probe(&scim_b, &token_b, "put-", 50, 100_000, &done));
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

    // A's initial sync: users created as fast as the server takes them.
    let done = AtomicBool::new(false);
    let sync_users = o.sync_users;
    let (during_sync, sync) = std::thread::scope(|s| {
        let b = s.spawn(|| probe(&scim_b, &token_b, "sync-", 50, 100_000, &done));
        let sync = run("A: sync POST users", sync_users, o.concurrency, |a, i| {
            send(
                a,
                "POST",
                &format!("{scim_a}/Users"),
                token_a,
                Some(&user_body(i, "s-")),
            )
            .0 == 201
        });
        done.store(true, Ordering::SeqCst);
        (b.join().unwrap_or_default(), sync)
    });

    println!();
    for (n, status, secs) in &replacements {
        println!(
            "A: PUT group with {n:>6} members (from the other extreme): {status} in {secs:.2} s"
        );
    }
    println!(
        "A: sync of {} users at concurrency {}: {:.0}/s, {} errors",
        sync.requests,
        o.concurrency,
        sync.rate(),
        sync.errors
    );
    println!();
    report("at rest", &rest, &rest);
    report("during A's whole-group PUTs", &during_put, &rest);
    report("during A's initial sync", &during_sync, &rest);
}
