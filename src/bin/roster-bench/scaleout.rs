//! `--scenario scaleout` (Postgres): one `roster serve` against two on the same database.
//!
//! In one run, the aggregate throughput of `POST /Users` (distinct users) and of
//! `GET /Users/{id}` (random ids), driven by wrk as the standard workloads are: against the
//! first instance alone, then against two instances at once (two wrk processes, one per
//! instance, each with half the connections; their figures summed), then against the first
//! alone again, which brackets any drift. The two instances' creates run twice: into the one
//! directory, and each instance into a directory of its own (which tells what the directory
//! they share costs from what the database does). Errors are wrk's: non-2xx/3xx answers and socket
//! errors. A webhook endpoint takes every event throughout, with both instances' delivery
//! workers running; after each phase's creates the harness waits for delivery to catch up, and
//! after the run it checks, in the database and at the receiver, that every event of the
//! two-instance phase was delivered once.
//!
//! The goal on a two-core machine is no loss and no error (two instances ≥ 0.9× one, errors 0,
//! every event delivered once), not a gain: the instances share the cores with Postgres and
//! wrk.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Figures, Opts, all_users, cli, okta_directory, spawn_wrk, start, wrk_figures};

/// Two instances' aggregate rate ÷ one instance's, at least.
const GOAL_RATIO: f64 = 0.9;
/// The longest the harness waits for delivery to catch up after a phase's creates.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

/// How many times each event id arrived at the receiver.
type Arrivals = Arc<Mutex<HashMap<String, u32>>>;

fn lock(arrivals: &Arrivals) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
    arrivals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts a webhook receiver that counts each `webhook-id` it gets; returns its URL.
fn start_receiver(arrivals: Arrivals) -> String {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("a bound port");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let arrivals = arrivals.clone();
                App::new().route(
                    "/hooks",
                    web::post().to(move |req: HttpRequest| {
                        let arrivals = arrivals.clone();
                        async move {
                            if let Some(id) = req
                                .headers()
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                            {
                                *lock(&arrivals).entry(id.to_string()).or_default() += 1;
                            }
                            HttpResponse::Ok().finish()
                        }
                    }),
                )
            })
            .workers(1)
            .listen(listener)?
            .run()
            .await
        })
    });
    format!("http://{addr}/hooks")
}

/// One value (or one per line) that `query` selects, read with psql.
fn sql(db: &str, query: &str) -> String {
    let out = Command::new("psql")
        .args([db, "-tAq", "-c", query])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn sql_number(db: &str, query: &str) -> i64 {
    sql(db, query).parse().unwrap_or(-1)
}

/// The newest event's global sequence number.
fn last_event(db: &str) -> i64 {
    sql_number(db, "SELECT COALESCE(max(seq), 0) FROM events")
}

/// Waits (bounded) until no delivery is pending and the receiver has had them all; returns
/// how long that took.
fn drain(db: &str, arrivals: &Arrivals) -> Duration {
    let started = Instant::now();
    while started.elapsed() < DRAIN_LIMIT {
        let pending = sql_number(
            db,
            "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'",
        );
        let deliveries = sql_number(db, "SELECT count(*) FROM webhook_deliveries");
        let arrived = lock(arrivals).values().map(|n| i64::from(*n)).sum::<i64>();
        if pending == 0 && arrived >= deliveries {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

/// Where one wrk process sends its requests: an instance, and a directory's SCIM URL and token.
struct Target<'a> {
    base: &'a str,
    scim: &'a str,
    token: &'a str,
}

impl Target<'_> {
    fn scim_path(&self) -> String {
        self.scim
            .find("/scim/")
            .map(|i| self.scim[i..].to_string())
            .unwrap_or_default()
    }
}

/// One workload against each target at once (one wrk process each, `concurrency` connections
/// split between them): the figures of each. `paths` gives a target's request paths.
fn at_once(
    name: &str,
    targets: &[Target],
    paths: impl Fn(&Target) -> Vec<String>,
    post_prefix: Option<&str>,
    o: &Opts,
) -> Vec<Figures> {
    let share = (o.concurrency / targets.len()).max(1);
    let loads: Vec<_> = targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let prefix = post_prefix.map(|p| format!("{p}{i}-"));
            spawn_wrk(
                &format!("scaleout{i}"),
                target.base,
                &paths(target),
                target.token,
                prefix.as_deref(),
                o.seconds,
                share,
            )
        })
        .collect();
    let figures: Vec<Figures> = loads
        .into_iter()
        .enumerate()
        .map(|(i, load)| wrk_figures(&format!("{name} (wrk {})", i + 1), load))
        .collect();
    for f in &figures {
        println!(
            "  {:<36} {:>8} req {:>8.0}/s p50 {:>6.2} ms p99 {:>7.2} ms errors {}",
            f.name,
            f.requests,
            f.rate(),
            f.p50_ms,
            f.p99_ms,
            f.errors
        );
    }
    figures
}

/// A phase's figures for one workload: the summed rate, the worst p50 and p99, the errors.
struct Aggregate {
    rate: f64,
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

fn aggregate(parts: &[Figures]) -> Aggregate {
    Aggregate {
        rate: parts.iter().map(Figures::rate).sum(),
        requests: parts.iter().map(|f| f.requests).sum(),
        p50_ms: parts.iter().map(|f| f.p50_ms).fold(0.0, f64::max),
        p99_ms: parts.iter().map(|f| f.p99_ms).fold(0.0, f64::max),
        errors: parts.iter().map(|f| f.errors).sum(),
    }
}

/// Distinct creates against the targets at once; then delivery catches up (not timed).
fn creates(label: &str, o: &Opts, db: &str, targets: &[Target], arrivals: &Arrivals) -> Aggregate {
    println!("scaleout: creates, {label}");
    let figures = at_once(
        "POST /Users",
        targets,
        |t| vec![format!("{}/Users", t.scim_path())],
        Some(&format!("{}-", label.replace([' ', ','], ""))),
        o,
    );
    let caught_up = drain(db, arrivals);
    println!(
        "  delivery caught up {:.1} s after the creates",
        caught_up.as_secs_f64()
    );
    aggregate(&figures)
}

/// Reads of random users of each target's directory (all it has) against the targets at once.
fn reads(label: &str, o: &Opts, targets: &[Target]) -> Aggregate {
    println!("scaleout: reads, {label}");
    let figures = at_once(
        "GET /Users/{id}",
        targets,
        |t| {
            let path = t.scim_path();
            all_users(t.scim, t.token, None)
                .into_iter()
                .map(|(id, _)| format!("{path}/Users/{id}"))
                .collect()
        },
        None,
        o,
    );
    aggregate(&figures)
}

/// Checks that every event after `from` up to `to` (global sequence numbers) was delivered once:
/// in the database (one delivery per event, delivered, one attempt each) and at the receiver
/// (each event id arrived once). Prints the counts; true when they hold.
fn delivered_once(db: &str, arrivals: &Arrivals, from: i64, to: i64) -> bool {
    let range = format!("event_seq > {from} AND event_seq <= {to}");
    let events = sql_number(
        db,
        &format!("SELECT count(*) FROM events WHERE seq > {from} AND seq <= {to}"),
    );
    let deliveries = sql_number(
        db,
        &format!("SELECT count(*) FROM webhook_deliveries WHERE {range}"),
    );
    let delivered = sql_number(
        db,
        &format!(
            "SELECT count(*) FROM webhook_deliveries WHERE {range} AND status = 'delivered' AND attempts = 1"
        ),
    );
    let attempts = sql_number(
        db,
        &format!(
            "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.{range}"
        ),
    );
    let ids = sql(
        db,
        &format!("SELECT id FROM events WHERE seq > {from} AND seq <= {to}"),
    );
    let (mut once, mut repeated, mut missing) = (0, 0, 0);
    {
        let arrived = lock(arrivals);
        for id in ids.lines() {
            match arrived.get(id).copied().unwrap_or(0) {
                0 => missing += 1,
                1 => once += 1,
                _ => repeated += 1,
            }
        }
    }
    let holds = events > 0
        && deliveries == events
        && delivered == events
        && attempts == events
        && once == events
        && repeated == 0
        && missing == 0;
    println!(
        "two-instance phase's events: {events}; deliveries {deliveries}, delivered at the first attempt {delivered}, attempts logged {attempts}; at the receiver once {once}, more than once {repeated}, never {missing}{}",
        if holds { "" } else { "  MISSED" }
    );
    holds
}

pub fn run_scenario(o: &Opts, db: &str, base: &str, org_id: &str, scim: &str, token: &str) {
    assert!(
        o.backend == "postgres",
        "the scaleout scenario needs --backend postgres (instances share one database)"
    );
    let arrivals = Arrivals::default();
    let receiver = start_receiver(arrivals.clone());
    cli(db, base, &["webhook", "add", &receiver, "--json"]);
    let (other_scim, other_token) = okta_directory(db, base, org_id);

    let first = [Target { base, scim, token }];
    let one_post = creates("one instance", o, db, &first, &arrivals);
    let one_get = reads("one instance", o, &first);

    let second = start(db);
    let from = last_event(db);
    let both = [
        Target { base, scim, token },
        Target {
            base: &second.base,
            scim,
            token,
        },
    ];
    let two_post = creates("two instances", o, db, &both, &arrivals);
    let two_get = reads("two instances", o, &both);
    // Is it the directory the two instances share, or the database?
    let apart = [
        Target { base, scim, token },
        Target {
            base: &second.base,
            scim: &other_scim,
            token: &other_token,
        },
    ];
    let apart_post = creates("two instances, a directory each", o, db, &apart, &arrivals);
    let to = last_event(db);
    drop(second);

    let again_post = creates("one instance again", o, db, &first, &arrivals);
    let again_get = reads("one instance again", o, &first);

    println!(
        "\n{:<18} {:<32} {:>9} {:>10} {:>9} {:>9} {:>7}",
        "workload", "against", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let rows = [
        ("POST /Users", "one instance", &one_post),
        ("POST /Users", "two instances (sum)", &two_post),
        ("POST /Users", "two, a directory each (sum)", &apart_post),
        ("POST /Users", "one instance again", &again_post),
        ("GET /Users/{id}", "one instance", &one_get),
        ("GET /Users/{id}", "two instances (sum)", &two_get),
        ("GET /Users/{id}", "one instance again", &again_get),
    ];
    for (workload, against, a) in rows {
        println!(
            "{workload:<18} {against:<32} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            a.requests, a.rate, a.p50_ms, a.p99_ms, a.errors
        );
    }
    println!();
    for (workload, one, again, two) in [
        ("POST /Users", &one_post, &again_post, &two_post),
        (
            "POST /Users, a directory each",
            &one_post,
            &again_post,
            &apart_post,
        ),
        ("GET /Users/{id}", &one_get, &again_get, &two_get),
    ] {
        let single = (one.rate + again.rate) / 2.0;
        let ratio = two.rate / single;
        let errors = one.errors + two.errors + again.errors;
        let verdict = if ratio >= GOAL_RATIO && errors == 0 {
            ""
        } else {
            "  MISSED"
        };
        println!(
            "{workload}: two instances ÷ one (mean of before and after) {ratio:.2}× (goal ≥ {GOAL_RATIO}), errors {errors} (goal 0){verdict}"
        );
    }
    delivered_once(db, &arrivals, from, to);
}
