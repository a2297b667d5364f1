//! The seed flow, end to end over HTTP: owner → Admin Portal → Configure
//! PingIdentity → PingOne's requests → state through SCIM GETs and the portal's pages.

use serde_json::json;

use crate::helpers::{Backend, Browser, Scim, TestApp, backend_tests, element_text};

backend_tests!(seed_flow_owner_portal_pingone_push_users_and_groups_views);
async fn seed_flow_owner_portal_pingone_push_users_and_groups_views(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed_flow(&app).await;
}

async fn seed_flow(app: &TestApp) {
    // 1. The owner claims the setup link and signs in.
    let setup = roster::db::owners::create_setup_link(&mut app.conn()).unwrap();
    let mut owner = Browser::new(&app.base);
    let form = owner.get(&format!("/owner/setup/{setup}")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Set up the owner account"));
    let r = owner
        .post_form(
            &format!("/owner/setup/{setup}"),
            &form.body,
            &[
                ("password", "correct horse battery"),
                ("confirm", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The link is single-use.
    let again = owner.get(&format!("/owner/setup/{setup}")).await;
    assert!(again.body.contains("invalid, expired or already used"));

    // Sign out and back in with the password.
    let home = owner.get("/owner").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("No organizations yet"));
    let out = owner.post_form("/owner/logout", &home.body, &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(owner.get("/owner").await.status, 303);
    let login = owner.get("/owner/login").await;
    let bad = owner
        .post_form(
            "/owner/login",
            &login.body,
            &[("password", "wrong password!")],
        )
        .await;
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("That password is not right"));
    let ok = owner
        .post_form(
            "/owner/login",
            &bad.body,
            &[("password", "correct horse battery")],
        )
        .await;
    assert_eq!(ok.status, 303);

    // 2. The owner creates "Acme", enables SCIM with the htmx toggle, makes a portal link.
    let home = owner.get("/owner").await;
    let created = owner
        .post_form("/owner/orgs", &home.body, &[("name", "Acme")])
        .await;
    assert_eq!(created.status, 303);
    let org_path = created.header("location").unwrap().to_string();
    let org_page = owner.get(&org_path).await;
    assert!(org_page.body.contains("Turn SCIM Provisioning on"));
    let token = crate::helpers::csrf_token(&org_page.body);
    let toggled = owner
        .send(
            "POST",
            &format!("{org_path}/scim"),
            Some(&[("enabled", "on")]),
            &[("HX-Request", "true"), ("X-CSRF-Token", &token)],
        )
        .await;
    assert_eq!(toggled.status, 200);
    assert!(
        toggled.body.contains("Turn SCIM Provisioning off"),
        "{}",
        toggled.body
    );
    assert!(
        !toggled.body.contains("<html"),
        "an htmx toggle returns a fragment"
    );
    let link_resp = owner
        .post_form(
            &format!("{org_path}/portal-links"),
            &org_page.body,
            &[("ttl_days", "7")],
        )
        .await;
    assert_eq!(link_resp.status, 200);
    let link = element_text(&link_resp.body, "portal-link-url").expect("portal link shown");
    assert!(
        link.starts_with(&format!("{}/portal/link/roster_portal_", app.base)),
        "{link}"
    );

    // 3. The IT admin opens the link: the SCIM Provisioning tab, then Configure PingIdentity.
    let mut admin = Browser::new(&app.base);
    let opened = admin.get(&link).await;
    assert_eq!(opened.status, 303);
    let portal = admin.get("/portal").await;
    assert_eq!(portal.header("location"), Some("/portal/scim"));
    let tab = admin.get("/portal/scim").await;
    assert_eq!(tab.status, 200);
    assert!(tab.body.contains(">SCIM Provisioning</a>"));
    for name in [
        "PingIdentity",
        "Okta",
        "Microsoft Entra ID",
        "OneLogin",
        "JumpCloud",
        "Rippling",
        "Generic SCIM 2.0",
    ] {
        assert!(
            tab.body
                .contains(&format!("aria-label=\"Configure {name}\"")),
            "picker offers {name}"
        );
    }
    // Post/Redirect/Get: Configure redirects to the directory's page, which shows the token.
    let posted = admin
        .post_form(
            "/portal/scim/configure",
            &tab.body,
            &[("provider", "pingidentity")],
        )
        .await;
    assert_eq!(posted.status, 303, "{}", posted.body);
    let location = posted.header("location").unwrap().to_string();
    assert!(
        location.starts_with("/portal/scim/directories/"),
        "{location}"
    );
    let configured = admin.get(&location).await;
    assert_eq!(configured.status, 200, "{}", configured.body);
    assert_eq!(configured.header("cache-control"), Some("no-store"));
    let endpoint = element_text(&configured.body, "endpoint-url").unwrap();
    let bearer = element_text(&configured.body, "bearer-token").unwrap();
    assert!(
        endpoint.starts_with(&format!("{}/scim/v2/", app.base)),
        "absolute endpoint URL: {endpoint}"
    );
    assert!(!endpoint.ends_with('/'));
    let dir_id = endpoint.rsplit('/').next().unwrap().to_string();
    assert!(
        dir_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "Okta-safe id"
    );
    assert!(bearer.starts_with("roster_scim_"));
    assert!(configured.body.contains("Waiting for the first request"));
    assert!(
        configured.body.contains("SCIM Outbound"),
        "PingIdentity guide shown"
    );
    // The token is shown once: the directory page never shows it again, and only its hash is stored.
    let dir_page = admin
        .get(&format!("/portal/scim/directories/{dir_id}"))
        .await;
    assert!(!dir_page.body.contains(&bearer));
    let stored: Vec<Vec<u8>> = {
        use diesel::prelude::*;
        use roster::db::schema::directory_tokens::dsl::*;
        directory_tokens
            .select(sha256)
            .load(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(stored, vec![roster::auth::tokens::hash(&bearer)]);

    // 4. PingOne's requests (steps T0–T10 of the PingOne transcript in
    // docs/provider-pitfalls.md), with the token shown.
    let scim = Scim::new(endpoint.clone(), bearer.clone());
    let lookup = scim
        .get("/Users?filter=username%20Eq%20%22jdoe%40acme.com%22")
        .await;
    assert_eq!(lookup.status, 200);
    assert_eq!(lookup.header("content-type"), Some("application/scim+json"));
    assert_eq!(lookup.json()["totalResults"], 0);
    assert_eq!(lookup.json()["Resources"], json!([]));

    // The status line has changed, as the live poll fetches it.
    let status = admin
        .hx_get(&format!("/portal/scim/directories/{dir_id}/status"))
        .await;
    assert!(
        status.body.contains("Connected, last request at"),
        "{}",
        status.body
    );

    let jane = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "userName": "jdoe@acme.com",
                "name": {"givenName": "Jane", "familyName": "Doe"},
                "emails": [{"value": "jdoe@acme.com", "type": "work", "primary": true}],
                "externalId": "p1-0001",
                "active": true,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            }),
        )
        .await;
    assert_eq!(jane.status, 201, "{}", jane.body);
    let jane_json = jane.json();
    let jane_id = jane_json["id"].as_str().unwrap().to_string();
    assert_eq!(
        jane.header("location"),
        Some(format!("{endpoint}/Users/{jane_id}").as_str())
    );
    assert_eq!(jane_json["meta"]["resourceType"], "User");
    assert_eq!(
        jane_json["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "R&D"
    );

    let found = scim
        .get("/Users?filter=username%20Eq%20%22JDOE%40ACME.COM%22")
        .await;
    assert_eq!(
        found.json()["totalResults"],
        1,
        "userName matches case-insensitively"
    );
    assert_eq!(found.json()["Resources"][0]["id"], jane_id.as_str());

    // T3: PUT with the full object, renaming Jane.
    let put = scim
        .put(
            &format!("/Users/{jane_id}"),
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "jdoe@acme.com",
                "name": {"givenName": "Janet", "familyName": "Doe"},
                "emails": [{"value": "jdoe@acme.com", "type": "work", "primary": true}],
                "active": true
            }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json()["name"]["givenName"], "Janet");
    assert_eq!(
        put.json()["externalId"],
        "p1-0001",
        "PUT keeps externalId it omits"
    );

    let bob = scim
        .post("/Users", &json!({"userName": "bob@acme.com", "name": {"givenName": "Bob", "familyName": "Roe"}, "active": true}))
        .await;
    assert_eq!(bob.status, 201);
    let bob_id = bob.json()["id"].as_str().unwrap().to_string();

    // T6: group lookup by name, then create with a member.
    let glookup = scim
        .get("/Groups?filter=displayName%20eq%20%22Engineering%22")
        .await;
    assert_eq!(glookup.json()["totalResults"], 0);
    let group = scim
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "members": [{"value": jane_id}]}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let gid = group.json()["id"].as_str().unwrap().to_string();
    assert_eq!(group.json()["members"].as_array().unwrap().len(), 1);

    // T4: PUT the group with the full members list.
    let gput = scim
        .put(
            &format!("/Groups/{gid}"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "members": [{"value": jane_id}, {"value": bob_id}]}),
        )
        .await;
    assert_eq!(gput.status, 200, "{}", gput.body);
    let mut members: Vec<String> = gput.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    members.sort();
    let mut expected = vec![jane_id.clone(), bob_id.clone()];
    expected.sort();
    assert_eq!(members, expected);

    // T8: deactivate Jane with PUT active:false; she stays readable and keeps her group.
    let deact = scim
        .put(&format!("/Users/{jane_id}"), &json!({"userName": "jdoe@acme.com", "name": {"givenName": "Janet", "familyName": "Doe"}, "active": false}))
        .await;
    assert_eq!(deact.status, 200);
    let jane_now = scim.get(&format!("/Users/{jane_id}")).await.json();
    assert_eq!(jane_now["active"], false);
    assert_eq!(jane_now["groups"][0]["value"], gid.as_str());
    assert_eq!(jane_now["groups"][0]["display"], "Engineering");

    // T9: delete Bob; he is gone from reads and from the group.
    assert_eq!(scim.delete(&format!("/Users/{bob_id}")).await.status, 204);
    assert_eq!(scim.get(&format!("/Users/{bob_id}")).await.status, 404);
    let g = scim.get(&format!("/Groups/{gid}")).await.json();
    assert_eq!(g["members"].as_array().unwrap().len(), 1);
    assert_eq!(scim.get("/Users").await.json()["totalResults"], 1);

    // 5. The portal's Users and Groups views show the pushed state.
    let users = admin.get("/portal/users").await;
    assert!(users.body.contains("Janet Doe"), "{}", users.body);
    assert!(users.body.contains("Inactive"));
    assert!(!users.body.contains("bob@acme.com"));
    let rows = admin.hx_get("/portal/users?q=janet").await;
    assert!(
        rows.body.trim_start().starts_with("<div id=\"user-rows\""),
        "htmx gets the rows fragment"
    );
    assert!(!rows.body.contains("<html"));
    assert!(rows.body.contains("Janet Doe"));
    let none = admin.hx_get("/portal/users?q=nobody").await;
    assert!(none.body.contains("No match"));
    let user_page = admin.get(&format!("/portal/users/{jane_id}")).await;
    assert!(user_page.body.contains("Engineering"));
    assert!(
        user_page
            .body
            .contains("&#34;givenName&#34;: &#34;Janet&#34;"),
        "raw attributes shown: {}",
        user_page.body
    );
    let groups = admin.get("/portal/groups").await;
    assert!(groups.body.contains("Engineering"));
    let group_page = admin.get(&format!("/portal/groups/{gid}")).await;
    assert!(group_page.body.contains("Janet Doe"));
    assert!(group_page.body.contains("1 members"));

    // The owner sees the directory with its counts.
    let org_page = owner.get(&org_path).await;
    assert!(org_page.body.contains("PingIdentity"));
}
