//! Each provider's transcript (docs/provider-pitfalls.md, "Provider transcripts", which also
//! defines the step labels T0, T1, … used below) replayed in its own dialect — test
//! connection, lookup before create, create, update, group create, membership changes, rename,
//! deactivate, reactivate, delete — with the resulting state checked by GETs after each step.

use serde_json::{Value, json};

use crate::helpers::{Backend, Resp, Scim, TestApp, backend_tests};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn ok(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

async fn user(scim: &Scim, id: &str) -> Value {
    ok(&scim.get(&format!("/Users/{id}")).await, 200)
}

async fn member_ids(scim: &Scim, gid: &str) -> Vec<String> {
    crate::helpers::member_ids(&ok(&scim.get(&format!("/Groups/{gid}")).await, 200))
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn directory(app: &TestApp, provider: &str) -> Scim {
    let org = app.org(&format!("{provider} customer"), true);
    app.directory(&org, provider)
}

backend_tests!(pingone_scim_outbound_transcript);
async fn pingone_scim_outbound_transcript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let scim = directory(&app, "pingidentity").await;
    // T0 test connection, T1 lookup with PingOne's default filter.
    assert_eq!(ok(&scim.get("/Users").await, 200)["totalResults"], 0);
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=username%20Eq%20%22jdoe%40acme.com%22")
                .await,
            200
        )["totalResults"],
        0
    );
    // T2 create with the enterprise extension.
    let u = ok(&scim.post("/Users", &json!({"schemas": [USER, ENTERPRISE], "userName": "jdoe@acme.com", "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": "jdoe@acme.com", "type": "work", "primary": true}], "externalId": "p1-1", "active": true, ENTERPRISE: {"department": "R&D"}})).await, 201);
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=username%20Eq%20%22JDoe%40acme.com%22")
                .await,
            200
        )["Resources"][0]["id"],
        id.as_str()
    );
    // workEmail identifier: `emails eq`.
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=emails%20eq%20%22jdoe%40acme.com%22")
                .await,
            200
        )["totalResults"],
        1
    );
    // T3 update by PUT (PingOne never PATCHes users).
    ok(&scim.put(&format!("/Users/{id}"), &json!({"schemas": [USER, ENTERPRISE], "userName": "jdoe@acme.com", "name": {"givenName": "Janet", "familyName": "Doe"},
        "emails": [{"value": "jdoe@acme.com", "type": "work", "primary": true}], "active": true, ENTERPRISE: {"department": "Research"}})).await, 200);
    let u = user(&scim, &id).await;
    assert_eq!(
        (
            u["name"]["givenName"].as_str(),
            u[ENTERPRISE]["department"].as_str(),
            u["externalId"].as_str()
        ),
        (Some("Janet"), Some("Research"), Some("p1-1"))
    );
    // T6 group: lookup by name, then create with members (no externalId).
    let bob = ok(
        &scim
            .post("/Users", &json!({"userName": "bob@acme.com"}))
            .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ok(
            &scim
                .get("/Groups?filter=displayName%20eq%20%22Engineering%22")
                .await,
            200
        )["totalResults"],
        0
    );
    let g = ok(&scim.post("/Groups", &json!({"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": id}]})).await, 201);
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id]));
    // T4/T5 memberships by full-group PUT.
    ok(&scim.put(&format!("/Groups/{gid}"), &json!({"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": id}, {"value": bob}]})).await, 200);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id, &bob]));
    ok(&scim.put(&format!("/Groups/{gid}"), &json!({"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": bob}]})).await, 200);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&bob]));
    // T7 rename by PUT.
    ok(&scim.put(&format!("/Groups/{gid}"), &json!({"schemas": [GROUP], "displayName": "R&D Engineering", "members": [{"value": bob}, {"value": id}]})).await, 200);
    assert_eq!(
        ok(&scim.get(&format!("/Groups/{gid}")).await, 200)["displayName"],
        "R&D Engineering"
    );
    // T8 deactivate, then reactivate, by PUT.
    ok(
        &scim
            .put(
                &format!("/Users/{id}"),
                &json!({"schemas": [USER], "userName": "jdoe@acme.com", "active": false}),
            )
            .await,
        200,
    );
    assert_eq!(user(&scim, &id).await["active"], false);
    assert_eq!(
        member_ids(&scim, &gid).await,
        sorted(&[&id, &bob]),
        "deactivated users keep their groups"
    );
    ok(
        &scim
            .put(
                &format!("/Users/{id}"),
                &json!({"schemas": [USER], "userName": "jdoe@acme.com", "active": true}),
            )
            .await,
        200,
    );
    assert_eq!(user(&scim, &id).await["active"], true);
    // T9/T10 delete.
    ok(&scim.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&bob]));
    ok(&scim.delete(&format!("/Groups/{gid}")).await, 204);
    assert_eq!(scim.get(&format!("/Groups/{gid}")).await.status, 404);
}

backend_tests!(okta_oin_and_aiw_transcript);
async fn okta_oin_and_aiw_transcript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let scim = directory(&app, "okta").await;
    // T0 Test API Credentials.
    ok(&scim.get("/Users?startIndex=1&count=2").await, 200);
    ok(&scim.get("/Groups?startIndex=1&count=100").await, 200);
    // T1 lookup, T2 create (with the placeholder password and empty groups).
    assert_eq!(ok(&scim.get("/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100").await, 200)["totalResults"], 0);
    let u = ok(&scim.post("/Users", &json!({"schemas": [USER], "userName": "test.user@okta.local", "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}], "displayName": "Test User", "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7", "groups": [], "password": "1mz050nq", "active": true})).await, 201);
    let id = u["id"].as_str().unwrap().to_string();
    assert!(u.get("password").is_none());
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=userName%20eq%20%22TEST.USER%40OKTA.LOCAL%22")
                .await,
            200
        )["totalResults"],
        1,
        "Okta's spec uppercases"
    );
    // Duplicate POST: 409.
    assert_eq!(
        scim.post("/Users", &json!({"userName": "test.user@okta.local"}))
            .await
            .status,
        409
    );
    // T3 update: GET, then PUT echoing it.
    let mut echo = user(&scim, &id).await;
    echo["name"] = json!({"givenName": "Another", "middleName": "Excited", "familyName": "User"});
    ok(&scim.put(&format!("/Users/{id}"), &echo).await, 200);
    assert_eq!(user(&scim, &id).await["name"]["middleName"], "Excited");
    // T5 Push Groups: create, AIW's follow-up PUT with id and empty members.
    assert_eq!(
        ok(
            &scim
                .get("/Groups?filter=displayName%20eq%20%22Test%20SCIMv2%22&startIndex=1&count=100")
                .await,
            200
        )["totalResults"],
        0
    );
    let gid = ok(
        &scim
            .post(
                "/Groups",
                &json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []}),
            )
            .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&scim.put(&format!("/Groups/{gid}"), &json!({"schemas": [GROUP], "id": gid, "displayName": "Test SCIMv2", "members": []})).await, 200);
    // T6 OIN membership PATCH: remove by filter + add with display, no type.
    let other = ok(
        &scim
            .post("/Users", &json!({"userName": "other@okta.local"}))
            .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": other, "display": "other@okta.local"}]}]})).await, 204);
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": format!("members[value eq \"{other}\"]")},
        {"op": "add", "path": "members", "value": [{"value": id, "display": "test.user@okta.local"}]}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id]));
    // Full push and the no-path members form.
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "members", "value": [{"value": id}, {"value": other}]}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id, &other]));
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"members": [{"value": other}]}}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&other]));
    // AIW membership by PUT.
    ok(&scim.put(&format!("/Groups/{gid}"), &json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": [{"value": id}]})).await, 200);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id]));
    // T7 rename with id in the value, re-sent on every membership change.
    for _ in 0..2 {
        ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "New name"}}]})).await, 204);
    }
    assert_eq!(
        ok(&scim.get(&format!("/Groups/{gid}")).await, 200)["displayName"],
        "New name"
    );
    // T4 deactivate (OIN PATCH, AIW PUT) and reactivate.
    ok(&scim.patch(&format!("/Users/{id}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]})).await, 200);
    assert_eq!(user(&scim, &id).await["active"], false);
    let mut echo = user(&scim, &id).await;
    echo["active"] = json!(true);
    ok(&scim.put(&format!("/Users/{id}"), &echo).await, 200);
    let u = user(&scim, &id).await;
    assert_eq!(
        (u["active"].as_bool(), u["groups"][0]["value"].as_str()),
        (Some(true), Some(gid.as_str())),
        "echoing `groups` keeps them"
    );
    // T8 delete group (Okta never deletes users).
    ok(&scim.delete(&format!("/Groups/{gid}")).await, 204);
    assert_eq!(user(&scim, &id).await["groups"], json!([]));
}

async fn entra_transcript(scim: &Scim, flagged: bool) {
    // The flag is consumed by Entra; if it leaks into requests, it is ignored.
    let q = if flagged { "aadOptscim062020&" } else { "" };
    // T0 random-GUID probes.
    assert_eq!(
        ok(
            &scim
                .get(&format!(
                    "/Users?{q}filter=userName+eq+%22cf4d78e8-cc4f-4d5d-b8b9-183561c0104a%22"
                ))
                .await,
            200
        )["totalResults"],
        0
    );
    assert_eq!(ok(&scim.get(&format!("/Groups?{q}excludedAttributes=members&filter=displayName+eq+%22f3c9b3a1-1111-4222-8333-944455556666%22")).await, 200)["totalResults"], 0);
    // T2 create (legacy sample with nulls, typo'd URN, meta).
    let u = ok(&scim.post("/Users", &json!({"schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"], "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa@contoso.com", "active": true, "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb@testuser.com"}],
        "meta": {"resourceType": "User"}, "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [], "addresses": null, "title": null, "manager": null})).await, 201);
    let id = u["id"].as_str().unwrap().to_string();
    // T1 lookups by each matching attribute.
    for f in [
        "userName+eq+%22test_user_00aa%40contoso.com%22",
        "externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22",
        "emails%5Btype+eq+%22work%22%5D.value+eq+%22Test_User_11bb%40testuser.com%22",
    ] {
        assert_eq!(
            ok(&scim.get(&format!("/Users?filter={f}")).await, 200)["totalResults"],
            1,
            "{f}"
        );
    }
    // T3 update: filtered email, sub-attribute, URN path, manager as a bare string.
    let (replace, add, remove) = if flagged {
        ("replace", "add", "remove")
    } else {
        ("Replace", "Add", "Remove")
    };
    let boss = ok(
        &scim
            .post("/Users", &json!({"userName": "boss@contoso.com"}))
            .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&scim.patch(&format!("/Users/{id}"), &json!({"schemas": [PATCH], "Operations": [
        {"op": replace, "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
        {"op": replace, "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": replace, "path": format!("{ENTERPRISE}:employeeNumber"), "value": "Eqpj"},
        {"op": add, "path": format!("{ENTERPRISE}:manager"), "value": boss},
        {"op": add, "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}
    ]})).await, 200);
    let u = user(scim, &id).await;
    assert_eq!(u["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(u["name"]["familyName"], "updatedFamilyName");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "Eqpj");
    assert_eq!(u[ENTERPRISE]["manager"], json!({"value": boss}));
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555 0100"}])
    );
    if flagged {
        // The flagged dialect may send several attributes in one no-path op.
        ok(&scim.patch(&format!("/Users/{id}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"displayName": "Test User", "name.givenName": "Given"}}]})).await, 200);
        assert_eq!(user(scim, &id).await["name"]["givenName"], "Given");
    }
    // T6 group without members, lookup and single reads without members.
    let g = ok(&scim.post("/Groups", &json!({"schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "displayName", "meta": {"resourceType": "Group"}})).await, 201);
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(
        ok(
            &scim
                .get("/Groups?excludedAttributes=members&filter=displayName+eq+%22displayName%22")
                .await,
            200
        )["totalResults"],
        1
    );
    assert!(
        ok(
            &scim
                .get(&format!("/Groups/{gid}?excludedAttributes=members"))
                .await,
            200
        )
        .get("members")
        .is_none()
    );
    // T7 add members ($ref null, several per op).
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [{"op": add, "path": "members", "value": [{"$ref": null, "value": id}, {"$ref": null, "value": boss}]}]})).await, 204);
    assert_eq!(member_ids(scim, &gid).await, sorted(&[&id, &boss]));
    // T8 remove a member in the dialect's form, with the redundant re-add of the others.
    let removal = if flagged {
        json!({"op": remove, "path": format!("members[value eq \"{boss}\"]")})
    } else {
        json!({"op": remove, "path": "members", "value": [{"$ref": null, "value": boss}]})
    };
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [removal, {"op": add, "path": "members", "value": [{"$ref": null, "value": id}]}]})).await, 204);
    assert_eq!(member_ids(scim, &gid).await, sorted(&[&id]));
    // T9 rename.
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [{"op": replace, "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]})).await, 204);
    assert_eq!(
        ok(&scim.get(&format!("/Groups/{gid}")).await, 200)["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    // T4 deactivate ("False" string in the default dialect), reactivate.
    let (off, on) = if flagged {
        (json!(false), json!(true))
    } else {
        (json!("False"), json!("True"))
    };
    ok(&scim.patch(&format!("/Users/{id}"), &json!({"schemas": [PATCH], "Operations": [{"op": replace, "path": "active", "value": off}]})).await, 200);
    assert_eq!(user(scim, &id).await["active"], false);
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=userName+eq+%22test_user_00aa%40contoso.com%22")
                .await,
            200
        )["Resources"][0]["active"],
        false
    );
    assert_eq!(member_ids(scim, &gid).await, sorted(&[&id]));
    ok(&scim.patch(&format!("/Users/{id}"), &json!({"schemas": [PATCH], "Operations": [{"op": replace, "path": "active", "value": on}]})).await, 200);
    assert_eq!(user(scim, &id).await["active"], true);
    // T5 / T10 delete.
    ok(&scim.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 404);
    ok(&scim.delete(&format!("/Groups/{gid}")).await, 204);
}

backend_tests!(entra_default_dialect_transcript);
async fn entra_default_dialect_transcript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    entra_transcript(&directory(&app, "entra").await, false).await;
}

backend_tests!(entra_aadoptscim062020_dialect_transcript);
async fn entra_aadoptscim062020_dialect_transcript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    entra_transcript(&directory(&app, "entra").await, true).await;
}

backend_tests!(onelogin_transcript);
async fn onelogin_transcript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let scim = directory(&app, "onelogin").await;
    // T0 / T1: lookup of a known-missing user, with OneLogin's trailing `&`.
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=userName+eq+%22onelogin-test-user01%22&")
                .await,
            200
        )["totalResults"],
        0
    );
    // T2 legacy template: non-RFC URNs, a leading space, string active, id null, single email object.
    let u = ok(&scim.post("/Users", &json!({"schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"], "id": null,
        "userName": "onelogin-test-user01", "name": {"familyName": " User 01", "givenName": "AAA Test"}, "active": "true",
        "emails": {"value": "user01@onelogin.example", "primary": true}, "urn:scim:schemas:extension:enterprise:2.0": {"department": "Sales"}})).await, 201);
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(
        u["emails"],
        json!([{"value": "user01@onelogin.example", "primary": true}])
    );
    assert_eq!(u[ENTERPRISE]["department"], "Sales");
    // T3 update by PUT with a trailing `?`.
    ok(&scim.put(&format!("/Users/{id}?"), &json!({"schemas": ["urn:scim:schemas:core:2.0"], "userName": "onelogin-test-user01", "name": {"familyName": "User 01", "givenName": "AAA"}, "active": "true"})).await, 200);
    assert_eq!(user(&scim, &id).await["name"]["givenName"], "AAA");
    // T4 groups: Refresh Entitlements lists groups; create; PATCH membership.
    assert_eq!(ok(&scim.get("/Groups").await, 200)["totalResults"], 0);
    let gid = ok(
        &scim.post("/Groups", &json!({"displayName": "Sales"})).await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id]));
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Sales EMEA"}]})).await, 204);
    assert_eq!(
        ok(&scim.get(&format!("/Groups/{gid}")).await, 200)["displayName"],
        "Sales EMEA"
    );
    // T5 suspend (PUT active false) and unsuspend, then remove from group and delete.
    ok(
        &scim
            .put(
                &format!("/Users/{id}?"),
                &json!({"userName": "onelogin-test-user01", "active": "false"}),
            )
            .await,
        200,
    );
    assert_eq!(user(&scim, &id).await["active"], false);
    ok(
        &scim
            .put(
                &format!("/Users/{id}"),
                &json!({"userName": "onelogin-test-user01", "active": true}),
            )
            .await,
        200,
    );
    assert_eq!(user(&scim, &id).await["active"], true);
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members", "value": [{"value": id}]}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, Vec::<String>::new());
    ok(&scim.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.status, 404);
}

backend_tests!(jumpcloud_transcript);
async fn jumpcloud_transcript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let scim = directory(&app, "jumpcloud").await;
    // T0 Test Connection creates and deletes a test user and group.
    let tu = ok(
        &scim
            .post(
                "/Users",
                &json!({"schemas": [USER], "userName": "jc-test@example.com", "active": true}),
            )
            .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tg = ok(
        &scim
            .post(
                "/Groups",
                &json!({"schemas": [GROUP], "displayName": "JumpCloud Test Group"}),
            )
            .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&scim.delete(&format!("/Groups/{tg}")).await, 204);
    ok(&scim.delete(&format!("/Users/{tu}")).await, 204);
    assert_eq!(ok(&scim.get("/Users").await, 200)["totalResults"], 0);
    // user_lookup_provision, then create.
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=userName%20eq%20%22john%40example.com%22")
                .await,
            200
        )["totalResults"],
        0
    );
    let id = ok(&scim.post("/Users", &json!({"schemas": [USER], "userName": "john@example.com", "name": {"givenName": "Jon", "familyName": "Smith"}, "emails": [{"value": "john@example.com", "type": "work", "primary": true}]})).await, 201)["id"].as_str().unwrap().to_string();
    // user_update_provision: per-attribute replaces.
    ok(&scim.patch(&format!("/Users/{id}"), &json!({"Operations": [{"op": "replace", "path": "name.givenName", "value": "John"}, {"op": "replace", "path": "name.familyName", "value": "Smyth"}]})).await, 200);
    assert_eq!(
        user(&scim, &id).await["name"],
        json!({"givenName": "John", "familyName": "Smyth"})
    );
    // Groups: name lookup (take over an existing group), create with a member, add/remove in Entra style.
    assert_eq!(
        ok(
            &scim
                .get("/Groups?filter=displayName%20eq%20%22Engineering%22")
                .await,
            200
        )["totalResults"],
        0
    );
    let gid = ok(&scim.post("/Groups", &json!({"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": id}]})).await, 201)["id"].as_str().unwrap().to_string();
    let jane = ok(
        &scim
            .post("/Users", &json!({"userName": "jane@example.com"}))
            .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": jane}]}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id, &jane]));
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"Operations": [{"op": "remove", "path": "members", "value": [{"value": jane}]}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id]));
    ok(
        &scim
            .patch(
                &format!("/Groups/{gid}"),
                &json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Eng"}]}),
            )
            .await,
        204,
    );
    assert_eq!(
        ok(&scim.get(&format!("/Groups/{gid}")).await, 200)["displayName"],
        "Eng"
    );
    // user_deprovision, reactivation, user_delete_provision, group_delete_provision.
    ok(
        &scim
            .patch(
                &format!("/Users/{id}"),
                &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
            )
            .await,
        200,
    );
    assert_eq!(user(&scim, &id).await["active"], false);
    ok(
        &scim
            .patch(
                &format!("/Users/{id}"),
                &json!({"Operations": [{"op": "replace", "path": "active", "value": true}]}),
            )
            .await,
        200,
    );
    assert_eq!(user(&scim, &id).await["active"], true);
    ok(&scim.delete(&format!("/Users/{id}")).await, 204);
    ok(&scim.delete(&format!("/Groups/{gid}")).await, 204);
    assert_eq!(ok(&scim.get("/Groups").await, 200)["totalResults"], 0);
}

backend_tests!(rippling_transcript);
async fn rippling_transcript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let scim = directory(&app, "rippling").await;
    // Test connection may read the discovery documents; paging is supported.
    let spc = ok(&scim.get("/ServiceProviderConfig").await, 200);
    assert_eq!(spc["patch"]["supported"], true);
    ok(&scim.get("/Users?startIndex=1&count=100").await, 200);
    // Match existing users or create: lookup by externalId and by email, then create.
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=externalId%20eq%20%22rip-1%22")
                .await,
            200
        )["totalResults"],
        0
    );
    let id = ok(&scim.post("/Users", &json!({"schemas": [USER, ENTERPRISE], "userName": "ann@rippling.example", "externalId": "rip-1",
        "name": {"givenName": "Ann", "familyName": "Lee"}, "emails": [{"value": "ann@rippling.example", "primary": true}], ENTERPRISE: {"employeeNumber": 1001}})).await, 201)["id"].as_str().unwrap().to_string();
    assert_eq!(user(&scim, &id).await[ENTERPRISE]["employeeNumber"], "1001");
    // A retried POST after a timeout is a 409, not a second user.
    assert_eq!(
        scim.post(
            "/Users",
            &json!({"userName": "ann@rippling.example", "externalId": "rip-1"})
        )
        .await
        .status,
        409
    );
    assert_eq!(
        ok(
            &scim
                .get("/Users?filter=externalId%20eq%20%22rip-1%22")
                .await,
            200
        )["totalResults"],
        1
    );
    // Updates by PUT; groups with "Use PATCH to edit Groups" on.
    ok(&scim.put(&format!("/Users/{id}"), &json!({"userName": "ann@rippling.example", "name": {"givenName": "Anne", "familyName": "Lee"}})).await, 200);
    assert_eq!(user(&scim, &id).await["name"]["givenName"], "Anne");
    let gid = ok(
        &scim
            .post("/Groups", &json!({"displayName": "Finance"}))
            .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, sorted(&[&id]));
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Finance & Ops"}]})).await, 204);
    // Termination: deactivate; rehire: reactivate; then delete.
    ok(
        &scim
            .patch(
                &format!("/Users/{id}"),
                &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
            )
            .await,
        200,
    );
    assert_eq!(user(&scim, &id).await["active"], false);
    ok(
        &scim
            .patch(
                &format!("/Users/{id}"),
                &json!({"Operations": [{"op": "replace", "path": "active", "value": true}]}),
            )
            .await,
        200,
    );
    ok(&scim.patch(&format!("/Groups/{gid}"), &json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})).await, 204);
    assert_eq!(member_ids(&scim, &gid).await, Vec::<String>::new());
    ok(&scim.delete(&format!("/Users/{id}")).await, 204);
    ok(&scim.delete(&format!("/Groups/{gid}")).await, 204);
}
