//! Mapping between SCIM JSON and what Roster stores: validation and normalisation of incoming
//! Users and Groups (tolerating what real providers send), and rendering of stored resources.

use serde_json::{Map, Value};

use super::filter::get_ci;
use super::{ENTERPRISE_USER_SCHEMA, ResourceType, ScimError};

/// Attributes a client may send but never sets (RFC 7643 `mutability: readOnly`), plus
/// `password`, which Roster never stores.
pub const USER_READ_ONLY: &[&str] = &["id", "meta", "groups", "password"];
pub const GROUP_READ_ONLY: &[&str] = &["id", "meta"];

/// Legacy spellings of the enterprise extension URN, stored under the standard one.
const LEGACY_ENTERPRISE: &[&str] = &[
    "urn:scim:schemas:extension:enterprise:2.0",
    "urn:scim:schemas:extension:enterprise:1.0",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User",
];

/// Characters that render as nothing: a name with one is a look-alike of the name without.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// The form compared for uniqueness and case-insensitive filters: trimmed, invisible
/// characters dropped, Unicode compatibility-normalized (NFKC: `Ａ`, `ﬁ`, a decomposed `é`
/// compare as `A`, `fi`, `é`) and lowercased. Two userNames with the same form are one user.
pub fn normalize(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let trimmed = s.trim();
    if trimmed.is_ascii() {
        return trimmed.to_ascii_lowercase();
    }
    let visible: String = trimmed.chars().filter(|c| !invisible(*c)).collect();
    // Lowercasing can leave a string out of normal form; normalizing again settles it.
    visible
        .nfkc()
        .collect::<String>()
        .to_lowercase()
        .nfkc()
        .collect::<String>()
        .trim()
        .to_string()
}

/// Which `normalize` the stored comparison forms were made with: `db::renormalize` brings a
/// database made by an older one up to date.
pub const NORMALIZATION_VERSION: &str = "nfkc-lower-1";

/// One email address of a user, as indexed for filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailEntry {
    pub value_norm: String,
    pub type_norm: Option<String>,
    pub primary: bool,
}

/// A validated User: indexed columns plus the document that keeps every attribute sent.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInput {
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub emails: Vec<EmailEntry>,
    pub primary_email: Option<String>,
    /// Group ids sent in `groups` (read-only in RFC 7643, but Okta and PingOne send it).
    pub groups: Option<Vec<String>>,
    /// The resource without read-only attributes, `schemas`, or empty values.
    pub document: Value,
}

/// A validated Group. `members` is `None` when the request did not mention members.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: Option<Vec<String>>,
    pub document: Value,
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, ScimError> {
    body.as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))
}

/// Drops read-only attributes, `schemas`, nulls and empty strings (Entra sends `"title":null`,
/// OneLogin empty strings), and moves legacy enterprise keys to the standard URN.
fn clean(body: &Map<String, Value>, read_only: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in body {
        if read_only.iter().any(|r| r.eq_ignore_ascii_case(k)) || k.eq_ignore_ascii_case("schemas")
        {
            continue;
        }
        let v = strip_empty(v.clone());
        if v.is_null() {
            continue;
        }
        let key = if LEGACY_ENTERPRISE.iter().any(|l| l.eq_ignore_ascii_case(k))
            || k.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)
        {
            ENTERPRISE_USER_SCHEMA.to_string()
        } else {
            k.clone()
        };
        out.insert(key, v);
    }
    out
}

fn strip_empty(v: Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => Value::Null,
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, strip_empty(v)))
                .filter(|(_, v)| !v.is_null())
                .collect(),
        ),
        other => other,
    }
}

fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<String>, ScimError> {
    match obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
    {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ScimError::invalid_value(format!(
            "`{what}` must be a string"
        ))),
    }
}

/// `active` as a JSON boolean or the strings Entra sends (`"True"`, `"False"`).
pub fn parse_active(v: &Value) -> Result<bool, ScimError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(ScimError::invalid_value(format!(
            "`active` must be true or false, not {other}"
        ))),
    }
}

/// Renames keys that match a well-known attribute case-insensitively to its canonical case,
/// so `UserName` and `userName` cannot both end up in one document.
fn canonical_keys(obj: &mut Map<String, Value>, names: &[&str]) {
    for name in names {
        if let Some(k) = obj
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name) && k != name)
            .cloned()
            && let Some(v) = obj.remove(&k)
        {
            obj.insert(name.to_string(), v);
        }
    }
}

/// Validates and normalises a User from a POST/PUT body or a patched document.
pub fn user_from_json(body: &Value) -> Result<UserInput, ScimError> {
    let groups = match get_ci(body, "groups") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|g| match get_ci(g, "value") {
                    Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(ScimError::invalid_value(
                        "each of `groups` needs a string `value` (the group's id)",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(ScimError::invalid_value("`groups` must be an array")),
    };
    let mut doc = clean(as_object(body)?, USER_READ_ONLY);
    normalize_enterprise(&mut doc)?;
    canonical_keys(
        &mut doc,
        &[
            "userName",
            "externalId",
            "active",
            "displayName",
            "name",
            "emails",
        ],
    );
    let user_name = match doc.get("userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None => {
            return Err(ScimError::invalid_value("`userName` is required"));
        }
        Some(_) => return Err(ScimError::invalid_value("`userName` must be a string")),
    };
    if user_name.len() > 1024 {
        return Err(ScimError::invalid_value(
            "`userName` is longer than 1024 characters",
        ));
    }
    let external_id = opt_string(&doc, "externalId", "externalId")?;
    let active = match doc.get("active") {
        None => true,
        Some(v) => parse_active(v)?,
    };
    doc.insert("active".into(), Value::Bool(active));
    let display_name = opt_string(&doc, "displayName", "displayName")?;
    let (given_name, family_name) = match doc.get("name") {
        None => (None, None),
        Some(name @ Value::Object(_)) => {
            let obj = name.as_object().ok_or_else(ScimError::internal)?;
            (
                opt_string(obj, "givenName", "name.givenName")?,
                opt_string(obj, "familyName", "name.familyName")?,
            )
        }
        Some(_) => return Err(ScimError::invalid_value("`name` must be an object")),
    };
    // OneLogin may send `emails` as one object instead of an array.
    if let Some(single @ Value::Object(_)) = doc.get_mut("emails") {
        let one = single.take();
        *single = Value::Array(vec![one]);
    }
    let emails = match doc.get("emails") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let value = match item {
                    Value::String(s) => s.clone(),
                    Value::Object(_) => match get_ci(item, "value") {
                        Some(Value::String(s)) => s.clone(),
                        _ => {
                            return Err(ScimError::invalid_value(
                                "each email needs a string `value`",
                            ));
                        }
                    },
                    _ => return Err(ScimError::invalid_value("each email must be an object")),
                };
                let primary = match get_ci(item, "primary") {
                    Some(v) => parse_active(v).map_err(|_| {
                        ScimError::invalid_value("`emails.primary` must be true or false")
                    })?,
                    None => false,
                };
                let type_norm = get_ci(item, "type").and_then(Value::as_str).map(normalize);
                Ok(EmailEntry {
                    value_norm: normalize(&value),
                    type_norm,
                    primary,
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(ScimError::invalid_value("`emails` must be an array")),
    };
    let primary_email = emails
        .iter()
        .find(|e| e.primary)
        .or(emails.first())
        .map(|e| e.value_norm.clone())
        .or_else(|| user_name.contains('@').then(|| normalize(&user_name)));
    Ok(UserInput {
        user_name,
        external_id,
        active,
        display_name,
        given_name,
        family_name,
        emails,
        primary_email,
        groups,
        document: Value::Object(doc),
    })
}

/// The enterprise extension, typed: string attributes must be strings (numbers are accepted
/// and kept as strings), and `manager` in any shape providers send (a bare id, `{"value":…}`,
/// or a one-element array) is stored in the RFC shape `{"value": …}` that Entra reads back.
fn normalize_enterprise(doc: &mut Map<String, Value>) -> Result<(), ScimError> {
    let Some(ext) = doc.get_mut(ENTERPRISE_USER_SCHEMA) else {
        return Ok(());
    };
    let Value::Object(ext) = ext else {
        return Err(ScimError::invalid_value(format!(
            "`{ENTERPRISE_USER_SCHEMA}` must be an object"
        )));
    };
    for key in [
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
    ] {
        if let Some(k) = ext.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned() {
            match ext.get(&k) {
                Some(Value::String(_)) => {}
                Some(Value::Number(n)) => {
                    let s = n.to_string();
                    ext.insert(k, Value::String(s));
                }
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "enterprise `{key}` must be a string"
                    )));
                }
            }
        }
    }
    if let Some(k) = ext
        .keys()
        .find(|k| k.eq_ignore_ascii_case("manager"))
        .cloned()
    {
        let manager = ext.remove(&k).unwrap_or(Value::Null);
        let one = match manager {
            Value::Array(mut items) if items.len() <= 1 => items.pop().unwrap_or(Value::Null),
            Value::Array(_) => {
                return Err(ScimError::invalid_value(
                    "enterprise `manager` takes one value",
                ));
            }
            other => other,
        };
        let value = match &one {
            Value::String(s) => Some(s.clone()),
            Value::Object(_) => match get_ci(&one, "value") {
                Some(Value::String(s)) => Some(s.clone()),
                None | Some(Value::Null) => None,
                Some(_) => {
                    return Err(ScimError::invalid_value(
                        "enterprise `manager.value` must be a string",
                    ));
                }
            },
            Value::Null => None,
            _ => {
                return Err(ScimError::invalid_value(
                    "enterprise `manager` must be an id or an object",
                ));
            }
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            let mut m = Map::new();
            m.insert("value".into(), Value::String(v));
            if let Some(Value::String(d)) = get_ci(&one, "displayName") {
                m.insert("displayName".into(), Value::String(d.clone()));
            }
            if let Some(Value::String(r)) = get_ci(&one, "$ref") {
                m.insert("$ref".into(), Value::String(r.clone()));
            }
            ext.insert("manager".into(), Value::Object(m));
        }
    }
    if ext.is_empty() {
        doc.remove(ENTERPRISE_USER_SCHEMA);
    }
    Ok(())
}

/// For PUT: what a provider omits is kept for the attributes that must never be cleared by
/// omission (PingOne "cannot clear an attribute"; a missing `active` must not reactivate).
pub fn merge_put(existing: &Value, body: &Value) -> Result<Value, ScimError> {
    let mut merged = as_object(body)?.clone();
    for key in ["userName", "externalId", "active"] {
        let present = merged.keys().any(|k| k.eq_ignore_ascii_case(key));
        if !present && let Some(v) = get_ci(existing, key) {
            merged.insert(key.to_string(), v.clone());
        }
    }
    Ok(Value::Object(merged))
}

/// Validates a Group from a POST/PUT body or a patched document.
pub fn group_from_json(body: &Value) -> Result<GroupInput, ScimError> {
    let mut doc = clean(as_object(body)?, GROUP_READ_ONLY);
    canonical_keys(&mut doc, &["displayName", "externalId", "members"]);
    let display_name = match doc.get("displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None => {
            return Err(ScimError::invalid_value("`displayName` is required"));
        }
        Some(_) => return Err(ScimError::invalid_value("`displayName` must be a string")),
    };
    let external_id = opt_string(&doc, "externalId", "externalId")?;
    let members = match doc.remove("members") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|m| match get_ci(m, "value") {
                    Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(ScimError::invalid_value(
                        "each member needs a string `value` (the user's id)",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(ScimError::invalid_value("`members` must be an array")),
    };
    Ok(GroupInput {
        display_name,
        external_id,
        members,
        document: Value::Object(doc),
    })
}

/// Fields of a stored resource needed to render it.
#[derive(Clone, Copy)]
pub struct Stored<'a> {
    pub id: &'a str,
    pub document: &'a str,
    pub version: i64,
    pub created: chrono::NaiveDateTime,
    pub last_modified: chrono::NaiveDateTime,
}

/// A reference to a user in a group or a group in a user.
pub struct Reference {
    pub id: String,
    pub display: Option<String>,
}

pub fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A version as its weak ETag, also `meta.version`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Renders a stored resource as SCIM JSON: `schemas`, `id`, the stored attributes, `members`
/// or `groups` when given, and `meta`.
pub fn render(
    kind: ResourceType,
    stored: &Stored<'_>,
    base_url: &str,
    references: Option<&[Reference]>,
) -> Value {
    serde_json::to_value(Rendering {
        kind,
        stored: *stored,
        base_url,
        references,
    })
    .unwrap_or(Value::Null)
}

/// A resource's URL (`meta.location`, and a created resource's `Location`).
pub fn location(base_url: &str, kind: ResourceType, id: &str) -> String {
    format!("{base_url}/{}/{id}", kind.endpoint())
}

/// A stored resource as SCIM JSON (see `render`), serialized straight from the stored text:
/// the document's attributes are copied as raw JSON, not parsed into values and written out
/// again, which is most of the cost of a page of 100 users.
pub struct Rendering<'a> {
    pub kind: ResourceType,
    pub stored: Stored<'a>,
    pub base_url: &'a str,
    pub references: Option<&'a [Reference]>,
}

impl serde::Serialize for Rendering<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Unreadable stored text renders as no attributes rather than failing the response.
        let doc: indexmap::IndexMap<String, &serde_json::value::RawValue> =
            serde_json::from_str(self.stored.document).unwrap_or_default();
        let (references_key, target) = match self.kind {
            ResourceType::Group => ("members", "Users"),
            ResourceType::User => ("groups", "Groups"),
        };
        let schemas: Vec<&str> = std::iter::once(self.kind.core_schema())
            .chain(
                doc.keys()
                    .filter(|k| k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")))
                    .map(String::as_str),
            )
            .collect();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("schemas", &schemas)?;
        map.serialize_entry("id", self.stored.id)?;
        for (k, v) in &doc {
            // Never stored (see `clean`); skipped so a key cannot appear twice.
            let computed = matches!(k.as_str(), "schemas" | "id" | "meta")
                || (self.references.is_some() && k == references_key);
            if !computed {
                map.serialize_entry(k, v)?;
            }
        }
        if let Some(refs) = self.references {
            let items: Vec<ReferenceJson<'_>> = refs
                .iter()
                .map(|r| ReferenceJson {
                    value: &r.id,
                    reference: format!("{}/{target}/{}", self.base_url, r.id),
                    display: r.display.as_deref(),
                    kind: (self.kind == ResourceType::Group).then_some("User"),
                })
                .collect();
            map.serialize_entry(references_key, &items)?;
        }
        map.serialize_entry(
            "meta",
            &Meta {
                resource_type: self.kind.name(),
                created: rfc3339(self.stored.created),
                last_modified: rfc3339(self.stored.last_modified),
                location: location(self.base_url, self.kind, self.stored.id),
                version: etag(self.stored.version),
            },
        )?;
        map.end()
    }
}

#[derive(serde::Serialize)]
struct ReferenceJson<'a> {
    value: &'a str,
    #[serde(rename = "$ref")]
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    resource_type: &'static str,
    created: String,
    last_modified: String,
    location: String,
    version: String,
}

#[cfg(test)]
mod normalize_tests {
    use super::normalize;

    #[test]
    fn look_alikes_normalize_to_one_form() {
        let plain = normalize("Jose@Acme.com");
        assert_eq!(plain, "jose@acme.com");
        assert_eq!(normalize("  JOSE@acme.COM "), plain);
        // Decomposed and composed é, fullwidth letters, zero-width characters.
        assert_eq!(
            normalize("Jose\u{301}@acme.com"),
            normalize("Jos\u{e9}@acme.com")
        );
        assert_eq!(normalize("\u{FF2A}ose@acme.com"), plain);
        assert_eq!(normalize("jo\u{200B}se@acme.com"), plain);
        assert_eq!(normalize("jose@acme.com\u{FEFF}"), plain);
        assert_ne!(normalize("josé@acme.com"), plain, "accents still count");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rendering_splices_the_stored_attributes_in_order() {
        let document = json!({
            "userName": "ann@example.com",
            ENTERPRISE_USER_SCHEMA: {"department": "Sales \"East\""},
            "name": {"givenName": "Ann"},
        })
        .to_string();
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 29)
            .and_then(|d| d.and_hms_opt(5, 6, 7))
            .unwrap();
        let stored = Stored {
            id: "u1",
            document: &document,
            version: 3,
            created: at,
            last_modified: at,
        };
        let refs = [Reference {
            id: "g1".into(),
            display: Some("Admins".into()),
        }];
        let rendering = Rendering {
            kind: ResourceType::User,
            stored,
            base_url: "https://r.example/scim/v2/d",
            references: Some(&refs),
        };
        let text = serde_json::to_string(&rendering).unwrap();
        assert_eq!(
            text,
            json!({
                "schemas": [crate::scim::USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "id": "u1",
                "userName": "ann@example.com",
                ENTERPRISE_USER_SCHEMA: {"department": "Sales \"East\""},
                "name": {"givenName": "Ann"},
                "groups": [{"value": "g1", "$ref": "https://r.example/scim/v2/d/Groups/g1", "display": "Admins"}],
                "meta": {
                    "resourceType": "User",
                    "created": "2026-11-29T05:06:07.000Z",
                    "lastModified": "2026-11-29T05:06:07.000Z",
                    "location": "https://r.example/scim/v2/d/Users/u1",
                    "version": "W/\"3\"",
                },
            })
            .to_string()
        );
        // The value form is the same document.
        let value = render(
            ResourceType::User,
            &stored,
            "https://r.example/scim/v2/d",
            Some(&refs),
        );
        assert_eq!(value.to_string(), text);
    }

    #[test]
    fn pingone_user_is_normalised_and_keeps_every_attribute() {
        let u = user_from_json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_SCHEMA],
            "userName": "JDoe@Acme.com",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"value": "JDoe@acme.com", "type": "work", "primary": true}],
            "externalId": "p1-123",
            "active": true,
            ENTERPRISE_USER_SCHEMA: {"department": "R&D"},
            "id": "ignored", "password": "secret", "title": null, "nickName": ""
        }))
        .unwrap();
        assert_eq!(u.user_name, "JDoe@Acme.com");
        assert_eq!(u.given_name.as_deref(), Some("Jane"));
        assert_eq!(u.primary_email.as_deref(), Some("jdoe@acme.com"));
        assert_eq!(u.emails[0].type_norm.as_deref(), Some("work"));
        let doc = u.document.as_object().unwrap();
        assert!(!doc.contains_key("id") && !doc.contains_key("password"));
        assert!(!doc.contains_key("title") && !doc.contains_key("nickName"));
        assert_eq!(doc[ENTERPRISE_USER_SCHEMA]["department"], "R&D");
    }

    #[test]
    fn entra_string_booleans_and_onelogin_single_email() {
        let u = user_from_json(
            &json!({"userName": "a", "active": "False", "emails": {"value": "a@x"}}),
        )
        .unwrap();
        assert!(!u.active);
        assert_eq!(u.emails.len(), 1);
        assert_eq!(u.document["emails"], json!([{"value": "a@x"}]));
        assert_eq!(
            user_from_json(&json!({"userName": "a", "active": "maybe"}))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn missing_user_name_or_display_name_is_invalid_value() {
        assert_eq!(
            user_from_json(&json!({"name": {}})).unwrap_err().scim_type,
            Some(crate::scim::ScimType::InvalidValue)
        );
        assert_eq!(
            user_from_json(&json!([])).unwrap_err().scim_type,
            Some(crate::scim::ScimType::InvalidSyntax)
        );
        assert_eq!(
            group_from_json(&json!({"members": []})).unwrap_err().status,
            400
        );
        assert_eq!(
            group_from_json(&json!({"displayName": "g", "members": [{"display": "x"}]}))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn enterprise_manager_in_every_shape_is_stored_in_rfc_shape() {
        for manager in [
            json!("m1"),
            json!({"value": "m1"}),
            json!([{"value": "m1", "$ref": null}]),
        ] {
            let u = user_from_json(&json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"manager": manager, "employeeNumber": 42}})).unwrap();
            assert_eq!(
                u.document[ENTERPRISE_USER_SCHEMA]["manager"],
                json!({"value": "m1"})
            );
            assert_eq!(u.document[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");
        }
        let legacy = user_from_json(&json!({"userName": "a", "urn:scim:schemas:extension:enterprise:2.0": {"department": "D"}})).unwrap();
        assert_eq!(legacy.document[ENTERPRISE_USER_SCHEMA]["department"], "D");
        assert!(
            user_from_json(&json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"department": []}}))
                .is_err()
        );
        let groups =
            user_from_json(&json!({"userName": "a", "groups": [{"value": "g1"}]})).unwrap();
        assert_eq!(groups.groups, Some(vec!["g1".to_string()]));
    }

    #[test]
    fn put_keeps_user_name_external_id_and_active_when_omitted() {
        let existing = json!({"userName": "a", "externalId": "x", "active": false, "title": "t"});
        let merged = merge_put(&existing, &json!({"name": {"givenName": "A"}})).unwrap();
        assert_eq!(merged["userName"], "a");
        assert_eq!(merged["externalId"], "x");
        assert_eq!(merged["active"], false);
        assert!(merged.get("title").is_none());
    }
}
