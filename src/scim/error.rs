//! SCIM errors (RFC 7644 §3.12): a status, an optional `scimType` and a human-readable detail.

use serde_json::{Value, json};

const CONCURRENT_CONFLICT: &str = "a concurrent change got in the way; retry shortly";
const PAUSED: &str = "this directory is paused: Roster's deprovisioning brake held a burst of deactivations or deletions and an admin rejected them; requests are refused until an admin fixes the provider's scope and resumes the directory in the Admin Portal. Retry later: no change is lost";
/// Seconds a provider is asked to wait before retrying a paused directory.
const PAUSED_RETRY_AFTER: u64 = 300;

/// The `scimType` of an error body: which kind of 400 or 409 it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    InvalidSyntax,
    InvalidValue,
    InvalidPath,
    NoTarget,
    TooMany,
    Uniqueness,
}

impl ScimType {
    /// The name the RFC gives it, as the body carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
        }
    }
}

impl std::fmt::Display for ScimType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// A change that gave way to a concurrent one (a deadlock or serialization failure):
    /// nothing of it stands, and it can simply run again.
    pub fn concurrent_conflict() -> Self {
        ScimError::unavailable(CONCURRENT_CONFLICT)
    }

    pub fn is_concurrent_conflict(&self) -> bool {
        self.status == 503 && self.detail == CONCURRENT_CONFLICT
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidFilter), detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidSyntax), detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidValue), detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidPath), detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::NoTarget), detail)
    }
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::TooMany), detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(405, None, detail)
    }
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail)
    }
    /// The directory is paused by the deprovisioning brake (a 503, so that the provider keeps
    /// its changes and retries).
    pub fn paused() -> Self {
        Self::unavailable(PAUSED)
    }

    /// The `Retry-After` (seconds) of a 503: long for a paused directory, short otherwise.
    pub fn retry_after(&self) -> Option<u64> {
        match (self.status, self.detail.as_str()) {
            (503, PAUSED) => Some(PAUSED_RETRY_AFTER),
            (503, _) => Some(1),
            _ => None,
        }
    }

    pub fn internal() -> Self {
        Self::new(500, None, "internal error; the request was not applied")
    }

    /// The RFC 7644 §3.12 body; `status` is a string, as the RFC's examples and Okta expect.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [super::ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = Value::String(t.as_str().to_string());
        }
        body
    }
}
