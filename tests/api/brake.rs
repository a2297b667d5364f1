//! The deprovisioning brake: a burst of deactivations or deletions is recorded for the
//! provider but held from the application (no event delivered, the users still active in the
//! directory API) until an admin releases it (every held event delivered, in order) or
//! rejects it (the users restored, the directory paused with 503 + Retry-After until resumed).
//! API responses are checked against the OpenAPI document.

use serde_json::{Value, json};

use crate::api_v1::{Api, api_for};
use crate::helpers::{Backend, Scim, TestApp, TestDb, backend_tests};

/// A directory of `n` users (`user00@acme.com`, …) in an organization whose brake settles each
/// deprovision for `settle` seconds (other thresholds at their defaults: more than 10 users and
/// more than 10 % within 10 minutes).
struct Acme {
    org: String,
    id: String,
    scim: Scim,
    users: Vec<String>,
}

async fn acme(app: &TestApp, api: &Api, provider: &str, n: usize, settle: i32) -> Acme {
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let thresholds =
        json!({"min_users": 10, "min_percent": 10, "window_minutes": 10, "settle_seconds": settle});
    let set = api
        .call(
            "PUT",
            &format!("/organizations/{org}/brake"),
            "/organizations/{id}/brake",
            Some(thresholds.clone()),
            200,
        )
        .await;
    assert_eq!(set, thresholds);
    let scim = app.directory(&org, provider);
    let id = scim.base.rsplit('/').next().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..n {
        let r = scim
            .post(
                "/Users",
                &json!({"userName": format!("user{i:02}@acme.com"), "active": true}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        users.push(r.json()["id"].as_str().unwrap().to_string());
    }
    Acme {
        org,
        id,
        scim,
        users,
    }
}

/// The organization's events in the feed, as (type, user id).
async fn feed(api: &Api, org: &str) -> Vec<(String, Option<String>)> {
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
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["data"]["user"]["id"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn of_type(events: &[(String, Option<String>)], t: &str) -> Vec<String> {
    events
        .iter()
        .filter(|(ty, _)| ty == t)
        .map(|(_, u)| u.clone().unwrap_or_default())
        .collect()
}

async fn directory(api: &Api, id: &str) -> Value {
    api.call(
        "GET",
        &format!("/directories/{id}"),
        "/directories/{id}",
        None,
        200,
    )
    .await
}

/// The directory's users as the application sees them: (id, active).
async fn app_users(api: &Api, id: &str) -> Vec<(String, bool)> {
    let list = api
        .call(
            "GET",
            &format!("/users?directory_id={id}&limit=100"),
            "/users",
            None,
            200,
        )
        .await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u["active"] == true))
        .collect()
}

async fn decide(api: &Api, id: &str, what: &str, status: u16) -> Value {
    let path = match what {
        "resume" => format!("/directories/{id}/resume"),
        _ => format!("/directories/{id}/brake/{what}"),
    };
    let template = match what {
        "resume" => "/directories/{id}/resume".to_string(),
        _ => format!("/directories/{{id}}/brake/{what}"),
    };
    api.call("POST", &path, &template, None, status).await
}

backend_tests!(a_burst_of_deletions_is_held_then_released_in_order);
/// 30 DELETEs against a 50-user directory whose deprovisions settle for a minute: the 11th
/// engages the brake and the 10 before it, still settling, are held with it. The application
/// sees none of them until the release delivers all 30, in the order they were made.
async fn a_burst_of_deletions_is_held_then_released_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await.with_worker(&[0.05, 0.05]);
    let api = api_for(&app).await;
    let mut rx = crate::receiver::start(None, 0, None);
    let a = acme(&app, &api, "okta", 50, 60).await;
    let hook = app.webhook(&rx.url, Some(&a.org), "user.deleted,directory.*");
    let deleted: Vec<String> = a.users[..30].to_vec();
    for id in &deleted {
        let r = a.scim.delete(&format!("/Users/{id}")).await;
        // The provider sees nothing unusual.
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(a.scim.get(&format!("/Users/{id}")).await.status, 404);
    }

    let d = directory(&api, &a.id).await;
    assert_eq!(d["brake"]["state"], "engaged");
    assert_eq!(d["brake"]["held"], 30);
    assert_eq!(
        d["brake"]["reason"],
        "Okta deleted 30 users within a minute — 60 % of the directory"
    );
    let held = api
        .call(
            "GET",
            &format!("/directories/{}/brake/held", a.id),
            "/directories/{id}/brake/held",
            None,
            200,
        )
        .await;
    let held_ids: Vec<&str> = held["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(held_ids.len(), 30);
    assert!(
        held["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["change"] == "deleted")
    );
    // The application still sees all 50, active.
    let users = app_users(&api, &a.id).await;
    assert_eq!(users.len(), 50);
    assert!(users.iter().all(|(_, active)| *active));
    let got = api
        .call(
            "GET",
            &format!("/users/{}", deleted[0]),
            "/users/{id}",
            None,
            200,
        )
        .await;
    assert_eq!(got["user_name"], "user00@acme.com");
    // Nothing reached the feed but the brake's own event; the first webhook is that event.
    let events = feed(&api, &a.org).await;
    assert!(of_type(&events, "user.deleted").is_empty(), "{events:?}");
    assert_eq!(of_type(&events, "directory.brake_engaged").len(), 1);
    let first = rx.next(20).await;
    assert!(crate::receiver::signature_valid(&hook.secret, &first));
    assert_eq!(first.json["type"], "directory.brake_engaged");

    let released = decide(&api, &a.id, "release", 200).await;
    assert_eq!(released["released_users"], 30);
    assert_eq!(released["released_events"], 30);
    let mut delivered = Vec::new();
    for _ in 0..30 {
        let r = rx.next(20).await;
        assert_eq!(r.json["type"], "user.deleted", "{}", r.body);
        delivered.push(r.json["data"]["user"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        delivered, deleted,
        "exactly the 30, in the order they were made"
    );
    assert_eq!(rx.next(20).await.json["type"], "directory.brake_released");
    assert_eq!(of_type(&feed(&api, &a.org).await, "user.deleted"), deleted);
    assert_eq!(app_users(&api, &a.id).await.len(), 20);
    let d = directory(&api, &a.id).await;
    assert_eq!(
        d["brake"],
        json!({"state": "clear", "held": 0, "reason": null})
    );
    // Released once: a second release has nothing to do.
    let again = decide(&api, &a.id, "release", 409).await;
    assert_eq!(
        again["error"]["message"],
        "the brake is clear: there is nothing to release"
    );
}

backend_tests!(without_settling_the_brake_holds_from_the_change_that_crossed_the_threshold);
/// Entra-style deactivations (PATCH active=false) with the default thresholds and no settling:
/// the first 10 reach the application at once; the 11th engages the brake, and it and the
/// ones after it are held, their users still active for the application. Creations and
/// updates of other users keep flowing meanwhile, and an update of a held user waits with it.
async fn without_settling_the_brake_holds_from_the_change_that_crossed_the_threshold(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let api = api_for(&app).await;
    let a = acme(&app, &api, "entra", 50, 0).await;
    let deactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    for id in &a.users[..15] {
        let r = a.scim.patch(&format!("/Users/{id}"), &deactivate).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["active"], false, "SCIM records the change");
    }
    let events = feed(&api, &a.org).await;
    assert_eq!(of_type(&events, "user.deactivated"), a.users[..10].to_vec());
    let d = directory(&api, &a.id).await;
    assert_eq!(d["brake"]["state"], "engaged");
    assert_eq!(d["brake"]["held"], 5);
    let users = app_users(&api, &a.id).await;
    let inactive: Vec<&String> = users.iter().filter(|(_, a)| !a).map(|(id, _)| id).collect();
    assert_eq!(
        inactive.len(),
        10,
        "the held five are still active for the app"
    );
    assert_eq!(
        api.call(
            "GET",
            &format!("/users?directory_id={}&active=true&limit=100", a.id),
            "/users",
            None,
            200
        )
        .await["data"]
            .as_array()
            .unwrap()
            .len(),
        40
    );

    // Creations and updates of others flow; an update of a held user is held with it.
    let r = a
        .scim
        .post("/Users", &json!({"userName": "new@acme.com"}))
        .await;
    assert_eq!(r.status, 201);
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Renamed"}]});
    assert_eq!(
        a.scim
            .patch(&format!("/Users/{}", a.users[40]), &rename)
            .await
            .status,
        200
    );
    assert_eq!(
        a.scim
            .patch(&format!("/Users/{}", a.users[14]), &rename)
            .await
            .status,
        200
    );
    let events = feed(&api, &a.org).await;
    assert_eq!(of_type(&events, "user.created").len(), 51);
    assert_eq!(of_type(&events, "user.updated"), vec![a.users[40].clone()]);

    decide(&api, &a.id, "release", 200).await;
    let events = feed(&api, &a.org).await;
    assert_eq!(of_type(&events, "user.deactivated"), a.users[..15].to_vec());
    assert_eq!(
        of_type(&events, "user.updated"),
        vec![a.users[40].clone(), a.users[14].clone()],
        "the held user's update follows its deactivation"
    );
}

backend_tests!(a_rejected_burst_pauses_the_directory_until_it_is_resumed);
/// Reject: the held users are restored (live, active, back in their groups) and their events
/// dropped; the directory is paused, so the provider's next request gets a 503 with
/// Retry-After and a detail saying why, until an admin resumes it.
async fn a_rejected_burst_pauses_the_directory_until_it_is_resumed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = api_for(&app).await;
    let a = acme(&app, &api, "okta", 50, 60).await;
    let members: Vec<Value> = a.users[..3].iter().map(|id| json!({"value": id})).collect();
    let group = a
        .scim
        .post(
            "/Groups",
            &json!({"displayName": "Engineering", "members": members}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let group_id = group.json()["id"].as_str().unwrap().to_string();
    for id in &a.users[..30] {
        assert_eq!(a.scim.delete(&format!("/Users/{id}")).await.status, 204);
    }
    assert_eq!(directory(&api, &a.id).await["brake"]["state"], "engaged");

    let rejected = decide(&api, &a.id, "reject", 200).await;
    assert_eq!(rejected["rejected_users"], 30);
    assert_eq!(rejected["dropped_events"], 30);
    let d = directory(&api, &a.id).await;
    assert_eq!(d["brake"]["state"], "paused");
    assert_eq!(d["brake"]["held"], 0);
    let events = feed(&api, &a.org).await;
    assert!(of_type(&events, "user.deleted").is_empty());
    assert_eq!(of_type(&events, "directory.paused").len(), 1);
    let users = app_users(&api, &a.id).await;
    assert_eq!(users.len(), 50);
    assert!(users.iter().all(|(_, active)| *active));

    let r = a.scim.get(&format!("/Users/{}", a.users[0])).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("300"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("this directory is paused"),
        "{}",
        r.body
    );
    assert_eq!(
        decide(&api, &a.id, "release", 409).await["error"]["message"],
        "the directory is paused (its held changes were rejected): resume it before you release"
    );

    decide(&api, &a.id, "resume", 200).await;
    let r = a.scim.get(&format!("/Users/{}", a.users[0])).await;
    assert_eq!(r.status, 200, "restored for SCIM too: {}", r.body);
    assert_eq!(r.json()["active"], true);
    let g = a.scim.get(&format!("/Groups/{group_id}")).await;
    let mut back = crate::helpers::member_ids(&g.json());
    back.sort();
    let mut want = a.users[..3].to_vec();
    want.sort();
    assert_eq!(back, want, "back in their group");
    assert_eq!(directory(&api, &a.id).await["brake"]["state"], "clear");
    assert_eq!(
        of_type(&feed(&api, &a.org).await, "directory.resumed").len(),
        1
    );
}

backend_tests!(a_settled_deprovision_reaches_the_application_on_its_own);
/// A deletion below the thresholds waits its settling time, then reaches the application
/// without anyone deciding.
async fn a_settled_deprovision_reaches_the_application_on_its_own(backend: Backend) {
    let app = TestApp::spawn(backend).await.with_worker(&[0.05]);
    let api = api_for(&app).await;
    let mut rx = crate::receiver::start(None, 0, None);
    let a = acme(&app, &api, "okta", 3, 1).await;
    app.webhook(&rx.url, Some(&a.org), "user.deleted");
    assert_eq!(
        a.scim
            .delete(&format!("/Users/{}", a.users[1]))
            .await
            .status,
        204
    );
    let got = rx.next(20).await;
    assert_eq!(got.json["data"]["user"]["id"], a.users[1].as_str());
    assert_eq!(directory(&api, &a.id).await["brake"]["held"], 0);
    assert_eq!(app_users(&api, &a.id).await.len(), 2);
}

backend_tests!(thresholds_are_checked_and_a_directory_can_only_tighten_them);
async fn thresholds_are_checked_and_a_directory_can_only_tighten_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = api_for(&app).await;
    let a = acme(&app, &api, "okta", 0, 0).await;
    let bad = api
        .call(
            "PUT",
            &format!("/organizations/{}/brake", a.org),
            "/organizations/{id}/brake",
            Some(json!({"min_users": 10, "min_percent": 101, "window_minutes": 10})),
            400,
        )
        .await;
    assert_eq!(
        bad["error"]["message"],
        "the share of users (%) must be between 0 and 100"
    );
    let looser = api
        .call(
            "PUT",
            &format!("/directories/{}/brake", a.id),
            "/directories/{id}/brake",
            Some(json!({"min_users": 50, "window_minutes": 5})),
            400,
        )
        .await;
    assert_eq!(
        looser["error"]["message"],
        "a directory can only tighten the organization's brake: use at most 10 users, a window of at least 10 minutes"
    );
    let tighter = api
        .call(
            "PUT",
            &format!("/directories/{}/brake", a.id),
            "/directories/{id}/brake",
            Some(json!({"min_users": 3, "settle_seconds": 30})),
            200,
        )
        .await;
    assert_eq!(
        tighter["thresholds"],
        json!({"min_users": 3, "min_percent": 10, "window_minutes": 10, "settle_seconds": 30})
    );
    let missing = api
        .call(
            "POST",
            "/directories/nope/brake/release",
            "/directories/{id}/brake/release",
            None,
            404,
        )
        .await;
    assert_eq!(missing["error"]["code"], "not_found");
}

backend_tests!(an_engaged_brake_survives_a_kill_9);
/// `kill -9` while the brake is engaged loses nothing: after a restart the brake is still
/// engaged with the same held changes, and releasing delivers them.
async fn an_engaged_brake_survives_a_kill_9(backend: Backend) {
    let db = TestDb::new(backend);
    let pool = roster::db::connect(&db.url).unwrap();
    let org = roster::db::orgs::create(&mut pool.get().unwrap(), "Acme", true).unwrap();
    let (dir, token) =
        roster::db::directories::create(&mut pool.get().unwrap(), &org.id, "okta", "Okta").unwrap();
    let key = roster::db::api_keys::create(&mut pool.get().unwrap(), "tests")
        .unwrap()
        .1;
    let start = || {
        crate::helpers::start_server_process(&db.url, &[], "warn", std::process::Stdio::inherit())
    };
    let (mut server, base) = start();
    let scim = Scim::new(format!("{base}/scim/v2/{}", dir.id), token.clone());
    let mut users = Vec::new();
    for i in 0..20 {
        let r = scim
            .post("/Users", &json!({"userName": format!("u{i}@acme.com")}))
            .await;
        users.push(r.json()["id"].as_str().unwrap().to_string());
    }
    for id in &users[..14] {
        assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 204);
    }
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut restarted, base) = start();
    let client = awc::Client::new();
    let call = |method: &'static str, path: String| {
        let req = client
            .request(method.parse().unwrap(), format!("{base}/api/v1{path}"))
            .insert_header(("Authorization", format!("Bearer {key}")));
        async move {
            let mut resp = req.send().await.unwrap();
            let body: Value = serde_json::from_slice(&resp.body().await.unwrap()).unwrap();
            (resp.status().as_u16(), body)
        }
    };
    let (status, d) = call("GET", format!("/directories/{}", dir.id)).await;
    assert_eq!(status, 200);
    assert_eq!(d["brake"]["state"], "engaged");
    assert_eq!(d["brake"]["held"], 4, "the 11th to the 14th deletion");
    let (status, released) = call("POST", format!("/directories/{}/brake/release", dir.id)).await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["released_events"], 4);
    let (_, feed) = call(
        "GET",
        format!("/events?organization_id={}&limit=1000", org.id),
    )
    .await;
    let deleted: Vec<&str> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "user.deleted")
        .map(|e| e["data"]["user"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        deleted,
        users[..14].iter().map(String::as_str).collect::<Vec<_>>()
    );
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

backend_tests!(the_portal_and_the_console_show_the_engaged_brake_and_decide);
/// The IT admin sees the engaged brake on every portal page and releases it from the brake's
/// page (a form without its CSRF token is refused); the owner sees it in the organization list
/// and sets the organization's thresholds (a bad value is refused with what to fix, and what
/// was typed stays). Another organization's directory is a 404.
async fn the_portal_and_the_console_show_the_engaged_brake_and_decide(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = api_for(&app).await;
    let a = acme(&app, &api, "okta", 20, 0).await;
    for id in &a.users[..12] {
        assert_eq!(a.scim.delete(&format!("/Users/{id}")).await.status, 204);
    }
    let mut portal = app.portal(&a.org).await;
    for page in ["/portal/users", "/portal/groups", "/portal/scim"] {
        let r = portal.get(page).await;
        assert_eq!(r.status, 200, "{page}");
        assert!(
            r.body.contains("Deprovisioning brake engaged on okta:")
                && r.body
                    .contains("Okta deleted 12 users within a minute — 60 % of the directory")
                && r.body
                    .contains(&format!("/portal/scim/directories/{}/brake", a.id)),
            "{page} shows the banner: {}",
            r.body
        );
    }
    let page = portal
        .get(&format!("/portal/scim/directories/{}/brake", a.id))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Release 2 changes"), "{}", page.body);
    assert!(page.body.contains("user10@acme.com") && page.body.contains("user11@acme.com"));
    assert!(
        !page.body.contains("user09@acme.com"),
        "delivered before the brake engaged"
    );

    let no_csrf = portal
        .send(
            "POST",
            &format!("/portal/scim/directories/{}/brake/release", a.id),
            Some(&[]),
            &[],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    assert_eq!(directory(&api, &a.id).await["brake"]["state"], "engaged");

    // The owner's list flags the organization.
    let mut owner = app.owner().await;
    let list = owner.get("/owner").await;
    assert!(
        list.body.contains("Deprovisioning brake engaged"),
        "{}",
        list.body
    );

    let released = portal
        .post_form(
            &format!("/portal/scim/directories/{}/brake/release", a.id),
            &page.body,
            &[],
        )
        .await;
    assert_eq!(released.status, 303);
    let after = portal.get(released.header("location").unwrap()).await;
    assert!(
        after
            .body
            .contains("Released: the held changes are on their way")
    );
    assert!(!after.body.contains("Deprovisioning brake engaged on"));
    assert_eq!(
        of_type(&feed(&api, &a.org).await, "user.deleted"),
        a.users[..12].to_vec()
    );
    // Deciding again (a second tab) says someone else already did.
    let again = portal
        .post_form(
            &format!("/portal/scim/directories/{}/brake/release", a.id),
            &page.body,
            &[],
        )
        .await;
    assert_eq!(
        again.header("location"),
        Some(format!("/portal/scim/directories/{}/brake?done=stale", a.id).as_str())
    );

    // The owner's thresholds: a bad value is refused, what was typed stays.
    let form = owner.get(&format!("/owner/orgs/{}/brake", a.org)).await;
    assert_eq!(form.status, 200);
    let refused = owner
        .post_form(
            &format!("/owner/orgs/{}/brake", a.org),
            &form.body,
            &[
                ("min_users", "5"),
                ("min_percent", "250"),
                ("window_minutes", "15"),
                ("settle_seconds", "30"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("the share of users (%) must be between 0 and 100")
    );
    assert!(refused.body.contains("value=\"250\""));
    let saved = owner
        .post_form(
            &format!("/owner/orgs/{}/brake", a.org),
            &form.body,
            &[
                ("min_users", "5"),
                ("min_percent", "25"),
                ("window_minutes", "15"),
                ("settle_seconds", "30"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    let t = api
        .call(
            "GET",
            &format!("/organizations/{}/brake", a.org),
            "/organizations/{id}/brake",
            None,
            200,
        )
        .await;
    assert_eq!(
        t,
        json!({"min_users": 5, "min_percent": 25, "window_minutes": 15, "settle_seconds": 30})
    );
    // The IT admin may only tighten them.
    let looser = portal
        .post_form(
            &format!("/portal/scim/directories/{}/brake/thresholds", a.id),
            &after.body,
            &[("min_users", "8")],
        )
        .await;
    assert_eq!(looser.status, 422);
    assert!(
        looser.body.contains(
            "a directory can only tighten the organization&#39;s brake: use at most 5 users"
        ),
        "{}",
        looser.body
    );

    // Another organization's directory.
    let other = api
        .org(json!({"name": "Globex", "scim_enabled": true}))
        .await;
    let globex = app.directory(&other, "entra");
    let globex_id = globex.base.rsplit('/').next().unwrap();
    assert_eq!(
        portal
            .get(&format!("/portal/scim/directories/{globex_id}/brake"))
            .await
            .status,
        404
    );
    assert_eq!(
        portal
            .post_form(
                &format!("/portal/scim/directories/{globex_id}/brake/release"),
                &after.body,
                &[],
            )
            .await
            .status,
        404
    );
}
