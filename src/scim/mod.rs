//! The SCIM 2.0 protocol core (RFC 7643/7644): filter parsing and evaluation, PATCH, resource
//! mapping, list queries, discovery documents and errors. Pure: no I/O, unit-tested on its own.

pub mod discovery;
pub mod error;
pub mod filter;
pub mod limits;
pub mod list;
pub mod patch;
pub mod redact;
pub mod resource;
pub mod source_path;

pub use error::{ScimError, ScimType};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Media type of every SCIM response.
pub const CONTENT_TYPE: &str = "application/scim+json";

/// The two resource types Roster serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    User,
    Group,
}

impl ResourceType {
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::User => "User",
            ResourceType::Group => "Group",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceType::User => "Users",
            ResourceType::Group => "Groups",
        }
    }

    pub fn core_schema(self) -> &'static str {
        match self {
            ResourceType::User => USER_SCHEMA,
            ResourceType::Group => GROUP_SCHEMA,
        }
    }
}

/// The first string (key or value) of `value` that holds U+0000, as its JSON path. JSON allows
/// `\u0000` but PostgreSQL text cannot store it, and no directory attribute needs it: such a
/// document is refused on both backends alike, before it reaches storage.
pub fn nul_in(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in(v).map(|at| format!("[{i}]{at}"))),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                return Some(format!(".{}", k.replace('\0', "\\u0000")));
            }
            nul_in(v).map(|at| format!(".{k}{at}"))
        }),
        _ => None,
    }
}

/// A request document, refused (400 invalidValue) when a string in it holds U+0000, and
/// (400 tooMany) when it carries more values than `limits` allows.
pub fn check_document(value: &serde_json::Value) -> Result<(), ScimError> {
    match nul_in(value) {
        None => limits::check(value),
        Some(at) => Err(ScimError::invalid_value(format!(
            "the string at `{}` contains U+0000 (NUL), which SCIM attributes cannot hold",
            at.trim_start_matches('.')
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_nul_anywhere_in_a_document_is_found_with_its_path() {
        assert_eq!(super::nul_in(&json!({"userName": "a", "n": 1})), None);
        assert_eq!(
            super::nul_in(&json!({"name": {"givenName": "a\u{0}"}})).as_deref(),
            Some(".name.givenName")
        );
        assert_eq!(
            super::nul_in(&json!({"emails": [{"value": "x"}, {"value": "\u{0}"}]})).as_deref(),
            Some(".emails[1].value")
        );
        assert_eq!(
            super::nul_in(&json!({"a\u{0}": 1})).as_deref(),
            Some(".a\\u0000")
        );
        let refused = super::check_document(&json!({"userName": "x\u{0}y"})).unwrap_err();
        assert_eq!(
            (refused.status, refused.scim_type),
            (400, Some(super::ScimType::InvalidValue))
        );
        assert!(refused.detail.contains("`userName`"), "{}", refused.detail);
    }
}
