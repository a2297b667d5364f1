//! Large membership changes are applied in steps, each a job of the writer every directory
//! shares, so other directories' writes are committed between them; the request is answered
//! (and logged) once, when the whole change is durable. Steps here are 10 memberships, so a
//! few hundred users make dozens of steps.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Backend, Scim, TestApp, TestDb, backend_tests, member_ids};
use roster::db::events::{EventType, FeedScope};

const STEP: usize = 10;

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_configured(backend, TestDb::new(backend), |c| {
        c.limits.member_step = STEP
    })
    .await
}

/// `n` new users of the directory, their ids sorted.
async fn users(scim: &Scim, n: usize, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(25) {
        let bodies: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"userName": format!("{prefix}{i}@acme.com")}))
            .collect();
        let created = join_all(bodies.iter().map(|b| scim.post("/Users", b))).await;
        for r in created {
            assert_eq!(r.status, 201, "{}", r.body);
            ids.push(r.json()["id"].as_str().unwrap().to_string());
        }
    }
    ids.sort();
    ids
}

fn members(ids: &[String]) -> Vec<Value> {
    ids.iter().map(|id| json!({"value": id})).collect()
}

/// The path of a new group named `name`, without members.
async fn new_group(scim: &Scim, name: &str) -> String {
    let r = scim.post("/Groups", &json!({"displayName": name})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    format!("/Groups/{}", r.json()["id"].as_str().unwrap())
}

fn directory_id(scim: &Scim) -> String {
    scim.base.rsplit('/').next().unwrap().to_string()
}

/// The directory's events of `kind`, oldest first, as (sequence, payload).
fn events_of(app: &TestApp, scim: &Scim, kind: EventType) -> Vec<(i64, Value)> {
    let scope = FeedScope {
        org_id: None,
        directory_id: Some(directory_id(scim)),
    };
    roster::db::events::feed(&mut app.conn(), &scope, 0, 1_000_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == kind)
        .map(|e| (e.seq, serde_json::from_str(&e.payload).unwrap()))
        .collect()
}

backend_tests!(a_large_member_change_is_answered_once_whole);
/// PUT, PATCH and POST /Groups with many times a step's members: one answer with every
/// member, one event per membership, one request-log row summing the whole change, and a
/// version per committed step.
async fn a_large_member_change_is_answered_once_whole(backend: Backend) {
    let app = app(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "pingidentity");
    let n = 4 * STEP + 5;
    let ids = users(&scim, n, "u").await;

    let path = new_group(&scim, "Everyone").await;
    let put = scim
        .put(
            &path,
            &json!({"displayName": "Everyone", "members": members(&ids)}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(member_ids(&put.json()), ids);
    // Each of the five steps committed a state of the group of its own.
    assert_eq!(put.json()["meta"]["version"], "W/\"6\"", "{backend:?}");
    assert_eq!(put.header("etag"), Some("W/\"6\""));
    let added = events_of(&app, &scim, EventType::GroupUserAdded);
    let mut added_ids: Vec<&str> = added
        .iter()
        .map(|(_, e)| e["data"]["user"]["id"].as_str().unwrap())
        .collect();
    added_ids.sort();
    assert_eq!(added_ids, ids, "one event per membership, none twice");

    // Emptied in one PUT.
    let put = scim
        .put(&path, &json!({"displayName": "Everyone", "members": []}))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(
        member_ids(&scim.get(&path).await.json()),
        Vec::<String>::new()
    );
    assert_eq!(events_of(&app, &scim, EventType::GroupUserRemoved).len(), n);

    // Refilled by one PATCH (Entra's form), then a new group with everyone at once.
    let patch = json!({"Operations": [{"op": "Add", "path": "members", "value": members(&ids)}]});
    let r = scim.patch(&path, &patch).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(member_ids(&scim.get(&path).await.json()), ids);
    let r = scim
        .post(
            "/Groups",
            &json!({"displayName": "All hands", "members": members(&ids)}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(member_ids(&r.json()), ids);
    let location = r.header("location").unwrap().to_string();
    assert!(location.ends_with(r.json()["id"].as_str().unwrap()));

    // The inspector shows each request once, with the whole change.
    app.flush_request_log().await;
    let rows = roster::db::requests::recent(&mut app.conn(), &directory_id(&scim), 8).unwrap();
    let logged: Vec<(&str, i32, Option<&str>)> = rows
        .iter()
        .filter(|r| r.method != "GET")
        .take(4)
        .map(|r| (r.method.as_str(), r.status, r.change_summary.as_deref()))
        .collect();
    let all = format!("+{n} members");
    let none = format!("−{n} members");
    assert_eq!(
        logged,
        [
            ("POST", 201, Some(all.as_str())),
            ("PATCH", 204, Some(all.as_str())),
            ("PUT", 200, Some(none.as_str())),
            ("PUT", 200, Some(all.as_str())),
        ]
    );
}

backend_tests!(an_unknown_member_refuses_a_large_change_whole);
/// Every id of a large change is checked before its first step: one unknown id and nothing
/// of it applies.
async fn an_unknown_member_refuses_a_large_change_whole(backend: Backend) {
    let app = app(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let mut ids = users(&scim, 3 * STEP, "u").await;
    let r = scim.post("/Groups", &json!({"displayName": "Team"})).await;
    let path = format!("/Groups/{}", r.json()["id"].as_str().unwrap());
    ids.push("no-such-user".into());
    let put = scim
        .put(
            &path,
            &json!({"displayName": "Team", "members": members(&ids)}),
        )
        .await;
    assert_eq!(put.status, 400, "{}", put.body);
    assert!(put.body.contains("no-such-user"), "{}", put.body);
    let group = scim.get(&path).await.json();
    assert_eq!(member_ids(&group), Vec::<String>::new());
    assert_eq!(group["meta"]["version"], "W/\"1\"");
    assert!(events_of(&app, &scim, EventType::GroupUserAdded).is_empty());
}

backend_tests!(another_directorys_write_lands_between_the_steps);
/// While one directory's large change is being applied, another directory's create is
/// committed between its steps instead of waiting for all of them.
async fn another_directorys_write_lands_between_the_steps(backend: Backend) {
    let app = app(backend).await;
    let org = app.org("Acme", true);
    let big = app.directory(&org, "pingidentity");
    let quiet = app.directory(&org, "okta");
    let ids = users(&big, 40 * STEP, "u").await;
    let r = big
        .post("/Groups", &json!({"displayName": "Everyone"}))
        .await;
    let group_id = r.json()["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{group_id}");
    let body = json!({"displayName": "Everyone", "members": members(&ids)});
    let sender = Scim::new(big.base.clone(), big.token.clone());
    let put = actix_rt::spawn(async move { sender.put(&path, &body).await });

    // Once the first step is committed (members visible), the other directory creates a user.
    let mut polls = 0;
    loop {
        let count = roster::db::memberships::member_count(&mut app.conn(), &group_id).unwrap();
        if count > 0 {
            break;
        }
        polls += 1;
        assert!(polls < 20_000, "the large change never began");
        actix_rt::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let r = quiet
        .post("/Users", &json!({"userName": "quiet@acme.com"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let put = put.await.unwrap();
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(member_ids(&put.json()).len(), ids.len());

    let created = events_of(&app, &quiet, EventType::UserCreated);
    let added = events_of(&app, &big, EventType::GroupUserAdded);
    let (first, last) = (added.first().unwrap().0, added.last().unwrap().0);
    assert!(
        first < created[0].0 && created[0].0 < last,
        "the quiet directory's create (event {}) committed between the first ({first}) and last \
         ({last}) steps",
        created[0].0
    );
}

backend_tests!(a_second_write_to_a_group_waits_for_its_large_change);
/// A write to the same group does not land between the steps of a large change: a DELETE sent
/// meanwhile waits for it, so the PUT still answers with every member.
async fn a_second_write_to_a_group_waits_for_its_large_change(backend: Backend) {
    let app = app(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "pingidentity");
    let ids = users(&scim, 20 * STEP, "u").await;
    let r = scim
        .post("/Groups", &json!({"displayName": "Everyone"}))
        .await;
    let group_id = r.json()["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{group_id}");
    let body = json!({"displayName": "Everyone", "members": members(&ids)});
    let sender = Scim::new(scim.base.clone(), scim.token.clone());
    let put_path = path.clone();
    let put = actix_rt::spawn(async move { sender.put(&put_path, &body).await });
    let mut polls = 0;
    while roster::db::memberships::member_count(&mut app.conn(), &group_id).unwrap() == 0 {
        polls += 1;
        assert!(polls < 20_000, "the large change never began");
        actix_rt::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let deleted = scim.delete(&path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let put = put.await.unwrap();
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(member_ids(&put.json()), ids);
    assert_eq!(scim.get(&path).await.status, 404);
}

backend_tests!(member_steps_are_smaller_while_another_directory_is_active);
/// A directory alone changes a step's worth of memberships in one job; while another
/// directory sends requests too, the same change is applied in smaller steps, each committed
/// alone (the group's version counts them), so the other directory's writes wait less.
async fn member_steps_are_smaller_while_another_directory_is_active(backend: Backend) {
    let app = TestApp::spawn_configured(backend, TestDb::new(backend), |c| {
        c.limits.member_step = 20;
        c.limits.member_step_beside_others = 5;
    })
    .await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "pingidentity");
    let other = app.directory(&app.org("Quiet", true), "okta");
    let ids = users(&scim, 15, "u").await;
    let path = new_group(&scim, "Everyone").await;

    // Alone: fifteen memberships in one job, one new version.
    let put = scim
        .put(
            &path,
            &json!({"displayName": "Everyone", "members": members(&ids)}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json()["meta"]["version"], "W/\"2\"", "{backend:?}");

    // Beside another directory's request: three steps of five.
    assert_eq!(other.get("/Users").await.status, 200);
    let put = scim
        .put(&path, &json!({"displayName": "Everyone", "members": []}))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json()["meta"]["version"], "W/\"5\"", "{backend:?}");
    assert_eq!(
        member_ids(&scim.get(&path).await.json()),
        Vec::<String>::new()
    );
    assert_eq!(
        events_of(&app, &scim, EventType::GroupUserRemoved).len(),
        15
    );
}
