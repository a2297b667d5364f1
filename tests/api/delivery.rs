//! Real-time delivery: the outbox, signed webhooks with retries and replay, the events feed,
//! crash safety and several instances — with a real HTTP receiver on loopback.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Scim, TestApp, TestDb, backend_tests, postgres_enabled};
use crate::receiver::{self, signature_valid};

/// Waits (bounded) until `check` holds, re-reading the database between tries.
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn delivery_status(app: &TestApp, endpoint: &str) -> Vec<(String, i32)> {
    roster::db::webhooks::deliveries(&mut app.conn(), endpoint, 100)
        .unwrap()
        .into_iter()
        .map(|d| (d.status.to_string(), d.attempts))
        .collect()
}

backend_tests!(every_event_type_arrives_once_in_order_and_signed);
async fn every_event_type_arrives_once_in_order_and_signed(backend: Backend) {
    let app = TestApp::spawn(backend)
        .await
        .with_worker(&[0.05, 0.05, 0.05]);
    let mut rx = receiver::start(None, 0, None);
    let endpoint = app.webhook(&rx.url, None, "*");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let dir = scim.base.rsplit('/').next().unwrap().to_string();

    let a = scim
        .post("/Users", &json!({"userName": "a@x.com", "title": "T"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = scim
        .post("/Users", &json!({"userName": "b@x.com"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    scim.patch(
        &format!("/Users/{a}"),
        &json!({"Operations": [{"op": "replace", "path": "title", "value": "Boss"}]}),
    )
    .await;
    scim.patch(
        &format!("/Users/{a}"),
        &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
    )
    .await;
    scim.patch(
        &format!("/Users/{a}"),
        &json!({"Operations": [{"op": "replace", "path": "active", "value": true}]}),
    )
    .await;
    let g = scim
        .post(
            "/Groups",
            &json!({"displayName": "G", "members": [{"value": a}]}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    scim.patch(&format!("/Groups/{g}"), &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": b}]}, {"op": "remove", "path": format!("members[value eq \"{a}\"]")}]})).await;
    scim.patch(
        &format!("/Groups/{g}"),
        &json!({"Operations": [{"op": "replace", "path": "displayName", "value": "G2"}]}),
    )
    .await;
    // A no-op rename (Okta repeats them) emits nothing.
    scim.patch(
        &format!("/Groups/{g}"),
        &json!({"Operations": [{"op": "replace", "value": {"id": g, "displayName": "G2"}}]}),
    )
    .await;
    scim.delete(&format!("/Users/{b}")).await;
    scim.delete(&format!("/Groups/{g}")).await;
    roster::db::directories::set_status(&mut app.conn(), &org, &dir, false).unwrap();
    roster::db::directories::delete(&mut app.conn(), &org, &dir).unwrap();

    let expected = [
        "directory.connected",
        "user.created",
        "user.created",
        "user.updated",
        "user.deactivated",
        "user.reactivated",
        "group.created",
        "group.user_added",
        "group.user_added",
        "group.user_removed",
        "group.updated",
        "user.deleted",
        "group.deleted",
        "directory.disabled",
        "directory.deleted",
    ];
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        let r = rx.next(20).await;
        assert!(signature_valid(&endpoint.secret, &r), "signature verifies");
        assert_eq!(
            r.id,
            r.json["id"].as_str().unwrap(),
            "webhook-id is the event id"
        );
        got.push(r);
    }
    let types: Vec<&str> = got
        .iter()
        .map(|r| r.json["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, expected);
    let seqs: Vec<i64> = got
        .iter()
        .map(|r| r.json["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=expected.len() as i64).collect::<Vec<_>>(),
        "in order, per-directory sequence"
    );
    let ids: BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), expected.len(), "each event once");
    // Payloads: normalized resource plus the raw SCIM one, and what changed.
    assert_eq!(got[3].json["data"]["changed"], json!(["title"]));
    assert_eq!(got[1].json["data"]["user"]["user_name"], "a@x.com");
    assert_eq!(got[1].json["data"]["raw"]["userName"], "a@x.com");
    assert_eq!(got[7].json["data"]["group"]["name"], "G");
    assert_eq!(got[7].json["data"]["user"]["id"], a.as_str());
    assert_eq!(got[1].json["org_id"], org.as_str());
    assert_eq!(got[1].json["directory_id"], dir.as_str());
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.rx.recv())
            .await
            .is_err(),
        "no duplicates"
    );
}

backend_tests!(a_membership_change_of_3_in_a_big_group_yields_3_events);
async fn a_membership_change_of_3_in_a_big_group_yields_3_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "pingidentity");
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(
            scim.post("/Users", &json!({"userName": format!("u{i}@x.com")}))
                .await
                .json()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let members: Vec<Value> = ids[..50].iter().map(|i| json!({"value": i})).collect();
    let g = scim
        .post(
            "/Groups",
            &json!({"displayName": "Big", "members": members}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = roster::db::events::feed(&mut app.conn(), &Default::default(), 0, 10_000)
        .unwrap()
        .len();
    // PingOne's full-group PUT: 48 stay, 2 leave, 1 joins.
    let mut next: Vec<Value> = ids[2..50].iter().map(|i| json!({"value": i})).collect();
    next.push(json!({"value": ids[55]}));
    assert_eq!(
        scim.put(
            &format!("/Groups/{g}"),
            &json!({"displayName": "Big", "members": next})
        )
        .await
        .status,
        200
    );
    let events = roster::db::events::feed(&mut app.conn(), &Default::default(), 0, 10_000).unwrap();
    let new: Vec<&str> = events[before..]
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        new,
        [
            "group.user_added",
            "group.user_removed",
            "group.user_removed"
        ]
    );
}

backend_tests!(a_failing_receiver_gets_the_event_on_the_fourth_attempt);
async fn a_failing_receiver_gets_the_event_on_the_fourth_attempt(backend: Backend) {
    let app = TestApp::spawn(backend)
        .await
        .with_worker(&[0.05, 0.05, 0.05, 0.05, 0.05]);
    let mut rx = receiver::start(None, 3, None);
    let endpoint = app.webhook(&rx.url, None, "user.created");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    scim.post("/Users", &json!({"userName": "retry@x.com"}))
        .await;
    let attempts: Vec<String> = vec![
        rx.next(20).await.id,
        rx.next(20).await.id,
        rx.next(20).await.id,
        rx.next(20).await.id,
    ];
    assert!(
        attempts.windows(2).all(|w| w[0] == w[1]),
        "the same event, retried"
    );
    eventually("the 4th attempt is recorded as delivered", || {
        delivery_status(&app, &endpoint.id) == vec![("delivered".to_string(), 4)]
    })
    .await;
    let log = roster::db::webhooks::attempts(&mut app.conn(), &endpoint.id, 10).unwrap();
    let codes: Vec<Option<i32>> = log.iter().rev().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(500), Some(200)]);
    assert!(
        log[1]
            .response_excerpt
            .as_deref()
            .unwrap()
            .contains("failing on purpose")
    );
}

backend_tests!(a_failure_holds_back_the_rest_of_its_directorys_queued_events);
async fn a_failure_holds_back_the_rest_of_its_directorys_queued_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut rx = receiver::start(None, 2, None);
    app.webhook(&rx.url, None, "user.created");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    // Queued before any worker runs: its first claim takes them all, in one run.
    for i in 0..5 {
        let r = scim
            .post("/Users", &json!({"userName": format!("q{i}@x.com")}))
            .await;
        assert_eq!(r.status, 201);
    }
    let app = app.with_worker(&[0.05, 0.05, 0.05]);
    let mut arrived = Vec::new();
    for _ in 0..7 {
        let r = rx.next(20).await;
        arrived.push(
            r.json["data"]["user"]["user_name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // The first event fails twice; nothing after it is sent before it succeeded.
    assert_eq!(
        arrived,
        ["q0", "q0", "q0", "q1", "q2", "q3", "q4"].map(|u| format!("{u}@x.com"))
    );
    drop(app);
}

/// A way to attempt deliveries whose first attempt says it is in flight, then waits for the
/// test's go-ahead (20 s at most); the others go at once.
fn gated_first_attempt() -> (
    roster::events::Deliver,
    tokio::sync::mpsc::UnboundedReceiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (in_flight, attempt_started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (go_ahead, gate) = std::sync::mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    let first = std::sync::atomic::AtomicBool::new(true);
    let deliver: roster::events::Deliver = std::sync::Arc::new(move |agent, due| {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let _ = in_flight.send(());
            let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(20));
        }
        roster::events::attempt(agent, due)
    });
    (deliver, attempt_started, go_ahead)
}

backend_tests!(a_replay_while_the_delivery_is_in_flight_delivers_it_again);
async fn a_replay_while_the_delivery_is_in_flight_delivers_it_again(backend: Backend) {
    let (deliver, mut attempt_started, go_ahead) = gated_first_attempt();
    let app = TestApp::spawn(backend)
        .await
        .with_worker_delivering(&[0.05], deliver);
    let mut rx = receiver::start(None, 0, None);
    let endpoint = app.webhook(&rx.url, None, "user.created");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    scim.post("/Users", &json!({"userName": "twice@x.com"}))
        .await;
    tokio::time::timeout(Duration::from_secs(20), attempt_started.recv())
        .await
        .expect("the first attempt started");
    let queued =
        roster::db::webhooks::replay(&mut app.conn(), &endpoint.id, None, Some(0)).unwrap();
    assert_eq!(queued, 1);
    go_ahead.send(()).unwrap();
    // The attempt that was in flight arrives, and the replay after it.
    let sent = rx.next(20).await;
    let replayed = rx.next(20).await;
    assert_eq!(sent.id, replayed.id);
}

backend_tests!(a_receiver_down_past_the_retry_window_dead_letters_and_replay_delivers);
async fn a_receiver_down_past_the_retry_window_dead_letters_and_replay_delivers(backend: Backend) {
    let app = TestApp::spawn(backend).await.with_worker(&[0.02, 0.02]);
    let key = app.api_key();
    // A port with nothing listening yet.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let endpoint = app.webhook(&url, None, "user.*");
    drop(listener);
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    scim.post("/Users", &json!({"userName": "dead@x.com"}))
        .await;
    eventually("the delivery is dead-lettered after 3 attempts", || {
        delivery_status(&app, &endpoint.id) == vec![("dead".to_string(), 3)]
    })
    .await;
    let attempts = roster::db::webhooks::attempts(&mut app.conn(), &endpoint.id, 10).unwrap();
    assert!(
        attempts
            .iter()
            .all(|a| a.status_code.is_none() && a.error.is_some()),
        "connection refused is recorded"
    );

    // The receiver comes back; the vendor replays the dead event through the API.
    let mut rx = receiver::start(
        Some(
            TcpListener::bind(url.trim_start_matches("http://").trim_end_matches("/hooks"))
                .unwrap(),
        ),
        0,
        None,
    );
    let feed = api_get(&app, &key, "/api/v1/events").await;
    let event_id = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "user.created")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api_post(
        &app,
        &key,
        &format!("/api/v1/webhooks/{}/replay", endpoint.id),
        json!({"event_id": event_id}),
    )
    .await;
    assert_eq!(r["queued"], 1);
    let got = rx.next(20).await;
    assert_eq!(got.id, event_id);
    assert!(signature_valid(&endpoint.secret, &got));
    eventually("delivered after the replay", || {
        delivery_status(&app, &endpoint.id) == vec![("delivered".to_string(), 1)]
    })
    .await;
    let log = api_get(
        &app,
        &key,
        &format!("/api/v1/webhooks/{}/deliveries", endpoint.id),
    )
    .await;
    assert_eq!(log["data"][0]["status"], "delivered");
}

backend_tests!(the_scim_request_returns_while_the_receiver_hangs);
async fn the_scim_request_returns_while_the_receiver_hangs(backend: Backend) {
    let app = TestApp::spawn(backend).await.with_worker(&[0.05]);
    let mut rx = receiver::start(None, 0, Some(Duration::from_secs(3)));
    app.webhook(&rx.url, None, "*");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let r = scim
        .post("/Users", &json!({"userName": "fast@x.com"}))
        .await;
    assert_eq!(r.status, 201, "the provider's request completed");
    // The webhook is delivered after commit, outside the request: it is still hanging.
    let first = rx.next(20).await;
    assert_eq!(first.json["type"], "directory.connected");
    assert_eq!(
        rx.completed.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the receiver has not answered yet"
    );
}

async fn api_get(app: &TestApp, key: &str, path: &str) -> Value {
    let mut r = awc::Client::new()
        .get(format!("{}{path}", app.base))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    serde_json::from_slice(&r.body().await.unwrap()).unwrap()
}

async fn api_post(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let mut r = awc::Client::new()
        .post(format!("{}{path}", app.base))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send_json(&body)
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    serde_json::from_slice(&r.body().await.unwrap()).unwrap()
}

backend_tests!(the_events_feed_matches_the_webhooks_and_resumes_from_any_cursor);
async fn the_events_feed_matches_the_webhooks_and_resumes_from_any_cursor(backend: Backend) {
    let app = TestApp::spawn(backend).await.with_worker(&[0.05]);
    let key = app.api_key();
    let mut rx = receiver::start(None, 0, None);
    app.webhook(&rx.url, None, "*");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    for i in 0..5 {
        scim.post("/Users", &json!({"userName": format!("f{i}@x.com")}))
            .await;
    }
    let mut delivered = Vec::new();
    for _ in 0..6 {
        delivered.push(rx.next(20).await.id);
    }
    let all = api_get(&app, &key, &format!("/api/v1/events?organization_id={org}")).await;
    let feed: Vec<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(feed, delivered, "same events, same order");
    // Page through two at a time, resuming from each cursor.
    let mut paged = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let page = api_get(
            &app,
            &key,
            &format!("/api/v1/events?after={cursor}&limit=2"),
        )
        .await;
        let items = page["data"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        paged.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        cursor = page["next_cursor"].as_str().unwrap().to_string();
    }
    assert_eq!(paged, feed);
    // Resuming from the middle gives the rest.
    let mid = api_get(&app, &key, "/api/v1/events?after=3").await;
    assert_eq!(mid["data"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn two_instances_on_postgres_deliver_each_event_once() {
    if !postgres_enabled("two_instances_on_postgres_deliver_each_event_once") {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let url = db.url.clone();
    let first = TestApp::spawn_on(Backend::Postgres, db)
        .await
        .with_worker(&[0.05]);
    let second = TestApp::spawn_on(Backend::Postgres, TestDb { url, _dir: None })
        .await
        .with_worker(&[0.05]);
    let mut rx = receiver::start(None, 0, None);
    let endpoint = first.webhook(&rx.url, None, "user.created");
    let org = first.org("Acme", true);
    let scim = first.directory(&org, "okta");
    let other = Scim::new(
        scim.base.replace(&first.base, &second.base),
        scim.token.clone(),
    );
    for i in 0..20 {
        let target = if i % 2 == 0 { &scim } else { &other };
        assert_eq!(
            target
                .post("/Users", &json!({"userName": format!("p{i}@x.com")}))
                .await
                .status,
            201
        );
    }
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(rx.next(30).await.id);
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 20);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.rx.recv())
            .await
            .is_err(),
        "no event twice"
    );
    let deliveries =
        roster::db::webhooks::deliveries(&mut first.conn(), &endpoint.id, 100).unwrap();
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == roster::domain::DeliveryState::Delivered && d.attempts == 1)
    );
}

/// A `roster serve` process with a fast retry schedule; returns it with its base URL.
fn start_server(db_url: &str) -> (std::process::Child, String) {
    let schedule = ["0.2"; 100].join(",");
    // A one-second receiver timeout keeps the claim lease (4 × timeout + 30 s) short.
    crate::helpers::start_server_process(
        db_url,
        &[
            "--webhook-retry-schedule",
            &schedule,
            "--webhook-timeout",
            "1",
        ],
        "warn",
        std::process::Stdio::inherit(),
    )
}

backend_tests!(an_event_committed_before_a_sigkill_is_delivered_after_restart);
async fn an_event_committed_before_a_sigkill_is_delivered_after_restart(backend: Backend) {
    let db = TestDb::new(backend);
    let pool = roster::db::connect(&db.url).unwrap();
    let org = roster::db::orgs::create(&mut pool.get().unwrap(), "Acme", true).unwrap();
    let (dir, token) =
        roster::db::directories::create(&mut pool.get().unwrap(), &org.id, "okta", "Okta").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener); // The receiver is down for now.
    let endpoint = crate::helpers::webhook(
        &mut pool.get().unwrap(),
        &format!("http://{addr}/hooks"),
        None,
        "user.created",
    );

    let (mut server, base) = start_server(&db.url);
    let scim = Scim::new(format!("{base}/scim/v2/{}", dir.id), token);
    assert_eq!(
        scim.post("/Users", &json!({"userName": "crash@x.com"}))
            .await
            .status,
        201,
        "committed"
    );
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush, nothing delivered.
    server.wait().unwrap();

    let mut rx = receiver::start(Some(TcpListener::bind(addr).unwrap()), 0, None);
    let (mut restarted, _) = start_server(&db.url);
    // A kill between a claim and its recorded attempt leaves the delivery leased (34 s here):
    // the restarted server delivers it once the lease runs out.
    let got = rx.next(60).await;
    assert_eq!(got.json["type"], "user.created");
    assert_eq!(got.json["data"]["user"]["user_name"], "crash@x.com");
    assert!(signature_valid(&endpoint.secret, &got));
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

#[actix_web::test]
async fn on_postgres_events_commit_in_sequence_order_so_the_feed_skips_nothing() {
    if !postgres_enabled("on_postgres_events_commit_in_sequence_order_so_the_feed_skips_nothing") {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let org = app.org("Acme", true);
    let a = app.directory(&org, "okta");
    let b = app.directory(&org, "entra");
    let dir_a = a.base.rsplit('/').next().unwrap().to_string();
    // Both directories are connected first (so no directory.connected event interferes).
    a.get("/Users").await;
    b.get("/Users").await;
    app.flush_request_log().await;
    let before = roster::db::events::feed(&mut app.conn(), &Default::default(), 0, 1000)
        .unwrap()
        .len();

    // A transaction writes an event for directory A and stays open…
    let mut conn = app.conn();
    let mut held = roster::db::Batch::begin(&mut conn).unwrap();
    roster::db::events::emit(
        &mut held,
        &dir_a,
        roster::db::events::EventType::UserUpdated,
        json!({"held": true}),
    )
    .unwrap();
    held.write_events().unwrap();
    // …so a change in directory B waits for it instead of taking a later-committing place.
    let body = json!({"userName": "late@x.com"});
    let mut post = Box::pin(b.post("/Users", &body));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut post)
            .await
            .is_err(),
        "B waits for A's commit"
    );
    held.commit().unwrap();
    drop(conn);
    assert_eq!(post.await.status, 201);

    let events = roster::db::events::feed(&mut app.conn(), &Default::default(), 0, 1000).unwrap();
    let new: Vec<(&str, i64)> = events[before..]
        .iter()
        .map(|e| (e.event_type.as_str(), e.seq))
        .collect();
    assert_eq!(new.len(), 2);
    assert_eq!(
        new[0].0, "user.updated",
        "A's event, committed first, has the lower sequence number"
    );
    assert_eq!(new[1].0, "user.created");
    assert!(new[0].1 < new[1].1);
}

backend_tests!(refused_changes_leave_no_events_and_batched_ones_keep_theirs_in_sequence);
/// A batch's events are written at its end: those of a change that was refused after it had
/// emitted them (here a create whose `groups` names no group) must go with its rollback, and
/// concurrent changes, batched together, must each keep their event, numbered without gaps.
/// On SQLite a batch runs without savepoints until a job fails after changing rows; then it
/// is run again with them, and the refused create's user must not survive either way.
async fn refused_changes_leave_no_events_and_batched_ones_keep_theirs_in_sequence(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let key = app.api_key();
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let creates = (0..40).map(|i| {
        // Every fourth create names a group that does not exist; every fifth repeats a
        // userName already taken by the create before it.
        let name = if i % 5 == 4 { i - 1 } else { i };
        let mut body = json!({"userName": format!("batch{name}@x.com")});
        if i % 4 == 3 {
            body["groups"] = json!([{"value": "no-such-group"}]);
        }
        let scim = &scim;
        async move { (scim.post("/Users", &body).await, body) }
    });
    let replies = futures_util::future::join_all(creates).await;
    let mut created = BTreeSet::new();
    for (reply, body) in &replies {
        match reply.status {
            201 => {
                created.insert(body["userName"].as_str().unwrap().to_string());
            }
            400 | 409 => {}
            s => panic!("unexpected status {s}: {}", reply.body),
        }
    }
    assert!(created.len() >= 20, "{} created", created.len());
    assert!(created.len() < 40, "some creates are refused");
    // A create refused for its groups had inserted its user already: that must be undone
    // with it, whatever else shared its batch.
    let listed = scim.get("/Users?count=100").await.json();
    let stored: BTreeSet<String> = listed["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, created, "exactly the accepted creates are stored");
    let feed = api_get(&app, &key, &format!("/api/v1/events?organization_id={org}")).await;
    let events: Vec<&Value> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "user.created")
        .collect();
    let named: BTreeSet<String> = events
        .iter()
        .map(|e| e["data"]["user"]["user_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        named, created,
        "one user.created per created user, none for refusals"
    );
    assert_eq!(events.len(), created.len());
    let sequences: Vec<i64> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
    assert_eq!(
        sequences, expected,
        "the directory's events are numbered without gaps"
    );
}

backend_tests!(racing_creates_of_one_user_name_make_one_user_and_spoil_nothing_else);
/// A batch inserts its user creates together (on Postgres in one statement), before its
/// other jobs run. Creates of one userName (in any case) racing in one batch: one goes in,
/// the others are refused with 409 and leave nothing, and the distinct creates beside them
/// keep their users, emails, events and request-log rows.
async fn racing_creates_of_one_user_name_make_one_user_and_spoil_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.api_key();
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let creates = (0..30).map(|i| {
        let body = if i % 3 == 0 {
            // Ten spellings of one userName, each with an email of its own.
            let name = if i % 2 == 0 {
                "Same@X.com"
            } else {
                "same@x.COM"
            };
            json!({"userName": name, "emails": [{"value": format!("same{i}@x.com")}]})
        } else {
            json!({
                "userName": format!("racer{i}@x.com"),
                "emails": [
                    {"value": format!("racer{i}@x.com"), "type": "work", "primary": true},
                    {"value": format!("home{i}@x.com"), "type": "home"},
                ],
            })
        };
        let scim = &scim;
        async move { (scim.post("/Users", &body).await, i) }
    });
    let replies = futures_util::future::join_all(creates).await;
    let mut same_created = Vec::new();
    for (reply, i) in &replies {
        match (i % 3 == 0, reply.status) {
            (true, 201) => same_created.push(reply.json()),
            (true, 409) => assert_eq!(reply.json()["scimType"], "uniqueness"),
            (false, 201) => {}
            (_, s) => panic!("create {i}: unexpected status {s}: {}", reply.body),
        }
    }
    assert_eq!(
        same_created.len(),
        1,
        "exactly one of the racing creates won"
    );
    let winner = &same_created[0];
    let winner_email = winner["emails"][0]["value"].as_str().unwrap();

    // Each stored user has the emails its own create sent, and only those.
    let listed = scim.get("/Users?count=100").await.json();
    assert_eq!(listed["totalResults"], 21, "{listed}");
    for i in [1, 2, 29] {
        let found = scim
            .get(&format!(
                "/Users?filter=emails.value%20eq%20%22home{i}@x.com%22"
            ))
            .await
            .json();
        assert_eq!(found["totalResults"], 1, "home{i}: {found}");
        assert_eq!(found["Resources"][0]["userName"], format!("racer{i}@x.com"));
    }
    let found = scim
        .get(&format!(
            "/Users?filter=emails.value%20eq%20%22{winner_email}%22"
        ))
        .await
        .json();
    assert_eq!(found["Resources"][0]["id"], winner["id"], "{found}");
    let losers = replies
        .iter()
        .filter(|(r, i)| i % 3 == 0 && r.status == 409)
        .map(|(_, i)| format!("same{i}@x.com"));
    for email in losers {
        let found = scim
            .get(&format!("/Users?filter=emails.value%20eq%20%22{email}%22"))
            .await
            .json();
        assert_eq!(found["totalResults"], 0, "a refused create left {email}");
    }

    // One user.created per stored user, numbered without gaps.
    let feed = api_get(&app, &key, &format!("/api/v1/events?organization_id={org}")).await;
    let created: BTreeSet<String> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "user.created")
        .map(|e| e["data"]["user"]["id"].as_str().unwrap().to_string())
        .collect();
    let stored: BTreeSet<String> = listed["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created, stored);

    // Every request is logged: 21 creations and 9 refusals.
    let dir = scim.base.rsplit('/').next().unwrap().to_string();
    app.flush_request_log().await;
    let rows = roster::db::requests::recent(&mut app.conn(), &dir, 100).unwrap();
    let posts: Vec<_> = rows.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.iter().filter(|r| r.status == 201).count(), 21);
    assert_eq!(posts.iter().filter(|r| r.status == 409).count(), 9);
    let logged_ids: BTreeSet<String> = posts.iter().filter_map(|r| r.resource_id.clone()).collect();
    assert_eq!(logged_ids, stored, "each creation's log row names its user");
}

backend_tests!(a_panicking_delivery_attempt_is_retried_and_delivery_goes_on);
/// A delivery attempt that panics inside the worker does not stop delivery: the attempt is
/// recorded as failed, retried on schedule, the event arrives, and `/readyz` says what happened.
async fn a_panicking_delivery_attempt_is_retried_and_delivery_goes_on(backend: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let deliver: roster::events::Deliver = Arc::new(move |agent, due| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("injected failure in a delivery attempt");
        }
        roster::events::attempt(agent, due)
    });
    let app = TestApp::spawn(backend)
        .await
        .with_worker_delivering(&[0.05, 0.05], deliver);
    let mut rx = receiver::start(None, 0, None);
    let endpoint = app.webhook(&rx.url, None, "*");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    scim.post("/Users", &json!({"userName": "first@x.com"}))
        .await;
    let got = rx.next(10).await;
    assert!(signature_valid(&endpoint.secret, &got), "{backend:?}");
    assert!(
        calls.load(Ordering::SeqCst) >= 2,
        "{backend:?}: the panicking attempt was not retried"
    );
    let attempts = roster::db::webhooks::attempts(&mut app.conn(), &endpoint.id, 10).unwrap();
    assert!(
        attempts.iter().any(|a| a
            .error
            .as_deref()
            .is_some_and(|e| e.contains("injected failure"))),
        "{backend:?}: the panic is not recorded as a failed attempt: {attempts:?}"
    );
    let ready = crate::helpers::Browser::new(&app.base)
        .get("/readyz")
        .await
        .body;
    assert!(
        ready.contains("webhook worker: running") && ready.contains("injected failure"),
        "{backend:?}: /readyz does not report the recovered failure: {ready}"
    );
}

backend_tests!(a_delivery_in_flight_when_the_worker_stops_is_recorded_as_delivered);
/// A lane hands its outcomes to the dispatcher, which records them with its next claim. Once
/// the worker has stopped, a lane still attempting records its own: the delivery is not left
/// leased, to be sent again after a restart.
async fn a_delivery_in_flight_when_the_worker_stops_is_recorded_as_delivered(backend: Backend) {
    let (deliver, mut attempt_started, go_ahead) = gated_first_attempt();
    let mut app = TestApp::spawn(backend)
        .await
        .with_worker_delivering(&[0.05], deliver);
    let mut rx = receiver::start(None, 0, None);
    let endpoint = app.webhook(&rx.url, None, "user.created");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    scim.post("/Users", &json!({"userName": "inflight@x.com"}))
        .await;
    tokio::time::timeout(Duration::from_secs(20), attempt_started.recv())
        .await
        .expect("the delivery was attempted");
    app.stop_worker();
    go_ahead.send(()).unwrap();
    assert_eq!(
        rx.next(10).await.json["data"]["user"]["user_name"],
        "inflight@x.com"
    );
    eventually("the delivery is recorded as delivered", || {
        delivery_status(&app, &endpoint.id) == vec![("delivered".to_string(), 1)]
    })
    .await;
}
