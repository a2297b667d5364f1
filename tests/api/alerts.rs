//! Directory alerts over HTTP: a directory that goes quiet, a spike of refused tokens after a
//! rotation, and a high share of failed requests each raise one alert (shown in the Admin
//! Portal's banner and directory page, the owner console and the API, with one
//! `directory.alert_raised` event) that clears once the directory is healthy again (one
//! `directory.alert_cleared`). Evaluations run at a chosen time through
//! `alerts::evaluate_all`; the instance's own minute loop evaluates at the real time and finds
//! the same, so it can neither add nor remove an alert or event here.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use roster::db::{self, requests::NewRequest, schema::directories};
use serde_json::{Value, json};

use crate::api_v1::{Api, spawn};
use crate::helpers::{Backend, Scim, TestApp, backend_tests};

fn directory_id(scim: &Scim) -> String {
    scim.base.rsplit('/').next().unwrap().to_string()
}

async fn evaluate(app: &TestApp, now: NaiveDateTime) -> roster::alerts::Outcome {
    app.flush_request_log().await;
    roster::alerts::evaluate_all(&mut app.conn(), now).unwrap()
}

/// The organization's events of `event_type`.
async fn events_of(api: &Api, org: &str, event_type: &str) -> Vec<Value> {
    let feed = api
        .call(
            "GET",
            &format!("/events?organization_id={org}&limit=1000"),
            "/events",
            None,
            200,
        )
        .await;
    feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == event_type)
        .cloned()
        .collect()
}

/// The directory's open alerts, as `GET /directories/{id}` lists them.
async fn open_alerts(api: &Api, dir: &str) -> Vec<Value> {
    api.call(
        "GET",
        &format!("/directories/{dir}"),
        "/directories/{id}",
        None,
        200,
    )
    .await["alerts"]
        .as_array()
        .unwrap()
        .clone()
}

/// Request-log rows of a provider that synced every 40 minutes (three requests a sync), the
/// last sync at `last`; the directory connected with the first.
fn plant_rhythm(app: &TestApp, dir: &str, last: NaiveDateTime) {
    let mut rows = Vec::new();
    for cycle in (0..8).rev() {
        let start = last - Duration::minutes(40 * cycle);
        for offset in [0, 4, 8] {
            rows.push(NewRequest {
                directory_id: dir.to_string(),
                at: start - Duration::seconds(8 - offset),
                method: "GET".into(),
                path: "/Users?filter=userName%20eq%20%22a%40acme.com%22".into(),
                status: 200,
                duration_us: 900,
                ..Default::default()
            });
        }
    }
    let first = rows[0].at;
    let mut c = app.conn();
    db::requests::insert_many(&mut c, rows).unwrap();
    diesel::update(directories::table.find(dir))
        .set((
            directories::first_request_at.eq(first),
            directories::last_request_at.eq(last),
        ))
        .execute(&mut c)
        .unwrap();
}

backend_tests!(a_quiet_directory_raises_one_alert_until_its_next_request);
async fn a_quiet_directory_raises_one_alert_until_its_next_request(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let scim = app.directory(&org, "entra");
    let dir = directory_id(&scim);
    let now = db::now();
    plant_rhythm(&app, &dir, now - Duration::hours(5));

    // Raised once, however often it is evaluated.
    evaluate(&app, now).await;
    let again = evaluate(&app, now + Duration::seconds(30)).await;
    assert_eq!(again.raised, 0, "an open alert is not raised again");
    let raised = events_of(&api, &org, "directory.alert_raised").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["directory_id"], dir.as_str());
    assert_eq!(raised[0]["data"]["kind"], "quiet");
    let sentence = raised[0]["data"]["sentence"].as_str().unwrap().to_string();
    assert!(
        sentence.starts_with(
            "Microsoft Entra ID has sent nothing for 5 hours; it usually pushes every 40 minutes. Check"
        ),
        "{sentence}"
    );
    let open = open_alerts(&api, &dir).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "quiet");
    assert_eq!(open[0]["sentence"], sentence.as_str());

    // Every Admin Portal page carries the banner; the directory page lists the alert.
    let mut portal = app.portal(&org).await;
    for page in ["/portal/users", "/portal/groups", "/portal/scim"] {
        let r = portal.get(page).await;
        assert_eq!(r.status, 200, "{page}");
        assert!(r.body.contains("id=\"alert-banner\""), "{page}: {}", r.body);
        assert!(r.body.contains("has sent nothing for 5 hours"), "{page}");
    }
    let page = portal.get(&format!("/portal/scim/directories/{dir}")).await;
    assert!(
        page.body.contains("id=\"directory-alerts\""),
        "{}",
        page.body
    );
    // The owner console: a badge in the list, the sentence on the organization's page.
    let mut owner = app.owner().await;
    let list = owner.get("/owner").await;
    assert!(
        list.body.contains("data-alert-badge") && list.body.contains("1 alert"),
        "{}",
        list.body
    );
    let org_page = owner.get(&format!("/owner/orgs/{org}")).await;
    assert!(
        org_page.body.contains("has sent nothing for 5 hours"),
        "{}",
        org_page.body
    );

    // The provider sends again: the alert clears, once.
    let r = scim.get("/Users").await;
    assert_eq!(r.status, 200, "{}", r.body);
    evaluate(&app, db::now()).await;
    evaluate(&app, db::now()).await;
    let cleared = events_of(&api, &org, "directory.alert_cleared").await;
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert_eq!(cleared[0]["data"]["kind"], "quiet");
    assert!(open_alerts(&api, &dir).await.is_empty());
    let history = api
        .call(
            "GET",
            &format!("/directories/{dir}/alerts"),
            "/directories/{id}/alerts",
            None,
            200,
        )
        .await;
    let history = history["data"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["kind"], "quiet");
    assert!(history[0]["cleared_at"].is_string(), "{history:?}");
    let r = portal.get("/portal/users").await;
    assert!(!r.body.contains("id=\"alert-banner\""), "{}", r.body);
    let list = owner.get("/owner").await;
    assert!(!list.body.contains("data-alert-badge"), "{}", list.body);
    assert_eq!(
        events_of(&api, &org, "directory.alert_raised").await.len(),
        1
    );
}

backend_tests!(a_disabled_or_never_connected_directory_raises_nothing);
async fn a_disabled_or_never_connected_directory_raises_nothing(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let never = app.directory(&org, "entra");
    let disabled = app.directory(&org, "entra");
    let dir = directory_id(&disabled);
    // Disabled first, so that no evaluation ever sees it live.
    db::directories::set_status(&mut app.conn(), &org, &dir, false).unwrap();
    plant_rhythm(&app, &dir, db::now() - Duration::hours(5));

    let outcome = evaluate(&app, db::now() + Duration::days(10)).await;
    assert_eq!(outcome.raised, 0);
    assert!(open_alerts(&api, &directory_id(&never)).await.is_empty());
    assert!(open_alerts(&api, &dir).await.is_empty());
    assert!(
        events_of(&api, &org, "directory.alert_raised")
            .await
            .is_empty()
    );
}

backend_tests!(refused_tokens_after_a_rotation_raise_an_alert_until_the_new_token_is_used);
async fn refused_tokens_after_a_rotation_raise_an_alert_until_the_new_token_is_used(
    backend: Backend,
) {
    let (app, api) = spawn(backend).await;
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let scim = app.directory(&org, "okta");
    let dir = directory_id(&scim);
    assert_eq!(scim.get("/Users").await.status, 200);
    app.flush_request_log().await;

    // Rotation: a new token, the old one revoked, but Okta still sends the old one.
    let new_token = db::directories::create_token(&mut app.conn(), &dir)
        .unwrap()
        .unwrap();
    let old = db::directories::tokens(&mut app.conn(), &dir).unwrap();
    let old = old.iter().min_by_key(|t| t.created_at).unwrap();
    assert!(db::directories::revoke_token(&mut app.conn(), &dir, &old.id).unwrap());
    for _ in 0..9 {
        assert_eq!(scim.get("/Users").await.status, 401);
    }
    evaluate(&app, db::now()).await;
    assert!(
        open_alerts(&api, &dir).await.is_empty(),
        "nine refusals are no spike"
    );
    assert_eq!(scim.get("/Users").await.status, 401);
    evaluate(&app, db::now()).await;
    let open = open_alerts(&api, &dir).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "rejected_tokens");
    let sentence = open[0]["sentence"].as_str().unwrap();
    assert!(
        sentence.starts_with("Okta was refused 10 times in the last hour")
            && sentence.contains("rotated"),
        "{sentence}"
    );
    let raised = events_of(&api, &org, "directory.alert_raised").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["data"]["kind"], "rejected_tokens");

    // The IT admin pastes the new token into Okta.
    let fixed = Scim::new(scim.base.clone(), new_token);
    assert_eq!(fixed.get("/Users").await.status, 200);
    evaluate(&app, db::now()).await;
    assert!(open_alerts(&api, &dir).await.is_empty());
    let cleared = events_of(&api, &org, "directory.alert_cleared").await;
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert_eq!(cleared[0]["data"]["kind"], "rejected_tokens");
}

backend_tests!(a_high_share_of_failed_requests_raises_an_alert_until_it_falls);
async fn a_high_share_of_failed_requests_raises_an_alert_until_it_falls(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let scim = app.directory(&org, "generic");
    let dir = directory_id(&scim);
    // 19 requests, 15 of them failed: too few to mean something.
    assert_eq!(scim.get("/Users").await.status, 200);
    for _ in 0..15 {
        assert_eq!(scim.get("/Users/no-such-user").await.status, 404);
    }
    for _ in 0..3 {
        assert_eq!(scim.get("/Users").await.status, 200);
    }
    evaluate(&app, db::now()).await;
    assert!(open_alerts(&api, &dir).await.is_empty());
    assert_eq!(scim.get("/Users").await.status, 200);
    evaluate(&app, db::now()).await;
    let open = open_alerts(&api, &dir).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "errors");
    let sentence = open[0]["sentence"].as_str().unwrap();
    assert!(
        sentence
            .starts_with("15 of 20 requests from Generic SCIM 2.0 failed in the last hour (75 %)."),
        "{sentence}"
    );
    assert_eq!(
        events_of(&api, &org, "directory.alert_raised").await.len(),
        1
    );

    // Successful requests bring the share under a fifth (15 of 76 is 19 %).
    for _ in 0..56 {
        assert_eq!(scim.get("/Users").await.status, 200);
    }
    evaluate(&app, db::now()).await;
    assert!(open_alerts(&api, &dir).await.is_empty());
    let cleared = events_of(&api, &org, "directory.alert_cleared").await;
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert_eq!(cleared[0]["data"]["kind"], "errors");
}

backend_tests!(instances_evaluating_at_once_raise_and_clear_each_alert_once);
async fn instances_evaluating_at_once_raise_and_clear_each_alert_once(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let scim = app.directory(&org, "entra");
    let dir = directory_id(&scim);
    plant_rhythm(&app, &dir, db::now() - Duration::hours(5));

    // Four evaluations at once, each on its own connection (as instances on one database).
    let together = |now: NaiveDateTime| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let pool = app.pool.clone();
                std::thread::spawn(move || {
                    roster::alerts::evaluate_all(&mut pool.get().unwrap(), now).unwrap()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .fold((0, 0), |(r, c), o| (r + o.raised, c + o.cleared))
    };
    let (raised, _) = together(db::now());
    assert!(raised <= 1, "raised {raised} times");
    assert_eq!(
        events_of(&api, &org, "directory.alert_raised").await.len(),
        1
    );
    assert_eq!(open_alerts(&api, &dir).await.len(), 1);

    assert_eq!(scim.get("/Users").await.status, 200);
    app.flush_request_log().await;
    let (_, cleared) = together(db::now());
    assert!(cleared <= 1, "cleared {cleared} times");
    assert_eq!(
        events_of(&api, &org, "directory.alert_cleared").await.len(),
        1
    );
    assert!(open_alerts(&api, &dir).await.is_empty());
}

backend_tests!(requests_since_a_time_are_counted_wherever_the_period_begins);
/// The share of failed requests (the alerts' and the directory page's) counts the requests
/// since a time, found by halving the directory's range of ids: the period's start is found
/// wherever it falls, before every row, after every row or between any two, with another
/// directory's rows interleaved (the ids a directory holds are far apart).
async fn requests_since_a_time_are_counted_wherever_the_period_begins(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let (ours, theirs) = (
        directory_id(&app.directory(&org, "generic")),
        directory_id(&app.directory(&org, "okta")),
    );
    let start = db::now() - Duration::days(2);
    // Ours: one request a minute, every third failed; theirs: 0 to 3 between two of ours.
    let mut rows = Vec::new();
    for minute in 0..150 {
        rows.push(NewRequest {
            directory_id: ours.clone(),
            at: start + Duration::minutes(minute),
            method: "GET".into(),
            path: "/Users".into(),
            status: if minute % 3 == 0 { 404 } else { 200 },
            duration_us: 900,
            ..Default::default()
        });
        for _ in 0..(minute * 7 % 4) {
            rows.push(NewRequest {
                directory_id: theirs.clone(),
                at: start + Duration::minutes(minute),
                method: "GET".into(),
                path: "/Users".into(),
                status: 500,
                duration_us: 900,
                ..Default::default()
            });
        }
    }
    let mut c = app.conn();
    db::requests::insert_many(&mut c, rows).unwrap();
    for from in [-5, 0, 1, 2, 3, 50, 77, 100, 148, 149, 150, 400] {
        let since = start + Duration::minutes(from) - Duration::seconds(30);
        let expected_total = (from.clamp(0, 150)..150).count() as i64;
        let expected_failed = (from.clamp(0, 150)..150).filter(|m| m % 3 == 0).count() as i64;
        assert_eq!(
            db::requests::counts_since(&mut c, &ours, since).unwrap(),
            (expected_total, expected_failed),
            "since minute {from}"
        );
    }
    let nobody = db::requests::counts_since(&mut c, "no-such-directory", start).unwrap();
    assert_eq!(nobody, (0, 0));
}
