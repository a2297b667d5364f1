//! SCIM operations beyond the seed flow: PATCH forms, filters, paging, path tolerance.

use serde_json::json;

use crate::helpers::{Backend, Scim, TestApp, backend_tests, member_ids};

async fn user(scim: &crate::helpers::Scim, body: serde_json::Value) -> String {
    let r = scim.post("/Users", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

backend_tests!(group_patch_members_in_every_form_touches_only_changed_rows);
async fn group_patch_members_in_every_form_touches_only_changed_rows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "entra");
    let u: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(user(&scim, json!({"userName": format!("u{i}@acme.com")})).await);
        }
        v
    };
    let g = scim
        .post("/Groups", &json!({"displayName": "Sales"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/Groups/{g}");

    // Add (Entra style: capitalised op, array of values), twice: idempotent.
    for _ in 0..2 {
        let r = scim
            .patch(&path, &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "Add", "path": "members", "value": [{"value": u[0]}, {"value": u[1]}, {"value": u[2]}]}
            ]}))
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let mut expected = vec![u[0].clone(), u[1].clone(), u[2].clone()];
    expected.sort();
    assert_eq!(member_ids(&scim.get(&path).await.json()), expected);

    // Remove by filter (Okta), remove by value list (Entra legacy), in one atomic request.
    let r = scim
        .patch(
            &path,
            &json!({"Operations": [
                {"op": "remove", "path": format!("members[value eq \"{}\"]", u[0])},
                {"op": "Remove", "path": "members", "value": [{"value": u[1]}]},
                {"op": "add", "value": {"members": [{"value": u[3], "$ref": null}]}}
            ]}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let mut expected = vec![u[2].clone(), u[3].clone()];
    expected.sort();
    assert_eq!(member_ids(&scim.get(&path).await.json()), expected);

    // An op that cannot apply rolls back the whole request.
    let r = scim
        .patch(
            &path,
            &json!({"Operations": [
                {"op": "remove", "path": "members"},
                {"op": "add", "path": "members", "value": [{"value": "unknown-user"}]}
            ]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        member_ids(&scim.get(&path).await.json()),
        expected,
        "nothing applied"
    );

    // Rename with Okta's no-path replace carrying id, and excludedAttributes=members.
    let r = scim.patch(&path, &json!({"Operations": [{"op": "replace", "value": {"id": g, "displayName": "Sales EMEA"}}]})).await;
    assert_eq!(r.status, 204);
    let slim = scim
        .get(&format!("{path}?excludedAttributes=members"))
        .await
        .json();
    assert_eq!(slim["displayName"], "Sales EMEA");
    assert!(slim.get("members").is_none());
    let listed = scim
        .get("/Groups?filter=displayName%20eq%20%22sales%20emea%22&excludedAttributes=members")
        .await
        .json();
    assert_eq!(listed["totalResults"], 1);
    assert!(listed["Resources"][0].get("members").is_none());
    let by_member = scim
        .get(&format!("/Groups?filter=members%20eq%20%22{}%22", u[3]))
        .await
        .json();
    assert_eq!(by_member["totalResults"], 1);

    // Replace the whole member list.
    let r = scim.patch(&path, &json!({"Operations": [{"op": "replace", "path": "members", "value": [{"value": u[0]}]}]})).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        member_ids(&scim.get(&path).await.json()),
        vec![u[0].clone()]
    );
}

backend_tests!(user_patch_entra_and_okta_forms);
async fn user_patch_entra_and_okta_forms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "entra");
    let id = user(&scim, json!({"userName": "ann@acme.com", "name": {"givenName": "Ann", "familyName": "Lee"}, "title": "Engineer"})).await;
    let path = format!("/Users/{id}");

    // Entra: "False" as a string deactivates.
    let r = scim
        .patch(
            &path,
            &json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["active"], false);
    // Okta: no-path replace touches only `active`.
    let r = scim
        .patch(
            &path,
            &json!({"Operations": [{"op": "replace", "value": {"active": true}}]}),
        )
        .await;
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.json()["userName"], "ann@acme.com");
    assert_eq!(r.json()["title"], "Engineer");
    // Entra: dotted keys and a filtered path with no match that creates the element.
    let r = scim
        .patch(
            &path,
            &json!({"Operations": [
                {"op": "replace", "value": {"name.givenName": "Anna"}},
                {"op": "add", "path": "emails[type eq \"work\"].value", "value": "anna@acme.com"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(
        body["name"],
        json!({"givenName": "Anna", "familyName": "Lee"})
    );
    assert_eq!(
        body["emails"],
        json!([{"type": "work", "value": "anna@acme.com"}])
    );
    // The new email is immediately filterable, in all the forms providers use.
    for f in [
        "emails%20eq%20%22ANNA%40acme.com%22",
        "emails.value%20eq%20%22anna%40acme.com%22",
        "emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22anna%40acme.com%22",
        "emails%5Btype%20eq%20%22work%22%20and%20value%20co%20%22%40acme%22%5D",
    ] {
        let l = scim.get(&format!("/Users?filter={f}")).await;
        assert_eq!(l.json()["totalResults"], 1, "{f}: {}", l.body);
    }
    // Rename userName; the old name is free again.
    let r = scim.patch(&path, &json!({"Operations": [{"op": "replace", "path": "userName", "value": "anna.lee@acme.com"}]})).await;
    assert_eq!(r.json()["userName"], "anna.lee@acme.com");
    user(&scim, json!({"userName": "ann@acme.com"})).await;
    // Deleting frees the name for a new user with a new id.
    assert_eq!(scim.delete(&path).await.status, 204);
    let again = user(&scim, json!({"userName": "anna.lee@acme.com"})).await;
    assert_ne!(again, id);
}

/// A directory of seven users: `user{i}@acme.com`, externalId `EXT-{i}`, display name
/// `User {i}`, active when `i` is even; their ids in order of creation.
async fn seven_users(backend: Backend) -> (TestApp, Scim, Vec<String>) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            user(
                &scim,
                json!({"userName": format!("user{i}@acme.com"), "externalId": format!("EXT-{i}"), "displayName": format!("User {i}"), "active": i % 2 == 0}),
            )
            .await,
        );
    }
    (app, scim, ids)
}

/// Gives the user two attributes that have no column of their own.
async fn add_title_and_nick_name(scim: &Scim, id: &str) {
    scim.patch(
        &format!("/Users/{id}"),
        &json!({"Operations": [{"op": "add", "value": {"title": "Engineer", "nickName": "Tre"}}]}),
    )
    .await;
}

/// The number of users matching `filter`.
async fn count(scim: &Scim, filter: &str) -> i64 {
    scim.get(&format!("/Users?filter={filter}")).await.json()["totalResults"]
        .as_i64()
        .unwrap()
}

backend_tests!(pages_are_stable_and_cover_every_user_once);
async fn pages_are_stable_and_cover_every_user_once(backend: Backend) {
    let (_app, scim, ids) = seven_users(backend).await;
    let mut seen = Vec::new();
    for start in [1, 4, 7] {
        let page = scim
            .get(&format!("/Users?startIndex={start}&count=3"))
            .await
            .json();
        assert_eq!(page["totalResults"], 7);
        assert_eq!(page["startIndex"], start);
        for r in page["Resources"].as_array().unwrap() {
            seen.push(r["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(
        scim.get("/Users?count=0").await.json()["Resources"],
        json!([])
    );
}

backend_tests!(filters_match_on_columns);
async fn filters_match_on_columns(backend: Backend) {
    let (_app, scim, _) = seven_users(backend).await;
    assert_eq!(count(&scim, "externalId%20eq%20%22EXT-3%22").await, 1);
    assert_eq!(
        count(&scim, "externalId%20eq%20%22ext-3%22").await,
        0,
        "externalId is case-exact"
    );
    assert_eq!(
        count(
            &scim,
            "userName%20sw%20%22USER%22%20and%20active%20eq%20true"
        )
        .await,
        4
    );
    assert_eq!(
        count(
            &scim,
            "active%20eq%20false%20or%20externalId%20eq%20%22EXT-0%22"
        )
        .await,
        4
    );
    assert_eq!(count(&scim, "not%20(active%20eq%20true)").await, 3);
    assert_eq!(count(&scim, "displayName%20co%20%22user%201%22").await, 1);
    assert_eq!(
        count(&scim, "userName+eq+%22user5%40acme.com%22").await,
        1,
        "`+` is a space"
    );
    assert_eq!(
        count(&scim, "meta.created%20gt%20%222000-01-01T00:00:00Z%22").await,
        7
    );
}

backend_tests!(filters_on_attributes_without_a_column_match_on_the_documents);
/// Correct, if slower.
async fn filters_on_attributes_without_a_column_match_on_the_documents(backend: Backend) {
    let (_app, scim, ids) = seven_users(backend).await;
    add_title_and_nick_name(&scim, &ids[2]).await;
    assert_eq!(count(&scim, "title%20eq%20%22engineer%22").await, 1);
    assert_eq!(
        count(&scim, "title%20pr%20and%20userName%20sw%20%22user%22").await,
        1
    );
    assert_eq!(count(&scim, "not%20(title%20pr)").await, 6);
    assert_eq!(
        count(&scim, "nickName%20eq%20%22nobody%22").await,
        0,
        "unknown values match nothing, not everything"
    );
}

backend_tests!(users_sort_on_columns_and_on_documents);
async fn users_sort_on_columns_and_on_documents(backend: Backend) {
    let (_app, scim, ids) = seven_users(backend).await;
    add_title_and_nick_name(&scim, &ids[2]).await;
    let sorted = scim
        .get("/Users?sortBy=externalId&sortOrder=descending&count=2")
        .await
        .json();
    assert_eq!(sorted["Resources"][0]["externalId"], "EXT-6");
    assert_eq!(sorted["totalResults"], 7);
    let by_title = scim.get("/Users?sortBy=title&count=1").await.json();
    assert_eq!(
        by_title["Resources"][0]["title"], "Engineer",
        "users with the attribute sort first"
    );
}

backend_tests!(attributes_and_excluded_attributes_pick_what_is_returned);
async fn attributes_and_excluded_attributes_pick_what_is_returned(backend: Backend) {
    let (_app, scim, ids) = seven_users(backend).await;
    let slim = scim.get("/Users?attributes=userName&count=1").await.json();
    let keys: Vec<&String> = slim["Resources"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id", "userName", "meta"]);
    let no_emails = scim
        .get(&format!("/Users/{}?excludedAttributes=externalId", ids[0]))
        .await
        .json();
    assert!(no_emails.get("externalId").is_none() && no_emails.get("userName").is_some());
}

backend_tests!(a_like_wildcard_in_a_filter_value_is_literal);
async fn a_like_wildcard_in_a_filter_value_is_literal(backend: Backend) {
    let (_app, scim, _) = seven_users(backend).await;
    assert_eq!(count(&scim, "userName%20co%20%22%25%22").await, 0);
}

backend_tests!(doubled_and_trailing_slashes_and_lowercase_resource_names_are_tolerated);
async fn doubled_and_trailing_slashes_and_lowercase_resource_names_are_tolerated(backend: Backend) {
    let (_app, scim, ids) = seven_users(backend).await;
    assert_eq!(scim.get("//Users").await.status, 200);
    assert_eq!(scim.get("/users/").await.status, 200);
    assert_eq!(scim.get(&format!("/USERS/{}", ids[0])).await.status, 200);
}

backend_tests!(the_discovery_documents_describe_what_is_supported);
async fn the_discovery_documents_describe_what_is_supported(backend: Backend) {
    let (_app, scim, _) = seven_users(backend).await;
    let spc = scim.get("/ServiceProviderConfig").await.json();
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(scim.get("/ResourceTypes").await.json()["totalResults"], 2);
    assert_eq!(scim.get("/Schemas").await.status, 200);
}

backend_tests!(post_search_gives_the_same_answer_as_get);
async fn post_search_gives_the_same_answer_as_get(backend: Backend) {
    let (_app, scim, _) = seven_users(backend).await;
    let s = scim.post("/Users/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "externalId eq \"EXT-4\"", "startIndex": 1, "count": 10})).await;
    assert_eq!(s.json()["totalResults"], 1);
}

backend_tests!(a_member_change_alone_moves_the_groups_version);
/// A change of members alone is a change of the group: its version (its ETag) moves.
async fn a_member_change_alone_moves_the_groups_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "entra");
    let alice = user(&scim, json!({"userName": "alice@acme.com"})).await;
    let r = scim.post("/Groups", &json!({"displayName": "Team"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let group = r.json();
    let path = format!("/Groups/{}", group["id"].as_str().unwrap());
    let add =
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": alice}]}]});
    assert_eq!(scim.patch(&path, &add).await.status, 204);
    let after = scim.get(&path).await.json();
    assert_eq!(after["meta"]["version"], "W/\"2\"", "{backend:?}");
    // The same add again changes nothing, so the version stays.
    assert_eq!(scim.patch(&path, &add).await.status, 204);
    assert_eq!(scim.get(&path).await.json()["meta"]["version"], "W/\"2\"");
    // An add naming an unknown user is refused whole: nothing moves.
    let bob = user(&scim, json!({"userName": "bob@acme.com"})).await;
    let unknown = json!({"Operations": [{"op": "add", "path": "members",
        "value": [{"value": bob}, {"value": "no-such-user"}]}]});
    assert_eq!(scim.patch(&path, &unknown).await.status, 400);
    assert_eq!(scim.get(&path).await.json()["meta"]["version"], "W/\"2\"");
    // A remove alone moves it once.
    let remove =
        json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{alice}\"]")}]});
    assert_eq!(scim.patch(&path, &remove).await.status, 204);
    assert_eq!(scim.get(&path).await.json()["meta"]["version"], "W/\"3\"");
    // A name and a member in one PATCH move it once, not twice.
    let both = json!({"Operations": [
        {"op": "replace", "path": "displayName", "value": "Team 2"},
        {"op": "add", "path": "members", "value": [{"value": bob}]}]});
    assert_eq!(scim.patch(&path, &both).await.status, 204);
    let after = scim.get(&path).await.json();
    assert_eq!(after["meta"]["version"], "W/\"4\"", "{backend:?}");
    assert_eq!(after["members"].as_array().map(Vec::len), Some(1));
    // So does a PUT that changes only the members (an add and a remove at once).
    let put = json!({"displayName": "Team 2", "members": [{"value": alice}]});
    assert_eq!(scim.put(&path, &put).await.status, 200);
    let after = scim.get(&path).await.json();
    assert_eq!(after["meta"]["version"], "W/\"5\"", "{backend:?}");
    assert_eq!(after["members"][0]["value"], json!(alice));
}

backend_tests!(etags_if_match_and_if_none_match);
async fn etags_if_match_and_if_none_match(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "generic");
    let id = user(&scim, json!({"userName": "etag@acme.com"})).await;
    let path = format!("/Users/{id}");
    let url = format!("{}{path}", scim.base);
    let client = awc::Client::new();
    let auth = ("Authorization", format!("Bearer {}", scim.token));

    let r = client
        .get(&url)
        .insert_header(auth.clone())
        .insert_header(("If-None-Match", "W/\"1\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    let r = client
        .get(&url)
        .insert_header(auth.clone())
        .insert_header(("If-None-Match", "W/\"7\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let patch =
        json!({"Operations": [{"op": "replace", "path": "title", "value": "T"}]}).to_string();
    let mut r = client
        .patch(&url)
        .insert_header(auth.clone())
        .insert_header(("If-Match", "W/\"9\""))
        .send_body(patch.clone())
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    let body: serde_json::Value = serde_json::from_slice(&r.body().await.unwrap()).unwrap();
    assert_eq!(body["status"], "412");
    assert!(
        scim.get(&path).await.json().get("title").is_none(),
        "nothing applied"
    );
    let r = client
        .patch(&url)
        .insert_header(auth.clone())
        .insert_header(("If-Match", "W/\"1\""))
        .send_body(patch)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers().get("etag").unwrap().to_str().unwrap(),
        "W/\"2\""
    );
    let r = client
        .delete(&url)
        .insert_header(auth.clone())
        .insert_header(("If-Match", "\"1\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    let r = client
        .delete(&url)
        .insert_header(auth)
        .insert_header(("If-Match", "*"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
}

backend_tests!(paging_the_whole_directory_follows_creates_and_deletes);
/// Paging the whole directory (served from per-directory bookmarks after the first page of a
/// version): every page matches the directory as it is, across creates and deletes.
async fn paging_the_whole_directory_follows_creates_and_deletes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "pingidentity");
    let mut ids = Vec::new();
    for i in 0..230 {
        ids.push(user(&scim, json!({"userName": format!("p{i}@acme.com")})).await);
    }
    let page = |start: usize, count: usize| {
        let scim = &scim;
        async move {
            let body = scim
                .get(&format!("/Users?startIndex={start}&count={count}"))
                .await
                .json();
            let ids: Vec<String> = body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect();
            (body["totalResults"].as_u64().unwrap() as usize, ids)
        }
    };
    let check = |ids: Vec<String>| {
        let page = &page;
        async move {
            // Twice: the second pass reads the bookmarks the first one left.
            for _ in 0..2 {
                let mut seen = Vec::new();
                for start in (1..=ids.len()).step_by(100) {
                    let (total, got) = page(start, 100).await;
                    assert_eq!(total, ids.len(), "{backend:?}");
                    seen.extend(got);
                }
                assert_eq!(seen, ids, "{backend:?}: every user once, in id order");
                // Across a bookmark, and past the end.
                assert_eq!(page(95, 10).await.1, ids[94..104], "{backend:?}");
                assert_eq!(page(150, 60).await.1, ids[149..209], "{backend:?}");
                assert!(page(ids.len() + 1, 100).await.1.is_empty());
            }
        }
    };
    check(ids.clone()).await;
    for gone in [ids[5].clone(), ids[120].clone()] {
        assert_eq!(scim.delete(&format!("/Users/{gone}")).await.status, 204);
        ids.retain(|id| *id != gone);
    }
    ids.push(user(&scim, json!({"userName": "late@acme.com"})).await);
    check(ids.clone()).await;
}

backend_tests!(planner_statistics_follow_an_initial_sync);
/// Both planners treat a young table as if it held a handful of rows (Postgres then walks a
/// whole directory for a `userName eq`, SQLite for a portal search); the writer analyzes the
/// SCIM tables as a directory fills.
async fn planner_statistics_follow_an_initial_sync(backend: Backend) {
    use diesel::prelude::*;
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "pingidentity");
    // Rows the planner believes scim_users holds (negative: never analyzed).
    let analyzed = |app: &TestApp| -> f64 {
        let sql = match backend {
            Backend::Postgres => {
                "SELECT reltuples::float8 AS n FROM pg_class WHERE relname = 'scim_users' \
                 AND relnamespace = current_schema()::regnamespace"
            }
            Backend::Sqlite => {
                "SELECT COALESCE((SELECT CAST(stat AS REAL) FROM sqlite_stat1 \
                 WHERE tbl = 'scim_users' LIMIT 1), -1.0) AS n"
            }
        };
        diesel::sql_query(sql)
            .get_result::<Estimate>(&mut *app.conn())
            .map(|e| e.n)
            .unwrap_or(-1.0)
    };
    assert!(analyzed(&app) < 0.0, "a new table has never been analyzed");
    for i in 0..520 {
        let r = scim
            .post("/Users", &json!({"userName": format!("u{i}@x.com")}))
            .await;
        assert_eq!(r.status, 201);
    }
    // SQLite is analyzed after 500 changes, Postgres each time the table has doubled:
    // either way the estimate is at least half the truth.
    let estimate = analyzed(&app);
    assert!(
        estimate >= 260.0,
        "the writer analyzed scim_users as it filled ({backend:?}: {estimate} of 520)"
    );
}

#[derive(diesel::QueryableByName)]
struct Estimate {
    #[diesel(sql_type = diesel::sql_types::Double)]
    n: f64,
}

backend_tests!(a_page_of_users_carries_each_users_groups);
async fn a_page_of_users_carries_each_users_groups(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let mut ids = Vec::new();
    for name in ["ann", "ben", "cy", "dee"] {
        ids.push(user(&scim, json!({"userName": format!("{name}@x.com")})).await);
    }
    let group = |name: &str, members: &[&String]| {
        let members: Vec<_> = members.iter().map(|id| json!({"value": id})).collect();
        let body = json!({"displayName": name, "members": members});
        let scim = &scim;
        async move {
            let r = scim.post("/Groups", &body).await;
            assert_eq!(r.status, 201, "{}", r.body);
            r.json()["id"].as_str().unwrap().to_string()
        }
    };
    let zeta = group("Zeta", &[&ids[0], &ids[1]]).await;
    let alpha = group("alpha", &[&ids[1]]).await;
    let gone = group("Gone", &[&ids[2]]).await;
    assert_eq!(scim.delete(&format!("/Groups/{gone}")).await.status, 204);

    let page = scim.get("/Users?startIndex=1&count=10").await.json();
    let groups_of = |user: &str| -> Vec<(String, String)> {
        let u = page["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == user)
            .unwrap_or_else(|| panic!("{user} listed"));
        u["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let s = |k: &str| g[k].as_str().unwrap().to_string();
                (s("value"), s("display"))
            })
            .collect()
    };
    let z = (zeta, "Zeta".to_string());
    let a = (alpha, "alpha".to_string());
    assert_eq!(groups_of(&ids[0]), vec![z.clone()], "{backend:?}");
    // By display name, ignoring case.
    assert_eq!(groups_of(&ids[1]), vec![a, z], "{backend:?}");
    assert_eq!(groups_of(&ids[2]), vec![], "a deleted group: {backend:?}");
    assert_eq!(groups_of(&ids[3]), vec![], "{backend:?}");
    // A GET of one user (one statement on Postgres) carries the same groups in order.
    for id in &ids {
        let one = scim.get(&format!("/Users/{id}")).await.json();
        let listed = page["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == *id)
            .unwrap();
        assert_eq!(one["groups"], listed["groups"], "{backend:?}");
    }
    assert_scim_404(&scim.get(&format!("/Users/{gone}")).await);
    // So does a lookup by userName (also one statement on Postgres), in any case, and
    // its total holds past the page.
    let found = scim
        .get("/Users?filter=userName%20eq%20%22BEN%40x.com%22")
        .await
        .json();
    assert_eq!(found["totalResults"], 1, "{backend:?}");
    assert_eq!(found["Resources"][0]["id"], ids[1].as_str());
    assert_eq!(
        found["Resources"][0]["groups"],
        scim.get(&format!("/Users/{}", ids[1])).await.json()["groups"]
    );
    for past in ["startIndex=2", "count=0"] {
        let page = scim
            .get(&format!(
                "/Users?filter=userName%20eq%20%22ben%40x.com%22&{past}"
            ))
            .await
            .json();
        assert_eq!(page["totalResults"], 1, "{past}: {backend:?}");
        assert!(
            page["Resources"].as_array().is_none_or(Vec::is_empty),
            "{past}: {backend:?}"
        );
    }
    let missing = scim
        .get("/Users?filter=userName%20eq%20%22nobody%40x.com%22")
        .await
        .json();
    assert_eq!(missing["totalResults"], 0, "{backend:?}");
}

fn assert_scim_404(r: &crate::helpers::Resp) {
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["status"], "404");
}

backend_tests!(removing_active_keeps_the_users_state);
/// A PATCH that removes `active` unassigns it in the resource but never reactivates a
/// deactivated user (nor deactivates an active one) for the application.
async fn removing_active_keeps_the_users_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let id = scim
        .post(
            "/Users",
            &json!({"userName": "gone@x.com", "active": false}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            &json!({"Operations": [{"op": "remove", "path": "active"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{backend:?}: {}", r.body);
    assert!(r.json().get("active").is_none(), "{backend:?}: {}", r.body);
    let inactive = scim.get("/Users?filter=active%20eq%20false").await.json();
    assert_eq!(
        inactive["totalResults"], 1,
        "{backend:?}: the user was reactivated"
    );
}
