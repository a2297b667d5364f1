//! Delivery in real time: a commit wakes the delivery worker (this instance's directly, other
//! instances' on Postgres by a notification), so a webhook never waits for the worker's poll;
//! and a hanging receiver holds up only its own endpoint's deliveries. The workers here poll
//! once a minute, so anything that arrives within the bounds below was woken. One directory's
//! deliveries to a receiver go out beside another's, so a receiver holding one directory's
//! delivery does not hold up another directory's.

use std::time::Duration;

use serde_json::json;

use roster::db;
use roster::db::webhooks::{ClaimRequest, LaneKey};

use crate::helpers::{
    Backend, Scim, TestApp, TestDb, backend_tests, postgres_enabled, test_secret_keys,
};
use crate::receiver;

/// Far longer than any bound below: a delivery found by the poll never arrives in time.
const POLL_INTERVAL: Duration = Duration::from_secs(60);
/// How long a woken delivery may take to arrive (a bound, not a measurement).
const ARRIVES_WITHIN_SECS: u64 = 5;

async fn create_user(scim: &Scim, user_name: &str) {
    let r = scim.post("/Users", &json!({"userName": user_name})).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

backend_tests!(a_scim_write_is_delivered_without_waiting_for_the_poll);
async fn a_scim_write_is_delivered_without_waiting_for_the_poll(backend: Backend) {
    let app = TestApp::spawn(backend)
        .await
        .with_worker_polling(POLL_INTERVAL, Duration::from_secs(10));
    let mut rx = receiver::start(None, 0, None);
    app.webhook(&rx.url, None, "user.created");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    for i in 0..3 {
        create_user(&scim, &format!("u{i}@x.com")).await;
        let got = rx.next(ARRIVES_WITHIN_SECS).await;
        assert_eq!(got.json["data"]["user"]["user_name"], format!("u{i}@x.com"));
    }
}

backend_tests!(a_replay_through_the_api_is_delivered_without_waiting_for_the_poll);
async fn a_replay_through_the_api_is_delivered_without_waiting_for_the_poll(backend: Backend) {
    let app = TestApp::spawn(backend)
        .await
        .with_worker_polling(POLL_INTERVAL, Duration::from_secs(10));
    let mut rx = receiver::start(None, 0, None);
    let endpoint = app.webhook(&rx.url, None, "user.created");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    create_user(&scim, "again@x.com").await;
    let first = rx.next(ARRIVES_WITHIN_SECS).await;
    let status = awc::Client::new()
        .post(format!(
            "{}/api/v1/webhooks/{}/replay",
            app.base, endpoint.id
        ))
        .insert_header(("Authorization", format!("Bearer {}", app.api_key())))
        .send_json(&json!({"since_sequence": 0}))
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 202);
    let again = rx.next(ARRIVES_WITHIN_SECS).await;
    assert_eq!(again.id, first.id, "the same event, delivered again");
}

backend_tests!(a_hanging_receiver_does_not_hold_up_another_endpoints_deliveries);
async fn a_hanging_receiver_does_not_hold_up_another_endpoints_deliveries(backend: Backend) {
    // The worker gives a receiver 30 s: a hanging one holds its delivery that long.
    let app = TestApp::spawn(backend)
        .await
        .with_worker_polling(POLL_INTERVAL, Duration::from_secs(30));
    let mut hanging = receiver::start(None, 0, Some(Duration::from_secs(120)));
    let mut healthy = receiver::start(None, 0, None);
    app.webhook(&hanging.url, None, "user.created");
    app.webhook(&healthy.url, None, "user.created");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    create_user(&scim, "first@x.com").await;
    // The hanging receiver holds the first delivery to its endpoint from here on.
    assert_eq!(
        hanging.next(ARRIVES_WITHIN_SECS).await.json["data"]["user"]["user_name"],
        "first@x.com"
    );
    assert_eq!(
        healthy.next(ARRIVES_WITHIN_SECS).await.json["data"]["user"]["user_name"],
        "first@x.com"
    );
    for i in 0..3 {
        create_user(&scim, &format!("u{i}@x.com")).await;
        let got = healthy.next(ARRIVES_WITHIN_SECS).await;
        assert_eq!(got.json["data"]["user"]["user_name"], format!("u{i}@x.com"));
    }
    assert_eq!(
        hanging.completed.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the hanging receiver is still holding its first delivery"
    );
}

backend_tests!(a_receiver_holding_one_directorys_delivery_still_gets_another_directorys);
async fn a_receiver_holding_one_directorys_delivery_still_gets_another_directorys(
    backend: Backend,
) {
    // The vendor's one receiver takes every tenant's events, and hangs on A's first.
    let app = TestApp::spawn(backend)
        .await
        .with_worker_polling(POLL_INTERVAL, Duration::from_secs(30));
    let mut rx = receiver::start_hanging_on("slow@x.com", Duration::from_secs(120));
    app.webhook(&rx.url, None, "user.created");
    let a = app.directory(&app.org("Acme", true), "okta");
    let b = app.directory(&app.org("Beta", true), "pingidentity");
    create_user(&a, "slow@x.com").await;
    let held = rx.next(ARRIVES_WITHIN_SECS).await;
    assert_eq!(held.json["data"]["user"]["user_name"], "slow@x.com");
    // A's next event waits behind its first; B's go out meanwhile, in order.
    create_user(&a, "after@x.com").await;
    for i in 0..3 {
        create_user(&b, &format!("b{i}@x.com")).await;
        let got = rx.next(ARRIVES_WITHIN_SECS).await;
        assert_eq!(got.json["data"]["user"]["user_name"], format!("b{i}@x.com"));
    }
    assert!(
        rx.rx.try_recv().is_err(),
        "A's second event never overtakes its first, still held"
    );
}

backend_tests!(an_endpoint_takes_a_few_directories_at_once_the_longest_waiting_first);
async fn an_endpoint_takes_a_few_directories_at_once_the_longest_waiting_first(backend: Backend) {
    // No worker: the claims are made here, as the worker makes them.
    let app = TestApp::spawn(backend).await;
    let hook = app.webhook("http://127.0.0.1:9/hooks", None, "user.created");
    let mut directories = Vec::new();
    for i in 0..6 {
        let scim = app.directory(&app.org(&format!("Org {i}"), true), "okta");
        create_user(&scim, &format!("first{i}@x.com")).await;
        directories.push(scim);
    }
    for (i, scim) in directories.iter().enumerate() {
        create_user(scim, &format!("second{i}@x.com")).await;
    }
    let claim = |busy: &std::collections::HashSet<LaneKey>| {
        db::webhooks::claim(
            &mut app.conn(),
            &test_secret_keys(),
            &ClaimRequest {
                limit: 256,
                lanes_per_endpoint: 4,
                per_directory: 32,
                lease: chrono::Duration::seconds(60),
                busy,
            },
        )
        .unwrap()
    };
    let users = |due: &[db::webhooks::Due]| -> Vec<String> {
        due.iter()
            .map(|d| {
                let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
                payload["data"]["user"]["user_name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let first = claim(&Default::default());
    assert!(first.iter().all(|d| d.endpoint.id == hook.id));
    // Four directories, those with the oldest waiting events; each run whole, in order.
    assert_eq!(
        users(&first),
        [0, 0, 1, 1, 2, 2, 3, 3]
            .iter()
            .enumerate()
            .map(|(n, i)| format!("{}{i}@x.com", if n % 2 == 0 { "first" } else { "second" }))
            .collect::<Vec<_>>()
    );
    // Three of those lanes still running (the first one's deliveries still leased to it):
    // one lane is free, and it goes to the fifth directory.
    let lane = |d: &db::webhooks::Due| LaneKey {
        endpoint_id: hook.id.clone(),
        directory_id: d.directory_id.clone(),
    };
    let three_busy: std::collections::HashSet<LaneKey> = first[2..].iter().map(lane).collect();
    assert_eq!(
        users(&claim(&three_busy)),
        ["first4@x.com", "second4@x.com"]
    );
    // The lanes full, nothing more is claimed.
    let all_busy: std::collections::HashSet<LaneKey> = first.iter().map(lane).collect();
    assert!(claim(&all_busy).is_empty());
}

#[actix_web::test]
async fn on_postgres_a_write_on_one_instance_wakes_another_instances_worker() {
    if !postgres_enabled("on_postgres_a_write_on_one_instance_wakes_another_instances_worker") {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let url = db.url.clone();
    // Only the second instance delivers; the writes go to the first.
    let writing = TestApp::spawn_on(Backend::Postgres, db).await;
    let _delivering = TestApp::spawn_on(Backend::Postgres, TestDb { url, _dir: None })
        .await
        .with_worker_polling(POLL_INTERVAL, Duration::from_secs(10));
    let mut rx = receiver::start(None, 0, None);
    writing.webhook(&rx.url, None, "user.created");
    let org = writing.org("Acme", true);
    let scim = writing.directory(&org, "okta");
    for i in 0..3 {
        create_user(&scim, &format!("u{i}@x.com")).await;
        let got = rx.next(ARRIVES_WITHIN_SECS).await;
        assert_eq!(got.json["data"]["user"]["user_name"], format!("u{i}@x.com"));
    }
}

#[actix_web::test]
async fn on_postgres_a_listener_whose_connection_dropped_listens_again_and_catches_up() {
    if !postgres_enabled(
        "on_postgres_a_listener_whose_connection_dropped_listens_again_and_catches_up",
    ) {
        return;
    }
    use diesel::RunQueryDsl;
    let db = TestDb::new(Backend::Postgres);
    let url = db.url.clone();
    let writing = TestApp::spawn_on(Backend::Postgres, db).await;
    let _delivering = TestApp::spawn_on(Backend::Postgres, TestDb { url, _dir: None })
        .await
        .with_worker_polling(POLL_INTERVAL, Duration::from_secs(10));
    let mut rx = receiver::start(None, 0, None);
    writing.webhook(&rx.url, None, "user.created");
    let org = writing.org("Acme", true);
    let scim = writing.directory(&org, "okta");
    create_user(&scim, "before@x.com").await;
    rx.next(ARRIVES_WITHIN_SECS).await;
    // Every listening connection of the test database goes (other tests' listeners listen
    // again too); the notification of the write below has no one to reach.
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query = 'LISTEN roster_deliveries;'",
    )
    .execute(&mut *writing.conn())
    .unwrap();
    create_user(&scim, "after@x.com").await;
    let got = rx.next(ARRIVES_WITHIN_SECS).await;
    assert_eq!(got.json["data"]["user"]["user_name"], "after@x.com");
}
