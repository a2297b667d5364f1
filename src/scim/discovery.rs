//! Discovery documents (RFC 7644 §4): what Roster really supports, from the same constants the
//! server enforces.

use serde_json::{Value, json};

use super::list::MAX_COUNT;
use super::patch::MAX_OPERATIONS;
use super::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// Largest request body accepted, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;

pub fn service_provider_config(base_url: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": null,
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
        "urn:roster:params:scim:limits": {"maxPatchOperations": MAX_OPERATIONS}
    })
}

pub fn resource_types(base_url: &str) -> Value {
    let items = vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User", "name": "User", "endpoint": "/Users",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/User")}
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group", "name": "Group", "endpoint": "/Groups",
            "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/Group")}
        }),
    ];
    super::list::list_response(2, 1, items)
}

fn attr(
    name: &str,
    ty: &str,
    multi: bool,
    required: bool,
    case_exact: bool,
    mutability: &str,
    uniqueness: &str,
) -> Value {
    json!({
        "name": name, "type": ty, "multiValued": multi, "required": required,
        "caseExact": case_exact, "mutability": mutability, "returned": "default",
        "uniqueness": uniqueness
    })
}

pub fn schemas(base_url: &str) -> Value {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA, "name": "User", "description": "User Account",
        "attributes": [
            attr("userName", "string", false, true, false, "readWrite", "server"),
            attr("externalId", "string", false, false, true, "readWrite", "none"),
            attr("displayName", "string", false, false, false, "readWrite", "none"),
            attr("active", "boolean", false, false, false, "readWrite", "none"),
            attr("name", "complex", false, false, false, "readWrite", "none"),
            attr("emails", "complex", true, false, false, "readWrite", "none"),
            attr("groups", "complex", true, false, false, "readOnly", "none"),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{USER_SCHEMA}")}
    });
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA, "name": "Group", "description": "Group",
        "attributes": [
            attr("displayName", "string", false, true, false, "readWrite", "server"),
            attr("externalId", "string", false, false, true, "readWrite", "none"),
            attr("members", "complex", true, false, false, "readWrite", "none"),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{GROUP_SCHEMA}")}
    });
    super::list::list_response(2, 1, vec![user, group])
}
