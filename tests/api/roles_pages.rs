//! Roles on the HTML surfaces: the Admin Portal's Roles page (shown only once the owner defined
//! roles) previews a mapping change — whose roles it moves — and applies it only on
//! confirmation; a user's page says why they have each role; the owner console defines and
//! removes roles.

use serde_json::json;

use crate::api_v1::spawn;
use crate::helpers::{Backend, backend_tests, element_text};
use crate::roles::{acme, role_events, roles_of};

/// The text of the element with this id up to `end` (its closing tag), tags stripped and
/// whitespace collapsed.
fn text(page: &str, id: &str, end: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let html = &page[start..start + page[start..].find(end).unwrap()];
    let html = &html[html.find('>').unwrap() + 1..];
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

backend_tests!(the_portal_previews_a_mapping_then_applies_it_on_confirmation);
async fn the_portal_previews_a_mapping_then_applies_it_on_confirmation(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let a = acme(&app, &api).await;
    let mut admin = app.portal(&a.org).await;

    // No role defined: no Roles tab, and the page says why it is empty.
    let users = admin.get("/portal/users").await;
    assert!(
        !users.body.contains("href=\"/portal/roles\""),
        "no Roles tab yet"
    );
    let empty = admin.get("/portal/roles").await;
    assert_eq!(empty.status, 200);
    assert!(
        element_text(&empty.body, "roles-empty").is_some(),
        "{}",
        empty.body
    );

    let roles_path = format!("/organizations/{}/roles", a.org);
    for body in [
        json!({"slug": "admin", "name": "Administrator"}),
        json!({"slug": "member", "name": "Member", "default": true}),
    ] {
        api.call(
            "POST",
            &roles_path,
            "/organizations/{id}/roles",
            Some(body),
            201,
        )
        .await;
    }
    let (_, cursor) = role_events(&api, &a.org, 0).await;
    let page = admin.get("/portal/users").await;
    assert!(
        page.body.contains("href=\"/portal/roles\""),
        "the Roles tab shows"
    );
    let page = admin.get("/portal/roles").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Administrator"));
    assert!(
        page.body
            .contains(&format!("<option value=\"{}\">Admins</option>", a.admins))
    );

    // The preview says what the change would do and changes nothing.
    let change = [
        ("directory", a.directory.as_str()),
        ("group", a.admins.as_str()),
        ("role", "admin"),
        ("change", "add"),
    ];
    let preview = admin
        .post_form("/portal/roles/preview", &page.body, &change)
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_eq!(
        text(&preview.body, "preview-sentence", "</p>"),
        ("This change gives 2 users the role Administrator and removes Member from 2 users.")
    );
    assert!(
        preview
            .body
            .contains("alice@acme.com: Member → Administrator"),
        "{}",
        preview.body
    );
    assert_eq!(
        roles_of(&api, &a.alice).await,
        json!(["member"]),
        "nothing applied yet"
    );
    let (events, _) = role_events(&api, &a.org, cursor).await;
    assert!(events.is_empty(), "a preview records no event: {events:?}");

    // Confirmed: applied, one event per user moved, and the page says how many.
    let applied = admin
        .post_form("/portal/roles/apply", &preview.body, &change)
        .await;
    assert_eq!(applied.status, 303, "{}", applied.body);
    let back = applied.header("location").unwrap().to_string();
    assert!(back.ends_with("applied=2"), "{back}");
    assert_eq!(roles_of(&api, &a.alice).await, json!(["admin"]));
    assert_eq!(roles_of(&api, &a.bob).await, json!(["admin"]));
    assert_eq!(roles_of(&api, &a.carol).await, json!(["member"]));
    let (events, cursor) = role_events(&api, &a.org, cursor).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let page = admin.get(&back).await;
    assert!(text(&page.body, "roles-applied", "</p>").contains("2 users' roles changed"));
    assert!(
        page.body
            .contains(&format!("href=\"/portal/groups/{}\">Admins</a>", a.admins))
    );

    // The user's page says why: the group, and the request that added the membership.
    let user = admin.get(&format!("/portal/users/{}", a.alice)).await;
    let why = text(&user.body, "user-roles", "</article>");
    assert!(why.contains("Administrator"), "{why}");
    assert!(why.contains("Admins"), "{why}");
    assert!(
        why.contains(&format!("Added by PUT /Groups/{} (+2 members)", a.admins)),
        "{why}"
    );
    let carol = admin.get(&format!("/portal/users/{}", a.carol)).await;
    assert!(text(&carol.body, "user-roles", "</article>").contains("The default role"),);

    // Taking the role off the group: previewed the other way, then applied.
    let remove = [
        ("directory", a.directory.as_str()),
        ("group", a.admins.as_str()),
        ("role", "admin"),
        ("change", "remove"),
    ];
    let preview = admin
        .post_form("/portal/roles/preview", &page.body, &remove)
        .await;
    assert_eq!(
        text(&preview.body, "preview-sentence", "</p>"),
        ("This change gives 2 users the role Member and removes Administrator from 2 users.")
    );
    let applied = admin
        .post_form("/portal/roles/apply", &preview.body, &remove)
        .await;
    assert_eq!(applied.status, 303);
    assert_eq!(roles_of(&api, &a.alice).await, json!(["member"]));
    let (events, _) = role_events(&api, &a.org, cursor).await;
    assert_eq!(events.len(), 2, "{events:?}");
}

backend_tests!(the_portal_refuses_groups_and_roles_of_another_organization);
async fn the_portal_refuses_groups_and_roles_of_another_organization(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let a = acme(&app, &api).await;
    api.call(
        "POST",
        &format!("/organizations/{}/roles", a.org),
        "/organizations/{id}/roles",
        Some(json!({"slug": "admin", "name": "Admin"})),
        201,
    )
    .await;
    let other = app.org("Globex", true);
    let globex = app.directory(&other, "okta");
    let their_group = globex
        .post("/Groups", &json!({"displayName": "Theirs"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let their_dir = globex.base.rsplit('/').next().unwrap().to_string();
    let mut admin = app.portal(&a.org).await;
    let page = admin.get("/portal/roles").await;
    for (directory, group, role, change) in [
        (a.directory.as_str(), their_group.as_str(), "admin", "add"),
        (their_dir.as_str(), their_group.as_str(), "admin", "add"),
        (
            a.directory.as_str(),
            a.admins.as_str(),
            "no-such-role",
            "add",
        ),
        (
            a.directory.as_str(),
            a.admins.as_str(),
            "admin",
            "delete-everything",
        ),
    ] {
        let fields = [
            ("directory", directory),
            ("group", group),
            ("role", role),
            ("change", change),
        ];
        for path in ["/portal/roles/preview", "/portal/roles/apply"] {
            let r = admin.post_form(path, &page.body, &fields).await;
            assert_eq!(r.status, 404, "{path} {fields:?}: {}", r.body);
        }
    }
    assert_eq!(
        admin
            .get(&format!("/portal/roles?directory={their_dir}"))
            .await
            .status,
        404
    );
    assert_eq!(roles_of(&api, &a.alice).await, json!([]));
    // Without the form's token the change is refused before it is looked at.
    let mut stranger = crate::helpers::Browser::new(&app.base);
    let fields = [
        ("directory", a.directory.as_str()),
        ("group", a.admins.as_str()),
        ("role", "admin"),
        ("change", "add"),
    ];
    let r = stranger
        .send("POST", "/portal/roles/apply", Some(&fields), &[])
        .await;
    assert_eq!(r.status, 403);
}

backend_tests!(the_owner_defines_and_removes_roles_and_sees_why_a_user_has_one);
async fn the_owner_defines_and_removes_roles_and_sees_why_a_user_has_one(backend: Backend) {
    let (app, api) = spawn(backend).await;
    let a = acme(&app, &api).await;
    let mut owner = app.owner().await;
    let org_page = owner.get(&format!("/owner/orgs/{}", a.org)).await;
    assert!(
        org_page
            .body
            .contains(&format!("/owner/orgs/{}/roles", a.org))
    );
    let roles_url = format!("/owner/orgs/{}/roles", a.org);
    let page = owner.get(&roles_url).await;
    assert_eq!(page.status, 200);
    assert!(element_text(&page.body, "no-roles").is_some());

    // A bad slug is refused with what to fix, and what was typed stays in the form.
    let bad = owner
        .post_form(
            &roles_url,
            &page.body,
            &[("name", "Admin"), ("slug", "Has Spaces")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        element_text(&bad.body, "role-refused")
            .unwrap()
            .contains("slug must be")
    );
    assert!(bad.body.contains("value=\"Has Spaces\""));

    let made = owner
        .post_form(
            &roles_url,
            &page.body,
            &[
                ("name", "Viewer"),
                ("slug", "viewer"),
                ("description", "Reads <everything>"),
                ("default", "on"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(
        roles_of(&api, &a.carol).await,
        json!(["viewer"]),
        "the default reaches users at once"
    );
    let page = owner.get(&roles_url).await;
    let table = text(&page.body, "roles-table", "</table>");
    assert!(
        table.contains("Viewer") && table.contains("Default"),
        "{table}"
    );
    assert!(
        !page.body.contains("Reads <everything>") && page.body.contains("Reads &"),
        "the description is escaped"
    );
    let dup = owner
        .post_form(
            &roles_url,
            &page.body,
            &[("name", "Other"), ("slug", "viewer")],
        )
        .await;
    assert_eq!(dup.status, 422);
    assert!(
        element_text(&dup.body, "role-refused")
            .unwrap()
            .contains("already exists")
    );

    // The console's user page explains the role.
    let users = owner.get(&format!("/owner/orgs/{}/users", a.org)).await;
    assert!(
        users
            .body
            .contains(&format!("/owner/orgs/{}/users/{}", a.org, a.carol))
    );
    let carol = owner
        .get(&format!("/owner/orgs/{}/users/{}", a.org, a.carol))
        .await;
    assert_eq!(carol.status, 200);
    assert!(text(&carol.body, "user-roles", "</article>").contains("The default role"));
    // Another organization's user is not found through this one.
    let other = app.org("Globex", true);
    assert_eq!(
        owner
            .get(&format!("/owner/orgs/{other}/users/{}", a.carol))
            .await
            .status,
        404
    );

    let removed = owner
        .post_form(&format!("{roles_url}/viewer/delete"), &page.body, &[])
        .await;
    assert_eq!(removed.status, 303);
    assert_eq!(roles_of(&api, &a.carol).await, json!([]));
    let page = owner.get(&roles_url).await;
    assert!(element_text(&page.body, "no-roles").is_some());
}
