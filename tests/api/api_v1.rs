//! The directory API (`/api/v1`): every endpoint with auth, paging, filters and cross-org
//! 404s, each response checked against the OpenAPI document Roster serves.

use serde_json::{Value, json};

use crate::helpers::{TestApp, backends};

/// Validates `body` against the document's schema for `method path -> status`.
fn conforms(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
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

struct Api<'a> {
    app: &'a TestApp,
    key: String,
    doc: Value,
}

impl Api<'_> {
    /// Calls the API and checks the response against the document (`template` is its path).
    async fn call(
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
                format!("{}/api/v1{url}", self.app.base),
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
}

#[actix_web::test]
async fn every_endpoint_matches_the_openapi_document() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let doc: Value = {
            let mut r = awc::Client::new()
                .get(format!("{}/api/v1/openapi.json", app.base))
                .send()
                .await
                .unwrap();
            serde_json::from_slice(&r.body().await.unwrap()).unwrap()
        };
        assert_eq!(doc["openapi"], "3.1.0");
        let api = Api {
            app: &app,
            key: app.api_key(),
            doc,
        };

        // Auth.
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

        // Organizations: create, get, patch, list with paging, portal link.
        let acme = api
            .call(
                "POST",
                "/organizations",
                "/organizations",
                Some(json!({"name": "Acme", "scim_enabled": true})),
                201,
            )
            .await;
        let globex = api
            .call(
                "POST",
                "/organizations",
                "/organizations",
                Some(json!({"name": "Globex"})),
                201,
            )
            .await;
        api.call(
            "POST",
            "/organizations",
            "/organizations",
            Some(json!({"name": "  "})),
            400,
        )
        .await;
        let acme_id = acme["id"].as_str().unwrap().to_string();
        let globex_id = globex["id"].as_str().unwrap().to_string();
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

        // Directories, users, groups, members — filled over SCIM.
        let scim_a = app.directory(&acme_id, "okta");
        let scim_g = app.directory(&globex_id, "entra");
        let u1 = scim_a.post("/Users", &json!({"userName": "a1@acme.com", "emails": [{"value": "a1@acme.com", "primary": true}]})).await.json()["id"].as_str().unwrap().to_string();
        let u2 = scim_a
            .post(
                "/Users",
                &json!({"userName": "a2@acme.com", "active": false}),
            )
            .await
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let g1 = scim_a
            .post(
                "/Groups",
                &json!({"displayName": "Eng", "members": [{"value": u1}]}),
            )
            .await
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let other = scim_g
            .post("/Users", &json!({"userName": "x@globex.com"}))
            .await
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string();

        let dirs = api
            .call(
                "GET",
                &format!("/directories?organization_id={acme_id}"),
                "/directories",
                None,
                200,
            )
            .await;
        assert_eq!(dirs["data"].as_array().unwrap().len(), 1);
        let dir_id = dirs["data"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(dirs["data"][0]["endpoint_url"], scim_a.base.as_str());
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
        let one = api
            .call("GET", &format!("/users/{u1}"), "/users/{id}", None, 200)
            .await;
        assert_eq!(one["email"], "a1@acme.com");
        api.call("GET", "/users/nope", "/users/{id}", None, 404)
            .await;
        // Across organizations: Globex's user is not Acme's.
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

        // Events feed.
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

        // Webhooks.
        let hook = api.call("POST", "/webhooks", "/webhooks", Some(json!({"url": "https://app.example.com/hooks", "organization_id": acme_id, "event_types": ["user.*", "group.user_added"]})), 201).await;
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

        // A revoked key is refused.
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
}
