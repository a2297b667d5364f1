//! Custom attributes through the API: the owner declares them with a default source path,
//! providers push users their own way (PingOne's enterprise extension on POST, Entra's typed
//! emails and addresses and its PATCH of the extension by path), and the values are read back
//! through the API and received in signed webhooks; a directory's remap records exactly one
//! `user.updated` per user whose value moved. Responses are checked against the OpenAPI
//! document.

use serde_json::{Value, json};

use crate::api_v1::{Api, spawn};
use crate::helpers::{Backend, backend_tests};
use crate::receiver::{self, Received, signature_valid};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:CustomExt";

fn id_of(r: crate::helpers::Resp) -> String {
    assert!(r.status == 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

fn directory_id(scim: &crate::helpers::Scim) -> String {
    scim.base.rsplit('/').next().unwrap().to_string()
}

async fn declare(api: &Api, org: &str, name: &str, source: &str) -> Value {
    api.call(
        "POST",
        &format!("/organizations/{org}/attributes"),
        "/organizations/{id}/attributes",
        Some(json!({"name": name, "source": source})),
        201,
    )
    .await
}

async fn values_of(api: &Api, user: &str) -> Value {
    api.call("GET", &format!("/users/{user}"), "/users/{id}", None, 200)
        .await["custom_attributes"]
        .clone()
}

/// The `user.updated` events about custom attributes after `after`, as (user id, values),
/// sorted by user, and the feed's cursor after them.
async fn attribute_events(api: &Api, org: &str, after: i64) -> (Vec<(String, Value)>, i64) {
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
    // The feed's cursor (a global number; an event's `sequence` is its directory's).
    let last: i64 = feed["next_cursor"].as_str().unwrap().parse().unwrap();
    let mut seen: Vec<(String, Value)> = events
        .iter()
        .filter(|e| {
            e["type"] == "user.updated" && e["data"]["changed"] == json!(["custom_attributes"])
        })
        .map(|e| {
            (
                e["data"]["user"]["id"].as_str().unwrap().to_string(),
                e["data"]["user"]["custom_attributes"].clone(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    (seen, last)
}

/// Webhooks until one of `kind` about `user` arrives (bounded by the receiver's timeout).
async fn webhook_about(
    rx: &mut receiver::Receiver,
    secret: &str,
    kind: &str,
    user: &str,
) -> Received {
    for _ in 0..50 {
        let r = rx.next(10).await;
        assert!(signature_valid(secret, &r), "every webhook is signed");
        if r.json["type"] == kind && r.json["data"]["user"]["id"] == user {
            return r;
        }
    }
    panic!("no {kind} webhook about {user}");
}

backend_tests!(pingone_and_entra_pushes_give_values_in_the_api_and_signed_webhooks);
async fn pingone_and_entra_pushes_give_values_in_the_api_and_signed_webhooks(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let app = app.with_worker(&[0.05, 0.05]);
    let mut rx = receiver::start(None, 0, None);
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    let hook = app.webhook(&rx.url, Some(&org), "*");
    let listed = api
        .call(
            "GET",
            &format!("/organizations/{org}/attributes"),
            "/organizations/{id}/attributes",
            None,
            200,
        )
        .await;
    assert_eq!(listed["data"], json!([]));
    for (name, source) in [
        ("department", format!("{ENTERPRISE}:department")),
        ("work_email", "emails[type eq \"work\"].value".to_string()),
        ("city", "addresses[type eq \"work\"].locality".to_string()),
        ("cost_center", format!("{CUSTOM}:costCenter")),
    ] {
        let d = declare(&api, &org, name, &source).await;
        assert_eq!(d["users_changed"], 0, "no users yet");
    }
    let listed = api
        .call(
            "GET",
            &format!("/organizations/{org}/attributes"),
            "/organizations/{id}/attributes",
            None,
            200,
        )
        .await;
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["city", "cost_center", "department", "work_email"]);

    // PingOne: the enterprise extension and a custom one in the POST body.
    let ping = app.directory(&org, "pingidentity");
    let ada = id_of(
        ping.post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, CUSTOM],
                "userName": "ada@acme.com",
                "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "emails": [{"value": "ada@acme.com", "type": "work", "primary": true}],
                ENTERPRISE: {"department": "Engineering"},
                CUSTOM: {"costCenter": "CC-1815"},
            }),
        )
        .await,
    );
    let expected = json!({
        "city": null, "cost_center": "CC-1815", "department": "Engineering",
        "work_email": "ada@acme.com",
    });
    assert_eq!(values_of(&api, &ada).await, expected);
    let created = webhook_about(&mut rx, &hook.secret, "user.created", &ada).await;
    assert_eq!(created.json["data"]["user"]["custom_attributes"], expected);
    // The raw SCIM document stays as sent.
    assert_eq!(
        created.json["data"]["raw"][ENTERPRISE]["department"],
        "Engineering"
    );

    // Entra: typed emails and addresses on POST, then the extension by PATCH path.
    let entra = app.directory(&org, "entra");
    let grace = id_of(
        entra
            .post(
                "/Users",
                &json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "grace@acme.com",
                    "active": true,
                    "emails": [
                        {"type": "other", "value": "grace@home.example"},
                        {"type": "work", "value": "grace@acme.com", "primary": true},
                    ],
                    "addresses": [{"type": "work", "locality": "Arlington", "formatted": "Arlington, VA"}],
                }),
            )
            .await,
    );
    assert_eq!(
        values_of(&api, &grace).await,
        json!({"city": "Arlington", "cost_center": null, "department": null, "work_email": "grace@acme.com"})
    );
    let r = entra
        .patch(
            &format!("/Users/{grace}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Research"},
                    {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Washington"},
                ],
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = json!({"city": "Washington", "cost_center": null, "department": "Research", "work_email": "grace@acme.com"});
    assert_eq!(values_of(&api, &grace).await, after);
    let updated = webhook_about(&mut rx, &hook.secret, "user.updated", &grace).await;
    assert_eq!(updated.json["data"]["user"]["custom_attributes"], after);
    let changed = updated.json["data"]["changed"].as_array().unwrap();
    assert!(
        changed.contains(&json!("custom_attributes")),
        "the changed list names the moved values: {changed:?}"
    );
    // A write that moves no mapped value does not name them.
    let r = entra
        .patch(
            &format!("/Users/{grace}"),
            &json!({"Operations": [{"op": "Replace", "path": "title", "value": "Rear Admiral"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let updated = webhook_about(&mut rx, &hook.secret, "user.updated", &grace).await;
    assert_eq!(updated.json["data"]["changed"], json!(["title"]));
    assert_eq!(updated.json["data"]["user"]["custom_attributes"], after);

    // Lists and group members carry them too.
    let list = api
        .call(
            "GET",
            &format!("/users?organization_id={org}"),
            "/users",
            None,
            200,
        )
        .await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for u in data {
        assert_eq!(u["custom_attributes"].as_object().unwrap().len(), 4, "{u}");
    }
    let group = id_of(
        entra
            .post(
                "/Groups",
                &json!({"displayName": "Navy", "members": [{"value": grace}]}),
            )
            .await,
    );
    let members = api
        .call(
            "GET",
            &format!("/groups/{group}/members"),
            "/groups/{id}/members",
            None,
            200,
        )
        .await;
    assert_eq!(members["data"][0]["custom_attributes"], after);

    // A deletion's event carries the last values.
    assert_eq!(ping.delete(&format!("/Users/{ada}")).await.status, 204);
    let deleted = webhook_about(&mut rx, &hook.secret, "user.deleted", &ada).await;
    assert_eq!(deleted.json["data"]["user"]["custom_attributes"], expected);
}

backend_tests!(a_remap_records_one_event_per_user_whose_value_moved);
async fn a_remap_records_one_event_per_user_whose_value_moved(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let org = api.org(json!({"name": "Acme", "scim_enabled": true})).await;
    declare(
        &api,
        &org,
        "department",
        &format!("{ENTERPRISE}:department"),
    )
    .await;
    let scim = app.directory(&org, "okta");
    let dir = directory_id(&scim);
    let user = |name: &str, dept: Option<&str>, title: Option<&str>| {
        let mut u = json!({"userName": format!("{name}@acme.com")});
        if let Some(d) = dept {
            u[ENTERPRISE] = json!({"department": d});
        }
        if let Some(t) = title {
            u["title"] = json!(t);
        }
        u
    };
    // Same value either way; moves; no value either way; moves.
    let same = id_of(
        scim.post("/Users", &user("same", Some("Eng"), Some("Eng")))
            .await,
    );
    let sales = id_of(
        scim.post("/Users", &user("sales", Some("Sales"), Some("VP")))
            .await,
    );
    let bare = id_of(scim.post("/Users", &user("bare", None, None)).await);
    let cto = id_of(scim.post("/Users", &user("cto", None, Some("CTO"))).await);
    // Enough more users that the remap takes more than one step.
    let mut many = Vec::new();
    for i in 0..260 {
        many.push(id_of(
            scim.post("/Users", &user(&format!("u{i}"), None, Some("Staff")))
                .await,
        ));
    }
    // Another directory of the organization keeps its default.
    let other = app.directory(&org, "entra");
    let untouched = id_of(
        other
            .post("/Users", &user("x", Some("Ops"), Some("Boss")))
            .await,
    );
    let (_, cursor) = attribute_events(&api, &org, 0).await;

    let mappings = format!("/directories/{dir}/attribute-mappings");
    let template = "/directories/{id}/attribute-mappings";
    let got = api.call("GET", &mappings, template, None, 200).await;
    assert_eq!(
        got["data"],
        json!([{"attribute": "department", "source": format!("{ENTERPRISE}:department"),
                "default_source": format!("{ENTERPRISE}:department"), "overridden": false}])
    );
    let put = api
        .call(
            "PUT",
            &mappings,
            template,
            Some(json!([{"attribute": "department", "source": "title"}])),
            200,
        )
        .await;
    assert_eq!(put["users_changed"], 262);
    assert_eq!(put["data"][0]["source"], "title");
    assert_eq!(put["data"][0]["overridden"], true);
    assert_eq!(
        api.call("GET", &mappings, template, None, 200).await["data"],
        put["data"]
    );
    let (events, cursor) = attribute_events(&api, &org, cursor).await;
    let mut expected: Vec<(String, Value)> = vec![
        (sales.clone(), json!({"department": "VP"})),
        (cto.clone(), json!({"department": "CTO"})),
    ];
    expected.extend(
        many.iter()
            .map(|u| (u.clone(), json!({"department": "Staff"}))),
    );
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        events.len(),
        expected.len(),
        "exactly one event per user moved"
    );
    assert_eq!(events, expected);
    assert!(!events.iter().any(|(u, _)| *u == same || *u == bare));
    assert_eq!(values_of(&api, &sales).await, json!({"department": "VP"}));
    assert_eq!(values_of(&api, &same).await, json!({"department": "Eng"}));
    assert_eq!(values_of(&api, &bare).await, json!({"department": null}));
    assert_eq!(
        values_of(&api, &untouched).await,
        json!({"department": "Ops"})
    );

    // The same mapping again moves nobody.
    let again = api
        .call(
            "PUT",
            &mappings,
            template,
            Some(json!([{"attribute": "department", "source": "title"}])),
            200,
        )
        .await;
    assert_eq!(again["users_changed"], 0);
    let (events, cursor) = attribute_events(&api, &org, cursor).await;
    assert!(events.is_empty(), "{events:?}");

    // Back to the default: the same users move back.
    let reset = api
        .call("PUT", &mappings, template, Some(json!([])), 200)
        .await;
    assert_eq!(reset["users_changed"], 262);
    assert_eq!(
        values_of(&api, &sales).await,
        json!({"department": "Sales"})
    );
    assert_eq!(values_of(&api, &cto).await, json!({"department": null}));
    let (events, cursor) = attribute_events(&api, &org, cursor).await;
    assert_eq!(events.len(), 262);

    // A new declaration reaches the users with a value at its path (both directories).
    let d = declare(&api, &org, "job_title", "title").await;
    assert_eq!(d["users_changed"], 264);
    let (events, cursor) = attribute_events(&api, &org, cursor).await;
    assert_eq!(events.len(), 264);
    assert!(!events.iter().any(|(u, _)| *u == bare));
    // Its removal too.
    let r = api
        .call(
            "DELETE",
            &format!("/organizations/{org}/attributes/job_title"),
            "/organizations/{id}/attributes/{name}",
            None,
            204,
        )
        .await;
    assert_eq!(r, Value::Null);
    let (events, _) = attribute_events(&api, &org, cursor).await;
    assert_eq!(events.len(), 264);
    assert_eq!(values_of(&api, &cto).await, json!({"department": null}));
}

backend_tests!(bad_declarations_are_refused_and_other_orgs_see_nothing);
async fn bad_declarations_are_refused_and_other_orgs_see_nothing(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let org = api.org(json!({"name": "Acme"})).await;
    let path = format!("/organizations/{org}/attributes");
    let template = "/organizations/{id}/attributes";
    for (body, says) in [
        (
            json!({"name": "Cost Center", "source": "title"}),
            "lowercase",
        ),
        (json!({"name": "2fa", "source": "title"}), "lowercase"),
        (
            json!({"name": "dept", "source": "emails[type eq"}),
            "not a SCIM attribute path",
        ),
        (json!({"name": "dept", "source": ""}), "empty"),
        (json!({"name": "secret", "source": "password"}), "password"),
    ] {
        let r = api
            .call("POST", &path, template, Some(body.clone()), 400)
            .await;
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    declare(&api, &org, "dept", "title").await;
    let dup = api
        .call(
            "POST",
            &path,
            template,
            Some(json!({"name": "dept", "source": "nickName"})),
            409,
        )
        .await;
    assert!(
        dup["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already")
    );
    api.call(
        "DELETE",
        &format!("{path}/nope"),
        "/organizations/{id}/attributes/{name}",
        None,
        404,
    )
    .await;

    let scim = app.directory(&org, "okta");
    let dir = directory_id(&scim);
    let mappings = format!("/directories/{dir}/attribute-mappings");
    let mt = "/directories/{id}/attribute-mappings";
    for (body, says) in [
        (
            json!([{"attribute": "nope", "source": "title"}]),
            "no attribute `nope`",
        ),
        (
            json!([{"attribute": "dept", "source": "a b"}]),
            "not a SCIM attribute path",
        ),
        (
            json!([{"attribute": "dept", "source": "title"}, {"attribute": "dept", "source": "nickName"}]),
            "twice",
        ),
    ] {
        let r = api
            .call("PUT", &mappings, mt, Some(body.clone()), 400)
            .await;
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }

    // A key scoped to another organization finds none of it.
    let globex = app.org("Globex", true);
    let (_, key) =
        roster::db::api_keys::create_scoped(&mut app.conn(), "globex", Some(&globex)).unwrap();
    let client = awc::Client::new();
    for (method, url, body) in [
        ("GET", path.clone(), None),
        (
            "POST",
            path.clone(),
            Some(json!({"name": "x", "source": "title"})),
        ),
        ("DELETE", format!("{path}/dept"), None),
        ("GET", mappings.clone(), None),
        (
            "PUT",
            mappings.clone(),
            Some(json!([{"attribute": "dept", "source": "nickName"}])),
        ),
    ] {
        let req = client
            .request(method.parse().unwrap(), format!("{}/api/v1{url}", app.base))
            .insert_header(("Authorization", format!("Bearer {key}")));
        let resp = match body {
            Some(b) => req.send_json(&b).await.unwrap(),
            None => req.send().await.unwrap(),
        };
        assert_eq!(resp.status().as_u16(), 404, "{method} {url}");
    }
    // Nothing changed.
    let listed = api.call("GET", &path, template, None, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["source"], "title");
    assert_eq!(
        api.call("GET", &mappings, mt, None, 200).await["data"][0]["overridden"],
        false
    );
}
