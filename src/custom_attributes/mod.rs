//! Custom attributes: values the app owner declares per organization (`department`,
//! `cost_center`), each read from a SCIM attribute path of the user's resource: the
//! declaration's default path, or the path a directory's IT admin set instead. Values are
//! computed from the resource when read, never stored (see the migration). `remap` applies a
//! change of paths to a directory's users, in steps, with their events.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::scim::source_path::SourcePath;

pub mod remap;

/// Attributes an organization may declare.
pub const MAX_PER_ORG: usize = 50;

/// A declared attribute's name: `[a-z][a-z0-9_]{0,63}`, as the application reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttributeName(String);

impl AttributeName {
    pub fn parse(text: &str) -> Result<AttributeName, String> {
        let ok = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(AttributeName(text.to_string()))
        } else {
            Err(format!(
                "`{}` is not a valid attribute name: use 1 to 64 lowercase letters, digits or `_`, starting with a letter (e.g. `cost_center`)",
                text.chars().take(80).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AttributeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Each declared attribute's value for one user (`None`: the path matched nothing); every
/// declared attribute has a key.
pub type Values = BTreeMap<String, Option<String>>;

/// The paths in force for one directory, by attribute name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mappings(Vec<(String, Option<SourcePath>)>);

impl Mappings {
    /// From (name, path) rows as stored; a stored path that no longer parses (it was checked
    /// when it went in) reads as matching nothing.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String)>) -> Mappings {
        let mut v: Vec<(String, Option<SourcePath>)> = rows
            .into_iter()
            .map(|(name, source)| (name, SourcePath::parse(&source).ok()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Mappings(v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values the paths give in a user's resource.
    pub fn values(&self, resource: &Value) -> Values {
        self.0
            .iter()
            .map(|(name, path)| {
                (
                    name.clone(),
                    path.as_ref().and_then(|p| p.evaluate(resource)),
                )
            })
            .collect()
    }

    /// `values` of a resource stored as JSON text.
    pub fn values_of_text(&self, resource: &str) -> Values {
        if self.is_empty() {
            return Values::new();
        }
        self.values(&serde_json::from_str(resource).unwrap_or(Value::Null))
    }
}

/// Whether a user's values differ: an attribute without a value is the same as one not
/// declared (a new declaration that matches nothing for a user moves nothing for them).
pub fn moved(before: &Values, after: &Values) -> bool {
    let get = |m: &Values, k: &str| m.get(k).cloned().flatten();
    before
        .keys()
        .chain(after.keys())
        .any(|k| get(before, k) != get(after, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for ok in ["department", "cost_center", "e2", "a"] {
            assert!(AttributeName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Department",
            "2fa",
            "cost-center",
            "_x",
            "a b",
            &"a".repeat(65),
        ] {
            let e = AttributeName::parse(bad).unwrap_err();
            assert!(e.contains("lowercase"), "{bad}: {e}");
        }
    }

    #[test]
    fn values_have_every_declared_key() {
        let m = Mappings::from_rows([
            ("title".to_string(), "title".to_string()),
            (
                "department".to_string(),
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".to_string(),
            ),
        ]);
        let v = m.values(&json!({"title": "CTO"}));
        assert_eq!(v.get("title"), Some(&Some("CTO".to_string())));
        assert_eq!(v.get("department"), Some(&None));
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({"department": null, "title": "CTO"})
        );
    }

    #[test]
    fn moved_ignores_attributes_without_values() {
        let a: Values = [("x".to_string(), None)].into();
        let b = Values::new();
        assert!(!moved(&a, &b));
        let c: Values = [("x".to_string(), Some("1".to_string()))].into();
        assert!(moved(&b, &c));
        assert!(moved(&c, &a));
        assert!(!moved(&c, &c.clone()));
    }
}
