//! The HTML surfaces: the SCIM tab follows the owner's toggle, portal sessions are scoped to
//! one organization, forms are CSRF-protected, and provider data is escaped.

use serde_json::json;

use crate::helpers::{Backend, Browser, TestApp, backend_tests};

backend_tests!(disabled_org_shows_no_scim_tab_and_says_ask_the_app_owner);
async fn disabled_org_shows_no_scim_tab_and_says_ask_the_app_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Initech", false);
    let mut admin = app.portal(&org).await;
    let page = admin.get("/portal").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Ask the app owner to enable SCIM Provisioning")
    );
    assert!(
        !page.body.contains("href=\"/portal/scim\""),
        "no SCIM Provisioning tab"
    );
    assert!(!page.body.contains("Configure"));
    // The tab's URL and Configure are refused too.
    assert_eq!(
        admin.get("/portal/scim").await.header("location"),
        Some("/portal")
    );
    let r = admin
        .post_form(
            "/portal/scim/configure",
            &page.body,
            &[("provider", "okta")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(
        roster::db::directories::list_for_org(&mut app.conn(), &org)
            .unwrap()
            .is_empty()
    );

    // The owner turns it on: the tab appears.
    roster::db::orgs::set_scim_enabled(&mut app.conn(), &org, true).unwrap();
    let page = admin.get("/portal/scim").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("href=\"/portal/scim\""));
}

backend_tests!(portal_session_of_org_a_sees_nothing_of_org_b);
async fn portal_session_of_org_a_sees_nothing_of_org_b(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.org("Acme", true);
    let b = app.org("Globex", true);
    let scim_b = app.directory(&b, "okta");
    let secret = scim_b
        .post(
            "/Users",
            &json!({"userName": "secret@globex.com", "displayName": "Globex Secret"}),
        )
        .await
        .json();
    let secret_id = secret["id"].as_str().unwrap();
    let group = scim_b
        .post(
            "/Groups",
            &json!({"displayName": "Globex Board", "members": [{"value": secret_id}]}),
        )
        .await
        .json();
    let dir_b = scim_b.base.rsplit('/').next().unwrap().to_string();

    let mut admin_a = app.portal(&a).await;
    assert!(
        !admin_a
            .get("/portal/users")
            .await
            .body
            .contains("Globex Secret")
    );
    assert!(
        !admin_a
            .get("/portal/users?q=secret")
            .await
            .body
            .contains("secret@globex.com")
    );
    assert!(
        !admin_a
            .get("/portal/groups")
            .await
            .body
            .contains("Globex Board")
    );
    assert_eq!(
        admin_a
            .get(&format!("/portal/users/{secret_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        admin_a
            .get(&format!("/portal/groups/{}", group["id"].as_str().unwrap()))
            .await
            .status,
        404
    );
    assert_eq!(
        admin_a
            .get(&format!("/portal/scim/directories/{dir_b}"))
            .await
            .status,
        404
    );

    // Without a portal session nothing is shown.
    let mut stranger = Browser::new(&app.base);
    assert_eq!(stranger.get("/portal/users").await.status, 401);
    // Bad, expired links are refused with a page that says so.
    let bad = stranger
        .get("/portal/link/roster_portal_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(bad.status, 404);
    assert!(bad.body.contains("not valid"));
    let (expired, _) =
        roster::db::orgs::create_portal_link(&mut app.conn(), &a, chrono::Duration::seconds(-1))
            .unwrap();
    let r = stranger.get(&format!("/portal/link/{expired}")).await;
    assert!(r.body.contains("expired"));
}

backend_tests!(cross_site_and_tokenless_posts_are_refused);
async fn cross_site_and_tokenless_posts_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let mut admin = app.portal(&org).await;
    let page = admin.get("/portal/scim").await;
    let token = crate::helpers::csrf_token(&page.body);

    // No token.
    let r = admin
        .send(
            "POST",
            "/portal/scim/configure",
            Some(&[("provider", "okta")]),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    // Wrong token.
    let r = admin
        .send(
            "POST",
            "/portal/scim/configure",
            Some(&[("provider", "okta"), ("csrf_token", "forged")]),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    // Right token, but from another site.
    let r = admin
        .send(
            "POST",
            "/portal/scim/configure",
            Some(&[("provider", "okta"), ("csrf_token", &token)]),
            &[("Sec-Fetch-Site", "cross-site")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = admin
        .send(
            "POST",
            "/portal/scim/configure",
            Some(&[("provider", "okta"), ("csrf_token", &token)]),
            &[("Origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        roster::db::directories::list_for_org(&mut app.conn(), &org)
            .unwrap()
            .is_empty(),
        "nothing was created"
    );
    // The real form works, and so does the htmx header form of the token.
    let r = admin
        .send(
            "POST",
            "/portal/scim/configure",
            Some(&[("provider", "okta")]),
            &[("X-CSRF-Token", &token), ("Sec-Fetch-Site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, 303);
    // Cookies are HttpOnly and SameSite.
    let login = Browser::new(&app.base).get("/owner/login").await;
    let cookie = login
        .header("set-cookie")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=lax"),
        "{cookie}"
    );
    assert!(
        cookie.contains("secure"),
        "loopback public URLs get Secure cookies: {cookie}"
    );
    // Pages carry a strict CSP.
    let csp = login.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
}

backend_tests!(provider_supplied_markup_is_escaped);
async fn provider_supplied_markup_is_escaped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "generic");
    let u = scim
        .post("/Users", &json!({"userName": "x@acme.com", "displayName": "<script>alert(1)</script>", "title": "<img src=x onerror=alert(2)>"}))
        .await
        .json();
    scim.post(
        "/Groups",
        &json!({"displayName": "<b>bold</b>", "members": [{"value": u["id"]}]}),
    )
    .await;
    let mut admin = app.portal(&org).await;
    for path in [
        "/portal/users".to_string(),
        format!("/portal/users/{}", u["id"].as_str().unwrap()),
        "/portal/groups".to_string(),
    ] {
        let body = admin.get(&path).await.body;
        assert!(!body.contains("<script>alert"), "{path}");
        assert!(!body.contains("<img src=x"), "{path}");
        assert!(!body.contains("<b>bold"), "{path}");
    }
    let users = admin.get("/portal/users").await.body;
    assert!(
        users.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || users.contains("&lt;script&gt;"),
        "shown as text"
    );
}

/// The Users view's search: a substring of userName, display name, given + family name or
/// email, in any case, through the trigram index (three characters or more) or without it
/// (shorter), following updates and deletes, with LIKE's special characters taken literally.
/// On SQLite changed users wait to be indexed in groups of 256: the search must find them
/// both while they wait and once indexed (`indexed`: 256 more users were created after them),
/// and a renamed user whose old name is still indexed only under its new name.
async fn users_view_search(backend: Backend, indexed: bool) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let jane = scim
        .post(
            "/Users",
            &json!({"userName": "jdoe@acme.test", "displayName": "Jane Q. Doe",
                    "name": {"givenName": "Jane", "familyName": "Doe"},
                    "emails": [{"value": "jane.work@mail.acme.test", "primary": true}]}),
        )
        .await
        .json();
    let jane_id = jane["id"].as_str().unwrap().to_string();
    scim.post(
        "/Users",
        &json!({"userName": "pct_100%@acme.test", "name": {"givenName": "Max", "familyName": "O\"Neil"}}),
    )
    .await;
    scim.post("/Users", &json!({"userName": "other@acme.test"}))
        .await;
    if indexed {
        let fillers = (0..256).map(|i| {
            let scim = &scim;
            async move {
                let r = scim
                    .post(
                        "/Users",
                        &json!({"userName": format!("filler{i}@fill.test")}),
                    )
                    .await;
                assert_eq!(r.status, 201, "{}", r.body);
            }
        });
        futures_util::future::join_all(fillers).await;
        if backend == Backend::Sqlite {
            use diesel::connection::SimpleConnection;
            use diesel::prelude::*;
            let mut conn = app.conn();
            let roster::db::DbConn::Sqlite(c) = &mut *conn else {
                unreachable!()
            };
            let waiting: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM user_search_pending)",
            ))
            .get_result(c)
            .unwrap();
            assert!(
                waiting < 256,
                "the waiting users were indexed ({waiting} wait)"
            );
            // Index rows of no user, all holding `jdoe`: a search for it finds more than the
            // index hands on, so its statements read the index themselves (the others get
            // their few matches handed on). Either way the results are the same.
            c.batch_execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) \
                 INSERT INTO user_search (rowid, user_name) \
                 SELECT 1000000 + i, 'jdoe-decoy' || i FROM n;",
            )
            .unwrap();
        }
    }
    let mut admin = app.portal(&org).await;
    let finds = |body: &str, who: &str| body.contains(who);
    for (q, expect_jane) in [
        ("JDOE", true),        // userName, any case
        ("q.%20doe", true),    // display name
        ("ne%20do", true),     // given + family name
        ("work%40mail", true), // email
        ("oe", true),          // two characters: no trigram index
        ("zzz", false),        // nothing
        ("100%25%40", false),  // a literal %: only the other user
        ("work%40mail.acme.test", true),
        ("jdoe%40acme.tesx", false),
    ] {
        let page = admin.get(&format!("/portal/users?q={q}")).await;
        assert_eq!(page.status, 200, "{q}");
        assert_eq!(
            finds(&page.body, "jdoe@acme.test"),
            expect_jane,
            "search {q:?} on {backend:?}, indexed: {indexed}"
        );
    }
    let pct = admin.get("/portal/users?q=100%25%40").await;
    assert!(pct.body.contains("pct_100%@acme.test"), "{backend:?}");
    assert!(!pct.body.contains("other@acme.test"));
    let quote = admin.get("/portal/users?q=o%22nei").await;
    assert!(quote.body.contains("pct_100%@acme.test"), "{backend:?}");

    // A rename is found under the new name only; a deleted user not at all.
    scim.put(
        &format!("/Users/{jane_id}"),
        &json!({"userName": "jsmith@acme.test", "displayName": "Jane Smith"}),
    )
    .await;
    let renamed = admin.get("/portal/users?q=smith").await;
    assert!(renamed.body.contains("jsmith@acme.test"), "{backend:?}");
    assert!(
        !admin
            .get("/portal/users?q=jdoe")
            .await
            .body
            .contains("jsmith@acme.test")
    );
    scim.delete(&format!("/Users/{jane_id}")).await;
    assert!(
        !admin
            .get("/portal/users?q=smith")
            .await
            .body
            .contains("jsmith@acme.test"),
        "{backend:?}"
    );
}

backend_tests!(users_view_search_finds_users_waiting_to_be_indexed);
async fn users_view_search_finds_users_waiting_to_be_indexed(backend: Backend) {
    users_view_search(backend, false).await
}

backend_tests!(users_view_search_finds_indexed_users);
async fn users_view_search_finds_indexed_users(backend: Backend) {
    users_view_search(backend, true).await
}
