//! Discovery documents (RFC 7644 §4): what Roster really supports, from the same constants the
//! server enforces.

use serde_json::{Value, json};

use super::limits::{MAX_MEMBERS_PER_REQUEST, MAX_MULTI_VALUED};
use super::list::MAX_COUNT;
use super::patch::MAX_OPERATIONS;
use super::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// Largest request body accepted, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;

/// Roster's extension of `ServiceProviderConfig`: the limits a strict client should know.
pub const LIMITS_SCHEMA: &str =
    "urn:roster:params:scim:schemas:extension:limits:2.0:ServiceProviderConfig";

pub fn service_provider_config(base_url: &str) -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
            LIMITS_SCHEMA
        ],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": MAX_PAYLOAD_BYTES},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "The Bearer token shown once when the directory was configured in the Admin Portal.",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}/ServiceProviderConfig"),
        },
        LIMITS_SCHEMA: {
            "maxPatchOperations": MAX_OPERATIONS,
            "maxMultiValuedValues": MAX_MULTI_VALUED,
            "maxGroupMembersPerRequest": MAX_MEMBERS_PER_REQUEST
        }
    })
}

/// The resource types, by id (`User`, `Group`).
fn resource_type_documents(base_url: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User", "name": "User", "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/User")}
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group", "name": "Group", "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/Group")}
        }),
    ]
}

fn list(items: Vec<Value>) -> Value {
    let n = i64::try_from(items.len()).unwrap_or(i64::MAX);
    super::list::list_response(n, 1, items)
}

pub fn resource_types(base_url: &str) -> Value {
    list(resource_type_documents(base_url))
}

/// One resource type by its id (as RFC 7644 §4 writes it, `User` or `Group`; any case).
pub fn resource_type(base_url: &str, id: &str) -> Option<Value> {
    resource_type_documents(base_url)
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
}

/// The schema documents (RFC 7643 §7, §8.7), complete and true to what Roster stores,
/// returns and validates; kept as JSON beside this file.
const SCHEMA_DOCUMENTS: [&str; 7] = [
    include_str!("schemas/user.json"),
    include_str!("schemas/enterprise_user.json"),
    include_str!("schemas/group.json"),
    include_str!("schemas/roster_limits.json"),
    include_str!("schemas/service_provider_config.json"),
    include_str!("schemas/resource_type.json"),
    include_str!("schemas/schema.json"),
];

fn schema_documents(base_url: &str) -> Vec<Value> {
    SCHEMA_DOCUMENTS
        .iter()
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .map(|mut doc| {
            let id = doc["id"].as_str().unwrap_or_default().to_string();
            doc["meta"] = json!({
                "resourceType": "Schema",
                "location": format!("{base_url}/Schemas/{id}")
            });
            doc
        })
        .collect()
}

pub fn schemas(base_url: &str) -> Value {
    list(schema_documents(base_url))
}

/// One schema by its URN (compared without regard to case, as URNs are).
pub fn schema(base_url: &str, id: &str) -> Option<Value> {
    schema_documents(base_url)
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_document_parses_and_is_served() {
        for text in SCHEMA_DOCUMENTS {
            let doc: Value = serde_json::from_str(text).expect("schema documents are JSON");
            let id = doc["id"].as_str().expect("a schema has an id");
            assert!(schema("http://x", id).is_some(), "{id}");
            assert!(
                doc["attributes"].as_array().is_some_and(|a| !a.is_empty()),
                "{id}"
            );
        }
        assert_eq!(schemas("http://x")["totalResults"], SCHEMA_DOCUMENTS.len());
        assert!(schema("http://x", "nope").is_none());
        assert!(resource_type("http://x", "user").is_some());
        assert!(resource_type("http://x", "Nope").is_none());
    }

    #[test]
    fn every_advertised_schema_has_a_document() {
        let spc = service_provider_config("http://x");
        for urn in spc["schemas"].as_array().unwrap() {
            assert!(schema("http://x", urn.as_str().unwrap()).is_some(), "{urn}");
        }
        for rt in resource_type_documents("http://x") {
            assert!(schema("http://x", rt["schema"].as_str().unwrap()).is_some());
            for ext in rt["schemaExtensions"].as_array().unwrap() {
                assert!(schema("http://x", ext["schema"].as_str().unwrap()).is_some());
            }
        }
    }
}
