//! The Admin Portal's admin features and the owner console's, over HTTP on every backend:
//! token rotation, disable/delete, health, the request inspector, filtered Users views,
//! portal links, owner lists and the sign-in backoff.

use serde_json::json;

use crate::helpers::{
    Backend, Browser, Scim, TestApp, TestDb, backend_tests, csrf_token, element_text,
};

/// Opens the portal for a new org with SCIM on and configures `provider` through the page.
async fn configured(app: &TestApp, provider: &str) -> (Browser, Scim, String) {
    let org = app.org("Acme", true);
    let mut admin = app.portal(&org).await;
    let (scim, dir) = configure(&mut admin, provider).await;
    (admin, scim, dir)
}

/// Configures `provider` on the SCIM Provisioning tab: a client of its endpoint, and its id.
async fn configure(admin: &mut Browser, provider: &str) -> (Scim, String) {
    let tab = admin.get("/portal/scim").await;
    let posted = admin
        .post_form(
            "/portal/scim/configure",
            &tab.body,
            &[("provider", provider)],
        )
        .await;
    assert_eq!(posted.status, 303, "{}", posted.body);
    let page = admin.get(posted.header("location").unwrap()).await;
    let endpoint = element_text(&page.body, "endpoint-url").unwrap();
    let token = element_text(&page.body, "bearer-token").unwrap();
    let dir = endpoint.rsplit('/').next().unwrap().to_string();
    (Scim::new(endpoint, token), dir)
}

backend_tests!(token_rotation_keeps_two_live_tokens_and_revoked_ones_are_refused);
async fn token_rotation_keeps_two_live_tokens_and_revoked_ones_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut admin, old, dir) = configured(&app, "okta").await;
    let path = format!("/portal/scim/directories/{dir}");
    assert_eq!(old.get("/Users").await.status, 200);
    let page = admin.get(&path).await;
    assert!(page.body.contains("tokens-table"));
    assert!(
        !page.body.contains(&old.token),
        "the token is never shown again"
    );

    let token = csrf_token(&page.body);
    let created = admin
        .send(
            "POST",
            &format!("{path}/tokens"),
            None,
            &[("HX-Request", "true"), ("X-CSRF-Token", &token)],
        )
        .await;
    assert_eq!(created.status, 200);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let new_token = element_text(&created.body, "new-token").expect("new token shown once");
    let new = Scim::new(old.base.clone(), new_token);
    assert_eq!(new.get("/Users").await.status, 200, "the new token works");
    assert_eq!(
        old.get("/Users").await.status,
        200,
        "and so does the old one"
    );
    // A third live token is refused with a message.
    let third = admin
        .send(
            "POST",
            &format!("{path}/tokens"),
            None,
            &[("HX-Request", "true"), ("X-CSRF-Token", &token)],
        )
        .await;
    assert!(
        third.body.contains("Revoke the old one first"),
        "{}",
        third.body
    );

    // Revoke the old token.
    let info = roster::db::directories::tokens(&mut app.conn(), &dir).unwrap();
    let old_id = info
        .iter()
        .find(|t| old.token.ends_with(&t.suffix))
        .unwrap()
        .id
        .clone();
    let revoked = admin
        .send(
            "POST",
            &format!("{path}/tokens/{old_id}/revoke"),
            None,
            &[("HX-Request", "true"), ("X-CSRF-Token", &token)],
        )
        .await;
    assert!(revoked.body.contains("Revoked"));
    let refused = old.get("/Users").await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("revoked at")
    );
    assert_eq!(new.get("/Users").await.status, 200);

    // The inspector explains the refusal, and its filters work.
    let errors = admin.get(&format!("{path}/activity?errors=1")).await;
    assert!(
        errors.body.contains("401: token revoked at"),
        "{}",
        errors.body
    );
    assert!(!errors.body.contains("listed users"), "errors only");
    let gets = admin.hx_get(&format!("{path}/activity?method=GET")).await;
    assert!(gets.body.contains("listed users"));
    // And the health checklist shows the last error.
    let status = admin.hx_get(&format!("{path}/status")).await;
    assert!(status.body.contains("Test connection received"));
    assert!(status.body.contains("401: token revoked at"));
}

backend_tests!(inspector_explains_each_request_and_filters_by_user);
async fn inspector_explains_each_request_and_filters_by_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut admin, scim, dir) = configured(&app, "entra").await;
    scim.get("/Users?filter=userName+eq+%22jane%40contoso.com%22")
        .await;
    let jane = scim
        .post(
            "/Users",
            &json!({"userName": "jane@contoso.com", "displayName": "Jane Doe"}),
        )
        .await
        .json();
    let jane_id = jane["id"].as_str().unwrap();
    scim.patch(
        &format!("/Users/{jane_id}"),
        &json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
    )
    .await;
    scim.post(
        "/Users",
        &json!({"userName": "other@contoso.com", "password": "s3cret-pass"}),
    )
    .await;
    scim.get("/Users?filter=userName%20zz%20%22x%22").await;

    let page = admin
        .get(&format!("/portal/scim/directories/{dir}/activity"))
        .await
        .body;
    for line in [
        "filter userName eq &#34;jane@contoso.com&#34; matched no user → Microsoft Entra ID will create one",
        "created user jane@contoso.com",
        "Microsoft Entra ID sent active &#34;False&#34; → Jane Doe deactivated",
        "400: the filter was refused",
    ] {
        assert!(page.contains(line), "missing `{line}` in the inspector");
    }
    assert!(!page.contains("s3cret-pass"), "request bodies are redacted");
    let by_user = admin
        .get(&format!(
            "/portal/scim/directories/{dir}/activity?user=JANE%40contoso.com"
        ))
        .await
        .body;
    assert!(by_user.contains("Jane Doe deactivated") && !by_user.contains("other@contoso.com"));
    // The user's page lists the requests that touched her.
    let user_page = admin.get(&format!("/portal/users/{jane_id}")).await.body;
    assert!(
        user_page.contains("Jane Doe deactivated")
            && user_page.contains("created user jane@contoso.com")
    );
}

backend_tests!(directory_counts_follow_each_change);
/// The SCIM tab and the directory page count users once per version of the directory: each
/// create and delete shows at the next view.
async fn directory_counts_follow_each_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut admin, scim, dir) = configured(&app, "okta").await;
    let path = format!("/portal/scim/directories/{dir}");
    let counts = |body: &str| {
        let row = body.split("<tbody>").nth(1).unwrap_or_default();
        // Provider, endpoint URL, then users and groups.
        row.split("<td>")
            .skip(3)
            .take(2)
            .map(|c| c.split('<').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&admin.get("/portal/scim").await.body), ["0", "0"]);
    assert!(
        admin
            .get(&path)
            .await
            .body
            .contains("its 0 users, 0 groups, tokens")
    );

    let r = scim.post("/Users", &json!({"userName": "a@x.com"})).await;
    let a = r.json()["id"].as_str().unwrap().to_string();
    scim.post("/Users", &json!({"userName": "b@x.com"})).await;
    scim.post("/Groups", &json!({"displayName": "G"})).await;
    assert_eq!(
        counts(&admin.get("/portal/scim").await.body),
        ["2", "1"],
        "{backend:?}"
    );
    assert!(
        admin
            .get(&path)
            .await
            .body
            .contains("its 2 users, 1 groups, tokens")
    );

    assert_eq!(scim.delete(&format!("/Users/{a}")).await.status, 204);
    assert_eq!(counts(&admin.get("/portal/scim").await.body), ["1", "1"]);
    assert!(
        admin
            .get(&path)
            .await
            .body
            .contains("its 1 users, 1 groups, tokens")
    );
}

backend_tests!(directory_checklist_keeps_first_arrivals_and_the_last_error);
/// The directory page's checklist: the first user and the first group show once they arrive,
/// and stay when they are deleted; the last error is the newest failed request, whatever
/// succeeded since.
async fn directory_checklist_keeps_first_arrivals_and_the_last_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut admin, scim, dir) = configured(&app, "okta").await;
    let path = format!("/portal/scim/directories/{dir}");
    let no_user = "not yet: assign users";
    let no_group = "not yet: push groups";
    let page = admin.get(&path).await.body;
    assert!(page.contains(no_user) && page.contains(no_group));
    assert!(!page.contains("id=\"last-error\""));

    let r = scim.post("/Users", &json!({"userName": "a@x.com"})).await;
    let a = r.json()["id"].as_str().unwrap().to_string();
    let page = admin.get(&path).await.body;
    assert!(
        !page.contains(no_user) && page.contains(no_group),
        "{backend:?}"
    );
    scim.post("/Groups", &json!({"displayName": "G"})).await;
    assert!(!admin.get(&path).await.body.contains(no_group));

    assert_eq!(scim.delete(&format!("/Users/{a}")).await.status, 204);
    assert!(
        !admin.get(&path).await.body.contains(no_user),
        "a first user stays"
    );

    assert_eq!(scim.post("/Users", &json!({"name": {}})).await.status, 400);
    scim.post("/Users", &json!({"userName": "b@x.com"})).await;
    assert!(
        admin.get(&path).await.body.contains("id=\"last-error\""),
        "{backend:?}"
    );
}

backend_tests!(a_directorys_first_arrivals_are_kept_in_its_row);
/// Finding a directory's first arrivals reads the whole directory (no index orders it by
/// creation), so the view that finds them keeps them in the directory's row: later views, in
/// this process or after a restart, read them there.
async fn a_directorys_first_arrivals_are_kept_in_its_row(backend: Backend) {
    use diesel::prelude::*;
    use roster::db::schema::directory_arrivals;
    use roster::pages::when;
    type Kept = (Option<chrono::NaiveDateTime>, Option<chrono::NaiveDateTime>);

    let app = TestApp::spawn(backend).await;
    let (mut admin, scim, dir) = configured(&app, "okta").await;
    scim.post("/Users", &json!({"userName": "a@x.com"})).await;
    scim.post("/Groups", &json!({"displayName": "G"})).await;
    let path = format!("/portal/scim/directories/{dir}");
    let kept = |app: &TestApp| -> Kept {
        directory_arrivals::table
            .find(&dir)
            .select((
                directory_arrivals::first_user_at,
                directory_arrivals::first_group_at,
            ))
            .first(&mut app.conn())
            .optional()
            .unwrap()
            .unwrap_or_default()
    };
    assert_eq!(kept(&app), (None, None), "nothing is kept before a view");

    let page = admin.get(&path).await.body;
    // The view queued the keeping on the writer.
    app.commit_queued().await;
    let (user_at, group_at) = kept(&app);
    let (user_at, group_at) = (
        user_at.expect("first user kept"),
        group_at.expect("first group kept"),
    );
    assert!(page.contains(&when(&user_at)) && page.contains(&when(&group_at)));

    // Later views read the row, whatever the directory's users say.
    let earlier = user_at - chrono::Duration::days(3);
    diesel::update(directory_arrivals::table.find(&dir))
        .set(directory_arrivals::first_user_at.eq(earlier))
        .execute(&mut app.conn())
        .unwrap();
    assert!(admin.get(&path).await.body.contains(&when(&earlier)));
}

backend_tests!(disabling_and_deleting_a_directory);
async fn disabling_and_deleting_a_directory(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut admin, scim, dir) = configured(&app, "onelogin").await;
    scim.post("/Users", &json!({"userName": "a@x.com"})).await;
    let path = format!("/portal/scim/directories/{dir}");
    let page = admin.get(&path).await;
    assert!(page.body.contains("Danger zone") && page.body.contains("1 users"));
    assert_eq!(
        admin
            .post_form(&format!("{path}/disable"), &page.body, &[])
            .await
            .status,
        303
    );
    assert_eq!(scim.get("/Users").await.status, 403);
    let page = admin.get(&path).await;
    assert!(page.body.contains("This directory is disabled"));
    admin
        .post_form(&format!("{path}/enable"), &page.body, &[])
        .await;
    assert_eq!(scim.get("/Users").await.status, 200);
    // Deleting needs the confirmation field.
    let page = admin.get(&path).await;
    admin
        .post_form(&format!("{path}/delete"), &page.body, &[])
        .await;
    assert_eq!(
        scim.get("/Users").await.status,
        200,
        "not deleted without confirmation"
    );
    let r = admin
        .post_form(
            &format!("{path}/delete"),
            &page.body,
            &[("confirm", "delete")],
        )
        .await;
    assert_eq!(r.header("location"), Some("/portal/scim?deleted=1"));
    assert_eq!(scim.get("/Users").await.status, 401);
    assert_eq!(admin.get(&path).await.status, 404);
    assert!(!admin.get("/portal/users").await.body.contains("a@x.com"));
}

backend_tests!(users_view_filters_by_status_and_group_and_sorts);
async fn users_view_filters_by_status_and_group_and_sorts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut admin, scim, _) = configured(&app, "okta").await;
    let mut ids = Vec::new();
    for (name, active) in [("carol", true), ("alice", true), ("bob", false)] {
        let u = scim.post("/Users", &json!({"userName": format!("{name}@x.com"), "displayName": name, "active": active})).await.json();
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    let g = scim
        .post(
            "/Groups",
            &json!({"displayName": "Admins", "members": [{"value": ids[0]}, {"value": ids[2]}]}),
        )
        .await
        .json();
    let gid = g["id"].as_str().unwrap();

    let inactive = admin.hx_get("/portal/users?status=inactive").await.body;
    assert!(inactive.contains("bob@x.com") && !inactive.contains("alice@x.com"));
    let in_group = admin
        .hx_get(&format!("/portal/users?group={gid}"))
        .await
        .body;
    assert!(
        in_group.contains("carol@x.com")
            && in_group.contains("bob@x.com")
            && !in_group.contains("alice@x.com")
    );
    let sorted = admin.hx_get("/portal/users?sort=name&dir=asc").await.body;
    let (a, b, c) = (
        sorted.find("alice@x.com").unwrap(),
        sorted.find("bob@x.com").unwrap(),
        sorted.find("carol@x.com").unwrap(),
    );
    assert!(a < b && b < c, "sorted by name");
    let desc = admin.hx_get("/portal/users?sort=name&dir=desc").await.body;
    assert!(desc.find("carol@x.com").unwrap() < desc.find("alice@x.com").unwrap());
    assert!(desc.contains("aria-sort=\"descending\""));
    let page = admin.get("/portal/users").await.body;
    assert!(
        page.contains("<option value=\"".to_string().as_str()) && page.contains("Admins"),
        "group filter offered"
    );
    let group_page = admin.get(&format!("/portal/groups/{gid}")).await.body;
    assert!(group_page.contains("2 members") && group_page.contains("Page 1 of 1"));

    // A second directory of the organization: its users are listed, counted and sorted
    // with the first one's (one directory is queried differently from several).
    let (second, _) = configure(&mut admin, "onelogin").await;
    let r = second
        .post(
            "/Users",
            &json!({"userName": "bart@y.com", "displayName": "bart"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let both = admin.hx_get("/portal/users?sort=name&dir=asc").await.body;
    assert_eq!(
        element_text(&both, "user-count").as_deref(),
        Some("4 users"),
        "{backend:?}"
    );
    let (a, b, c) = (
        both.find("alice@x.com").unwrap(),
        both.find("bart@y.com").unwrap(),
        both.find("bob@x.com").unwrap(),
    );
    assert!(a < b && b < c, "sorted across directories: {backend:?}");

    // The total follows every change (it is remembered per version of each directory),
    // and a search counts what it matched.
    let bart = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(second.delete(&format!("/Users/{bart}")).await.status, 204);
    let count = |body: &str| element_text(body, "user-count");
    let after = admin.hx_get("/portal/users").await.body;
    assert_eq!(count(&after).as_deref(), Some("3 users"), "{backend:?}");
    let again = admin.hx_get("/portal/users").await.body;
    assert_eq!(count(&again).as_deref(), Some("3 users"), "{backend:?}");
    let searched = admin.hx_get("/portal/users?q=alice").await.body;
    assert_eq!(count(&searched).as_deref(), Some("1 users"), "{backend:?}");
}

backend_tests!(owner_lists_and_revokes_portal_links_and_reads_users);
async fn owner_lists_and_revokes_portal_links_and_reads_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let org = app.org("Globex", true);
    let scim = app.directory(&org, "rippling");
    scim.post(
        "/Users",
        &json!({"userName": "hank@globex.com", "displayName": "Hank Scorpio"}),
    )
    .await;
    scim.post("/Groups", &json!({"displayName": "Villains"}))
        .await;
    scim.get("/Users?filter=bogus").await;

    let page = owner.get(&format!("/owner/orgs/{org}")).await;
    let created = owner
        .post_form(
            &format!("/owner/orgs/{org}/portal-links"),
            &page.body,
            &[("ttl_days", "3")],
        )
        .await;
    let link = element_text(&created.body, "portal-link-url").unwrap();
    assert!(created.body.contains("links-table") && created.body.contains("Not opened yet"));
    assert!(
        created.body.contains("Rippling") && created.body.contains("400: the filter was refused"),
        "directory health with its last error"
    );
    let link_id = roster::db::orgs::portal_links(&mut app.conn(), &org).unwrap()[0]
        .id
        .clone();
    let r = owner
        .post_form(
            &format!("/owner/orgs/{org}/portal-links/{link_id}/revoke"),
            &created.body,
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(
        owner
            .get(&format!("/owner/orgs/{org}"))
            .await
            .body
            .contains("Revoked")
    );
    let opened = Browser::new(&app.base).get(&link).await;
    assert!(
        opened.body.contains("revoked"),
        "a revoked link does not open"
    );

    let users = owner.get(&format!("/owner/orgs/{org}/users")).await.body;
    assert!(users.contains("Hank Scorpio") && users.contains("read-only"));
    assert!(
        owner
            .get(&format!("/owner/orgs/{org}/users?q=nobody"))
            .await
            .body
            .contains("No user matches")
    );
    assert!(
        owner
            .get(&format!("/owner/orgs/{org}/groups"))
            .await
            .body
            .contains("Villains")
    );
    // Signed out, none of it is visible.
    assert_eq!(
        Browser::new(&app.base)
            .get(&format!("/owner/orgs/{org}/users"))
            .await
            .status,
        303
    );
}

backend_tests!(owner_sign_in_backoff_holds_across_instances);
async fn owner_sign_in_backoff_holds_across_instances(backend: Backend) {
    let db = TestDb::new(backend);
    let url = db.url.clone();
    let first = TestApp::spawn_on(backend, db).await;
    // A second instance on the same database.
    let second = TestApp::spawn_on(backend, TestDb { url, _dir: None }).await;
    // The owner account exists (the attacker guesses its password).
    first.owner().await;

    let mut attacker = Browser::new(&first.base);
    let mut statuses = Vec::new();
    for _ in 0..roster::db::owners::FREE_ATTEMPTS {
        let login = attacker.get("/owner/login").await;
        statuses.push(
            attacker
                .post_form(
                    "/owner/login",
                    &login.body,
                    &[("password", "guess guess guess")],
                )
                .await
                .status,
        );
    }
    assert_eq!(statuses, vec![401; 5]);
    let login = attacker.get("/owner/login").await;
    let locked = attacker
        .post_form(
            "/owner/login",
            &login.body,
            &[("password", "guess guess guess")],
        )
        .await;
    assert!(
        locked.body.contains("Too many failed attempts"),
        "{}",
        locked.body
    );
    // The other instance refuses even the right password while locked.
    let mut elsewhere = Browser::new(&second.base);
    let login = elsewhere.get("/owner/login").await;
    let r = elsewhere
        .post_form(
            "/owner/login",
            &login.body,
            &[("password", "correct horse battery")],
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Try again in"));
}

backend_tests!(owner_manages_api_keys_and_webhooks_and_replays_deliveries);
async fn owner_manages_api_keys_and_webhooks_and_replays_deliveries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let org = app.org("Acme", true);

    let page = owner.get("/owner/settings").await;
    assert!(page.body.contains("No API key yet") && page.body.contains("No endpoint yet"));
    let created = owner
        .post_form("/owner/api-keys", &page.body, &[("name", "Production app")])
        .await;
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let key = element_text(&created.body, "new-secret").unwrap();
    assert!(key.starts_with("roster_key_"));
    let r = awc::Client::new()
        .get(format!("{}/api/v1/users", app.base))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the key works");
    assert!(
        !owner.get("/owner/settings").await.body.contains(&key),
        "shown once"
    );

    let bad = owner
        .post_form(
            "/owner/webhooks",
            &created.body,
            &[("url", "ftp://nope"), ("org", ""), ("events", "")],
        )
        .await;
    assert!(bad.body.contains("must be http(s)"), "{}", bad.body);
    let bad = owner
        .post_form(
            "/owner/webhooks",
            &created.body,
            &[
                ("url", "https://x.example/h"),
                ("org", ""),
                ("events", "user.exploded"),
            ],
        )
        .await;
    assert!(bad.body.contains("unknown event type"));
    let hook = owner
        .post_form(
            "/owner/webhooks",
            &created.body,
            &[
                ("url", "http://127.0.0.1:9/hooks"),
                ("org", &org),
                ("events", "user.*"),
            ],
        )
        .await;
    let secret = element_text(&hook.body, "new-secret").unwrap();
    assert!(secret.starts_with("whsec_"));
    assert!(hook.body.contains("http://127.0.0.1:9/hooks") && hook.body.contains("Acme"));

    // An event queues a delivery; the endpoint page shows it and replays it.
    let scim = app.directory(&org, "okta");
    scim.post("/Users", &json!({"userName": "w@acme.com"}))
        .await;
    let endpoint = roster::db::webhooks::list(&mut app.conn())
        .unwrap()
        .remove(0);
    let log = owner.get(&format!("/owner/webhooks/{}", endpoint.id)).await;
    assert!(
        log.body.contains("pending") && log.body.contains("event #"),
        "{}",
        log.body
    );
    let replayed = owner
        .post_form(
            &format!("/owner/webhooks/{}/replay", endpoint.id),
            &log.body,
            &[("since_seq", "1")],
        )
        .await;
    assert!(
        replayed.body.contains("1 deliveries queued again"),
        "{}",
        replayed.body
    );
    // Revoke the key; remove the endpoint.
    let keys = roster::db::api_keys::list(&mut app.conn()).unwrap();
    let settings = owner.get("/owner/settings").await;
    owner
        .post_form(
            &format!("/owner/api-keys/{}/revoke", keys[0].id),
            &settings.body,
            &[],
        )
        .await;
    let r = awc::Client::new()
        .get(format!("{}/api/v1/users", app.base))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    owner
        .post_form(
            &format!("/owner/webhooks/{}/remove", endpoint.id),
            &settings.body,
            &[],
        )
        .await;
    assert!(
        owner
            .get("/owner/settings")
            .await
            .body
            .contains("No endpoint yet")
    );
}

backend_tests!(nul_characters_in_forms_searches_and_api_bodies_are_refused);
/// U+0000 in a form field, a search or an API body is refused with a 400 on both backends
/// (PostgreSQL text cannot hold it), and nothing is created.
async fn nul_characters_in_forms_searches_and_api_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let page = owner.get("/owner").await;
    let created = owner
        .post_form("/owner/orgs", &page.body, &[("name", "Evil\u{0}Corp")])
        .await;
    assert_eq!(created.status, 400, "{backend:?}: {}", created.body);
    assert!(created.body.contains("U+0000"));
    let search = owner.get("/owner?q=a%00").await;
    assert_eq!(search.status, 400, "{backend:?}");
    assert!(!owner.get("/owner").await.body.contains("Evil"));

    let api = awc::Client::new()
        .post(format!("{}/api/v1/organizations", app.base))
        .insert_header(("Authorization", format!("Bearer {}", app.api_key())))
        .send_json(&json!({"name": "Evil\u{0}Corp"}))
        .await
        .unwrap()
        .status();
    assert_eq!(api.as_u16(), 400, "{backend:?}");
    let listed = roster::db::orgs::list(&mut app.conn(), "", 50).unwrap();
    assert!(
        listed.iter().all(|o| !o.name.contains("Evil")),
        "{backend:?}"
    );
}

backend_tests!(the_request_log_keeps_the_newest_rows_and_none_too_old);
/// The request inspector's retention: past `KEEP_PER_DIRECTORY` rows the oldest go, rows older
/// than `KEEP_DAYS` go however few there are, the newest stay, and pruning one directory
/// leaves another's rows alone.
async fn the_request_log_keeps_the_newest_rows_and_none_too_old(backend: Backend) {
    use roster::db::requests::{self, KEEP_DAYS, KEEP_PER_DIRECTORY, NewRequest};
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let dir_of = |scim: &Scim| scim.base.rsplit('/').next().unwrap().to_string();
    let (a, b) = (
        dir_of(&app.directory(&org, "okta")),
        dir_of(&app.directory(&org, "entra")),
    );
    let row = |dir: &str, days_ago: i64, path: String| NewRequest {
        directory_id: dir.to_string(),
        at: roster::db::now() - chrono::Duration::days(days_ago),
        method: "GET".into(),
        path,
        status: 200,
        ..NewRequest::default()
    };
    let mut conn = app.conn();
    let old: Vec<NewRequest> = [&a, &b]
        .into_iter()
        .flat_map(|dir| (0..5).map(|i| row(dir, KEEP_DAYS + 10, format!("/old{i}"))))
        .collect();
    requests::insert_many(&mut conn, old).unwrap();
    // A young row among the old (a clock set back): kept while it is young.
    requests::insert_many(&mut conn, vec![row(&a, 1, "/yesterday".into())]).unwrap();
    let total = KEEP_PER_DIRECTORY as usize + 2_500;
    for start in (0..total).step_by(500) {
        let rows = (start..start + 500).map(|i| row(&a, 0, format!("/new{i}")));
        requests::insert_many(&mut conn, rows.collect()).unwrap();
    }

    let kept = requests::recent(&mut conn, &a, 2 * KEEP_PER_DIRECTORY).unwrap();
    let cutoff = roster::db::now() - chrono::Duration::days(KEEP_DAYS);
    assert!(
        kept.iter().all(|r| r.at >= cutoff),
        "{backend:?}: old rows pruned"
    );
    assert!(
        (KEEP_PER_DIRECTORY as usize..=KEEP_PER_DIRECTORY as usize + 2_000).contains(&kept.len()),
        "{backend:?}: {} rows kept",
        kept.len()
    );
    assert_eq!(
        kept[0].path,
        format!("/new{}", total - 1),
        "the newest stays"
    );
    assert!(
        !kept.iter().any(|r| r.path == "/yesterday"),
        "beyond the count"
    );
    let other = requests::recent(&mut conn, &b, 100).unwrap();
    assert_eq!(other.len(), 5, "{backend:?}: another directory's rows stay");

    // Far fewer rows than the count allows: only age decides.
    let rows = (0..2_000).map(|i| row(&b, 0, format!("/new{i}")));
    requests::insert_many(&mut conn, rows.collect()).unwrap();
    let kept = requests::recent(&mut conn, &b, 3_000).unwrap();
    assert_eq!(kept.len(), 2_000, "{backend:?}: only the old rows went");
    assert!(kept.iter().all(|r| r.at >= cutoff));

    // Rows of a directory deleted meanwhile are dropped; the others are kept.
    let rows = vec![
        row("deleted-meanwhile", 0, "/x".into()),
        row(&b, 0, "/last".into()),
    ];
    requests::insert_many(&mut conn, rows).unwrap();
    let newest = requests::recent(&mut conn, &b, 1).unwrap();
    assert_eq!(newest[0].path, "/last", "{backend:?}");
    assert!(
        requests::recent(&mut conn, "deleted-meanwhile", 1)
            .unwrap()
            .is_empty()
    );
}

backend_tests!(writes_are_logged_with_what_they_changed);
/// The request log keeps what each write changed, as Roster recorded it, and the inspector
/// explains writes from it (not from the logged body, which is cut at 16 KiB).
async fn writes_are_logged_with_what_they_changed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut admin, scim, dir) = configured(&app, "pingidentity").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let u = scim
            .post(
                "/Users",
                &json!({"userName": format!("u{i}@example.com"), "name": {"familyName": "Gonzalez"}}),
            )
            .await;
        assert_eq!(u.status, 201, "{}", u.body);
        ids.push(u.json()["id"].as_str().unwrap().to_string());
    }
    let g = scim
        .post("/Groups", &json!({"displayName": "Everyone"}))
        .await;
    let gid = g.json()["id"].as_str().unwrap().to_string();
    let members: Vec<_> = ids.iter().map(|id| json!({"value": id})).collect();
    let put = scim
        .put(
            &format!("/Groups/{gid}"),
            &json!({"displayName": "Everyone", "members": members}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let patch = scim
        .patch(
            &format!("/Groups/{gid}"),
            &json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]}),
        )
        .await;
    assert_eq!(patch.status, 204, "{}", patch.body);
    let renamed = scim
        .put(
            &format!("/Users/{}", ids[1]),
            &json!({"userName": "u1@example.com", "name": {"familyName": "Nakamura"}}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    app.flush_request_log().await;
    let rows = roster::db::requests::recent(&mut app.conn(), &dir, 3).unwrap();
    let summaries: Vec<Option<&str>> = rows.iter().map(|r| r.change_summary.as_deref()).collect();
    assert_eq!(
        summaries,
        [
            Some("familyName Gonzalez → Nakamura"),
            Some("−1 member"),
            Some("+3 members"),
        ]
    );
    let page = admin
        .get(&format!("/portal/scim/directories/{dir}/activity"))
        .await;
    assert!(
        page.body.contains("replaced group Everyone: +3 members"),
        "{}",
        page.body
    );
}

backend_tests!(inspector_shows_the_request_id_sent_back_to_the_provider);
async fn inspector_shows_the_request_id_sent_back_to_the_provider(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut admin, scim, dir) = configured(&app, "okta").await;
    let created = scim
        .post("/Users", &json!({"userName": "quote@contoso.com"}))
        .await;
    assert_eq!(created.status, 201);
    let missing = scim.get("/Users/no-such-user").await;
    assert_eq!(missing.status, 404);
    let page = admin
        .get(&format!("/portal/scim/directories/{dir}/activity"))
        .await
        .body;
    for resp in [&created, &missing] {
        let id = resp.header("x-request-id").unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            page.contains(&format!(
                "Request id: <code>{id}</code> — quote it to support"
            )),
            "request id {id} not in the inspector"
        );
    }
}
