//! `--scenario realtime`: how soon does a change reach the vendor's application?
//!
//! A receiver inside the harness takes the webhooks; a reader follows the events feed. For each
//! `POST /Users` the time from its 201 to the webhook's arrival, and to the event's appearance
//! in the feed, is taken in three phases: at rest (single creates, a few a second), under a
//! steady `--rate` creates/s spread over ten directories for `--seconds`, and while one of three
//! receivers hangs for the server's whole webhook timeout (the other two receivers' figures).
//! A webhook that arrives before its 201 was read counts as 0 ms.
//!
//! Each figure is printed with its goal: on SQLite p50 ≤ 20 ms and p99 ≤ 250 ms, on Postgres
//! within twice that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Opts, agent, cli, okta_directory, send, user_body};

/// SQLite's goals, in ms; Postgres's are `POSTGRES_FACTOR` times these.
pub(crate) const GOAL_P50_MS: f64 = 20.0;
pub(crate) const GOAL_P99_MS: f64 = 250.0;
pub(crate) const POSTGRES_FACTOR: f64 = 2.0;
/// Directories the load is spread over.
const DIRECTORIES: usize = 10;
/// Creates at rest, and their spacing.
const AT_REST: usize = 150;
const AT_REST_SPACING: Duration = Duration::from_millis(50);
/// How long the hanging phase writes: longer than the server's default webhook timeout (10 s),
/// so one delivery to the hanging receiver takes the whole timeout while it runs.
const HANG_PHASE: Duration = Duration::from_secs(12);
/// The longest the harness waits for a phase's last webhooks before it counts them missing.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// When each userName's 201 was read, its webhook arrived (per receiver) and it was seen in
/// the feed.
#[derive(Default)]
pub(crate) struct Clock {
    pub(crate) replied: HashMap<String, Instant>,
    pub(crate) arrived: HashMap<(String, String), Instant>,
    in_feed: HashMap<String, Instant>,
}

pub(crate) type SharedClock = Arc<Mutex<Clock>>;

pub(crate) fn lock(clock: &SharedClock) -> std::sync::MutexGuard<'_, Clock> {
    clock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The userName a `user.created` payload carries.
fn user_name(event: &Value) -> Option<String> {
    event["data"]["user"]["user_name"]
        .as_str()
        .map(str::to_string)
}

/// Starts the receiver: `POST /hooks/{name}` records the arrival; `POST /hang` never answers
/// (the server gives up after its timeout). Returns its base URL.
pub(crate) fn start_receiver(clock: SharedClock) -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("a bound port");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let clock = clock.clone();
                App::new()
                    .app_data(web::PayloadConfig::new(1024 * 1024))
                    .route(
                        "/hooks/{name}",
                        web::post().to(move |name: web::Path<String>, body: web::Bytes| {
                            let at = Instant::now();
                            let clock = clock.clone();
                            async move {
                                if let Some(user) = serde_json::from_slice::<Value>(&body)
                                    .ok()
                                    .as_ref()
                                    .and_then(user_name)
                                {
                                    lock(&clock).arrived.insert((name.into_inner(), user), at);
                                }
                                HttpResponse::Ok().finish()
                            }
                        }),
                    )
                    .route(
                        "/hang",
                        web::post().to(|| async {
                            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
                            HttpResponse::Ok().finish()
                        }),
                    )
            })
            .workers(2)
            .listen(listener)?
            .run()
            .await
        })
    });
    format!("http://{addr}")
}

/// Follows the events feed from its start until `stop`, noting when each user first appears.
fn follow_feed(base: &str, key: &str, clock: &SharedClock, stop: &AtomicBool) {
    let a = agent();
    let mut after = "0".to_string();
    while !stop.load(Ordering::Relaxed) {
        let (status, body) = send(
            &a,
            "GET",
            &format!("{base}/api/v1/events?after={after}&limit=1000"),
            key,
            None,
        );
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let data = v["data"].as_array().cloned().unwrap_or_default();
        let at = Instant::now();
        {
            let mut c = lock(clock);
            for user in data.iter().filter_map(user_name) {
                c.in_feed.entry(user).or_insert(at);
            }
        }
        if let Some(next) = v["next_cursor"].as_str() {
            after = next.to_string();
        }
        if status != 200 || data.is_empty() {
            // Nothing new: look again soon (this bounds the feed figures' resolution).
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Creates a user and notes when its 201 was read; false on any other answer.
fn create(a: &ureq::Agent, scim: &str, token: &str, name: &str, clock: &SharedClock) -> bool {
    let (status, _) = send(
        a,
        "POST",
        &format!("{scim}/Users"),
        token,
        Some(&user_body(0, name)),
    );
    let replied = Instant::now();
    if status == 201 {
        lock(clock).replied.insert(user_of(name), replied);
    }
    status == 201
}

/// The userName `user_body(0, prefix)` gives.
fn user_of(prefix: &str) -> String {
    format!("{prefix}0@bench.example")
}

/// Waits (bounded) until every user in `names` arrived at each of `receivers` and is in the
/// feed.
fn drain(clock: &SharedClock, names: &[String], receivers: &[&str]) {
    let until = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < until {
        let done = {
            let c = lock(clock);
            names.iter().all(|n| {
                c.in_feed.contains_key(n)
                    && receivers
                        .iter()
                        .all(|r| c.arrived.contains_key(&(r.to_string(), n.clone())))
            })
        };
        if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// Prints p50 and p99 of the delays from each 201 to `when` (for the users that got one).
fn report(
    label: &str,
    names: &[String],
    clock: &SharedClock,
    factor: f64,
    when: impl Fn(&Clock, &String) -> Option<Instant>,
) {
    let c = lock(clock);
    let mut delays = Vec::new();
    let mut missing = 0;
    for n in names {
        let Some(replied) = c.replied.get(n) else {
            continue;
        };
        match when(&c, n) {
            Some(at) => delays.push(at.saturating_duration_since(*replied).as_secs_f64() * 1e3),
            None => missing += 1,
        }
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
    let (g50, g99) = (GOAL_P50_MS * factor, GOAL_P99_MS * factor);
    let verdict = if p50 <= g50 && p99 <= g99 && missing == 0 {
        ""
    } else {
        "  MISSED"
    };
    println!(
        "{label:<52} n {:>6}  p50 {p50:>8.1} ms (goal ≤ {g50:.0})  p99 {p99:>8.1} ms (goal ≤ {g99:.0})  max {:>8.1} ms  missing {missing}{verdict}",
        delays.len(),
        percentile(&delays, 1.0),
    );
}

pub(crate) fn add_webhook(db: &str, base: &str, url: &str) {
    cli(
        db,
        base,
        &["webhook", "add", url, "--events", "user.created", "--json"],
    );
}

/// Creates users one at a time, `spacing` apart, for `count` creates or until `until`.
fn paced_creates(
    scim: &str,
    token: &str,
    tag: &str,
    count: usize,
    spacing: Duration,
    clock: &SharedClock,
) -> Vec<String> {
    let a = agent();
    let start = Instant::now();
    let mut names = Vec::new();
    for i in 0..count {
        let due = start + spacing * i as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let prefix = format!("{tag}{i}-");
        if create(&a, scim, token, &prefix, clock) {
            names.push(user_of(&prefix));
        }
    }
    names
}

/// Runs the scenario on the server at `base`, in organization `org_id`, with a first directory
/// at `scim`.
pub fn run_scenario(o: &Opts, db: &str, base: &str, org_id: &str, scim: &str, token: &str) {
    let factor = if o.backend == "postgres" {
        POSTGRES_FACTOR
    } else {
        1.0
    };
    let clock = SharedClock::default();
    let receiver = start_receiver(clock.clone());
    add_webhook(db, base, &format!("{receiver}/hooks/a"));
    let key: Value =
        serde_json::from_str(&cli(db, base, &["api-key", "create", "bench", "--json"]))
            .unwrap_or(Value::Null);
    let key = key["key"].as_str().unwrap_or_default().to_string();
    let mut directories = vec![(scim.to_string(), token.to_string())];
    while directories.len() < DIRECTORIES {
        directories.push(okta_directory(db, base, org_id));
    }
    let stop = AtomicBool::new(false);
    let rate = o.rate;
    let seconds = o.seconds;
    std::thread::scope(|s| {
        s.spawn(|| follow_feed(base, &key, &clock, &stop));

        println!("realtime: at rest, {AT_REST} creates {AT_REST_SPACING:?} apart");
        let rest = paced_creates(scim, token, "rest-", AT_REST, AT_REST_SPACING, &clock);
        drain(&clock, &rest, &["a"]);

        println!(
            "realtime: under load, {rate} creates/s over {DIRECTORIES} directories for {seconds} s"
        );
        let per_directory = Duration::from_secs_f64(DIRECTORIES as f64 / rate.max(1) as f64);
        let count = (rate * seconds as usize) / DIRECTORIES;
        let started = Instant::now();
        let load: Vec<String> = std::thread::scope(|inner| {
            let threads: Vec<_> = directories
                .iter()
                .enumerate()
                .map(|(d, (scim, token))| {
                    let clock = &clock;
                    inner.spawn(move || {
                        paced_creates(
                            scim,
                            token,
                            &format!("load{d}-"),
                            count,
                            per_directory,
                            clock,
                        )
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap_or_default())
                .collect()
        });
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "  {} creates in {elapsed:.1} s: {:.0}/s achieved",
            load.len(),
            load.len() as f64 / elapsed
        );
        drain(&clock, &load, &["a"]);

        println!(
            "realtime: receivers a and b while `hang` never answers (the server's whole timeout), {:?} of creates {AT_REST_SPACING:?} apart",
            HANG_PHASE
        );
        add_webhook(db, base, &format!("{receiver}/hooks/b"));
        add_webhook(db, base, &format!("{receiver}/hang"));
        let count = (HANG_PHASE.as_millis() / AT_REST_SPACING.as_millis()) as usize;
        let hang = paced_creates(scim, token, "hang-", count, AT_REST_SPACING, &clock);
        drain(&clock, &hang, &["a", "b"]);
        stop.store(true, Ordering::Relaxed);

        println!();
        let arrival = |receiver: &'static str| {
            move |c: &Clock, n: &String| c.arrived.get(&(receiver.to_string(), n.clone())).copied()
        };
        let feed = |c: &Clock, n: &String| c.in_feed.get(n).copied();
        report(
            "at rest: 201 → webhook",
            &rest,
            &clock,
            factor,
            arrival("a"),
        );
        report("at rest: 201 → events feed", &rest, &clock, factor, feed);
        report(
            "under load: 201 → webhook",
            &load,
            &clock,
            factor,
            arrival("a"),
        );
        report("under load: 201 → events feed", &load, &clock, factor, feed);
        report(
            "one receiver hanging: 201 → webhook at a",
            &hang,
            &clock,
            factor,
            arrival("a"),
        );
        report(
            "one receiver hanging: 201 → webhook at b",
            &hang,
            &clock,
            factor,
            arrival("b"),
        );
    });
}
