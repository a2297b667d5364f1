//! Branding: the owner's product name, logo, accent colour and support contact replace
//! Roster's on every Admin Portal page and portal error page, per organization overrides win
//! for that organization only, and bad logos and low-contrast colours are refused.

use crate::helpers::{Backend, Browser, TestApp, backend_tests};

const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#123456"/></svg>"##;
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";

/// The owner sets `fields` on the branding page at `base`; returns the response.
async fn save(owner: &mut Browser, base: &str, fields: &[(&str, &str)]) -> crate::helpers::Resp {
    let page = owner.get(base).await;
    assert_eq!(page.status, 200, "{}", page.body);
    owner.post_form(base, &page.body, fields).await
}

async fn upload(
    owner: &mut Browser,
    base: &str,
    name: &str,
    ct: &str,
    bytes: &[u8],
) -> crate::helpers::Resp {
    let page = owner.get(base).await;
    owner
        .post_file(
            &format!("{base}/logo"),
            &page.body,
            ("logo", name, ct, bytes),
        )
        .await
}

/// The logo URL a page shows.
fn logo_url(page: &str) -> Option<String> {
    let i = page.find("src=\"/assets/logo/")? + 5;
    Some(page[i..i + page[i..].find('"')?].to_string())
}

backend_tests!(owner_brand_shows_on_every_portal_page_instead_of_roster);
async fn owner_brand_shows_on_every_portal_page_instead_of_roster(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Initech", true);
    let scim = app.directory(&org, "okta");
    let dir_id = scim.base.rsplit('/').next().unwrap().to_string();
    let mut owner = app.owner().await;
    let r = save(
        &mut owner,
        "/owner/branding",
        &[
            ("product_name", "Acme Cloud"),
            ("accent", "#1D4ED8"),
            ("support", "help@acme.example"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = upload(
        &mut owner,
        "/owner/branding",
        "logo.svg",
        "image/svg+xml",
        SVG.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let settings = owner.get("/owner/branding").await;
    let logo = logo_url(&settings.body).expect("the branding page shows the logo");
    assert!(logo.ends_with(".svg"), "{logo}");

    let mut admin = app.portal(&org).await;
    let pages = [
        "/portal/scim".to_string(),
        format!("/portal/scim/directories/{dir_id}"),
        "/portal/users".to_string(),
        "/portal/groups".to_string(),
    ];
    for path in &pages {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(
            page.body.contains("Acme Cloud"),
            "{path} shows the product name"
        );
        assert!(page.body.contains(&logo), "{path} shows the logo");
        assert!(
            page.body.contains("/assets/brand/1d4ed8.css"),
            "{path} uses the accent"
        );
        assert!(
            page.body.contains("mailto:help@acme.example"),
            "{path} shows support"
        );
        assert!(
            !page.body.contains("Roster"),
            "{path} says Roster: {}",
            page.body
        );
    }
    // The portal's error pages: not found, and the session ended.
    let missing = admin.get("/portal/users/no-such-user").await;
    assert_eq!(missing.status, 404);
    for (what, page) in [
        ("not found", missing),
        ("unknown route", admin.get("/portal/nowhere").await),
        (
            "session ended",
            Browser::new(&owner_base(&app)).get("/portal/users").await,
        ),
        (
            "bad link",
            Browser::new(&owner_base(&app))
                .get("/portal/link/nope")
                .await,
        ),
    ] {
        assert!(page.body.contains("Acme Cloud"), "{what}: {}", page.body);
        assert!(
            page.body.contains("help@acme.example"),
            "{what} shows support"
        );
        assert!(page.body.contains(&logo), "{what} shows the logo");
        assert!(
            !page.body.contains("Roster"),
            "{what} says Roster: {}",
            page.body
        );
    }
    // The accent stylesheet sets the colour for good.
    let css = admin.get("/assets/brand/1d4ed8.css").await;
    assert!(
        css.body.contains("--roster-accent: #1d4ed8"),
        "{}",
        css.body
    );
    assert!(css.header("cache-control").unwrap().contains("immutable"));
}

fn owner_base(app: &TestApp) -> String {
    app.base.clone()
}

backend_tests!(without_branding_the_portal_keeps_the_configured_name);
async fn without_branding_the_portal_keeps_the_configured_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Initech", true);
    let mut admin = app.portal(&org).await;
    let page = admin.get("/portal/users").await;
    assert!(page.body.contains("Roster Test"));
    assert!(!page.body.contains("/assets/logo/"));
    assert!(!page.body.contains("/assets/brand/"));
    assert!(page.body.contains("Contact your application's owner"));
}

backend_tests!(bad_logos_are_refused_saying_why);
async fn bad_logos_are_refused_saying_why(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let big = [PNG, &vec![0u8; 300 * 1024]].concat();
    let cases: [(&str, &str, &[u8], &str); 4] = [
        (
            "logo.gif",
            "image/gif",
            b"GIF89a\x01\0\x01\0",
            "must be a PNG, JPEG, WebP or SVG",
        ),
        // The declared type does not count: the content does.
        (
            "logo.png",
            "image/png",
            b"<html>hi</html>",
            "must be a PNG, JPEG, WebP or SVG",
        ),
        (
            "logo.png",
            "image/png",
            &big,
            "the largest accepted is 256 KB",
        ),
        (
            "logo.svg",
            "image/svg+xml",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
            "contains a script",
        ),
    ];
    for (name, ct, bytes, why) in cases {
        let r = upload(&mut owner, "/owner/branding", name, ct, bytes).await;
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert!(r.body.contains(why), "{name}: {}", r.body);
    }
    let page = owner.get("/owner/branding").await;
    assert!(page.body.contains("id=\"no-logo\""), "nothing was stored");
}

backend_tests!(logo_is_served_at_its_hash_for_good_and_moves_when_replaced);
async fn logo_is_served_at_its_hash_for_good_and_moves_when_replaced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let r = upload(
        &mut owner,
        "/owner/branding",
        "logo.svg",
        "image/svg+xml",
        SVG.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let first = logo_url(&owner.get("/owner/branding").await.body).unwrap();
    let served = Browser::new(&app.base).get(&first).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body, SVG);
    assert_eq!(served.header("content-type"), Some("image/svg+xml"));
    assert_eq!(
        served.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
    assert!(
        served
            .header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );

    let r = upload(&mut owner, "/owner/branding", "logo.png", "image/png", PNG).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let second = logo_url(&owner.get("/owner/branding").await.body).unwrap();
    assert_ne!(first, second);
    assert!(second.ends_with(".png"), "{second}");
    let served = Browser::new(&app.base).get(&second).await;
    assert_eq!(served.header("content-type"), Some("image/png"));
    assert_eq!(served.body.len(), String::from_utf8_lossy(PNG).len());
    // The replaced logo is gone, as is any URL that is not a stored logo's hash.
    assert_eq!(Browser::new(&app.base).get(&first).await.status, 404);
    let wrong_ext = second.replace(".png", ".svg");
    assert_eq!(Browser::new(&app.base).get(&wrong_ext).await.status, 404);
    assert_eq!(
        Browser::new(&app.base)
            .get("/assets/logo/../x.png")
            .await
            .status,
        404
    );
}

backend_tests!(accent_failing_aa_contrast_is_refused_with_its_ratio);
async fn accent_failing_aa_contrast_is_refused_with_its_ratio(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let r = save(&mut owner, "/owner/branding", &[("accent", "#ffcc00")]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("1.51:1"), "{}", r.body);
    assert!(r.body.contains("4.5:1"), "{}", r.body);
    let r = save(
        &mut owner,
        "/owner/branding",
        &[("support", "javascript:alert(1)")],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("email address"), "{}", r.body);
    // Nothing was stored.
    let org = app.org("Initech", true);
    let page = app.portal(&org).await.get("/portal/users").await;
    assert!(!page.body.contains("/assets/brand/"));
}

backend_tests!(organization_override_wins_for_that_organization_only);
async fn organization_override_wins_for_that_organization_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.org("Acme", true);
    let b = app.org("Globex", true);
    let mut owner = app.owner().await;
    let r = save(
        &mut owner,
        "/owner/branding",
        &[
            ("product_name", "Vendor Cloud"),
            ("support", "https://vendor.example/help"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let org_base = format!("/owner/orgs/{a}/branding");
    assert!(
        owner
            .get(&format!("/owner/orgs/{a}"))
            .await
            .body
            .contains(&org_base)
    );
    let r = save(
        &mut owner,
        &org_base,
        &[("product_name", "Acme Edition"), ("accent", "#0055aa")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = upload(
        &mut owner,
        &org_base,
        "acme.svg",
        "image/svg+xml",
        SVG.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);

    let page_a = app.portal(&a).await.get("/portal/users").await;
    assert!(page_a.body.contains("Acme Edition"));
    assert!(!page_a.body.contains("Vendor Cloud"));
    assert!(page_a.body.contains("/assets/brand/0055aa.css"));
    assert!(logo_url(&page_a.body).is_some());
    // What it did not override comes from the instance-wide branding.
    assert!(page_a.body.contains("https://vendor.example/help"));

    let page_b = app.portal(&b).await.get("/portal/users").await;
    assert!(page_b.body.contains("Vendor Cloud"));
    assert!(!page_b.body.contains("Acme Edition"));
    assert!(!page_b.body.contains("/assets/brand/"));
    assert!(logo_url(&page_b.body).is_none());

    // Another organization's page is the owner console's 404.
    assert_eq!(owner.get("/owner/orgs/nope/branding").await.status, 404);
}

backend_tests!(branding_forms_need_the_csrf_token);
async fn branding_forms_need_the_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let page = owner.get("/owner/branding").await;
    assert!(page.body.contains("id=\"branding-form\""));
    assert!(
        page.body.matches("name=\"csrf_token\"").count() >= 3,
        "every form carries the token"
    );
    let fake = "<input name=\"csrf_token\" value=\"forged\">";
    let r = owner
        .post_form("/owner/branding", fake, &[("product_name", "Evil")])
        .await;
    assert_eq!(r.status, 403);
    let r = owner
        .post_file(
            "/owner/branding/logo",
            fake,
            ("logo", "l.svg", "image/svg+xml", SVG.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 403);
    let page = owner.get("/owner/branding").await;
    assert!(!page.body.contains("Evil"));
    assert!(page.body.contains("id=\"no-logo\""));
    // Signed out, the page is not shown.
    let r = Browser::new(&app.base).get("/owner/branding").await;
    assert_eq!(r.header("location"), Some("/owner/login"));
}
