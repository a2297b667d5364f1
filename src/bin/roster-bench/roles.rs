//! `--scenario roles`: what a role mapping that reaches many users costs, and whether it holds
//! another directory up. Directory A gets `--group-members` users, all in one group; the owner
//! defines a role and maps the group to it (every user's roles move: one `user.updated` each),
//! then maps it away again. Directory B's single requests are timed at rest and meanwhile
//! (see `fairness`); then the API's user list with roles is timed against the same list before
//! any role existed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::fairness::{probe, report};
use crate::{Opts, agent, all_users, cli, okta_directory, run, send, user_body};

/// Mapping changes A makes while B is timed (mapped, unmapped, and so on).
const MAPPING_CHANGES: usize = 3;

fn api(a: &ureq::Agent, method: &str, url: &str, key: &str, body: Option<&Value>) -> (u16, Value) {
    let (status, text) = send(a, method, url, key, body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Mean milliseconds of `n` calls of `f`.
fn mean_ms(n: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1000.0 / n as f64
}

pub fn run_scenario(o: &Opts, db: &str, base: &str, org_id: &str, scim_a: &str, token_a: &str) {
    let key: Value =
        serde_json::from_str(&cli(db, base, &["api-key", "create", "bench", "--json"]))
            .unwrap_or(Value::Null);
    let key = key["key"].as_str().unwrap_or_default().to_string();
    let (scim_b, token_b) = okta_directory(db, base, org_id);
    let dir_a = scim_a.rsplit('/').next().unwrap_or_default().to_string();

    let n = o.group_members;
    println!("roles: directory A gets {n} users, all in one group");
    run("A: POST users", n, o.concurrency, |a, i| {
        send(
            a,
            "POST",
            &format!("{scim_a}/Users"),
            token_a,
            Some(&user_body(i, "r-")),
        )
        .0 == 201
    });
    let members: Vec<Value> = all_users(scim_a, token_a, None)
        .into_iter()
        .map(|(id, _)| json!({"value": id}))
        .collect();
    let a = agent();
    let (_, group) = api(
        &a,
        "POST",
        &format!("{scim_a}/Groups"),
        token_a,
        Some(&json!({"displayName": "Everyone", "members": members})),
    );
    let group_id = group["id"].as_str().unwrap_or_default().to_string();
    let users_url = format!("{base}/api/v1/users?directory_id={dir_a}&limit=100");
    let list_before = mean_ms(50, || {
        api(&a, "GET", &users_url, &key, None);
    });
    let (status, _) = api(
        &a,
        "POST",
        &format!("{base}/api/v1/organizations/{org_id}/roles"),
        &key,
        Some(&json!({"slug": "staff", "name": "Staff"})),
    );
    assert_eq!(status, 201, "the role is defined");

    let never = AtomicBool::new(true);
    // No webhook here: B's replies are noted, and nothing reads them.
    let clock = crate::realtime::SharedClock::default();
    let rest = probe(&scim_b, &token_b, "rest-", 300, 300, &never, &clock);
    let done = AtomicBool::new(false);
    let mut changes = Vec::new();
    let during = std::thread::scope(|s| {
        let b = s.spawn(|| probe(&scim_b, &token_b, "map-", 50, 100_000, &done, &clock));
        let mappings = format!("{base}/api/v1/directories/{dir_a}/role-mappings");
        for round in 0..MAPPING_CHANGES {
            let body = if round % 2 == 0 {
                json!([{"group_id": group_id, "role": "staff"}])
            } else {
                json!([])
            };
            let t = Instant::now();
            let (status, reply) = api(&a, "PUT", &mappings, &key, Some(&body));
            changes.push((
                status,
                reply["users_changed"].clone(),
                t.elapsed().as_secs_f64(),
            ));
        }
        done.store(true, Ordering::SeqCst);
        b.join().unwrap_or_default()
    });
    let list_after = mean_ms(50, || {
        api(&a, "GET", &users_url, &key, None);
    });

    println!();
    for (status, moved, secs) in &changes {
        println!("A: PUT role-mappings: {status}, {moved} users' roles moved, in {secs:.2} s");
    }
    println!(
        "API user list (100 users of A): {list_before:.2} ms before any role, {list_after:.2} ms with roles (mean of 50)"
    );
    println!();
    report("at rest", &rest, &rest);
    report("during A's mapping changes", &during, &rest);
}
