//! The 48 provider pitfalls of docs/provider-pitfalls.md, each pinned by the test `pitfall_NN_…`
//! of its item number (on every backend).

use serde_json::{Value, json};

use crate::helpers::{Backend, Scim, TestApp, backend_tests};

/// A fresh app and the SCIM client of a directory in it.
async fn spawn(backend: Backend) -> (TestApp, Scim) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "generic");
    (app, scim)
}

async fn new_user(scim: &Scim, user_name: &str) -> String {
    let r = scim
        .post(
            "/Users",
            &json!({"userName": user_name, "name": {"givenName": "G", "familyName": "F"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

async fn new_group(scim: &Scim, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let r = scim
        .post("/Groups", &json!({"displayName": name, "members": members}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

async fn members(scim: &Scim, gid: &str) -> Vec<String> {
    crate::helpers::member_ids(&scim.get(&format!("/Groups/{gid}")).await.json())
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn total(scim: &Scim, query: &str) -> i64 {
    let r = scim.get(query).await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.json()["totalResults"].as_i64().unwrap()
}

backend_tests!(pitfall_01_patch_op_names_in_any_case);
async fn pitfall_01_patch_op_names_in_any_case(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "a@x.com").await;
    for op in ["replace", "Replace", "REPLACE"] {
        let r = scim
            .patch(
                &format!("/Users/{id}"),
                &json!({"Operations": [{"op": op, "path": "title", "value": op}]}),
            )
            .await;
        assert_eq!(r.json()["title"], op);
    }
    for op in ["add", "Add", "ADD"] {
        assert_eq!(
            scim.patch(
                &format!("/Users/{id}"),
                &json!({"Operations": [{"op": op, "path": "nickName", "value": "n"}]})
            )
            .await
            .status,
            200
        );
    }
    for op in ["remove", "Remove", "REMOVE"] {
        assert_eq!(
            scim.patch(
                &format!("/Users/{id}"),
                &json!({"Operations": [{"op": op, "path": "nickName"}]})
            )
            .await
            .status,
            200
        );
    }
}

backend_tests!(pitfall_02_filter_attribute_names_and_operators_case_insensitive);
async fn pitfall_02_filter_attribute_names_and_operators_case_insensitive(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    new_user(&scim, "jdoe@acme.com").await;
    assert_eq!(
        total(&scim, "/Users?filter=username%20Eq%20%22jdoe%40acme.com%22").await,
        1
    );
    assert_eq!(
        total(
            &scim,
            "/Users?filter=USERNAME%20EQ%20%22jdoe%40acme.com%22%20AND%20Active%20eQ%20true"
        )
        .await,
        1
    );
    new_group(&scim, "Eng", &[]).await;
    assert_eq!(
        total(&scim, "/Groups?filter=displayName%20Eq%20%22Eng%22").await,
        1
    );
}

backend_tests!(pitfall_03_plus_and_percent20_spaces_empty_and_unknown_params);
async fn pitfall_03_plus_and_percent20_spaces_empty_and_unknown_params(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    new_user(&scim, "o@x.com").await;
    assert_eq!(
        total(&scim, "/Users?filter=userName+eq+%22o%40x.com%22&").await,
        1
    );
    assert_eq!(
        total(
            &scim,
            "/Users?filter=userName%20eq%20%22o%40x.com%22&aadOptscim062020&count="
        )
        .await,
        1
    );
    assert_eq!(total(&scim, "/Users?").await, 1);
}

backend_tests!(pitfall_04_required_filters_and_invalid_filter_errors);
async fn pitfall_04_required_filters_and_invalid_filter_errors(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim.post("/Users", &json!({"userName": "u@x.com", "externalId": "E1", "displayName": "U X", "emails": [{"value": "u@x.com", "type": "work"}]})).await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    for f in [
        "userName%20eq%20%22u%40x.com%22".to_string(),
        "externalId%20eq%20%22E1%22".into(),
        "emails%20eq%20%22u%40x.com%22".into(),
        "emails.value%20eq%20%22u%40x.com%22".into(),
        "emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22u%40x.com%22".into(),
        "displayName%20eq%20%22U%20X%22".into(),
        format!("id%20eq%20%22{id}%22"),
        "userName%20eq%20%22u%40x.com%22%20and%20externalId%20eq%20%22E1%22".into(),
    ] {
        assert_eq!(total(&scim, &format!("/Users?filter={f}")).await, 1, "{f}");
    }
    let bad = scim.get("/Users?filter=userName%20equals%20%22u%22").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["scimType"], "invalidFilter");
}

backend_tests!(pitfall_05_user_name_case_insensitive_ids_case_exact);
async fn pitfall_05_user_name_case_insensitive_ids_case_exact(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    scim.post(
        "/Users",
        &json!({"userName": "Mixed.Case@X.com", "externalId": "AbC"}),
    )
    .await;
    assert_eq!(
        total(
            &scim,
            "/Users?filter=userName%20eq%20%22MIXED.CASE%40x.COM%22"
        )
        .await,
        1
    );
    assert_eq!(
        total(&scim, "/Users?filter=externalId%20eq%20%22abc%22").await,
        0
    );
    assert_eq!(
        scim.post("/Users", &json!({"userName": "mixed.case@x.com"}))
            .await
            .status,
        409
    );
}

backend_tests!(pitfall_06_any_json_content_type_is_accepted);
async fn pitfall_06_any_json_content_type_is_accepted(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    for (i, ct) in [
        "application/scim+json",
        "application/json",
        "application/json; charset=utf-8",
        "application/scim+json; charset=utf-8",
        "text/plain",
    ]
    .iter()
    .enumerate()
    {
        let resp = awc::Client::new()
            .post(format!("{}/Users", scim.base))
            .insert_header(("Authorization", format!("Bearer {}", scim.token)))
            .insert_header(("Content-Type", *ct))
            .send_body(json!({"userName": format!("ct{i}@x.com")}).to_string())
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{ct}");
    }
}

backend_tests!(pitfall_07_unknown_and_legacy_schema_urns_are_tolerated);
async fn pitfall_07_unknown_and_legacy_schema_urns_are_tolerated(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim.post("/Users", &json!({"schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"], "userName": "ol@x.com",
        "urn:scim:schemas:extension:enterprise:2.0": {"department": "Ops"}})).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json()["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Ops"
    );
    assert_eq!(scim.post("/Users", &json!({"schemas": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0User"], "userName": "typo@x.com"})).await.status, 201);
    assert_eq!(
        scim.post("/Users", &json!({"userName": "none@x.com"}))
            .await
            .status,
        201
    );
    assert_eq!(scim.post("/Groups", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"], "displayName": "G"})).await.status, 201);
}

backend_tests!(pitfall_08_active_as_bool_or_string_in_post_put_patch);
async fn pitfall_08_active_as_bool_or_string_in_post_put_patch(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim
        .post("/Users", &json!({"userName": "s@x.com", "active": "False"}))
        .await;
    assert_eq!(r.json()["active"], false);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        scim.put(
            &format!("/Users/{id}"),
            &json!({"userName": "s@x.com", "active": "true"})
        )
        .await
        .json()["active"],
        true
    );
    assert_eq!(
        scim.patch(
            &format!("/Users/{id}"),
            &json!({"Operations": [{"op": "Replace", "path": "active", "value": "FALSE"}]})
        )
        .await
        .json()["active"],
        false
    );
    assert_eq!(
        scim.patch(
            &format!("/Users/{id}"),
            &json!({"Operations": [{"op": "replace", "path": "active", "value": "junk"}]})
        )
        .await
        .status,
        400
    );
}

backend_tests!(pitfall_09_emails_as_object_and_primary_fallback);
async fn pitfall_09_emails_as_object_and_primary_fallback(backend: Backend) {
    let (app, scim) = spawn(backend).await;
    let r = scim
        .post(
            "/Users",
            &json!({"userName": "obj@x.com", "emails": {"value": "obj@x.com"}}),
        )
        .await;
    assert_eq!(r.json()["emails"], json!([{"value": "obj@x.com"}]));
    assert_eq!(
        total(&scim, "/Users?filter=emails%20eq%20%22obj%40x.com%22").await,
        1
    );
    // Without emails, an email-shaped userName is the portal's email.
    scim.post("/Users", &json!({"userName": "only.name@x.com"}))
        .await;
    let mut admin = app
        .portal(&roster::db::orgs::list(&mut app.conn(), "", 10).unwrap()[0].id)
        .await;
    assert!(
        admin
            .get("/portal/users?q=only.name")
            .await
            .body
            .contains("only.name@x.com")
    );
}

backend_tests!(pitfall_10_null_and_empty_values_are_absent);
async fn pitfall_10_null_and_empty_values_are_absent(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim.post("/Users", &json!({"userName": "n@x.com", "title": null, "nickName": "", "addresses": null, "name": {"givenName": "N", "middleName": ""}})).await;
    let u = r.json();
    assert!(
        u.get("title").is_none() && u.get("nickName").is_none() && u.get("addresses").is_none()
    );
    assert_eq!(u["name"], json!({"givenName": "N"}));
}

backend_tests!(pitfall_11_read_only_attributes_in_bodies_are_ignored);
async fn pitfall_11_read_only_attributes_in_bodies_are_ignored(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim.post("/Users", &json!({"userName": "ro@x.com", "id": "mine", "meta": {"resourceType": "User"}, "groups": [], "password": "1mz050nq"})).await;
    assert_eq!(r.status, 201);
    let u = r.json();
    let id = u["id"].as_str().unwrap().to_string();
    assert_ne!(id, "mine");
    assert!(
        !r.body.contains("1mz050nq"),
        "passwords are never stored or returned"
    );
    let echoed = scim.put(&format!("/Users/{id}"), &u).await;
    assert_eq!(
        echoed.status, 200,
        "Okta echoes our GET body: {}",
        echoed.body
    );
    assert_eq!(echoed.json()["id"], id.as_str());
}

backend_tests!(pitfall_12_patch_value_shapes);
async fn pitfall_12_patch_value_shapes(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "v@x.com").await;
    let path = format!("/Users/{id}");
    let r = scim.patch(&path, &json!({"Operations": [
        {"op": "replace", "value": {"active": false}},
        {"op": "replace", "value": {"name.givenName": "Dotted", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "D"}},
        {"op": "add", "path": "phoneNumbers", "value": [{"value": "+1", "type": "work"}]},
        {"op": "replace", "path": "name", "value": {"givenName": "Obj", "familyName": "F"}},
        {"op": "add", "path": "title", "value": "scalar"}
    ]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let u = r.json();
    assert_eq!(u["active"], false);
    assert_eq!(u["name"]["givenName"], "Obj");
    assert_eq!(u["phoneNumbers"][0]["value"], "+1");
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "D"
    );
}

backend_tests!(pitfall_13_no_path_replace_touches_only_given_attributes);
async fn pitfall_13_no_path_replace_touches_only_given_attributes(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim
        .post(
            "/Users",
            &json!({"userName": "keep@x.com", "title": "T", "externalId": "X"}),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let u = scim
        .patch(
            &format!("/Users/{id}"),
            &json!({"Operations": [{"op": "replace", "value": {"active": false}}]}),
        )
        .await
        .json();
    assert_eq!(
        (
            u["userName"].as_str(),
            u["title"].as_str(),
            u["externalId"].as_str()
        ),
        (Some("keep@x.com"), Some("T"), Some("X"))
    );
}

backend_tests!(pitfall_14_filtered_paths_create_missing_elements);
async fn pitfall_14_filtered_paths_create_missing_elements(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "f@x.com").await;
    let u = scim.patch(&format!("/Users/{id}"), &json!({"Operations": [
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "w@x.com"},
        {"op": "Add", "path": "addresses[type eq \"work\"].formatted", "value": "1 Main St"},
        {"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+2"}
    ]})).await.json();
    assert_eq!(u["emails"], json!([{"type": "work", "value": "w@x.com"}]));
    assert_eq!(
        u["addresses"],
        json!([{"type": "work", "formatted": "1 Main St"}])
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+2"}])
    );
}

backend_tests!(pitfall_15_manager_shapes_and_null_refs);
async fn pitfall_15_manager_shapes_and_null_refs(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let boss = new_user(&scim, "boss@x.com").await;
    let id = new_user(&scim, "emp@x.com").await;
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    for value in [
        json!(boss),
        json!({"value": boss}),
        json!([{"$ref": null, "value": boss}]),
    ] {
        let u = scim.patch(&format!("/Users/{id}"), &json!({"Operations": [{"op": "Add", "path": format!("{ext}:manager"), "value": value}]})).await.json();
        assert_eq!(u[ext]["manager"], json!({"value": boss}));
    }
    let g = new_group(&scim, "G", &[]).await;
    assert_eq!(scim.patch(&format!("/Groups/{g}"), &json!({"Operations": [{"op": "add", "path": "members", "value": [{"$ref": null, "value": id}]}]})).await.status, 204);
}

backend_tests!(pitfall_16_member_removal_in_three_forms_and_adds_with_display);
async fn pitfall_16_member_removal_in_three_forms_and_adds_with_display(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let (a, b, c) = (
        new_user(&scim, "a@x.com").await,
        new_user(&scim, "b@x.com").await,
        new_user(&scim, "c@x.com").await,
    );
    let g = new_group(&scim, "G", &[&a, &b, &c]).await;
    let p = format!("/Groups/{g}");
    scim.patch(
        &p,
        &json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]}),
    )
    .await;
    assert_eq!(members(&scim, &g).await, sorted(&[&b, &c]));
    scim.patch(
        &p,
        &json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": b}]}]}),
    )
    .await;
    assert_eq!(members(&scim, &g).await, sorted(&[&c]));
    scim.patch(&p, &json!({"Operations": [{"op": "replace", "path": "members", "value": [{"value": a, "display": "A"}]}]})).await;
    assert_eq!(members(&scim, &g).await, sorted(&[&a]));
    scim.patch(&p, &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": b, "display": "B", "$ref": null}]}]})).await;
    assert_eq!(members(&scim, &g).await, sorted(&[&a, &b]));
}

backend_tests!(pitfall_17_memberships_in_group_and_user_bodies);
async fn pitfall_17_memberships_in_group_and_user_bodies(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let a = new_user(&scim, "a@x.com").await;
    let g = new_group(&scim, "G", &[&a]).await;
    assert_eq!(members(&scim, &g).await, sorted(&[&a]));
    let b = scim
        .post(
            "/Users",
            &json!({"userName": "b@x.com", "groups": [{"value": g}]}),
        )
        .await
        .json();
    let b = b["id"].as_str().unwrap().to_string();
    assert_eq!(members(&scim, &g).await, sorted(&[&a, &b]));
    // PUT of a user echoing `"groups": []` (Okta) does not drop memberships.
    scim.put(
        &format!("/Users/{b}"),
        &json!({"userName": "b@x.com", "groups": []}),
    )
    .await;
    assert_eq!(members(&scim, &g).await, sorted(&[&a, &b]));
    assert_eq!(
        scim.post(
            "/Users",
            &json!({"userName": "c@x.com", "groups": [{"value": "nope"}]})
        )
        .await
        .status,
        400
    );
}

backend_tests!(pitfall_18_unappliable_patch_is_400_never_silent);
async fn pitfall_18_unappliable_patch_is_400_never_silent(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let a = new_user(&scim, "a@x.com").await;
    let g = new_group(&scim, "G", &[&a]).await;
    for body in [
        json!({"Operations": [{"op": "copy", "path": "members"}]}),
        json!({"Operations": [{"op": "remove", "path": "members[display eq \"A\"]"}]}),
        json!({"Operations": [{"op": "replace", "path": "members[", "value": []}]}),
        json!({"Operations": [{"op": "replace", "value": "not an object"}]}),
        json!({"operations": "nope"}),
    ] {
        assert_eq!(
            scim.patch(&format!("/Groups/{g}"), &body).await.status,
            400,
            "{body}"
        );
    }
    assert_eq!(
        members(&scim, &g).await,
        sorted(&[&a]),
        "nobody was removed"
    );
}

backend_tests!(pitfall_19_patch_is_atomic_and_ordered);
async fn pitfall_19_patch_is_atomic_and_ordered(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let (a, b) = (
        new_user(&scim, "a@x.com").await,
        new_user(&scim, "b@x.com").await,
    );
    let g = new_group(&scim, "G", &[&a]).await;
    // Okta: remove then add in one request, applied in order.
    scim.patch(
        &format!("/Groups/{g}"),
        &json!({"Operations": [
            {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
            {"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}
        ]}),
    )
    .await;
    assert_eq!(members(&scim, &g).await, sorted(&[&a, &b]));
    // A failing op undoes the ones before it.
    let r = scim
        .patch(
            &format!("/Groups/{g}"),
            &json!({"Operations": [
                {"op": "replace", "path": "displayName", "value": "Renamed"},
                {"op": "remove", "path": "members"},
                {"op": "add", "path": "members", "value": [{"value": "ghost"}]}
            ]}),
        )
        .await;
    assert_eq!(r.status, 400);
    let group = scim.get(&format!("/Groups/{g}")).await.json();
    assert_eq!(group["displayName"], "G");
    assert_eq!(members(&scim, &g).await, sorted(&[&a, &b]));
}

backend_tests!(pitfall_20_operations_per_patch_are_capped_generously);
async fn pitfall_20_operations_per_patch_are_capped_generously(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "cap@x.com").await;
    let ops: Vec<Value> = (0..1000)
        .map(|i| json!({"op": "replace", "path": "title", "value": format!("t{i}")}))
        .collect();
    let r = scim
        .patch(&format!("/Users/{id}"), &json!({"Operations": ops}))
        .await;
    assert_eq!(r.json()["title"], "t999");
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"op": "replace", "path": "title", "value": "x"}))
        .collect();
    let r = scim
        .patch(&format!("/Users/{id}"), &json!({"Operations": too_many}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["scimType"], "tooMany");
}

backend_tests!(pitfall_21_deactivated_users_stay_readable_and_listable);
async fn pitfall_21_deactivated_users_stay_readable_and_listable(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "d@x.com").await;
    scim.patch(
        &format!("/Users/{id}"),
        &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
    )
    .await;
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.json()["active"],
        false
    );
    assert_eq!(total(&scim, "/Users?filter=active%20eq%20false").await, 1);
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            &json!({"Operations": [{"op": "replace", "path": "active", "value": "True"}]}),
        )
        .await;
    assert_eq!(r.json()["active"], true, "reactivation restores");
}

backend_tests!(pitfall_22_inactive_users_keep_memberships);
async fn pitfall_22_inactive_users_keep_memberships(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "k@x.com").await;
    let g = new_group(&scim, "G", &[&id]).await;
    scim.patch(
        &format!("/Users/{id}"),
        &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
    )
    .await;
    assert_eq!(members(&scim, &g).await, sorted(&[&id]));
    scim.patch(
        &format!("/Users/{id}"),
        &json!({"Operations": [{"op": "replace", "path": "active", "value": true}]}),
    )
    .await;
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.json()["groups"][0]["value"],
        g.as_str()
    );
}

backend_tests!(pitfall_23_delete_then_404_and_user_name_reusable);
async fn pitfall_23_delete_then_404_and_user_name_reusable(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "del@x.com").await;
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(
        total(&scim, "/Users?filter=userName%20eq%20%22del%40x.com%22").await,
        0
    );
    let again = new_user(&scim, "del@x.com").await;
    assert_ne!(again, id);
}

backend_tests!(pitfall_24_idempotent_member_adds_removals_and_renames);
async fn pitfall_24_idempotent_member_adds_removals_and_renames(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let a = new_user(&scim, "a@x.com").await;
    let g = new_group(&scim, "G", &[&a]).await;
    let p = format!("/Groups/{g}");
    for _ in 0..2 {
        assert_eq!(
            scim.patch(
                &p,
                &json!({"Operations": [{"op": "Add", "path": "members", "value": [{"value": a}]}]})
            )
            .await
            .status,
            204
        );
        assert_eq!(scim.patch(&p, &json!({"Operations": [{"op": "remove", "path": "members[value eq \"not-a-member\"]"}]})).await.status, 204);
        assert_eq!(
            scim.patch(
                &p,
                &json!({"Operations": [{"op": "replace", "value": {"id": g, "displayName": "G"}}]})
            )
            .await
            .status,
            204
        );
    }
    assert_eq!(members(&scim, &g).await, sorted(&[&a]));
    assert_eq!(
        scim.get(&p).await.json()["meta"]["version"],
        "W/\"1\"",
        "no-op PATCHes do not bump the version"
    );
}

backend_tests!(pitfall_25_duplicate_post_is_409_uniqueness_not_upsert);
async fn pitfall_25_duplicate_post_is_409_uniqueness_not_upsert(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    scim.post(
        "/Users",
        &json!({"userName": "dup@x.com", "title": "Original"}),
    )
    .await;
    let r = scim.post("/Users", &json!({"userName": "dup@x.com"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["scimType"], "uniqueness");
    let u = scim
        .get("/Users?filter=userName%20eq%20%22dup%40x.com%22")
        .await
        .json();
    assert_eq!(u["Resources"][0]["title"], "Original");
}

backend_tests!(pitfall_26_post_may_create_inactive_users);
async fn pitfall_26_post_may_create_inactive_users(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim
        .post("/Users", &json!({"userName": "off@x.com", "active": false}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["active"], false);
}

backend_tests!(pitfall_27_put_never_clears_identity_or_memberships);
async fn pitfall_27_put_never_clears_identity_or_memberships(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim
        .post(
            "/Users",
            &json!({"userName": "p@x.com", "externalId": "E", "active": false}),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let g = new_group(&scim, "G", &[&id]).await;
    let u = scim
        .put(
            &format!("/Users/{id}"),
            &json!({"name": {"givenName": "P"}}),
        )
        .await
        .json();
    assert_eq!(
        (
            u["id"].as_str(),
            u["userName"].as_str(),
            u["externalId"].as_str(),
            u["active"].as_bool()
        ),
        (Some(id.as_str()), Some("p@x.com"), Some("E"), Some(false))
    );
    scim.put(
        &format!("/Groups/{g}"),
        &json!({"displayName": "G renamed"}),
    )
    .await;
    assert_eq!(
        members(&scim, &g).await,
        sorted(&[&id]),
        "a group PUT without members keeps them"
    );
}

backend_tests!(pitfall_28_user_name_and_external_id_can_change_id_stays);
async fn pitfall_28_user_name_and_external_id_can_change_id_stays(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "old@x.com").await;
    let u = scim.patch(&format!("/Users/{id}"), &json!({"Operations": [{"op": "Replace", "path": "userName", "value": "new@x.com"}, {"op": "replace", "path": "externalId", "value": "E2"}]})).await.json();
    assert_eq!(
        (
            u["id"].as_str(),
            u["userName"].as_str(),
            u["externalId"].as_str()
        ),
        (Some(id.as_str()), Some("new@x.com"), Some("E2"))
    );
    let u = scim
        .put(&format!("/Users/{id}"), &json!({"userName": "newer@x.com"}))
        .await
        .json();
    assert_eq!(u["userName"], "newer@x.com");
    assert_eq!(
        total(&scim, "/Users?filter=userName%20eq%20%22newer%40x.com%22").await,
        1
    );
}

backend_tests!(pitfall_29_group_display_name_unique_and_found_case_insensitively);
async fn pitfall_29_group_display_name_unique_and_found_case_insensitively(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    new_group(&scim, "Engineering", &[]).await;
    let r = scim
        .post("/Groups", &json!({"displayName": "ENGINEERING"}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        total(&scim, "/Groups?filter=displayName%20eq%20%22engineering%22").await,
        1
    );
}

backend_tests!(pitfall_30_unknown_member_references_are_4xx_with_detail);
async fn pitfall_30_unknown_member_references_are_4xx_with_detail(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let g = new_group(&scim, "G", &[]).await;
    let r = scim
        .patch(
            &format!("/Groups/{g}"),
            &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "who"}]}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["detail"].as_str().unwrap().contains("who"));
    assert_eq!(
        scim.put(
            &format!("/Groups/{g}"),
            &json!({"displayName": "G", "members": [{"value": "who"}]})
        )
        .await
        .status,
        400
    );
}

backend_tests!(pitfall_31_responses_are_application_scim_json);
async fn pitfall_31_responses_are_application_scim_json(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    for path in ["/Users", "/Groups", "/ServiceProviderConfig", "/Users/none"] {
        assert_eq!(
            scim.get(path).await.header("content-type"),
            Some("application/scim+json"),
            "{path}"
        );
    }
    let r = scim.post("/Users", &json!({"userName": "ct@x.com"})).await;
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
}

backend_tests!(pitfall_32_list_response_shape_even_when_empty);
async fn pitfall_32_list_response_shape_even_when_empty(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    for path in [
        "/Users",
        "/Groups",
        "/Users?filter=userName%20eq%20%22cf4d78e8-cc4f-4d5d-b8b9-183561c0104a%22",
    ] {
        let l = scim.get(path).await.json();
        assert_eq!(
            l["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
        assert_eq!(
            (
                l["totalResults"].as_i64(),
                l["startIndex"].as_i64(),
                l["itemsPerPage"].as_i64()
            ),
            (Some(0), Some(1), Some(0))
        );
        assert_eq!(l["Resources"], json!([]));
    }
}

backend_tests!(pitfall_33_unknown_id_is_404_scim_error_with_string_status);
async fn pitfall_33_unknown_id_is_404_scim_error_with_string_status(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim
        .get("/Users/6b29fc40-ca47-1067-b31d-00dd010662da")
        .await;
    assert_eq!(r.status, 404);
    let e = r.json();
    assert_eq!(
        e["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(e["status"], "404");
    assert!(e["detail"].is_string());
}

backend_tests!(pitfall_34_every_error_is_scim_json);
async fn pitfall_34_every_error_is_scim_json(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let cases = [
        scim.raw("GET", "/Users", None, None).await,
        scim.raw(
            "GET",
            "/Users",
            None,
            Some("roster_scim_00000000000000000000000000000000"),
        )
        .await,
        scim.get("/Users/none").await,
        scim.post("/Users", &json!({})).await,
        scim.raw(
            "POST",
            "/Users",
            Some(format!("{{\"userName\":\"{}\"}}", "x".repeat(9 << 20))),
            Some(&scim.token),
        )
        .await,
        scim.request("DELETE", "/Groups", None).await,
        scim.get("/Bulk").await,
    ];
    for r in cases {
        assert!(r.status >= 400);
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
        assert_eq!(r.json()["status"], r.status.to_string());
    }
}

backend_tests!(pitfall_35_bad_or_missing_token_is_401_bearer_any_case);
async fn pitfall_35_bad_or_missing_token_is_401_bearer_any_case(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    assert_eq!(
        scim.raw("GET", "/Users", None, Some("non-token"))
            .await
            .status,
        401
    );
    let url = format!("{}/Users", scim.base);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = awc::Client::new()
            .get(&url)
            .insert_header(("Authorization", format!("{scheme} {}", scim.token)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{scheme}");
    }
    let basic = awc::Client::new()
        .get(&url)
        .insert_header(("Authorization", format!("Basic {}", scim.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        basic.status().as_u16(),
        401,
        "Basic is not accepted by default"
    );
}

backend_tests!(pitfall_36_post_is_201_with_full_resource);
async fn pitfall_36_post_is_201_with_full_resource(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim
        .post(
            "/Users",
            &json!({"userName": "full@x.com", "name": {"givenName": "F"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let u = r.json();
    assert!(u["id"].is_string());
    assert_eq!(u["meta"]["resourceType"], "User");
    assert!(
        u["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(u["id"].as_str().unwrap())
    );
    assert_eq!(u["name"]["givenName"], "F");
    assert_eq!(r.header("location"), u["meta"]["location"].as_str());
}

backend_tests!(pitfall_37_patch_user_200_with_body_group_204_delete_204);
async fn pitfall_37_patch_user_200_with_body_group_204_delete_204(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let id = new_user(&scim, "s@x.com").await;
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            &json!({"Operations": [{"op": "add", "path": "title", "value": "T"}]}),
        )
        .await;
    assert_eq!((r.status, r.json()["title"].as_str()), (200, Some("T")));
    let g = new_group(&scim, "G", &[]).await;
    let r = scim
        .patch(
            &format!("/Groups/{g}"),
            &json!({"Operations": [{"op": "Replace", "path": "displayName", "value": "H"}]}),
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(scim.delete(&format!("/Groups/{g}")).await.status, 204);
}

backend_tests!(pitfall_38_stable_paging_and_excluded_members);
async fn pitfall_38_stable_paging_and_excluded_members(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(new_user(&scim, &format!("p{i}@x.com")).await);
    }
    let g = new_group(
        &scim,
        "Big",
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let mut seen = Vec::new();
    for start in [1, 3, 5] {
        for r in scim
            .get(&format!("/Users?startIndex={start}&count=2"))
            .await
            .json()["Resources"]
            .as_array()
            .unwrap()
        {
            seen.push(r["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ids);
    let l = scim.get("/Groups?excludedAttributes=members").await.json();
    assert!(l["Resources"][0].get("members").is_none());
    let one = scim
        .get(&format!("/Groups/{g}?excludedAttributes=members"))
        .await
        .json();
    assert!(one.get("members").is_none());
    assert_eq!(one["displayName"], "Big");
}

backend_tests!(pitfall_39_multi_valued_attributes_are_arrays_with_type_and_primary);
async fn pitfall_39_multi_valued_attributes_are_arrays_with_type_and_primary(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let r = scim.post("/Users", &json!({"userName": "m@x.com", "emails": [{"value": "m@x.com", "type": "work", "primary": true}], "phoneNumbers": [{"value": "+1", "type": "mobile"}]})).await;
    let u = r.json();
    assert_eq!(
        u["emails"],
        json!([{"value": "m@x.com", "type": "work", "primary": true}])
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"value": "+1", "type": "mobile"}])
    );
}

backend_tests!(pitfall_40_manager_returned_in_rfc_shape);
async fn pitfall_40_manager_returned_in_rfc_shape(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let r = scim
        .post(
            "/Users",
            &json!({"userName": "e@x.com", ext: {"manager": "boss-id"}}),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.json()[ext]["manager"],
        json!({"value": "boss-id"})
    );
}

backend_tests!(pitfall_41_large_group_replace_completes_in_one_request);
async fn pitfall_41_large_group_replace_completes_in_one_request(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(new_user(&scim, &format!("bulk{i}@x.com")).await);
    }
    let members: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    let g = scim
        .post(
            "/Groups",
            &json!({"displayName": "All", "members": members}),
        )
        .await;
    assert_eq!(g.status, 201);
    assert_eq!(g.json()["members"].as_array().unwrap().len(), 200);
    let half: Vec<Value> = ids[..100].iter().map(|i| json!({"value": i})).collect();
    let gid = g.json()["id"].as_str().unwrap().to_string();
    let r = scim
        .put(
            &format!("/Groups/{gid}"),
            &json!({"displayName": "All", "members": half}),
        )
        .await;
    assert_eq!(r.json()["members"].as_array().unwrap().len(), 100);
}

backend_tests!(pitfall_42_concurrent_membership_writes_to_one_group_lose_nothing);
async fn pitfall_42_concurrent_membership_writes_to_one_group_lose_nothing(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(new_user(&scim, &format!("c{i}@x.com")).await);
    }
    let g = new_group(&scim, "Concurrent", &[]).await;
    let path = format!("/Groups/{g}");
    let requests = ids.iter().map(|id| {
        let body =
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
        let (scim, path) = (&scim, path.clone());
        async move { scim.patch(&path, &body).await.status }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    assert_eq!(members(&scim, &g).await.len(), 12);
}

backend_tests!(pitfall_43_no_request_is_rate_limited_below_25_per_second);
async fn pitfall_43_no_request_is_rate_limited_below_25_per_second(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    // Roster does not rate-limit SCIM; a burst well above Entra's 25 req/s all succeed.
    let burst = (0..60).map(|_| scim.get("/Users?count=1"));
    let statuses: Vec<u16> = futures_util::future::join_all(burst)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

backend_tests!(pitfall_44_tenant_in_path_slashes_and_case_tolerated);
async fn pitfall_44_tenant_in_path_slashes_and_case_tolerated(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let dir = scim.base.rsplit('/').next().unwrap();
    assert!(!dir.contains('_'), "Okta refuses `_` in base URLs");
    for path in [
        "/Users",
        "/Users/",
        "//Users",
        "/users",
        "/USERS/",
        "/Groups//",
    ] {
        assert_eq!(scim.get(path).await.status, 200, "{path}");
    }
    let id = new_user(&scim, "t@x.com").await;
    assert_eq!(
        scim.put(&format!("/Users/{id}?"), &json!({"userName": "t@x.com"}))
            .await
            .status,
        200,
        "OneLogin's trailing `?`"
    );
}

backend_tests!(pitfall_45_test_connection_probes_leave_no_trace);
async fn pitfall_45_test_connection_probes_leave_no_trace(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    // Entra's random-GUID probe, OneLogin's fake user lookup: 200, empty, nothing created.
    assert_eq!(
        total(
            &scim,
            "/Users?filter=userName+eq+%22cf4d78e8-cc4f-4d5d-b8b9-183561c0104a%22"
        )
        .await,
        0
    );
    assert_eq!(total(&scim, "/Groups?excludedAttributes=members&filter=displayName+eq+%223b2f1e0a-0000-4000-8000-000000000000%22").await, 0);
    // JumpCloud's create-and-delete test user and group.
    let u = new_user(&scim, "jc-test@x.com").await;
    let g = new_group(&scim, "JumpCloud test group", &[]).await;
    assert_eq!(scim.delete(&format!("/Groups/{g}")).await.status, 204);
    assert_eq!(scim.delete(&format!("/Users/{u}")).await.status, 204);
    assert_eq!(total(&scim, "/Users").await, 0);
    assert_eq!(total(&scim, "/Groups").await, 0);
}

backend_tests!(pitfall_46_discovery_tells_the_truth);
async fn pitfall_46_discovery_tells_the_truth(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let spc = scim.get("/ServiceProviderConfig").await.json();
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["filter"]["maxResults"], 1000);
    assert_eq!(spc["etag"]["supported"], true);
    assert_eq!(spc["sort"]["supported"], true);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    // What it claims works: ETags and maxResults.
    let id = new_user(&scim, "e@x.com").await;
    let r = scim.get(&format!("/Users/{id}")).await;
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(etag, r.json()["meta"]["version"].as_str().unwrap());
    assert_eq!(
        scim.get("/Users?count=5000").await.json()["itemsPerPage"],
        1
    );
    let types = scim.get("/ResourceTypes").await.json();
    assert_eq!(types["Resources"][0]["endpoint"], "/Users");
    let user_type = scim.get("/ResourceTypes/User").await.json();
    assert_eq!(user_type["id"], "User", "one resource, not a list");
    assert_eq!(scim.get("/ResourceTypes/Nope").await.status, 404);
    let schemas = scim.get("/Schemas").await.json();
    let ids: Vec<&str> = schemas["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for urn in [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ] {
        assert!(ids.contains(&urn), "{urn} missing from {ids:?}");
        let one = scim.get(&format!("/Schemas/{urn}")).await.json();
        assert_eq!(one["id"], urn, "one schema, not a list");
    }
    let missing = scim.get("/Schemas/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["status"], "404");
    // Every schema the config names is served.
    for urn in spc["schemas"].as_array().unwrap() {
        assert!(ids.contains(&urn.as_str().unwrap()), "{urn}");
    }
}

backend_tests!(pitfall_47_values_are_returned_as_stored);
async fn pitfall_47_values_are_returned_as_stored(backend: Backend) {
    let (_app, scim) = spawn(backend).await;
    let body = json!({"userName": "Fmt@X.com", "phoneNumbers": [{"value": "+1 (555) 010-0000", "type": "work"}], "name": {"familyName": " User 01"}, "x-custom": {"deep": [1, "two"]}});
    let u = scim.post("/Users", &body).await.json();
    assert_eq!(u["userName"], "Fmt@X.com");
    assert_eq!(u["phoneNumbers"], body["phoneNumbers"]);
    assert_eq!(u["name"]["familyName"], " User 01");
    assert_eq!(
        u["x-custom"], body["x-custom"],
        "unknown attributes are kept unmodified"
    );
}

backend_tests!(pitfall_48_request_bodies_are_logged_redacted_per_directory);
async fn pitfall_48_request_bodies_are_logged_redacted_per_directory(backend: Backend) {
    let (app, scim) = spawn(backend).await;
    scim.post(
        "/Users",
        &json!({"userName": "log@x.com", "password": "hunter2-secret"}),
    )
    .await;
    scim.post("/Users", &json!({"userName": "log@x.com"})).await; // 409
    let dir = scim.base.rsplit('/').next().unwrap().to_string();
    app.flush_request_log().await;
    let rows = roster::db::requests::recent(&mut app.conn(), &dir, 10).unwrap();
    assert_eq!(rows.len(), 2);
    let (conflict, created) = (&rows[0], &rows[1]);
    assert_eq!(
        (
            created.method.as_str(),
            created.path.as_str(),
            created.status
        ),
        ("POST", "/Users", 201)
    );
    let logged = created.request_body.as_deref().unwrap();
    assert!(
        logged.contains("log@x.com") && !logged.contains("hunter2"),
        "{logged}"
    );
    assert!(created.resource_id.is_some());
    assert_eq!(
        (conflict.status, conflict.error_kind.as_deref()),
        (409, Some("uniqueness"))
    );
    assert!(
        conflict
            .response_excerpt
            .as_deref()
            .unwrap()
            .contains("already exists")
    );
}
