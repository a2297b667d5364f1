//! A custom attribute's source: a SCIM attribute path (`title`, `emails[type eq "work"].value`,
//! `urn:…:enterprise:2.0:User:department`), parsed with the PATCH path parser, and its
//! evaluation against a user's resource to one text value. Pure.

use serde_json::Value;

use super::filter::{AttrPath, Filter, get_ci, is_core_urn, parse_patch_path};

/// Longest source path accepted (the parser bounds its work; this bounds what is stored).
const MAX_LEN: usize = 512;

/// A parsed source path, with the text it was parsed from.
#[derive(Debug, Clone)]
pub struct SourcePath {
    text: String,
    attr: AttrPath,
    filter: Option<Filter>,
    /// The sub-attribute after a value filter (`emails[…].value`).
    sub: Option<String>,
}

impl PartialEq for SourcePath {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl SourcePath {
    /// Parses a path, or says why it is refused.
    pub fn parse(text: &str) -> Result<SourcePath, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the source path is empty".into());
        }
        if text.len() > MAX_LEN {
            return Err(format!(
                "the source path is longer than {MAX_LEN} characters"
            ));
        }
        let (attr, filter, sub) = parse_patch_path(text)
            .map_err(|e| format!("`{text}` is not a SCIM attribute path: {e}"))?;
        // A password is never sent back by SCIM, and must not leave Roster in events.
        if attr.name.eq_ignore_ascii_case("password") && attr.urn_is_core() {
            return Err("`password` cannot be a source".into());
        }
        Ok(SourcePath {
            text: text.to_string(),
            attr,
            filter,
            sub,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value this path designates in a user's resource, as text: the first match, a
    /// multi-valued attribute's `primary` element first; a complex value gives its `value`.
    /// `None` when nothing (or only null or "") is there.
    pub fn evaluate(&self, resource: &Value) -> Option<String> {
        let container = match &self.attr.urn {
            Some(urn) if !is_core_urn(urn) => get_ci(resource, urn)?,
            _ => resource,
        };
        let top = get_ci(container, &self.attr.name)?;
        let mut elements: Vec<&Value> = match top {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        if let Some(f) = &self.filter {
            elements.retain(|e| f.matches(e));
        }
        // Stable: the primary element first, the others in the order sent.
        elements.sort_by_key(|e| get_ci(e, "primary") != Some(&Value::Bool(true)));
        let sub = self.sub.as_deref().or(self.attr.sub.as_deref());
        elements
            .into_iter()
            .filter_map(|e| match sub {
                Some(s) => get_ci(e, s),
                None => Some(e),
            })
            .find_map(text_of)
    }
}

impl std::fmt::Display for SourcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A scalar as text; a complex value through its `value` sub-attribute.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(_) => get_ci(v, "value").and_then(|inner| match inner {
            Value::Object(_) => None,
            other => text_of(other),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:CustomExt";

    fn ada() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, CUSTOM],
            "userName": "ada@example.com",
            "title": "Countess",
            "emails": [
                {"value": "ada@home.example", "type": "home"},
                {"value": "ada@example.com", "type": "work", "primary": true},
                {"value": "ada.l@example.com", "type": "work"}
            ],
            "addresses": [
                {"type": "home", "locality": "Marylebone"},
                {"type": "work", "locality": "London", "country": "GB"}
            ],
            ENTERPRISE: {
                "department": "Engineering",
                "employeeNumber": 1815,
                "manager": {"value": "babbage-id", "displayName": "Charles Babbage"}
            },
            CUSTOM: {"costCenter": "CC-42"}
        })
    }

    fn eval(path: &str, doc: &Value) -> Option<String> {
        SourcePath::parse(path).unwrap().evaluate(doc)
    }

    #[test]
    fn a_core_attribute() {
        assert_eq!(eval("title", &ada()).as_deref(), Some("Countess"));
        assert_eq!(eval("userName", &ada()).as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn names_and_urns_ignore_case() {
        assert_eq!(eval("TITLE", &ada()).as_deref(), Some("Countess"));
        assert_eq!(
            eval(&format!("{}:Department", ENTERPRISE.to_uppercase()), &ada()).as_deref(),
            Some("Engineering")
        );
        assert_eq!(
            eval("EMAILS[TYPE eq \"WORK\"].VALUE", &ada()).as_deref(),
            Some("ada@example.com")
        );
    }

    #[test]
    fn the_enterprise_extension() {
        let p = |a: &str| format!("{ENTERPRISE}:{a}");
        assert_eq!(
            eval(&p("department"), &ada()).as_deref(),
            Some("Engineering")
        );
        // Numbers as text; a complex value gives its `value`, or a named sub-attribute.
        assert_eq!(eval(&p("employeeNumber"), &ada()).as_deref(), Some("1815"));
        assert_eq!(eval(&p("manager"), &ada()).as_deref(), Some("babbage-id"));
        assert_eq!(
            eval(&p("manager.displayName"), &ada()).as_deref(),
            Some("Charles Babbage")
        );
    }

    #[test]
    fn a_custom_extension() {
        assert_eq!(
            eval(&format!("{CUSTOM}:costCenter"), &ada()).as_deref(),
            Some("CC-42")
        );
        // The same attribute name under another schema is another attribute.
        assert_eq!(
            eval(
                "urn:ietf:params:scim:schemas:extension:other:2.0:User:costCenter",
                &ada()
            ),
            None
        );
    }

    #[test]
    fn a_core_urn_adds_nothing() {
        assert_eq!(
            eval("urn:ietf:params:scim:schemas:core:2.0:User:title", &ada()).as_deref(),
            Some("Countess")
        );
    }

    #[test]
    fn multi_valued_with_a_filter() {
        // Two work emails: the primary one wins.
        assert_eq!(
            eval("emails[type eq \"work\"].value", &ada()).as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(
            eval("emails[type eq \"home\"].value", &ada()).as_deref(),
            Some("ada@home.example")
        );
        assert_eq!(
            eval("addresses[type eq \"work\"].locality", &ada()).as_deref(),
            Some("London")
        );
        assert_eq!(
            eval(
                "addresses[type eq \"work\" and country eq \"GB\"].locality",
                &ada()
            )
            .as_deref(),
            Some("London")
        );
        assert_eq!(eval("emails[type eq \"other\"].value", &ada()), None);
    }

    #[test]
    fn multi_valued_without_a_filter() {
        // The primary element first, else the first sent.
        assert_eq!(
            eval("emails.value", &ada()).as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(eval("emails", &ada()).as_deref(), Some("ada@example.com"));
        assert_eq!(
            eval("addresses.locality", &ada()).as_deref(),
            Some("Marylebone")
        );
        // Without a sub-attribute, a filtered element gives its `value`.
        assert_eq!(
            eval("emails[type eq \"home\"]", &ada()).as_deref(),
            Some("ada@home.example")
        );
    }

    #[test]
    fn missing_values() {
        let bare = json!({"userName": "x", "title": "", "nickName": null});
        assert_eq!(eval("title", &bare), None, "empty text is no value");
        assert_eq!(eval("nickName", &bare), None);
        assert_eq!(eval("emails[type eq \"work\"].value", &bare), None);
        assert_eq!(eval(&format!("{ENTERPRISE}:department"), &bare), None);
        assert_eq!(
            eval("addresses.locality", &json!({"addresses": [{}]})),
            None
        );
        // A structure with no `value` is no value.
        assert_eq!(eval("name", &json!({"name": {"givenName": "Ada"}})), None);
        assert_eq!(
            eval("name.givenName", &json!({"name": {"givenName": "Ada"}})).as_deref(),
            Some("Ada")
        );
    }

    #[test]
    fn bad_paths_are_refused_with_a_reason() {
        for bad in [
            "",
            "   ",
            "emails[type eq",
            "emails[type eq \"work\"]x",
            "a b",
            "9x",
        ] {
            let err = SourcePath::parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(
            SourcePath::parse("password")
                .unwrap_err()
                .contains("password")
        );
        assert!(SourcePath::parse(&"a".repeat(600)).is_err());
    }
}
