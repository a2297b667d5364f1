//! Resync through the API: the provider re-asserts part of a directory while a resync runs
//! (reads by id, filtered lists, PUT, PATCH, POSTs that conflict), and finishing lists exactly
//! the users and groups it never named; deactivating them records one `user.deactivated` per
//! user, keeping them changes nothing. Responses are checked against the OpenAPI document.

use serde_json::{Value, json};

use crate::api_v1::{Api, spawn};
use crate::helpers::{Backend, Scim, TestApp, backend_tests};

/// A 50-user Okta directory with four groups.
struct Fixture {
    org: String,
    scim: Scim,
    directory: String,
    /// (id, userName), in creation order.
    users: Vec<(String, String)>,
    /// (id, displayName)
    groups: Vec<(String, String)>,
}

async fn fixture(app: &TestApp, api: &Api) -> Fixture {
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let scim = app.directory(&org, "okta");
    let directory = scim.base.rsplit('/').next().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..50 {
        let user_name = format!("user{i:02}@acme.com");
        let r = scim
            .post(
                "/Users",
                &json!({"userName": user_name, "displayName": format!("User {i:02}"), "active": true}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        users.push((r.json()["id"].as_str().unwrap().to_string(), user_name));
    }
    let mut groups = Vec::new();
    for name in ["Admins", "Billing", "Legacy", "Contractors"] {
        let r = scim
            .post(
                "/Groups",
                &json!({"displayName": name, "members": [{"value": users[0].0}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        groups.push((
            r.json()["id"].as_str().unwrap().to_string(),
            name.to_string(),
        ));
    }
    Fixture {
        org,
        scim,
        directory,
        users,
        groups,
    }
}

const TEMPLATE: &str = "/directories/{id}/reconcile";

async fn start(api: &Api, directory: &str) -> Value {
    api.call(
        "POST",
        &format!("/directories/{directory}/reconcile"),
        TEMPLATE,
        Some(json!({})),
        201,
    )
    .await
}

async fn finish(api: &Api, directory: &str) -> Value {
    api.call(
        "POST",
        &format!("/directories/{directory}/reconcile/finish"),
        "/directories/{id}/reconcile/finish",
        None,
        200,
    )
    .await
}

async fn apply(api: &Api, directory: &str, action: &str) -> Value {
    api.call(
        "POST",
        &format!("/directories/{directory}/reconcile/apply"),
        "/directories/{id}/reconcile/apply",
        Some(json!({"action": action})),
        200,
    )
    .await
}

/// The provider re-asserts the first 45 users, five ways, and the first two groups.
async fn provider_pushes(f: &Fixture) {
    let s = &f.scim;
    for (i, (id, user_name)) in f.users.iter().take(45).enumerate() {
        let r = match i / 9 {
            0 => s.get(&format!("/Users/{id}")).await,
            1 => {
                let filter = format!("userName eq \"{user_name}\"");
                let r = s
                    .get(&format!(
                        "/Users?filter={}",
                        urlencoding(&filter)
                    ))
                    .await;
                assert_eq!(r.json()["totalResults"], 1, "{}", r.body);
                r
            }
            2 => {
                s.put(
                    &format!("/Users/{id}"),
                    &json!({"userName": user_name, "displayName": format!("User {i:02}"), "active": true}),
                )
                .await
            }
            3 => {
                s.patch(
                    &format!("/Users/{id}"),
                    &json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "displayName", "value": format!("User {i:02}")}],
                    }),
                )
                .await
            }
            _ => {
                // Okta's create of a user that exists already: 409, and the user is known.
                let r = s
                    .post("/Users", &json!({"userName": user_name, "active": true}))
                    .await;
                assert_eq!(r.status, 409, "{}", r.body);
                continue;
            }
        };
        assert_eq!(r.status, 200, "user {i}: {}", r.body);
    }
    let (admins, billing) = (&f.groups[0].0, &f.groups[1].0);
    let r = s.get(&format!("/Groups/{admins}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .patch(
            &format!("/Groups/{billing}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Billing"}],
            }),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The events of the organization after `after`, as (type, subject id), and the last sequence.
async fn events_after(api: &Api, org: &str, after: i64) -> (Vec<(String, String)>, i64) {
    let feed = api
        .call(
            "GET",
            &format!("/events?organization_id={org}&after={after}&limit=1000"),
            "/events",
            None,
            200,
        )
        .await;
    let events = feed["data"].as_array().unwrap();
    let last = events
        .last()
        .map(|e| e["sequence"].as_i64().unwrap())
        .unwrap_or(after);
    let seen = events
        .iter()
        .map(|e| {
            let data = &e["data"];
            let subject = data["user"]["id"]
                .as_str()
                .or(data["group"]["id"].as_str())
                .or(data["resync_id"].as_str())
                .unwrap_or_default()
                .to_string();
            (e["type"].as_str().unwrap().to_string(), subject)
        })
        .collect();
    (seen, last)
}

backend_tests!(a_resync_deactivates_exactly_the_users_the_provider_no_longer_names);
async fn a_resync_deactivates_exactly_the_users_the_provider_no_longer_names(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let f = fixture(&app, &api).await;
    let dir = &f.directory;
    let none = api
        .call(
            "GET",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            200,
        )
        .await;
    assert_eq!(none, json!({"state": "none"}));
    let (_, cursor) = events_after(&api, &f.org, 0).await;

    let started = start(&api, dir).await;
    assert_eq!(started["state"], "running");
    // One at a time.
    let again = api
        .call(
            "POST",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            409,
        )
        .await;
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already running"),
        "{again}"
    );

    provider_pushes(&f).await;
    // A user created during the resync existed after its start: never stale.
    let late = f
        .scim
        .post("/Users", &json!({"userName": "late@acme.com"}))
        .await;
    assert_eq!(late.status, 201, "{}", late.body);

    let finished = finish(&api, dir).await;
    assert_eq!(finished["state"], "finished");
    let missing: Vec<String> = f.users[45..].iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids(&finished["stale_users"]), sorted(missing.clone()));
    assert_eq!(finished["stale_user_count"], 5);
    let stale_groups: Vec<String> = f.groups[2..].iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids(&finished["stale_groups"]), sorted(stale_groups.clone()));
    assert_eq!(finished["stale_users"][0]["userName"], "user45@acme.com");
    assert_eq!(finished["stale_users"][0]["displayName"], "User 45");
    assert_eq!(finished["confirmed"], 45 + 2 + 1);
    let state = api
        .call(
            "GET",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            200,
        )
        .await;
    assert_eq!(state, finished);

    let applied = apply(&api, dir, "deactivate").await;
    assert_eq!(applied["state"], "applied");
    assert_eq!(applied["action"], "deactivate");
    // Applied once only.
    api.call(
        "POST",
        &format!("/directories/{dir}/reconcile/apply"),
        "/directories/{id}/reconcile/apply",
        Some(json!({"action": "keep"})),
        409,
    )
    .await;

    let (events, _) = events_after(&api, &f.org, cursor).await;
    let of = |t: &str| {
        sorted(
            events
                .iter()
                .filter(|(ty, _)| ty == t)
                .map(|(_, id)| id.clone())
                .collect(),
        )
    };
    assert_eq!(of("user.deactivated"), sorted(missing.clone()));
    assert_eq!(of("group.deleted"), sorted(stale_groups.clone()));
    assert_eq!(
        of("directory.resync_started"),
        vec![started["id"].as_str().unwrap().to_string()]
    );
    assert_eq!(
        of("directory.resync_finished"),
        vec![started["id"].as_str().unwrap().to_string()]
    );
    for (i, (id, _)) in f.users.iter().enumerate() {
        let user = f.scim.get(&format!("/Users/{id}")).await.json();
        assert_eq!(user["active"], i < 45, "user {i}: {user}");
    }
    for (i, (id, _)) in f.groups.iter().enumerate() {
        let status = f.scim.get(&format!("/Groups/{id}")).await.status;
        assert_eq!(status, if i < 2 { 200 } else { 404 }, "group {i}");
    }
}

backend_tests!(keeping_a_resyncs_result_changes_nothing);
async fn keeping_a_resyncs_result_changes_nothing(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let f = fixture(&app, &api).await;
    let dir = &f.directory;
    start(&api, dir).await;
    provider_pushes(&f).await;
    let finished = finish(&api, dir).await;
    assert_eq!(finished["stale_user_count"], 5);
    let (_, cursor) = events_after(&api, &f.org, 0).await;

    let kept = apply(&api, dir, "keep").await;
    assert_eq!(kept["state"], "applied");
    assert_eq!(kept["action"], "keep");
    let (events, _) = events_after(&api, &f.org, cursor).await;
    assert!(events.is_empty(), "{events:?}");
    for (id, _) in &f.users {
        assert_eq!(
            f.scim.get(&format!("/Users/{id}")).await.json()["active"],
            true
        );
    }
    for (id, _) in &f.groups {
        assert_eq!(f.scim.get(&format!("/Groups/{id}")).await.status, 200);
    }
    // A new resync can start once the last one is closed; an unfiltered list confirms nothing.
    start(&api, dir).await;
    let listed = f.scim.get("/Users?count=100").await;
    assert_eq!(listed.json()["totalResults"], 50);
    let finished = finish(&api, dir).await;
    assert_eq!(finished["stale_user_count"], 50);

    // A directory deleted while a resync runs takes its resync with it.
    start(&api, dir).await;
    assert!(roster::db::directories::delete(&mut app.conn(), &f.org, dir).unwrap());
    roster::reconcile::finish_due(app.state()).await.unwrap();
    api.call(
        "GET",
        &format!("/directories/{dir}/reconcile"),
        TEMPLATE,
        None,
        404,
    )
    .await;
}

backend_tests!(resyncs_are_refused_outside_the_keys_organization_and_when_nothing_runs);
async fn resyncs_are_refused_outside_the_keys_organization_and_when_nothing_runs(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let f = fixture(&app, &api).await;
    let dir = &f.directory;
    // Finishing or applying with nothing running or finished is a clear 409.
    let r = api
        .call(
            "POST",
            &format!("/directories/{dir}/reconcile/finish"),
            "/directories/{id}/reconcile/finish",
            None,
            409,
        )
        .await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no resync"),
        "{r}"
    );
    api.call(
        "POST",
        &format!("/directories/{dir}/reconcile/apply"),
        "/directories/{id}/reconcile/apply",
        Some(json!({"action": "deactivate"})),
        409,
    )
    .await;
    api.call(
        "POST",
        &format!("/directories/{dir}/reconcile/apply"),
        "/directories/{id}/reconcile/apply",
        Some(json!({"action": "delete"})),
        400,
    )
    .await;
    api.call(
        "POST",
        &format!("/directories/{dir}/reconcile"),
        TEMPLATE,
        Some(json!({"finish_after_minutes": 0})),
        400,
    )
    .await;
    api.call(
        "GET",
        "/directories/no-such-directory/reconcile",
        TEMPLATE,
        None,
        404,
    )
    .await;

    // A key of another organization sees no such directory.
    let other = api
        .org(json!({"name": "Globex", "scim_enabled": true}))
        .await;
    let (_, key) =
        roster::db::api_keys::create_scoped(&mut app.conn(), "globex", Some(&other)).unwrap();
    for (method, path) in [
        ("GET", format!("/directories/{dir}/reconcile")),
        ("POST", format!("/directories/{dir}/reconcile")),
        ("POST", format!("/directories/{dir}/reconcile/finish")),
    ] {
        let mut resp = awc::Client::new()
            .request(
                method.parse().unwrap(),
                format!("{}/api/v1{path}", app.base),
            )
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{method} {path}");
        let _ = resp.body().await;
    }
    // Nothing was started by the refused calls.
    let state = api
        .call(
            "GET",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            200,
        )
        .await;
    assert_eq!(state["state"], "none");
}

backend_tests!(
    a_resync_is_finished_when_its_time_comes_and_cancelled_when_its_directory_is_disabled
);
async fn a_resync_is_finished_when_its_time_comes_and_cancelled_when_its_directory_is_disabled(
    backend: Backend,
) {
    use diesel::prelude::*;
    use roster::db::schema::directory_resyncs;
    let (app, api) = spawn(backend).await;
    let f = fixture(&app, &api).await;
    let dir = &f.directory;
    let started = api
        .call(
            "POST",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            Some(json!({"finish_after_minutes": 60})),
            201,
        )
        .await;
    provider_pushes(&f).await;
    // Not due yet: the background pass leaves it running.
    roster::reconcile::finish_due(app.state()).await.unwrap();
    let state = api
        .call(
            "GET",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            200,
        )
        .await;
    assert_eq!(state["state"], "running");
    // Its time came (as if an hour passed): the next pass finishes it with its list.
    let past = roster::db::now() - chrono::Duration::minutes(1);
    roster::on_backend!(&mut *app.conn(), |c| diesel::update(
        directory_resyncs::table.find(started["id"].as_str().unwrap())
    )
    .set(directory_resyncs::finish_by.eq(past))
    .execute(c))
    .unwrap();
    assert_eq!(roster::reconcile::finish_due(app.state()).await.unwrap(), 1);
    let state = api
        .call(
            "GET",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            200,
        )
        .await;
    assert_eq!(state["state"], "finished");
    assert_eq!(state["stale_user_count"], 5);

    // Another resync, and the directory is disabled while it runs: it ends without a list.
    start(&api, dir).await;
    assert!(roster::db::directories::set_status(&mut app.conn(), &f.org, dir, false).unwrap());
    assert_eq!(roster::reconcile::finish_due(app.state()).await.unwrap(), 1);
    let state = api
        .call(
            "GET",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            200,
        )
        .await;
    assert_eq!(state["state"], "cancelled");
    assert_eq!(state["stale_user_count"], 0);
    // A disabled directory cannot start one.
    let refused = api
        .call(
            "POST",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            409,
        )
        .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{refused}"
    );
}

backend_tests!(the_portal_resyncs_its_own_directories_only_and_its_forms_need_csrf);
async fn the_portal_resyncs_its_own_directories_only_and_its_forms_need_csrf(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let f = fixture(&app, &api).await;
    let dir = &f.directory;
    let mut admin = app.portal(&f.org).await;
    let path = format!("/portal/scim/directories/{dir}/resync");
    let page = admin.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("No resync yet"), "{}", page.body);

    // Without the CSRF token nothing starts.
    let forged = admin
        .send("POST", &format!("{path}/start"), Some(&[]), &[])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let state = api
        .call(
            "GET",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            200,
        )
        .await;
    assert_eq!(state["state"], "none");

    let started = admin
        .post_form(&format!("{path}/start"), &page.body, &[])
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let page = admin.get(&path).await;
    assert!(page.body.contains("Resync running"), "{}", page.body);
    assert!(page.body.contains("Push Now"), "Okta's way is said");
    // Starting again says why nothing happened.
    let again = admin
        .post_form(&format!("{path}/start"), &page.body, &[])
        .await;
    assert_eq!(
        again.header("location"),
        Some(format!("{path}?problem=running").as_str())
    );
    let shown = admin.get(&format!("{path}?problem=running")).await;
    assert!(shown.body.contains("already running"), "{}", shown.body);

    provider_pushes(&f).await;
    let finished = admin
        .post_form(&format!("{path}/finish"), &page.body, &[])
        .await;
    assert_eq!(finished.status, 303, "{}", finished.body);
    let page = admin.get(&path).await;
    assert!(
        page.body
            .contains("5 users and 2 groups Okta no longer knows"),
        "{}",
        page.body
    );
    assert!(page.body.contains("user49@acme.com"));

    // Another organization's admin sees no such directory, and cannot act on it.
    let other = api
        .org(json!({"name": "Globex", "scim_enabled": true}))
        .await;
    let mut outsider = app.portal(&other).await;
    let own_page = outsider.get("/portal/scim").await;
    assert_eq!(outsider.get(&path).await.status, 404);
    let applied = outsider
        .post_form(
            &format!("{path}/apply"),
            &own_page.body,
            &[("action", "deactivate")],
        )
        .await;
    assert_eq!(applied.status, 404);
    let state = api
        .call(
            "GET",
            &format!("/directories/{dir}/reconcile"),
            TEMPLATE,
            None,
            200,
        )
        .await;
    assert_eq!(state["state"], "finished");

    let applied = admin
        .post_form(
            &format!("{path}/apply"),
            &page.body,
            &[("action", "deactivate")],
        )
        .await;
    assert_eq!(applied.status, 303);
    let page = admin.get(&path).await;
    assert!(page.body.contains("They were deactivated"), "{}", page.body);
    // The owner console's organization page says so too.
    let mut owner = app.owner().await;
    let org_page = owner.get(&format!("/owner/orgs/{}", f.org)).await;
    assert!(
        org_page
            .body
            .contains("finished: 5 users and 2 groups deactivated or deleted"),
        "{}",
        org_page.body
    );
    assert_eq!(
        f.scim
            .get(&format!("/Users/{}", f.users[49].0))
            .await
            .json()["active"],
        false
    );
}

backend_tests!(a_resyncs_deactivation_is_held_by_the_deprovisioning_brake_like_the_providers);
async fn a_resyncs_deactivation_is_held_by_the_deprovisioning_brake_like_the_providers(
    backend: Backend,
) {
    let (app, api) = spawn(backend).await;
    let f = fixture(&app, &api).await;
    let dir = &f.directory;
    // A brake that engages past 2 deprovisioned users and 5 % of the directory.
    api.call(
        "PUT",
        &format!("/organizations/{}/brake", f.org),
        "/organizations/{id}/brake",
        Some(json!({"min_users": 2, "min_percent": 5, "window_minutes": 10})),
        200,
    )
    .await;
    start(&api, dir).await;
    provider_pushes(&f).await;
    finish(&api, dir).await;
    let (_, cursor) = events_after(&api, &f.org, 0).await;
    apply(&api, dir, "deactivate").await;

    // The SCIM state is recorded, but the burst is held from the application.
    for (id, _) in &f.users[45..] {
        assert_eq!(
            f.scim.get(&format!("/Users/{id}")).await.json()["active"],
            false
        );
    }
    let d = api
        .call(
            "GET",
            &format!("/directories/{dir}"),
            "/directories/{id}",
            None,
            200,
        )
        .await;
    assert_eq!(d["brake"]["state"], "engaged", "{d}");
    assert!(d["brake"]["held"].as_i64().unwrap() >= 1, "{d}");
    let (events, _) = events_after(&api, &f.org, cursor).await;
    let delivered = events
        .iter()
        .filter(|(t, _)| t == "user.deactivated")
        .count();
    assert!(delivered < 5, "{events:?}");
}
