//! `--scenario peer`: Roster's `GET /Users/{id}` against a peer, the `scim-server` crate's
//! in-memory SCIM server behind axum (bench/peer-scim-server, built on its own), in one run.
//!
//! The same number of users (`--sync-users`) is created on each by `POST /Users`; then wrk
//! reads random ids from each in turn (peer, Roster, peer, Roster: the same load tool, script
//! and connections), so that a change of the machine's speed during the run falls on both.
//! Printed: each round's rates, Roster ÷ peer per round and overall with its goal, and each
//! server's `/healthz` baseline.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use crate::{Figures, Opts, Server, agent, run, send, user_body, wrk};

/// Roster's GET-by-id rate should be at least this fraction of the peer's.
const GOAL_RATIO: f64 = 0.8;
/// Rounds of (peer, Roster).
const ROUNDS: usize = 2;
/// Where the peer's own `cargo build --release` puts it, from the repository's root.
const DEFAULT_PEER_BIN: &str = "bench/peer-scim-server/target/release/peer-scim-server";

fn peer_bin() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--peer-bin")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| PathBuf::from(DEFAULT_PEER_BIN), PathBuf::from)
}

fn start_peer(bin: &PathBuf) -> Server {
    let mut child = Command::new(bin)
        .arg("0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} could not start ({e}): build it with `cargo build --release` in \
                 bench/peer-scim-server, or give its path with --peer-bin",
                bin.display()
            )
        });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("the peer starts").expect("stdout line");
        if let Some(rest) = line.strip_prefix("peer-scim-server listening on ") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

/// Creates `n` users by `POST {users_url}`, `concurrency` at a time: the figures and the ids
/// of those created.
fn create_users(
    name: &str,
    users_url: &str,
    token: &str,
    n: usize,
    concurrency: usize,
) -> (Figures, Vec<String>) {
    let ids = Mutex::new(Vec::with_capacity(n));
    let figures = run(name, n, concurrency, |a, i| {
        let (status, body) = send(a, "POST", users_url, token, Some(&user_body(i, "peer-")));
        let id = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string));
        match (status, id) {
            (201, Some(id)) => {
                ids.lock().map(|mut ids| ids.push(id)).ok();
                true
            }
            _ => false,
        }
    });
    (figures, ids.into_inner().unwrap_or_default())
}

/// Whether `GET {users_url}/{id}` answers 200 with the userName the user was created with.
fn reads_back(users_url: &str, token: &str, id: &str) -> bool {
    let (status, body) = send(&agent(), "GET", &format!("{users_url}/{id}"), token, None);
    status == 200
        && serde_json::from_str::<Value>(&body).is_ok_and(|v| {
            v["id"] == id
                && v["userName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("peer-") && n.ends_with("@bench.example"))
        })
}

fn print_row(round: &str, peer: &Figures, roster: &Figures) {
    println!(
        "{round:<10} {:>10.0} {:>7.2} {:>7.2} {:>10.0} {:>7.2} {:>7.2} {:>9.2}× {:>6} / {}",
        peer.rate(),
        peer.p50_ms,
        peer.p99_ms,
        roster.rate(),
        roster.p50_ms,
        roster.p99_ms,
        roster.rate() / peer.rate().max(1e-9),
        peer.errors,
        roster.errors
    );
}

/// Requests per second over several wrk runs.
fn overall_rate(runs: &[Figures]) -> f64 {
    let requests: usize = runs.iter().map(|f| f.requests).sum();
    let seconds: f64 = runs.iter().map(|f| f.seconds).sum();
    requests as f64 / seconds.max(1e-9)
}

pub(crate) fn run_scenario(o: &Opts, base: &str, scim: &str, token: &str) {
    let bin = peer_bin();
    let peer = start_peer(&bin);
    println!(
        "peer: {} at {} (scim-server 0.5.3, in-memory, axum)",
        bin.display(),
        peer.base
    );
    let n = o.sync_users;
    let (peer_created, peer_ids) = create_users(
        "peer POST /Users",
        &format!("{}/Users", peer.base),
        token,
        n,
        o.concurrency,
    );
    let (roster_created, roster_ids) = create_users(
        "Roster POST /Users",
        &format!("{scim}/Users"),
        token,
        n,
        o.concurrency,
    );
    for created in [&peer_created, &roster_created] {
        println!(
            "{}: {} users at {:.0}/s (concurrency {}), {} failed",
            created.name,
            created.requests - created.errors,
            created.rate(),
            o.concurrency,
            created.errors
        );
    }
    let peer_reads = peer_ids
        .first()
        .is_some_and(|id| reads_back(&format!("{}/Users", peer.base), token, id));
    let roster_reads = roster_ids
        .first()
        .is_some_and(|id| reads_back(&format!("{scim}/Users"), token, id));
    println!(
        "a created user reads back (200, its id and userName): peer {peer_reads}, Roster {roster_reads}"
    );
    if !peer_reads || !roster_reads {
        eprintln!("roster-bench: a server does not read back what it created; no comparison");
        return;
    }

    let scim_path = scim.trim_start_matches(base);
    let peer_paths: Vec<String> = peer_ids.iter().map(|id| format!("/Users/{id}")).collect();
    let roster_paths: Vec<String> = roster_ids
        .iter()
        .map(|id| format!("{scim_path}/Users/{id}"))
        .collect();
    let get = |name: &str, server: &str, paths: &[String]| {
        wrk(name, server, paths, token, None, o.seconds, o.concurrency)
    };
    let healthz = ["/healthz".to_string()];
    let peer_base = get("peer GET /healthz", &peer.base, &healthz);
    let roster_base = get("Roster GET /healthz", base, &healthz);
    let mut peer_runs = Vec::new();
    let mut roster_runs = Vec::new();
    for _ in 0..ROUNDS {
        peer_runs.push(get("peer GET /Users/{id}", &peer.base, &peer_paths));
        roster_runs.push(get("Roster GET /Users/{id}", base, &roster_paths));
    }

    println!(
        "\nGET /Users/{{id}}, random ids of {n} users each; wrk {} threads, {} connections, {} s a run",
        o.concurrency.clamp(1, 2),
        o.concurrency,
        o.seconds
    );
    println!(
        "{:<10} {:>10} {:>7} {:>7} {:>10} {:>7} {:>7} {:>10} {:>15}",
        "",
        "peer/s",
        "p50 ms",
        "p99 ms",
        "Roster/s",
        "p50 ms",
        "p99 ms",
        "R ÷ peer",
        "errors p / R"
    );
    print_row("/healthz", &peer_base, &roster_base);
    for (i, (p, r)) in peer_runs.iter().zip(&roster_runs).enumerate() {
        print_row(&format!("round {}", i + 1), p, r);
    }
    let ratio = overall_rate(&roster_runs) / overall_rate(&peer_runs).max(1e-9);
    println!(
        "\noverall: peer {:.0}/s, Roster {:.0}/s; Roster ÷ peer {ratio:.2}× (goal ≥ {GOAL_RATIO:.1}×: {})",
        overall_rate(&peer_runs),
        overall_rate(&roster_runs),
        if ratio >= GOAL_RATIO {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "each ÷ its own /healthz: peer {:.2}, Roster {:.2}",
        overall_rate(&peer_runs) / peer_base.rate().max(1e-9),
        overall_rate(&roster_runs) / roster_base.rate().max(1e-9)
    );
    println!("(errors: wrk's count of responses ≥ 400 and socket errors)");
}
