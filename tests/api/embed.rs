//! The embeddable Admin Portal: embed links open once within a minute, only origins the owner
//! allowed may frame the portal (and only an embed session's portal pages), the embed
//! session's cookie works in a third-party frame, and CSRF still holds there.

use serde_json::{Value, json};

use crate::helpers::{Backend, Browser, Resp, TestApp, backend_tests};

const VENDOR: &str = "https://app.vendor.example";
const LOCAL_VENDOR: &str = "http://127.0.0.1:9443";

/// Saves the allow-list on the owner console's settings page.
async fn allow(owner: &mut Browser, origins: &str) -> Resp {
    let page = owner.get("/owner/settings").await;
    owner
        .post_form(
            "/owner/frame-ancestors",
            &page.body,
            &[("origins", origins)],
        )
        .await
}

/// `POST /api/v1/organizations/{org}/portal-links` with `body`: status and JSON.
async fn new_link(app: &TestApp, key: &str, org: &str, body: Value) -> (u16, Value) {
    let mut resp = awc::Client::default()
        .post(format!(
            "{}/api/v1/organizations/{org}/portal-links",
            app.base
        ))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send_json(&body)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let json = resp.json::<Value>().await.unwrap();
    (status, json)
}

/// An embed link's path (`/portal/link/…`).
async fn embed_link(app: &TestApp, key: &str, org: &str) -> String {
    let (status, link) = new_link(app, key, org, json!({"embed": true})).await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap();
    url[url.find("/portal/link/").unwrap()..].to_string()
}

fn session_cookie(r: &Resp) -> &str {
    r.headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("roster_session="))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no session cookie: {:?}", r.headers))
}

fn frame_ancestors(r: &Resp) -> String {
    let csp = r.header("content-security-policy").unwrap_or_default();
    csp.split(';')
        .map(str::trim)
        .find(|d| d.starts_with("frame-ancestors"))
        .unwrap_or_default()
        .to_string()
}

backend_tests!(an_embed_link_opens_once_and_the_second_open_says_so);
async fn an_embed_link_opens_once_and_the_second_open_says_so(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let key = app.api_key();
    let mut owner = app.owner().await;
    assert_eq!(allow(&mut owner, VENDOR).await.status, 303);
    let link = embed_link(&app, &key, &org).await;

    let mut first = Browser::new(&app.base);
    let opened = first.get(&link).await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    assert_eq!(first.get("/portal/scim").await.status, 200);

    let mut second = Browser::new(&app.base);
    let again = second.get(&link).await;
    assert_eq!(again.status, 404);
    assert!(again.body.contains("already opened"), "{}", again.body);
    // And it signed nobody in.
    assert_eq!(second.get("/portal/scim").await.status, 401);
}

backend_tests!(an_embed_link_lasts_a_minute_whatever_ttl_is_asked);
async fn an_embed_link_lasts_a_minute_whatever_ttl_is_asked(backend: Backend) {
    use diesel::prelude::*;
    use roster::db::schema::portal_links;

    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let key = app.api_key();
    let mut owner = app.owner().await;
    allow(&mut owner, VENDOR).await;
    let (status, link) = new_link(
        &app,
        &key,
        &org,
        json!({"embed": true, "ttl_seconds": 86400}),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(link["origin"], VENDOR);
    let expires = chrono::DateTime::parse_from_rfc3339(link["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let left = expires - chrono::Utc::now();
    assert!(
        left <= chrono::Duration::seconds(60) && left > chrono::Duration::seconds(30),
        "{left}"
    );

    // A minute later (its expiry moved into the past rather than waiting).
    diesel::update(portal_links::table.filter(portal_links::embed_origin.is_not_null()))
        .set(
            portal_links::expires_at
                .eq(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1)),
        )
        .execute(&mut app.conn())
        .unwrap();
    let url = link["url"].as_str().unwrap();
    let path = &url[url.find("/portal/link/").unwrap()..];
    let mut late = Browser::new(&app.base);
    let r = late.get(path).await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("has expired"), "{}", r.body);
}

backend_tests!(the_embed_session_cookie_is_third_party_and_a_normal_one_is_lax);
async fn the_embed_session_cookie_is_third_party_and_a_normal_one_is_lax(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let key = app.api_key();
    let mut owner = app.owner().await;
    allow(&mut owner, VENDOR).await;

    let mut embedded = Browser::new(&app.base);
    let opened = embedded.get(&embed_link(&app, &key, &org).await).await;
    let cookie = session_cookie(&opened);
    assert!(cookie.contains("SameSite=None"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("Partitioned"), "{cookie}");
    // The session still works and its later cookies stay third-party.
    let page = embedded.get("/portal/scim").await;
    assert_eq!(page.status, 200);

    let (status, normal) = new_link(&app, &key, &org, json!({"ttl_seconds": 3600})).await;
    assert_eq!(status, 201);
    let url = normal["url"].as_str().unwrap();
    let mut admin = Browser::new(&app.base);
    let opened = admin.get(&url[url.find("/portal/link/").unwrap()..]).await;
    let cookie = session_cookie(&opened);
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("SameSite=None"), "{cookie}");
    assert!(!cookie.contains("Partitioned"), "{cookie}");
    // The owner console's cookie too (its sign-in form sets one for the CSRF token).
    let mut visitor = Browser::new(&app.base);
    let login = visitor.get("/owner/login").await;
    let cookie = session_cookie(&login);
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
}

backend_tests!(only_an_embed_sessions_portal_pages_may_be_framed_by_allowed_origins);
async fn only_an_embed_sessions_portal_pages_may_be_framed_by_allowed_origins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let key = app.api_key();

    // Nothing allowed: no embed link, and nothing may be framed.
    let (status, refused) = new_link(&app, &key, &org, json!({"embed": true})).await;
    assert_eq!(status, 400);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no origin is allowed"),
        "{refused}"
    );
    let mut admin = app.portal(&org).await;
    let normal = admin.get("/portal/scim").await;
    assert_eq!(frame_ancestors(&normal), "frame-ancestors 'none'");

    let mut owner = app.owner().await;
    assert_eq!(
        allow(&mut owner, &format!("{VENDOR}\n{LOCAL_VENDOR}"))
            .await
            .status,
        303
    );
    let settings = owner.get("/owner/settings").await;
    assert!(settings.body.contains(LOCAL_VENDOR), "the form shows them");
    assert_eq!(frame_ancestors(&settings), "frame-ancestors 'none'");

    // Several allowed: the link names the framing page's origin.
    let (status, link) = new_link(&app, &key, &org, json!({"embed": true, "origin": VENDOR})).await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap();
    let mut embedded = Browser::new(&app.base);
    embedded
        .get(&url[url.find("/portal/link/").unwrap()..])
        .await;
    let page = embedded.get("/portal/scim").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        frame_ancestors(&page),
        format!("frame-ancestors {VENDOR} {LOCAL_VENDOR}")
    );
    assert_eq!(page.header("x-frame-options"), None);
    assert!(
        page.body
            .contains(&format!("data-embed-origin=\"{VENDOR}\"")),
        "messages go to the one origin"
    );
    assert!(page.body.contains("/static/js/embed.js"));
    // A normal portal session and the owner console still refuse frames.
    let normal = admin.get("/portal/scim").await;
    assert_eq!(frame_ancestors(&normal), "frame-ancestors 'none'");
    assert_eq!(normal.header("x-frame-options"), Some("DENY"));
    assert!(!normal.body.contains("data-embed-origin"));

    // The owner withdraws every origin: the embed session's pages refuse frames again.
    assert_eq!(allow(&mut owner, "").await.status, 303);
    let page = embedded.get("/portal/scim").await;
    assert_eq!(frame_ancestors(&page), "frame-ancestors 'none'");
}

backend_tests!(an_origin_that_is_not_https_or_local_is_refused);
async fn an_origin_that_is_not_https_or_local_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let key = app.api_key();
    let mut owner = app.owner().await;
    for bad in [
        "http://vendor.example",
        "*",
        "https://vendor.example/settings",
        "https://x.example 'unsafe-inline'",
    ] {
        let r = allow(&mut owner, &format!("{VENDOR}\n{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.body.contains("Nothing saved"), "{}", r.body);
        assert!(r.body.contains("is not an origin"), "{}", r.body);
    }
    // Nothing was saved, so no embed link.
    let (status, _) = new_link(&app, &key, &org, json!({"embed": true})).await;
    assert_eq!(status, 400);

    allow(&mut owner, VENDOR).await;
    let (status, refused) = new_link(
        &app,
        &key,
        &org,
        json!({"embed": true, "origin": "https://other.example"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not allowed"),
        "{refused}"
    );
    let (status, _) = new_link(
        &app,
        &key,
        &org,
        json!({"embed": true, "origin": "javascript:alert(1)"}),
    )
    .await;
    assert_eq!(status, 400);
}

backend_tests!(csrf_is_still_enforced_in_an_embed_session);
async fn csrf_is_still_enforced_in_an_embed_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let key = app.api_key();
    let mut owner = app.owner().await;
    allow(&mut owner, VENDOR).await;
    let mut embedded = Browser::new(&app.base);
    embedded.get(&embed_link(&app, &key, &org).await).await;
    let page = embedded.get("/portal/scim").await;
    let forged = embedded
        .send(
            "POST",
            "/portal/scim/configure",
            Some(&[("provider", "okta"), ("csrf_token", "forged")]),
            &[],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(
        roster::db::directories::list_for_org(&mut app.conn(), &org)
            .unwrap()
            .is_empty()
    );
    let ok = embedded
        .post_form(
            "/portal/scim/configure",
            &page.body,
            &[("provider", "okta")],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let dir = ok.header("location").unwrap().to_string();
    let created = embedded.get(&dir).await;
    assert!(
        created
            .body
            .contains("data-roster-event=\"directory_created\""),
        "the framing page is told"
    );
}

backend_tests!(origins_of_the_frame_ancestors_flag_may_frame_the_portal_too);
async fn origins_of_the_frame_ancestors_flag_may_frame_the_portal_too(backend: Backend) {
    let flagged = roster::embed::origins::FrameOrigin::parse(LOCAL_VENDOR).unwrap();
    let app = TestApp::spawn_configured(backend, crate::helpers::TestDb::new(backend), |c| {
        c.frame_ancestors = vec![flagged]
    })
    .await;
    let org = app.org("Acme", true);
    let key = app.api_key();
    // No owner setting: the flag's origin is the only one, so the link needs none named.
    let mut embedded = Browser::new(&app.base);
    embedded.get(&embed_link(&app, &key, &org).await).await;
    let page = embedded.get("/portal/scim").await;
    assert_eq!(
        frame_ancestors(&page),
        format!("frame-ancestors {LOCAL_VENDOR}")
    );
    assert!(
        page.body
            .contains(&format!("data-embed-origin=\"{LOCAL_VENDOR}\""))
    );

    // The owner's origins are added to the flag's.
    let mut owner = app.owner().await;
    let settings = owner.get("/owner/settings").await;
    assert!(
        settings.body.contains("--frame-ancestors"),
        "the page names the flag's origins"
    );
    allow(&mut owner, VENDOR).await;
    let page = embedded.get("/portal/scim").await;
    assert_eq!(
        frame_ancestors(&page),
        format!("frame-ancestors {LOCAL_VENDOR} {VENDOR}")
    );
}
