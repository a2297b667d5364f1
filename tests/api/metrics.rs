//! `/metrics`: refused without the operator's token, and, with it, the Prometheus text format
//! whose counters follow real SCIM requests and webhook deliveries, with labels from small
//! fixed sets only.

use std::net::TcpListener;
use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestDb, backend_tests};

const TOKEN: &str = "metrics-token-for-the-tests-0123";

async fn with_token(backend: Backend) -> TestApp {
    TestApp::spawn_configured(backend, TestDb::new(backend), |c| {
        c.metrics_token = Some(roster::metrics::endpoint::MetricsToken::parse(TOKEN).unwrap());
    })
    .await
}

/// `GET /metrics` with `authorization` as its header; the status and body.
async fn get_metrics(app: &TestApp, authorization: Option<&str>) -> (u16, String) {
    let mut req = awc::Client::new().get(format!("{}/metrics", app.base));
    if let Some(value) = authorization {
        req = req.insert_header(("Authorization", value));
    }
    let mut resp = req.send().await.unwrap();
    let body = resp.body().await.unwrap();
    (
        resp.status().as_u16(),
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// The metrics, scraped with the token and parsed as Prometheus does.
async fn scrape(app: &TestApp) -> Scrape {
    let (status, body) = get_metrics(app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The samples named `name` whose labels include every one of `labels`.
fn samples<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

/// The value of the one sample named `name` with `labels` (a counter or a gauge).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(scrape, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    match found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{name} is not a counter or gauge: {other:?}"),
    }
}

backend_tests!(metrics_are_not_served_without_a_configured_token);
async fn metrics_are_not_served_without_a_configured_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, _) = get_metrics(&app, None).await;
    assert_eq!(status, 404);
    let (status, _) = get_metrics(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 404, "no token is accepted when none is configured");
}

backend_tests!(metrics_refuse_a_missing_or_wrong_token);
async fn metrics_refuse_a_missing_or_wrong_token(backend: Backend) {
    let app = with_token(backend).await;
    for authorization in [
        None,
        Some("Bearer wrong-token-of-some-length".to_string()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
    ] {
        let (status, body) = get_metrics(&app, authorization.as_deref()).await;
        assert_eq!(status, 401, "{authorization:?}");
        assert!(!body.contains("roster_"), "{authorization:?}: {body}");
    }
    let (status, body) = get_metrics(&app, Some(&format!("bearer {TOKEN}"))).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE roster_webhook_deliveries_total counter"),
        "{body}"
    );
}

backend_tests!(scim_requests_are_counted_by_method_resource_status_and_provider);
async fn scim_requests_are_counted_by_method_resource_status_and_provider(backend: Backend) {
    let app = with_token(backend).await;
    let org = app.org("Acme", true);
    let okta = app.directory(&org, "okta");
    let entra = app.directory(&org, "entra");
    let dir_id = okta.base.rsplit('/').next().unwrap().to_string();

    let before = scrape(&app).await;
    assert!(samples(&before, "roster_scim_requests_total", &[]).is_empty());

    let created = okta
        .post("/Users", &json!({"userName": "counted@contoso.com"}))
        .await;
    assert_eq!(created.status, 201);
    let user_id = created.json()["id"].as_str().unwrap().to_string();
    assert_eq!(okta.get("/Users/no-such-user").await.status, 404);
    assert_eq!(entra.get("/Groups").await.status, 200);
    assert_eq!(entra.get("/Schemas").await.status, 200);
    let refused = okta.raw("GET", "/Users", None, Some("not-the-token")).await;
    assert_eq!(refused.status, 401);

    let after = scrape(&app).await;
    let requests = "roster_scim_requests_total";
    let created_labels = [
        ("method", "POST"),
        ("resource", "Users"),
        ("status", "2xx"),
        ("provider", "okta"),
    ];
    assert_eq!(value(&after, requests, &created_labels), 1.0);
    let missing_labels = [
        ("method", "GET"),
        ("resource", "Users"),
        ("status", "4xx"),
        ("provider", "okta"),
    ];
    // The 404 and nothing else of okta's.
    assert_eq!(value(&after, requests, &missing_labels), 1.0);
    for (resource, provider) in [("Groups", "entra"), ("Schemas", "entra")] {
        let labels = [
            ("method", "GET"),
            ("resource", resource),
            ("status", "2xx"),
            ("provider", provider),
        ];
        assert_eq!(value(&after, requests, &labels), 1.0, "{labels:?}");
    }
    // A token that was not accepted names no provider.
    let unknown = [("status", "4xx"), ("provider", "unknown")];
    assert_eq!(value(&after, requests, &unknown), 1.0);

    // Latency, by the same labels less the status.
    let latency = samples(
        &after,
        "roster_scim_request_duration_seconds",
        &[
            ("method", "POST"),
            ("resource", "Users"),
            ("provider", "okta"),
        ],
    );
    match latency.as_slice() {
        [s] => match &s.value {
            Value::Histogram(buckets) => {
                assert_eq!(buckets.last().unwrap().count, 1.0, "{buckets:?}")
            }
            other => panic!("not a histogram: {other:?}"),
        },
        other => panic!("one latency histogram expected: {other:?}"),
    }

    // No label holds an id or a path.
    for s in &after.samples {
        for (name, v) in s.labels.iter() {
            for id in [&dir_id, &user_id] {
                assert!(!v.contains(id.as_str()), "{} {name}={v}", s.metric);
            }
            assert!(!v.contains('/'), "{} {name}={v}", s.metric);
        }
    }
    assert_eq!(value(&after, "roster_active_directories", &[]), 2.0);
}

backend_tests!(writer_pool_and_webhook_metrics_are_reported);
async fn writer_pool_and_webhook_metrics_are_reported(backend: Backend) {
    let app = with_token(backend).await.with_worker(&[0.02]);
    // A receiver that is down: the first attempt fails, the retry dead-letters.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let endpoint = app.webhook(&url, None, "user.created");
    drop(listener);
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    assert_eq!(
        scim.post("/Users", &json!({"userName": "late@x.com"}))
            .await
            .status,
        201
    );
    for _ in 0..400 {
        let dead = roster::db::webhooks::deliveries(&mut app.conn(), &endpoint.id, 10)
            .unwrap()
            .iter()
            .any(|d| d.status.to_string() == "dead");
        if dead {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let m = scrape(&app).await;
    let deliveries = "roster_webhook_deliveries_total";
    assert_eq!(value(&m, deliveries, &[("outcome", "failed")]), 1.0);
    assert_eq!(value(&m, deliveries, &[("outcome", "dead")]), 1.0);
    assert_eq!(value(&m, deliveries, &[("outcome", "delivered")]), 0.0);
    assert_eq!(value(&m, "roster_webhook_dead_letters", &[]), 1.0);
    assert_eq!(value(&m, "roster_webhook_delivery_lag_seconds", &[]), 0.0);

    // The writer's queue and batches, and the pool.
    assert!(value(&m, "roster_writer_queue_depth", &[]) >= 0.0);
    let batches = |name: &str| match &samples(&m, name, &[])[..] {
        [s] => match &s.value {
            Value::Histogram(buckets) => buckets.last().unwrap().count,
            other => panic!("{name}: not a histogram: {other:?}"),
        },
        other => panic!("one {name} histogram expected: {other:?}"),
    };
    let sized = batches("roster_writer_batch_size");
    assert!(sized >= 2.0, "{sized}");
    // Every committed batch is timed, whole and its commit alone.
    let timed = batches("roster_writer_batch_duration_seconds");
    assert!(timed >= 2.0 && timed <= sized, "{timed} of {sized}");
    assert_eq!(batches("roster_writer_commit_duration_seconds"), timed);
    let max = value(&m, "roster_db_pool_connections_max", &[]);
    assert!(max >= 1.0);
    let in_use = value(&m, "roster_db_pool_connections_in_use", &[]);
    assert!((0.0..=max).contains(&in_use));
    let saturation = value(&m, "roster_db_pool_saturation", &[]);
    assert!((0.0..=1.0).contains(&saturation));
}

backend_tests!(delivery_lag_is_the_age_of_the_oldest_pending_delivery);
async fn delivery_lag_is_the_age_of_the_oldest_pending_delivery(backend: Backend) {
    // No worker: the delivery stays pending.
    let app = with_token(backend).await;
    app.webhook("http://127.0.0.1:9/hooks", None, "user.created");
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    scim.post("/Users", &json!({"userName": "waits@x.com"}))
        .await;
    let hour_ago = roster::db::now() - chrono::Duration::hours(1);
    let aged = {
        use diesel::prelude::*;
        use roster::db::schema::webhook_deliveries as d;
        roster::on_backend!(&mut *app.conn(), |c| diesel::update(
            d::table.filter(d::status.eq("pending"))
        )
        .set(d::created_at.eq(hour_ago))
        .execute(c))
        .unwrap()
    };
    assert_eq!(aged, 1);
    let m = scrape(&app).await;
    let lag = value(&m, "roster_webhook_delivery_lag_seconds", &[]);
    assert!((3600.0..36000.0).contains(&lag), "{lag}");
    assert_eq!(value(&m, "roster_webhook_dead_letters", &[]), 0.0);
}
