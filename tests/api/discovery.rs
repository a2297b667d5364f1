//! The schema documents `/Schemas` serves hold against what Roster really returns: every
//! attribute of a real response is declared, with the declared type and plurality, and nothing
//! declared `returned: never` comes back.

use serde_json::{Value, json};

use crate::helpers::{Backend, Scim, TestApp, backend_tests};

fn check_against(attrs: &[Value], resource: &serde_json::Map<String, Value>, at: &str) {
    for (name, value) in resource {
        let Some(def) = attrs.iter().find(|a| {
            a["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }) else {
            panic!("`{at}{name}` is returned but not declared in the schema");
        };
        assert_ne!(
            def["returned"], "never",
            "`{at}{name}` is declared returned: never"
        );
        let multi = def["multiValued"].as_bool().unwrap();
        let items: Vec<&Value> = match (multi, value) {
            (true, Value::Array(items)) => items.iter().collect(),
            (true, other) => panic!("`{at}{name}` is multi-valued but returned as {other}"),
            (false, Value::Array(_)) => {
                panic!("`{at}{name}` is single-valued but returned as an array")
            }
            (false, v) => vec![v],
        };
        for item in items {
            let ty = def["type"].as_str().unwrap();
            let fits = match ty {
                "string" | "reference" | "dateTime" | "binary" => item.is_string(),
                "boolean" => item.is_boolean(),
                "integer" => item.is_i64() || item.is_u64(),
                "decimal" => item.is_number(),
                "complex" => item.is_object(),
                _ => false,
            };
            assert!(fits, "`{at}{name}` is declared {ty} but returned as {item}");
            if let (Some(sub), Value::Object(obj)) = (def["subAttributes"].as_array(), item) {
                check_against(sub, obj, &format!("{at}{name}."));
            }
        }
    }
}

async fn schema(scim: &Scim, urn: &str) -> Vec<Value> {
    let doc = scim.get(&format!("/Schemas/{urn}")).await;
    assert_eq!(doc.status, 200, "{}", doc.body);
    doc.json()["attributes"].as_array().unwrap().clone()
}

backend_tests!(real_responses_hold_against_the_served_schemas);
async fn real_responses_hold_against_the_served_schemas(backend: Backend) {
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let (user_attrs, ent_attrs, group_attrs) = (
        schema(&scim, USER).await,
        schema(&scim, ENTERPRISE).await,
        schema(&scim, GROUP).await,
    );
    let manager = scim
        .post("/Users", &json!({"userName": "boss@x.com"}))
        .await
        .json();
    let body = json!({
        "schemas": [USER, ENTERPRISE],
        "userName": "full@x.com", "externalId": "ext-1", "displayName": "Full User",
        "nickName": "F", "title": "T", "userType": "Employee", "preferredLanguage": "en-US",
        "locale": "en-US", "timezone": "Europe/Paris", "active": true, "password": "hunter2hunter2",
        "profileUrl": "https://x.example/full",
        "name": {"givenName": "Full", "familyName": "User", "formatted": "Full User", "middleName": "M",
                 "honorificPrefix": "Dr", "honorificSuffix": "Jr"},
        "emails": [{"value": "full@x.com", "type": "work", "primary": true, "display": "w"}],
        "phoneNumbers": [{"value": "+1 555", "type": "mobile", "primary": false}],
        "ims": [{"value": "full", "type": "xmpp"}],
        "photos": [{"value": "https://x.example/p.png", "type": "photo"}],
        "addresses": [{"streetAddress": "1 Main", "locality": "Paris", "region": "IdF", "postalCode": "75001",
                       "country": "FR", "formatted": "1 Main, Paris", "type": "work", "primary": true}],
        "entitlements": [{"value": "e1"}], "roles": [{"value": "r1", "primary": true}],
        "x509Certificates": [{"value": "TUlJ"}],
        ENTERPRISE: {"employeeNumber": "42", "costCenter": "C", "organization": "O", "division": "D",
                     "department": "Dep", "manager": {"value": manager["id"]}}
    });
    let created = scim.post("/Users", &body).await;
    assert_eq!(created.status, 201, "{backend:?}: {}", created.body);
    let group = scim
        .post("/Groups", &json!({"displayName": "G", "externalId": "g-1", "members": [{"value": created.json()["id"]}]}))
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let user = scim
        .get(&format!(
            "/Users/{}",
            created.json()["id"].as_str().unwrap()
        ))
        .await
        .json();
    let group = scim
        .get(&format!("/Groups/{}", group.json()["id"].as_str().unwrap()))
        .await
        .json();

    // Common attributes (RFC 7643 §3.1) are not part of the resource schemas.
    let common = ["schemas", "id", "meta"];
    let mut u = user.as_object().unwrap().clone();
    u.retain(|k, _| !common.contains(&k.as_str()));
    let ent = u.remove(ENTERPRISE).expect("the extension is returned");
    check_against(&user_attrs, &u, "");
    check_against(&ent_attrs, ent.as_object().unwrap(), "enterprise:");
    assert!(
        user.get("password").is_none(),
        "{backend:?}: a password came back"
    );
    let mut g = group.as_object().unwrap().clone();
    g.retain(|k, _| !common.contains(&k.as_str()));
    check_against(&group_attrs, &g, "");
}
