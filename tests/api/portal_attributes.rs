//! Custom attributes in the HTML surfaces: the owner declares them on the organization page
//! (a clear refusal for a bad name or path), and the IT admin's Attributes tab — hidden until
//! there is something to map — previews a path on real users, flags a path nothing matches,
//! and saves and resets a directory's own path.

use serde_json::json;

use crate::helpers::{Backend, TestApp, backend_tests};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn api_values(app: &TestApp, user: &str) -> serde_json::Value {
    let mut c = app.conn();
    let row = roster::db::users::api_get(&mut c, user).unwrap().unwrap();
    let m = roster::db::attributes::mappings(&mut c, &row.directory_id).unwrap();
    serde_json::to_value(m.values_of_text(&row.resource)).unwrap()
}

backend_tests!(the_owner_declares_attributes_on_the_organization_page);
async fn the_owner_declares_attributes_on_the_organization_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let mut owner = app.owner().await;
    let page = owner.get(&format!("/owner/orgs/{org}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"custom-attributes\""),
        "the section is on the page"
    );
    let section = owner.hx_get(&format!("/owner/orgs/{org}/attributes")).await;
    assert_eq!(section.status, 200);
    assert!(section.body.contains("No custom attribute declared yet"));
    assert!(
        !section.body.contains("<html"),
        "a fragment for the org page"
    );
    let url = format!("/owner/orgs/{org}/attributes");

    let bad = owner
        .post_form(
            &url,
            &page.body,
            &[("name", "Cost Center"), ("source", "title")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("not a valid attribute name"),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains("value=\"Cost Center\""),
        "what was typed is kept"
    );
    let bad = owner
        .post_form(
            &url,
            &page.body,
            &[("name", "dept"), ("source", "emails[type eq")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("not a SCIM attribute path"),
        "{}",
        bad.body
    );

    let ok = owner
        .post_form(
            &url,
            &page.body,
            &[
                ("name", "department"),
                ("source", &format!("{ENTERPRISE}:department")),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let section = owner.hx_get(&url).await;
    assert!(section.body.contains("<code>department</code>"));
    assert!(section.body.contains(&format!("{ENTERPRISE}:department")));
    let dup = owner
        .post_form(
            &url,
            &page.body,
            &[("name", "department"), ("source", "title")],
        )
        .await;
    assert_eq!(dup.status, 400);
    assert!(dup.body.contains("already declared"));

    // The console's user page shows a pushed user's value.
    let scim = app.directory(&org, "pingidentity");
    let ada = scim
        .post(
            "/Users",
            &json!({"userName": "ada@acme.com", ENTERPRISE: {"department": "Engines"}}),
        )
        .await;
    assert_eq!(ada.status, 201, "{}", ada.body);
    let ada = ada.json()["id"].as_str().unwrap().to_string();
    let user = owner.get(&format!("/owner/orgs/{org}/users/{ada}")).await;
    assert_eq!(user.status, 200);
    let shown = &user.body[user.body.find("id=\"custom-attributes\"").unwrap()..];
    assert!(
        shown.contains("<code>department</code></dt><dd>Engines</dd>"),
        "{shown}"
    );

    // Another organization's page lists none of it.
    let other = app.org("Globex", true);
    let theirs = owner
        .hx_get(&format!("/owner/orgs/{other}/attributes"))
        .await;
    assert!(!theirs.body.contains("<code>department</code>"));

    let removed = owner
        .post_form(&format!("{url}/department/delete"), &page.body, &[])
        .await;
    assert_eq!(removed.status, 303);
    assert!(
        roster::db::attributes::list(&mut app.conn(), &org)
            .unwrap()
            .is_empty()
    );
    // Without the CSRF token the form is refused.
    let forged = owner
        .send(
            "POST",
            &url,
            Some(&[("name", "x"), ("source", "title")]),
            &[],
        )
        .await;
    assert_eq!(forged.status, 403);
}

backend_tests!(the_attributes_tab_previews_flags_saves_and_resets);
async fn the_attributes_tab_previews_flags_saves_and_resets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let mut admin = app.portal(&org).await;

    // Nothing declared: no tab.
    let users = admin.get("/portal/users").await;
    assert_eq!(users.status, 200);
    assert!(!users.body.contains("href=\"/portal/attributes\""));
    let page = admin.get("/portal/attributes").await;
    assert!(page.body.contains("id=\"no-attributes\""));

    roster::db::attributes::insert(
        &mut app.conn(),
        &org,
        "department",
        &format!("{ENTERPRISE}:department"),
    )
    .unwrap();
    let users = admin.get("/portal/users").await;
    assert!(
        users.body.contains("href=\"/portal/attributes\""),
        "the tab shows"
    );
    let page = admin.get("/portal/attributes").await;
    assert!(page.body.contains("id=\"no-directory\""), "{}", page.body);

    let scim = app.directory(&org, "entra");
    let dir = scim.base.rsplit('/').next().unwrap().to_string();
    let page = admin.get("/portal/attributes").await;
    assert!(page.body.contains("data-preview-empty"), "no users yet");
    let ada = scim
        .post(
            "/Users",
            &json!({
                "userName": "ada@acme.com",
                "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "title": "Engineering",
                "emails": [{"type": "work", "value": "ada@acme.com"}],
            }),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The default path matches nothing Entra sent here: flagged.
    let page = admin.get("/portal/attributes").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-unmatched"), "{}", page.body);
    assert!(page.body.contains("No user has a value at this path"));

    // The live preview, as the admin types.
    let preview = |source: &str| {
        format!(
            "/portal/attributes/preview?directory={dir}&attribute=department&source={}",
            urlencode(source)
        )
    };
    let p = admin.hx_get(&preview("title")).await;
    assert_eq!(p.status, 200);
    assert!(
        p.body
            .contains("Ada Lovelace → department: <strong>Engineering</strong>"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("data-unmatched"));
    let p = admin
        .hx_get(&preview("emails[type eq \"work\"].value"))
        .await;
    assert!(
        p.body.contains("<strong>ada@acme.com</strong>"),
        "{}",
        p.body
    );
    let p = admin.hx_get(&preview("nickName")).await;
    assert!(p.body.contains("data-unmatched"));
    let p = admin.hx_get(&preview("emails[type eq")).await;
    assert!(p.body.contains("data-preview-error"), "{}", p.body);
    assert!(p.body.contains("not a SCIM attribute path"));
    // Another organization's directory is not previewed.
    let globex = app.org("Globex", true);
    let theirs = app.directory(&globex, "okta");
    let theirs_id = theirs.base.rsplit('/').next().unwrap();
    let p = admin
        .hx_get(&format!(
            "/portal/attributes/preview?directory={theirs_id}&attribute=department&source=title"
        ))
        .await;
    assert_eq!(p.status, 404);

    // A refused save says why, at its attribute.
    let save = format!("/portal/attributes/{dir}/department");
    let r = admin
        .post_form(&save, &page.body, &[("source", "a b")])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("data-save-error"));
    assert!(r.body.contains("not a SCIM attribute path"));

    // Save: the value moves.
    assert_eq!(api_values(&app, &ada), json!({"department": null}));
    let r = admin
        .post_form(&save, &page.body, &[("source", "title")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let back = admin.get(r.header("location").unwrap()).await;
    assert!(back.body.contains("id=\"attribute-saved\""));
    assert!(back.body.contains("your mapping"));
    assert!(!back.body.contains("data-unmatched"));
    assert_eq!(api_values(&app, &ada), json!({"department": "Engineering"}));
    // The user's page shows it.
    let user = admin.get(&format!("/portal/users/{ada}")).await;
    assert!(user.body.contains("Custom attributes"));
    assert!(user.body.contains("Engineering"));

    // Reset to default.
    let r = admin
        .post_form(&format!("{save}/reset"), &back.body, &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(api_values(&app, &ada), json!({"department": null}));
    // Another organization's directory cannot be remapped.
    let r = admin
        .post_form(
            &format!("/portal/attributes/{theirs_id}/department"),
            &back.body,
            &[("source", "title")],
        )
        .await;
    assert_eq!(r.status, 404);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
