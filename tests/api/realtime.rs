//! Delivery in real time: a commit wakes the delivery worker (this instance's directly, other
//! instances' on Postgres by a notification), so a webhook never waits for the worker's poll;
//! and a hanging receiver holds up only its own endpoint's deliveries. The workers here poll
//! once a minute, so anything that arrives within the bounds below was woken.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, Scim, TestApp, TestDb, backend_tests, postgres_enabled};
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
