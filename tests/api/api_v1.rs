//! The directory API (`/api/v1`): every endpoint with auth, paging, filters and cross-org
//! 404s, each response checked against the OpenAPI document Roster serves.

use serde_json::{Value, json};

use crate::helpers::{Backend, Scim, TestApp, backend_tests};

/// Validates `body` against the document's schema for `method path -> status`.
pub(crate) fn conforms(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        !schema.is_null(),
        "the OpenAPI document describes {method} {path} -> {status}"
    );
    // Resolve `#/components/schemas/X` against the document's own schemas.
    let text = schema
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    let mut root: Value = serde_json::from_str(&text).unwrap();
    let defs = doc["components"]["schemas"]
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    root["$defs"] = serde_json::from_str(&defs).unwrap();
    let validator = jsonschema::validator_for(&root).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} -> {status} does not match the OpenAPI document: {errors:?}\n{body}"
    );
}

/// A client of one app's API: its key, and the OpenAPI document the app serves.
pub(crate) struct Api {
    base: String,
    key: String,
    doc: Value,
}

impl Api {
    /// Calls the API and checks the response against the document (`template` is its path).
    pub(crate) async fn call(
        &self,
        method: &str,
        url: &str,
        template: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let client = awc::Client::new();
        let req = client
            .request(
                method.parse().unwrap(),
                format!("{}/api/v1{url}", self.base),
            )
            .insert_header(("Authorization", format!("Bearer {}", self.key)));
        let mut resp = match body {
            Some(b) => req.send_json(&b).await.unwrap(),
            None => req.send().await.unwrap(),
        };
        let bytes = resp.body().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            status,
            "{method} {url}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let v: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        if status != 204 {
            conforms(
                &self.doc,
                &method.to_ascii_lowercase(),
                template,
                status,
                &v,
            );
        }
        v
    }

    /// Creates an organization and returns its id.
    pub(crate) async fn org(&self, body: Value) -> String {
        self.call("POST", "/organizations", "/organizations", Some(body), 201)
            .await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A fresh app and an API client with a new key and the document the app serves.
pub(crate) async fn spawn(backend: Backend) -> (TestApp, Api) {
    let app = TestApp::spawn(backend).await;
    let api = api_for(&app).await;
    (app, api)
}

/// An API client of `app` with a new key and the document the app serves.
pub(crate) async fn api_for(app: &TestApp) -> Api {
    let doc: Value = {
        let mut r = awc::Client::new()
            .get(format!("{}/api/v1/openapi.json", app.base))
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&r.body().await.unwrap()).unwrap()
    };
    assert_eq!(doc["openapi"], "3.1.0");
    Api {
        base: app.base.clone(),
        key: app.api_key(),
        doc,
    }
}

/// Two organizations made over the API, filled over SCIM: Acme's Okta directory holds a1 (in
/// the group Eng) and the inactive a2, Globex's Entra directory x.
struct Filled {
    acme_id: String,
    globex_id: String,
    scim_a: Scim,
    dir_id: String,
    u1: String,
    u2: String,
    g1: String,
    other: String,
}

async fn fill(app: &TestApp, api: &Api) -> Filled {
    let acme_id = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let globex_id = api
        .org(json!({"name": "Globex Corp", "scim_enabled": true}))
        .await;
    let scim_a = app.directory(&acme_id, "okta");
    let scim_g = app.directory(&globex_id, "entra");
    let created = |r: crate::helpers::Resp| r.json()["id"].as_str().unwrap().to_string();
    let u1 = created(scim_a.post("/Users", &json!({"userName": "a1@acme.com", "emails": [{"value": "a1@acme.com", "primary": true}]})).await);
    let u2 = created(
        scim_a
            .post(
                "/Users",
                &json!({"userName": "a2@acme.com", "active": false}),
            )
            .await,
    );
    let g1 = created(
        scim_a
            .post(
                "/Groups",
                &json!({"displayName": "Eng", "members": [{"value": u1}]}),
            )
            .await,
    );
    let other = created(
        scim_g
            .post("/Users", &json!({"userName": "x@globex.com"}))
            .await,
    );
    // A token's first use (`directory.connected`) is recorded just after the reply.
    app.flush_request_log().await;
    let dir_id = scim_a.base.rsplit('/').next().unwrap().to_string();
    Filled {
        acme_id,
        globex_id,
        scim_a,
        dir_id,
        u1,
        u2,
        g1,
        other,
    }
}

backend_tests!(a_missing_wrong_or_revoked_key_is_refused);
async fn a_missing_wrong_or_revoked_key_is_refused(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let anon = awc::Client::new()
        .get(format!("{}/api/v1/users", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let bad = awc::Client::new()
        .get(format!("{}/api/v1/users", app.base))
        .insert_header(("Authorization", "Bearer roster_key_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);

    let id = roster::db::api_keys::list(&mut app.conn()).unwrap()[0]
        .id
        .clone();
    roster::db::api_keys::revoke(&mut app.conn(), &id).unwrap();
    let r = awc::Client::new()
        .get(format!("{}/api/v1/users", app.base))
        .insert_header(("Authorization", format!("Bearer {}", api.key)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

backend_tests!(organizations_are_created_read_and_patched);
async fn organizations_are_created_read_and_patched(backend: Backend) {
    let (_app, api) = spawn(backend).await;
    let acme_id = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let globex_id = api.org(json!({"name": "Globex"})).await;
    api.call(
        "POST",
        "/organizations",
        "/organizations",
        Some(json!({"name": "  "})),
        400,
    )
    .await;
    api.call(
        "GET",
        &format!("/organizations/{acme_id}"),
        "/organizations/{id}",
        None,
        200,
    )
    .await;
    api.call(
        "GET",
        "/organizations/nope",
        "/organizations/{id}",
        None,
        404,
    )
    .await;
    let patched = api
        .call(
            "PATCH",
            &format!("/organizations/{globex_id}"),
            "/organizations/{id}",
            Some(json!({"scim_enabled": true, "name": "Globex Corp"})),
            200,
        )
        .await;
    assert_eq!(
        (patched["scim_enabled"].as_bool(), patched["name"].as_str()),
        (Some(true), Some("Globex Corp"))
    );
}

backend_tests!(organizations_are_listed_a_page_at_a_time);
async fn organizations_are_listed_a_page_at_a_time(backend: Backend) {
    let (_app, api) = spawn(backend).await;
    api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    api.org(json!({"name": "Globex"})).await;
    let p1 = api
        .call("GET", "/organizations?limit=1", "/organizations", None, 200)
        .await;
    assert_eq!(p1["data"].as_array().unwrap().len(), 1);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = api
        .call(
            "GET",
            &format!("/organizations?limit=1&cursor={cursor}"),
            "/organizations",
            None,
            200,
        )
        .await;
    assert_ne!(p2["data"][0]["id"], p1["data"][0]["id"]);
    assert!(p2["next_cursor"].is_null());
    api.call("GET", "/organizations?limit=0", "/organizations", None, 400)
        .await;
}

backend_tests!(an_organization_gets_a_portal_link);
async fn an_organization_gets_a_portal_link(backend: Backend) {
    let (_app, api) = spawn(backend).await;
    let acme_id = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let link = api
        .call(
            "POST",
            &format!("/organizations/{acme_id}/portal-links"),
            "/organizations/{id}/portal-links",
            Some(json!({"ttl_seconds": 3600})),
            201,
        )
        .await;
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .contains("/portal/link/roster_portal_")
    );
    api.call(
        "POST",
        "/organizations/nope/portal-links",
        "/organizations/{id}/portal-links",
        Some(json!({})),
        404,
    )
    .await;
}

backend_tests!(directories_are_listed_per_organization_and_read);
async fn directories_are_listed_per_organization_and_read(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let f = fill(&app, &api).await;
    let dirs = api
        .call(
            "GET",
            &format!("/directories?organization_id={}", f.acme_id),
            "/directories",
            None,
            200,
        )
        .await;
    assert_eq!(dirs["data"].as_array().unwrap().len(), 1);
    let dir_id = dirs["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(dirs["data"][0]["endpoint_url"], f.scim_a.base.as_str());
    api.call(
        "GET",
        &format!("/directories/{dir_id}"),
        "/directories/{id}",
        None,
        200,
    )
    .await;
    api.call("GET", "/directories/nope", "/directories/{id}", None, 404)
        .await;
}

backend_tests!(users_are_filtered_by_organization_directory_status_group_and_update_time);
async fn users_are_filtered_by_organization_directory_status_group_and_update_time(
    backend: Backend,
) {
    let (app, api) = spawn(backend).await;
    let Filled {
        acme_id,
        dir_id,
        u1,
        u2,
        g1,
        ..
    } = fill(&app, &api).await;
    let users = api
        .call(
            "GET",
            &format!("/users?organization_id={acme_id}"),
            "/users",
            None,
            200,
        )
        .await;
    assert_eq!(
        users["data"].as_array().unwrap().len(),
        2,
        "only Acme's users"
    );
    let active = api
        .call(
            "GET",
            &format!("/users?directory_id={dir_id}&active=false"),
            "/users",
            None,
            200,
        )
        .await;
    assert_eq!(active["data"][0]["id"], u2.as_str());
    let in_group = api
        .call("GET", &format!("/users?group_id={g1}"), "/users", None, 200)
        .await;
    assert_eq!(in_group["data"][0]["id"], u1.as_str());
    let later = api
        .call(
            "GET",
            "/users?updated_after=2999-01-01T00:00:00Z",
            "/users",
            None,
            200,
        )
        .await;
    assert_eq!(later["data"], json!([]));
    api.call("GET", "/users?active=maybe", "/users", None, 400)
        .await;
    api.call("GET", "/users?updated_after=yesterday", "/users", None, 400)
        .await;
}

backend_tests!(a_user_is_read_by_id);
async fn a_user_is_read_by_id(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let Filled { u1, .. } = fill(&app, &api).await;
    let one = api
        .call("GET", &format!("/users/{u1}"), "/users/{id}", None, 200)
        .await;
    assert_eq!(one["email"], "a1@acme.com");
    api.call("GET", "/users/nope", "/users/{id}", None, 404)
        .await;
}

backend_tests!(another_organizations_users_stay_out_of_an_organizations_list);
async fn another_organizations_users_stay_out_of_an_organizations_list(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let Filled { acme_id, other, .. } = fill(&app, &api).await;
    let acme_only = api
        .call(
            "GET",
            &format!("/users?organization_id={acme_id}&limit=1000"),
            "/users",
            None,
            200,
        )
        .await;
    assert!(!acme_only.to_string().contains(&other));
}

backend_tests!(groups_and_their_members_are_listed_per_organization_and_read);
async fn groups_and_their_members_are_listed_per_organization_and_read(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let Filled {
        acme_id,
        globex_id,
        u1,
        g1,
        ..
    } = fill(&app, &api).await;
    let groups = api
        .call(
            "GET",
            &format!("/groups?organization_id={acme_id}"),
            "/groups",
            None,
            200,
        )
        .await;
    assert_eq!(groups["data"][0]["name"], "Eng");
    assert_eq!(
        api.call(
            "GET",
            &format!("/groups?organization_id={globex_id}"),
            "/groups",
            None,
            200
        )
        .await["data"],
        json!([])
    );
    api.call("GET", &format!("/groups/{g1}"), "/groups/{id}", None, 200)
        .await;
    api.call("GET", "/groups/nope", "/groups/{id}", None, 404)
        .await;
    let members = api
        .call(
            "GET",
            &format!("/groups/{g1}/members"),
            "/groups/{id}/members",
            None,
            200,
        )
        .await;
    assert_eq!(members["data"][0]["id"], u1.as_str());
    api.call(
        "GET",
        "/groups/nope/members",
        "/groups/{id}/members",
        None,
        404,
    )
    .await;
}

backend_tests!(the_events_feed_lists_an_organizations_changes_in_order);
async fn the_events_feed_lists_an_organizations_changes_in_order(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let Filled {
        acme_id, dir_id, ..
    } = fill(&app, &api).await;
    let events = api
        .call(
            "GET",
            &format!("/events?organization_id={acme_id}"),
            "/events",
            None,
            200,
        )
        .await;
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "directory.connected",
            "user.created",
            "user.created",
            "group.created",
            "group.user_added"
        ]
    );
    api.call("GET", "/events?after=abc", "/events", None, 400)
        .await;
    let by_dir = api
        .call(
            "GET",
            &format!("/events?directory_id={dir_id}&limit=2"),
            "/events",
            None,
            200,
        )
        .await;
    assert_eq!(by_dir["data"].as_array().unwrap().len(), 2);
}

/// Creates Acme's webhook for `user.*` and `group.user_added` and returns it.
async fn acme_webhook(api: &Api, acme_id: &str) -> Value {
    api.call("POST", "/webhooks", "/webhooks", Some(json!({"url": "https://app.example.com/hooks", "organization_id": acme_id, "event_types": ["user.*", "group.user_added"]})), 201).await
}

backend_tests!(a_webhook_is_created_with_its_secret_shown_once);
async fn a_webhook_is_created_with_its_secret_shown_once(backend: Backend) {
    let (_app, api) = spawn(backend).await;
    let acme_id = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let hook = acme_webhook(&api, &acme_id).await;
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    api.call(
        "POST",
        "/webhooks",
        "/webhooks",
        Some(json!({"url": "not a url"})),
        400,
    )
    .await;
    api.call(
        "POST",
        "/webhooks",
        "/webhooks",
        Some(json!({"url": "https://x.example", "event_types": ["user.exploded"]})),
        400,
    )
    .await;
    api.call(
        "POST",
        "/webhooks",
        "/webhooks",
        Some(json!({"url": "https://x.example", "organization_id": "nope"})),
        404,
    )
    .await;
    let hooks = api.call("GET", "/webhooks", "/webhooks", None, 200).await;
    assert!(
        hooks["data"][0].get("secret").is_none(),
        "the secret is shown only once"
    );
}

backend_tests!(a_webhook_replays_its_organizations_matching_events_and_logs_them);
async fn a_webhook_replays_its_organizations_matching_events_and_logs_them(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let Filled { acme_id, .. } = fill(&app, &api).await;
    let hook = acme_webhook(&api, &acme_id).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let queued = api
        .call(
            "POST",
            &format!("/webhooks/{hook_id}/replay"),
            "/webhooks/{id}/replay",
            Some(json!({"since_sequence": 1})),
            202,
        )
        .await;
    assert_eq!(
        queued["queued"], 3,
        "the Acme user.* and group.user_added events"
    );
    api.call(
        "POST",
        &format!("/webhooks/{hook_id}/replay"),
        "/webhooks/{id}/replay",
        Some(json!({})),
        400,
    )
    .await;
    api.call(
        "POST",
        "/webhooks/nope/replay",
        "/webhooks/{id}/replay",
        Some(json!({"since_sequence": 1})),
        404,
    )
    .await;
    let log = api
        .call(
            "GET",
            &format!("/webhooks/{hook_id}/deliveries"),
            "/webhooks/{id}/deliveries",
            None,
            200,
        )
        .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 3);
    api.call(
        "GET",
        "/webhooks/nope/deliveries",
        "/webhooks/{id}/deliveries",
        None,
        404,
    )
    .await;
}

backend_tests!(a_deleted_webhook_is_gone);
async fn a_deleted_webhook_is_gone(backend: Backend) {
    let (_app, api) = spawn(backend).await;
    let acme_id = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let hook_id = acme_webhook(&api, &acme_id).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.call(
        "DELETE",
        &format!("/webhooks/{hook_id}"),
        "/webhooks/{id}",
        None,
        204,
    )
    .await;
    api.call(
        "DELETE",
        &format!("/webhooks/{hook_id}"),
        "/webhooks/{id}",
        None,
        404,
    )
    .await;
}
