//! Bad input on the SCIM surface always gets a SCIM error JSON with the right status.

use serde_json::{Value, json};

use crate::helpers::{Backend, Resp, TestApp, backend_tests};

fn assert_scim_error(r: &Resp, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    let body = r.json();
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(body["status"], Value::String(status.to_string()));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    match scim_type {
        Some(t) => assert_eq!(body["scimType"], t),
        None => assert!(body.get("scimType").is_none()),
    }
}

/// A fresh app and the SCIM client of one directory in it.
async fn directory(backend: Backend) -> (TestApp, crate::helpers::Scim) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    (app, scim)
}

backend_tests!(missing_or_wrong_credentials_get_a_scim_401);
async fn missing_or_wrong_credentials_get_a_scim_401(backend: Backend) {
    let (_app, scim) = directory(backend).await;
    let none = scim.raw("GET", "/Users", None, None).await;
    assert_scim_error(&none, 401, None);
    assert!(none.header("www-authenticate").is_some());
    assert_scim_error(
        &scim
            .raw(
                "GET",
                "/Users",
                None,
                Some("roster_scim_wrongwrongwrongwrongwrongwrongwron"),
            )
            .await,
        401,
        None,
    );
    assert_scim_error(
        &scim
            .raw("GET", "/Users", None, Some("not-even-close"))
            .await,
        401,
        None,
    );
    let basic = {
        let url = format!("{}/Users", scim.base);
        let resp = awc::Client::new()
            .get(&url)
            .insert_header(("Authorization", "Basic Zm9vOmJhcg=="))
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    };
    assert_eq!(basic, 401);
    // `bearer` in any case works.
    let url = format!("{}/Users", scim.base);
    let lower = awc::Client::new()
        .get(&url)
        .insert_header(("Authorization", format!("bearer {}", scim.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status().as_u16(), 200);
}

backend_tests!(an_endpoint_url_without_its_directory_id_gets_a_404_saying_so);
async fn an_endpoint_url_without_its_directory_id_gets_a_404_saying_so(backend: Backend) {
    let (_app, scim) = directory(backend).await;
    let root = scim.base.rsplit_once('/').unwrap().0;
    for path in ["", "/", "//Users"] {
        let mut resp = awc::Client::new()
            .get(format!("{root}{path}"))
            .insert_header(("Authorization", format!("Bearer {}", scim.token)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("no directory"),
            "{path:?}: {body}"
        );
    }
}

backend_tests!(malformed_invalid_or_oversized_bodies_get_scim_errors);
async fn malformed_invalid_or_oversized_bodies_get_scim_errors(backend: Backend) {
    let (_app, scim) = directory(backend).await;
    assert_scim_error(
        &scim
            .raw(
                "POST",
                "/Users",
                Some("{not json".into()),
                Some(&scim.token),
            )
            .await,
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &scim
            .raw("POST", "/Users", Some(String::new()), Some(&scim.token))
            .await,
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &scim.post("/Users", &json!(["array"])).await,
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &scim
            .post("/Users", &json!({"name": {"givenName": "x"}}))
            .await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &scim
            .post("/Users", &json!({"userName": "x", "active": "maybe"}))
            .await,
        400,
        Some("invalidValue"),
    );
    let huge = format!(
        "{{\"userName\":\"x\",\"pad\":\"{}\"}}",
        "a".repeat(9 * 1024 * 1024)
    );
    assert_scim_error(
        &scim
            .raw("POST", "/Users", Some(huge), Some(&scim.token))
            .await,
        413,
        None,
    );
}

backend_tests!(a_bad_filter_or_count_gets_a_scim_400);
/// Never a 500, never "return everything".
async fn a_bad_filter_or_count_gets_a_scim_400(backend: Backend) {
    let (_app, scim) = directory(backend).await;
    for bad in [
        "userName%20eq",
        "userName%20zz%20%22x%22",
        "externalId%20eq%20jyoung",
        "(userName%20eq%20%22x%22",
        "userName%20eq%20%22x%22%20or",
        "meta.created%20gt%20%22yesterday%22",
        "active%20eq%20%22maybe%22",
        "emails%5Btype%20eq%20%22work%22",
    ] {
        assert_scim_error(
            &scim.get(&format!("/Users?filter={bad}")).await,
            400,
            Some("invalidFilter"),
        );
    }
    assert_scim_error(
        &scim.get("/Users?count=ten").await,
        400,
        Some("invalidValue"),
    );
}

backend_tests!(conflicts_unknown_ids_unknown_members_and_methods_get_scim_errors);
async fn conflicts_unknown_ids_unknown_members_and_methods_get_scim_errors(backend: Backend) {
    let (_app, scim) = directory(backend).await;
    let created = scim
        .post("/Users", &json!({"userName": "Dup@Acme.com"}))
        .await;
    assert_eq!(created.status, 201);
    assert_scim_error(
        &scim
            .post("/Users", &json!({"userName": "dup@acme.com"}))
            .await,
        409,
        Some("uniqueness"),
    );
    assert_scim_error(
        &scim
            .get("/Users/00000000-0000-0000-0000-000000000000")
            .await,
        404,
        None,
    );
    assert_scim_error(
        &scim.put("/Users/nope", &json!({"userName": "x"})).await,
        404,
        None,
    );
    assert_scim_error(&scim.delete("/Groups/nope").await, 404, None);
    assert_scim_error(
        &scim
            .post(
                "/Groups",
                &json!({"displayName": "G", "members": [{"value": "no-such-user"}]}),
            )
            .await,
        400,
        Some("invalidValue"),
    );
    assert_eq!(
        scim.get("/Groups").await.json()["totalResults"],
        0,
        "a refused POST created nothing"
    );
    assert_eq!(
        scim.post("/Groups", &json!({"displayName": "G"}))
            .await
            .status,
        201
    );
    assert_scim_error(
        &scim.post("/Groups", &json!({"displayName": "g"})).await,
        409,
        Some("uniqueness"),
    );
    assert_scim_error(&scim.request("DELETE", "/Users", None).await, 405, None);
    assert_scim_error(&scim.get("/Nothing").await, 404, None);
    assert_scim_error(&scim.get("/Me").await, 501, None);
    let patch_bad = scim
        .patch(
            &format!("/Users/{}", created.json()["id"].as_str().unwrap()),
            &json!({"Operations": [{"op": "explode", "path": "x"}]}),
        )
        .await;
    assert_scim_error(&patch_bad, 400, Some("invalidSyntax"));
}

backend_tests!(token_of_directory_a_gets_nothing_from_directory_b);
async fn token_of_directory_a_gets_nothing_from_directory_b(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = app.org("Acme", true);
    let globex = app.org("Globex", true);
    let a = app.directory(&acme, "pingidentity");
    let b = app.directory(&globex, "okta");
    let b_same_org = app.directory(&acme, "okta");

    let in_a = a
        .post("/Users", &json!({"userName": "alice@acme.com"}))
        .await;
    assert_eq!(in_a.status, 201);
    let alice = in_a.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        b.post("/Users", &json!({"userName": "alice@acme.com"}))
            .await
            .status,
        201,
        "userName is unique per directory only"
    );

    for other in [&b, &b_same_org] {
        // A's token on B's URL is refused outright.
        let r = other.raw("GET", "/Users", None, Some(&a.token)).await;
        assert_eq!(r.status, 401);
        let r = other
            .raw("GET", &format!("/Users/{alice}"), None, Some(&a.token))
            .await;
        assert_eq!(r.status, 401);
        // B's own token cannot see A's user by id, by filter or in lists.
        assert_eq!(other.get(&format!("/Users/{alice}")).await.status, 404);
        let f = other
            .get(&format!("/Users?filter=id%20eq%20%22{alice}%22"))
            .await;
        assert_eq!(f.json()["totalResults"], 0);
        assert_eq!(other.delete(&format!("/Users/{alice}")).await.status, 404);
        let g = other
            .post(
                "/Groups",
                &json!({"displayName": "X", "members": [{"value": alice}]}),
            )
            .await;
        assert_eq!(g.status, 400, "members must belong to the same directory");
    }
    assert_eq!(a.get(&format!("/Users/{alice}")).await.status, 200);
}

backend_tests!(scim_is_refused_while_the_org_has_scim_turned_off);
async fn scim_is_refused_while_the_org_has_scim_turned_off(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    assert_eq!(scim.get("/Users").await.status, 200);
    roster::db::orgs::set_scim_enabled(&mut app.conn(), &org, false).unwrap();
    let r = scim.get("/Users").await;
    assert_scim_error(&r, 403, None);
    roster::db::orgs::set_scim_enabled(&mut app.conn(), &org, true).unwrap();
    assert_eq!(scim.get("/Users").await.status, 200);
}

backend_tests!(a_token_revoked_elsewhere_is_refused_within_a_second);
/// A token revoked by another instance (here: straight in the database, as another process
/// would) is refused within a second, although this instance remembers the tokens it checked.
async fn a_token_revoked_elsewhere_is_refused_within_a_second(backend: Backend) {
    use diesel::prelude::*;
    use roster::db::schema::directory_tokens;
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let dir = scim.base.rsplit('/').next().unwrap().to_string();
    assert_eq!(scim.get("/Users").await.status, 200);
    let revoked = roster::on_backend!(&mut *app.conn(), |c| diesel::update(
        directory_tokens::table.filter(directory_tokens::directory_id.eq(&dir))
    )
    .set(directory_tokens::revoked_at.eq(roster::db::now()))
    .execute(c))
    .unwrap();
    assert_eq!(revoked, 1);
    let started = std::time::Instant::now();
    loop {
        let r = scim.get("/Users").await;
        if r.status == 401 {
            assert_scim_error(&r, 401, None);
            break;
        }
        assert_eq!(r.status, 200, "{backend:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{backend:?}: the revoked token is still accepted"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

backend_tests!(nul_characters_are_refused_on_every_backend_and_still_logged);
/// U+0000 fits in JSON and in a URL but not in PostgreSQL text: wherever it arrives (a body, a
/// filter, a path, a body that is not even JSON), the request gets a SCIM 400 or 404, nothing
/// is stored, and the request log still records it (and the requests beside it).
async fn nul_characters_are_refused_on_every_backend_and_still_logged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let dir = scim.base.rsplit('/').next().unwrap().to_string();

    let user = scim
        .post(
            "/Users",
            &json!({"userName": "nul@x.com", "name": {"givenName": "a\u{0}b"}}),
        )
        .await;
    assert_scim_error(&user, 400, Some("invalidValue"));
    assert!(
        user.json()["detail"]
            .as_str()
            .unwrap()
            .contains("name.givenName")
    );
    let group = scim.post("/Groups", &json!({"displayName": "\u{0}"})).await;
    assert_scim_error(&group, 400, Some("invalidValue"));
    let id = scim
        .post("/Users", &json!({"userName": "ok@x.com"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = scim
        .patch(
            &format!("/Users/{id}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "x\u{0}"}]}),
        )
        .await;
    assert_scim_error(&patch, 400, Some("invalidValue"));
    assert_scim_error(&scim.get("/Users/a%00b").await, 404, None);
    assert_scim_error(&scim.delete("/Groups/%00").await, 404, None);
    for filter in [
        "/Users?filter=userName%20eq%20%22a%5Cu0000b%22",
        "/Users?filter=userName%20eq%20%22a%00b%22",
        "/Groups?filter=displayName%20eq%20%22%5Cu0000%22",
    ] {
        assert_scim_error(&scim.get(filter).await, 400, Some("invalidFilter"));
    }
    let not_json = scim
        .raw(
            "POST",
            "/Users",
            Some("xx\u{0}yy".into()),
            Some(&scim.token),
        )
        .await;
    assert_scim_error(&not_json, 400, Some("invalidSyntax"));

    // Nothing was stored, and the user that was is untouched.
    assert_eq!(scim.get("/Users").await.json()["totalResults"], 1);
    assert_eq!(scim.get("/Groups").await.json()["totalResults"], 0);
    assert!(
        scim.get(&format!("/Users/{id}")).await.json()["displayName"].is_null(),
        "{backend:?}"
    );
    // Every request was logged: the refused ones with U+FFFD where the NUL was.
    app.flush_request_log().await;
    let rows = roster::db::requests::recent(&mut app.conn(), &dir, 50).unwrap();
    assert_eq!(rows.len(), 13, "{backend:?}");
    let refused_body = rows
        .iter()
        .find(|r| r.error_kind.as_deref() == Some("invalidSyntax"))
        .and_then(|r| r.request_body.clone())
        .unwrap();
    // Not JSON: only its size and shape are kept, never its text.
    assert!(
        refused_body.starts_with("[not valid JSON, 5 bytes") && !refused_body.contains("xx"),
        "{refused_body}"
    );
    assert!(
        rows.iter()
            .any(|r| r.path == "/Users/a\u{FFFD}b" && r.status == 404)
    );
}

backend_tests!(a_member_add_with_any_unknown_user_adds_nobody);
/// Members a PATCH adds must all be live users of the directory: one unknown id (another
/// directory's user, a deleted one, a made-up one) refuses the whole change and adds nobody,
/// even the valid ones beside it. Adding members already in the group changes nothing for them.
async fn a_member_add_with_any_unknown_user_adds_nobody(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "entra");
    let other = app.directory(&org, "okta");
    let id = |r: &Resp| r.json()["id"].as_str().unwrap().to_string();
    let alice = id(&scim
        .post("/Users", &json!({"userName": "alice@acme.com"}))
        .await);
    let bob = id(&scim
        .post("/Users", &json!({"userName": "bob@acme.com"}))
        .await);
    let gone = id(&scim
        .post("/Users", &json!({"userName": "gone@acme.com"}))
        .await);
    assert_eq!(scim.delete(&format!("/Users/{gone}")).await.status, 204);
    let elsewhere = id(&other
        .post("/Users", &json!({"userName": "eve@acme.com"}))
        .await);
    let group = id(&scim.post("/Groups", &json!({"displayName": "Sales"})).await);
    let add = |ids: &[&str]| {
        let members: Vec<_> = ids.iter().map(|i| json!({"value": i})).collect();
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "Add", "path": "members", "value": members}]})
    };
    let members = || async {
        crate::helpers::member_ids(&scim.get(&format!("/Groups/{group}")).await.json())
    };
    for bad in [&elsewhere, &gone, &"no-such-user".to_string()] {
        let r = scim
            .patch(&format!("/Groups/{group}"), &add(&[&alice, bad, &bob]))
            .await;
        assert_scim_error(&r, 400, Some("invalidValue"));
        assert!(r.body.contains(bad.as_str()), "names {bad}: {}", r.body);
        assert!(members().await.is_empty(), "nobody was added beside {bad}");
    }
    let r = scim
        .patch(&format!("/Groups/{group}"), &add(&[&alice]))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = scim
        .patch(&format!("/Groups/{group}"), &add(&[&alice, &bob]))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let mut expected = vec![alice.clone(), bob.clone()];
    expected.sort();
    assert_eq!(members().await, expected);
    let dir = scim.base.rsplit('/').next().unwrap().to_string();
    let scope = roster::db::events::FeedScope {
        org_id: None,
        directory_id: Some(dir),
    };
    let added: Vec<String> = roster::db::events::feed(&mut app.conn(), &scope, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "group.user_added")
        .map(|e| e.payload)
        .collect();
    assert_eq!(added.len(), 2, "one event per membership added: {added:?}");
    assert!(added[0].contains(&alice) && added[1].contains(&bob));
}
