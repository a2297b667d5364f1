//! Roles from groups through the API: the owner defines roles, groups of a directory are mapped
//! to them, and every user read through the API (and every user event) carries their effective
//! roles; each change that moves a user's roles records exactly one `user.updated` event for
//! that user. Responses are checked against the OpenAPI document.

use serde_json::{Value, json};

use crate::api_v1::{Api, spawn};
use crate::helpers::{Backend, Scim, TestApp, backend_tests};

/// Acme with a PingIdentity directory: alice and bob in Admins, bob in Billing, carol in no
/// group.
pub(crate) struct Acme {
    pub(crate) org: String,
    pub(crate) scim: Scim,
    pub(crate) directory: String,
    pub(crate) alice: String,
    pub(crate) bob: String,
    pub(crate) carol: String,
    pub(crate) admins: String,
    pub(crate) billing: String,
}

pub(crate) async fn acme(app: &TestApp, api: &Api) -> Acme {
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let scim = app.directory(&org, "pingidentity");
    let directory = scim.base.rsplit('/').next().unwrap().to_string();
    let id = |r: crate::helpers::Resp| {
        assert!(r.status == 201, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_string()
    };
    let alice = id(scim
        .post("/Users", &json!({"userName": "alice@acme.com"}))
        .await);
    let bob = id(scim
        .post("/Users", &json!({"userName": "bob@acme.com"}))
        .await);
    let carol = id(scim
        .post("/Users", &json!({"userName": "carol@acme.com"}))
        .await);
    // PingOne's way: the group, then its members by PUT.
    let admins = id(scim
        .post("/Groups", &json!({"displayName": "Admins"}))
        .await);
    let put = scim
        .put(
            &format!("/Groups/{admins}"),
            &json!({"displayName": "Admins", "members": [{"value": alice}, {"value": bob}]}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let billing = id(scim
        .post(
            "/Groups",
            &json!({"displayName": "Billing", "members": [{"value": bob}]}),
        )
        .await);
    Acme {
        org,
        scim,
        directory,
        alice,
        bob,
        carol,
        admins,
        billing,
    }
}

pub(crate) async fn roles_of(api: &Api, user: &str) -> Value {
    api.call("GET", &format!("/users/{user}"), "/users/{id}", None, 200)
        .await["roles"]
        .clone()
}

/// The `user.updated` events about roles after `after`, as (user id, roles), in order.
pub(crate) async fn role_events(api: &Api, org: &str, after: i64) -> (Vec<(String, Value)>, i64) {
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
    let mut seen = Vec::new();
    for e in events {
        if e["type"] == "user.updated" && e["data"]["changed"] == json!(["roles"]) {
            seen.push((
                e["data"]["user"]["id"].as_str().unwrap().to_string(),
                e["data"]["user"]["roles"].clone(),
            ));
        }
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    (seen, last)
}

fn sorted(mut pairs: Vec<(String, Value)>) -> Vec<(String, Value)> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

backend_tests!(roles_follow_groups_mappings_and_the_default);
async fn roles_follow_groups_mappings_and_the_default(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let a = acme(&app, &api).await;
    let roles_path = format!("/organizations/{}/roles", a.org);
    let template = "/organizations/{id}/roles";
    assert_eq!(roles_of(&api, &a.alice).await, json!([]));
    let (_, mut cursor) = role_events(&api, &a.org, 0).await;

    // The owner defines three roles; `member` is the default: every user gets it at once.
    for body in [
        json!({"slug": "admin", "name": "Administrator", "description": "Everything"}),
        json!({"slug": "billing", "name": "Billing"}),
        json!({"slug": "member", "name": "Member", "default": true}),
    ] {
        api.call("POST", &roles_path, template, Some(body), 201)
            .await;
    }
    let listed = api.call("GET", &roles_path, template, None, 200).await;
    let slugs: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["admin", "billing", "member"]);
    let (events, next) = role_events(&api, &a.org, cursor).await;
    cursor = next;
    assert_eq!(
        events,
        sorted(vec![
            (a.alice.clone(), json!(["member"])),
            (a.bob.clone(), json!(["member"])),
            (a.carol.clone(), json!(["member"])),
        ]),
        "one event per user the default reached"
    );

    // The directory's groups are mapped: one event per user whose roles moved.
    let mappings = format!("/directories/{}/role-mappings", a.directory);
    let mt = "/directories/{id}/role-mappings";
    let put = api
        .call(
            "PUT",
            &mappings,
            mt,
            Some(json!([
                {"group_id": a.admins, "role": "admin"},
                {"group_id": a.billing, "role": "billing"},
            ])),
            200,
        )
        .await;
    assert_eq!(put["users_changed"], 2);
    assert_eq!(put["data"].as_array().unwrap().len(), 2);
    let got = api.call("GET", &mappings, mt, None, 200).await;
    assert_eq!(got["data"], put["data"]);
    assert_eq!(roles_of(&api, &a.alice).await, json!(["admin"]));
    assert_eq!(roles_of(&api, &a.bob).await, json!(["admin", "billing"]));
    assert_eq!(roles_of(&api, &a.carol).await, json!(["member"]));
    let (events, next) = role_events(&api, &a.org, cursor).await;
    cursor = next;
    assert_eq!(
        events,
        sorted(vec![
            (a.alice.clone(), json!(["admin"])),
            (a.bob.clone(), json!(["admin", "billing"])),
        ])
    );
    // The list carries them too.
    let list = api
        .call(
            "GET",
            &format!("/users?directory_id={}", a.directory),
            "/users",
            None,
            200,
        )
        .await;
    for u in list["data"].as_array().unwrap() {
        assert!(u["roles"].is_array(), "{u}");
    }

    // A membership removal (Entra's PATCH) drops the role, with one event.
    let r = a
        .scim
        .patch(
            &format!("/Groups/{}", a.admins),
            &json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": a.bob}]}]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (events, next) = role_events(&api, &a.org, cursor).await;
    cursor = next;
    assert_eq!(events, vec![(a.bob.clone(), json!(["billing"]))]);

    // Deleting the Billing group leaves bob with no group's role: the default again.
    assert_eq!(
        a.scim
            .delete(&format!("/Groups/{}", a.billing))
            .await
            .status,
        204
    );
    assert_eq!(roles_of(&api, &a.bob).await, json!(["member"]));
    let (events, next) = role_events(&api, &a.org, cursor).await;
    cursor = next;
    assert_eq!(events, vec![(a.bob.clone(), json!(["member"]))]);

    // Removing the admin role moves alice to the default; removing the default empties all.
    api.call(
        "DELETE",
        &format!("{roles_path}/admin"),
        "/organizations/{id}/roles/{slug}",
        None,
        204,
    )
    .await;
    let (events, next) = role_events(&api, &a.org, cursor).await;
    cursor = next;
    assert_eq!(events, vec![(a.alice.clone(), json!(["member"]))]);
    api.call(
        "DELETE",
        &format!("{roles_path}/member"),
        "/organizations/{id}/roles/{slug}",
        None,
        204,
    )
    .await;
    let (events, _) = role_events(&api, &a.org, cursor).await;
    assert_eq!(
        events,
        sorted(vec![
            (a.alice.clone(), json!([])),
            (a.bob.clone(), json!([])),
            (a.carol.clone(), json!([])),
        ])
    );
    assert_eq!(roles_of(&api, &a.carol).await, json!([]));
}

backend_tests!(user_events_carry_roles_and_a_new_user_gets_the_default);
async fn user_events_carry_roles_and_a_new_user_gets_the_default(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let a = acme(&app, &api).await;
    let roles_path = format!("/organizations/{}/roles", a.org);
    api.call(
        "POST",
        &roles_path,
        "/organizations/{id}/roles",
        Some(json!({"slug": "viewer", "name": "Viewer", "default": true})),
        201,
    )
    .await;
    let (_, cursor) = role_events(&api, &a.org, 0).await;
    let r = a
        .scim
        .post("/Users", &json!({"userName": "dave@acme.com"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let dave = r.json()["id"].as_str().unwrap().to_string();
    let r = a
        .scim
        .patch(
            &format!("/Users/{dave}"),
            &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let feed = api
        .call(
            "GET",
            &format!("/events?organization_id={}&after={cursor}", a.org),
            "/events",
            None,
            200,
        )
        .await;
    let kinds: Vec<(&str, &Value)> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["user"]["id"] == json!(dave))
        .map(|e| (e["type"].as_str().unwrap(), &e["data"]["user"]["roles"]))
        .collect();
    assert_eq!(
        kinds,
        [
            ("user.created", &json!(["viewer"])),
            ("user.deactivated", &json!(["viewer"]))
        ]
    );
}

backend_tests!(role_requests_are_checked);
async fn role_requests_are_checked(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let a = acme(&app, &api).await;
    let roles_path = format!("/organizations/{}/roles", a.org);
    let t = "/organizations/{id}/roles";
    api.call(
        "POST",
        &roles_path,
        t,
        Some(json!({"slug": "admin", "name": "Admin"})),
        201,
    )
    .await;
    let dup = api
        .call(
            "POST",
            &roles_path,
            t,
            Some(json!({"slug": "admin", "name": "Other"})),
            409,
        )
        .await;
    assert!(dup["error"]["message"].as_str().unwrap().contains("admin"));
    for bad in [
        json!({"slug": "Has Spaces", "name": "x"}),
        json!({"slug": "ok", "name": ""}),
    ] {
        api.call("POST", &roles_path, t, Some(bad), 400).await;
    }
    let mappings = format!("/directories/{}/role-mappings", a.directory);
    let mt = "/directories/{id}/role-mappings";
    let unknown_role = api
        .call(
            "PUT",
            &mappings,
            mt,
            Some(json!([{"group_id": a.admins, "role": "nope"}])),
            400,
        )
        .await;
    assert!(
        unknown_role["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    api.call(
        "PUT",
        &mappings,
        mt,
        Some(json!([{"group_id": "no-such-group", "role": "admin"}])),
        400,
    )
    .await;
    // Another organization's directory and roles are not there for this key's view of them.
    let other = api
        .org(json!({"name": "Globex", "scim_enabled": true}))
        .await;
    let other_dir = app.directory(&other, "okta");
    let other_id = other_dir.base.rsplit('/').next().unwrap();
    api.call(
        "DELETE",
        &format!("/organizations/{other}/roles/admin"),
        "/organizations/{id}/roles/{slug}",
        None,
        404,
    )
    .await;
    let cross = api
        .call(
            "PUT",
            &format!("/directories/{other_id}/role-mappings"),
            mt,
            Some(json!([{"group_id": a.admins, "role": "admin"}])),
            400,
        )
        .await;
    assert!(
        cross["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no group")
    );
    assert_eq!(roles_of(&api, &a.carol).await, json!([]));
}

/// Webhooks until one matches `wanted` (at most `limit` read), each checked for its signature.
async fn signed_until(
    rx: &mut crate::receiver::Receiver,
    secret: &str,
    limit: usize,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..limit {
        let r = rx.next(20).await;
        assert!(
            crate::receiver::signature_valid(secret, &r),
            "signature verifies"
        );
        if wanted(&r.json) {
            return r.json;
        }
    }
    panic!("no matching webhook among {limit}");
}

/// The `user.updated` event that moves `user`'s roles to `roles`.
fn roles_event<'a>(user: &'a str, roles: Value) -> impl Fn(&Value) -> bool + 'a {
    move |e: &Value| {
        e["type"] == "user.updated"
            && e["data"]["changed"] == json!(["roles"])
            && e["data"]["user"]["id"] == json!(user)
            && e["data"]["user"]["roles"] == roles
    }
}

backend_tests!(roles_arrive_in_signed_webhooks_from_pingone_and_entra_pushes);
async fn roles_arrive_in_signed_webhooks_from_pingone_and_entra_pushes(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let app = app.with_worker(&[0.05, 0.05, 0.05]);
    let mut rx = crate::receiver::start(None, 0, None);
    let a = acme(&app, &api).await;
    let hook = app.webhook(&rx.url, Some(&a.org), "*");
    let roles_path = format!("/organizations/{}/roles", a.org);
    for body in [
        json!({"slug": "admin", "name": "Admin"}),
        json!({"slug": "member", "name": "Member", "default": true}),
    ] {
        api.call(
            "POST",
            &roles_path,
            "/organizations/{id}/roles",
            Some(body),
            201,
        )
        .await;
    }
    // PingOne's group (members set by PUT) mapped through the API: alice's roles arrive signed.
    api.call(
        "PUT",
        &format!("/directories/{}/role-mappings", a.directory),
        "/directories/{id}/role-mappings",
        Some(json!([{"group_id": a.admins, "role": "admin"}])),
        200,
    )
    .await;
    signed_until(
        &mut rx,
        &hook.secret,
        50,
        roles_event(&a.alice, json!(["admin"])),
    )
    .await;

    // Microsoft Entra ID: its own directory, a user, a group, then members added by PATCH.
    let entra = app.directory(&a.org, "entra");
    let entra_dir = entra.base.rsplit('/').next().unwrap().to_string();
    let dana = entra
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "dana",
                "userName": "dana@acme.onmicrosoft.com",
                "active": true,
                "displayName": "Dana Scully",
                "emails": [{"primary": true, "type": "work", "value": "dana@acme.com"}],
                "name": {"formatted": "Dana Scully", "familyName": "Scully", "givenName": "Dana"},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "X-Files"}
            }),
        )
        .await;
    assert_eq!(dana.status, 201, "{}", dana.body);
    let dana = dana.json()["id"].as_str().unwrap().to_string();
    let created = signed_until(&mut rx, &hook.secret, 50, |e| {
        e["type"] == "user.created" && e["data"]["user"]["id"] == json!(dana)
    })
    .await;
    assert_eq!(
        created["data"]["user"]["roles"],
        json!(["member"]),
        "the default"
    );
    let ops = entra
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "externalId": "ops", "displayName": "Operations", "members": []}),
        )
        .await;
    let ops = ops.json()["id"].as_str().unwrap().to_string();
    api.call(
        "PUT",
        &format!("/directories/{entra_dir}/role-mappings"),
        "/directories/{id}/role-mappings",
        Some(json!([{"group_id": ops, "role": "admin"}])),
        200,
    )
    .await;
    let add = entra
        .patch(
            &format!("/Groups/{ops}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Add", "path": "members", "value": [{"value": dana}]}]}),
        )
        .await;
    assert!(add.status == 204 || add.status == 200, "{}", add.body);
    let e = signed_until(
        &mut rx,
        &hook.secret,
        50,
        roles_event(&dana, json!(["admin"])),
    )
    .await;
    assert_eq!(e["directory_id"], json!(entra_dir));

    // Removed from the group: back to the default, in exactly one roles event.
    let remove = entra
        .patch(
            &format!("/Groups/{ops}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Remove", "path": format!("members[value eq \"{dana}\"]")}]}),
        )
        .await;
    assert!(
        remove.status == 204 || remove.status == 200,
        "{}",
        remove.body
    );
    signed_until(
        &mut rx,
        &hook.secret,
        50,
        roles_event(&dana, json!(["member"])),
    )
    .await;
    let (events, _) = role_events(&api, &a.org, 0).await;
    let danas: Vec<&Value> = events
        .iter()
        .filter(|(u, _)| *u == dana)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        danas,
        [&json!(["admin"]), &json!(["member"])],
        "one roles event per move"
    );
    assert_eq!(
        api.call("GET", &format!("/users/{dana}"), "/users/{id}", None, 200)
            .await["roles"],
        json!(["member"])
    );
}

backend_tests!(a_mapping_change_cut_short_is_finished_by_the_next_instance);
async fn a_mapping_change_cut_short_is_finished_by_the_next_instance(backend: Backend) {
    use diesel::prelude::*;
    use roster::db::schema::role_refreshes;

    let db = crate::helpers::TestDb::new(backend);
    let url = db.url.clone();
    let first = TestApp::spawn_on(backend, db).await;
    let api = crate::api_v1::api_for(&first).await;
    let a = acme(&first, &api).await;
    api.call(
        "POST",
        &format!("/organizations/{}/roles", a.org),
        "/organizations/{id}/roles",
        Some(json!({"slug": "admin", "name": "Admin"})),
        201,
    )
    .await;
    // The instance stops right after the change's own job: the mapping and the mark that its
    // users are being recomputed are stored, and no user was recomputed yet.
    {
        let mut c = first.conn();
        let role = roster::db::roles::get(&mut c, &a.org, "admin")
            .unwrap()
            .unwrap();
        let wanted = std::collections::BTreeSet::from([(a.admins.clone(), role.id)]);
        roster::db::roles::replace_mappings(&mut c, &a.directory, &wanted).unwrap();
        roster::db::role_refreshes::begin(&mut c, &a.directory, &None).unwrap();
        // Its claim has run out.
        diesel::update(role_refreshes::table)
            .set(role_refreshes::claimed_until.eq(role_refreshes::created_at))
            .execute(&mut *c)
            .unwrap();
    }
    assert_eq!(roles_of(&api, &a.alice).await, json!([]), "left midway");

    // The next instance to start finishes it.
    let second = TestApp::spawn_on(backend, crate::helpers::TestDb { url, _dir: None }).await;
    let api2 = crate::api_v1::api_for(&second).await;
    let mut finished = false;
    for _ in 0..200 {
        let left: i64 = role_refreshes::table
            .count()
            .get_result(&mut *second.conn())
            .unwrap();
        if left == 0 {
            finished = true;
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(finished, "the interrupted change was finished");
    assert_eq!(roles_of(&api2, &a.alice).await, json!(["admin"]));
    assert_eq!(roles_of(&api2, &a.bob).await, json!(["admin"]));
    assert_eq!(roles_of(&api2, &a.carol).await, json!([]));
    let (events, _) = role_events(&api2, &a.org, 0).await;
    assert_eq!(
        events,
        sorted(vec![
            (a.alice.clone(), json!(["admin"])),
            (a.bob.clone(), json!(["admin"])),
        ]),
        "one event per user moved"
    );
}
