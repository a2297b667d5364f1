//! List queries (RFC 7644 §3.4.2): paging parameters and the ListResponse envelope.

use serde_json::{Value, json};

use super::filter::{self, Filter};
use super::{LIST_RESPONSE_SCHEMA, ScimError};

/// Default page size when a client sends no `count`.
pub const DEFAULT_COUNT: i64 = 100;
/// Largest page Roster returns (advertised as `filter.maxResults`).
pub const MAX_COUNT: i64 = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// 1-based, as in SCIM.
    pub start_index: i64,
    pub count: i64,
    /// `excludedAttributes=members` (Entra): don't load members for list pages.
    pub exclude_members: bool,
}

/// Parses query parameters (names case-insensitive; unknown ones ignored; empty values count
/// as absent). Out-of-range `startIndex`/`count` are clamped as RFC 7644 §3.4.2.4 says.
pub fn parse_query(pairs: &[(String, String)]) -> Result<ListQuery, ScimError> {
    let get = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    };
    let number = |name: &str, default: i64| -> Result<i64, ScimError> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| ScimError::invalid_value(format!("`{name}` must be an integer"))),
        }
    };
    let filter = get("filter").map(filter::parse).transpose()?;
    let start_index = number("startIndex", 1)?.max(1);
    let count = number("count", DEFAULT_COUNT)?.clamp(0, MAX_COUNT);
    let mentions_members = |v: Option<&str>| {
        v.is_some_and(|list| {
            list.split(',')
                .any(|a| a.trim().eq_ignore_ascii_case("members"))
        })
    };
    let exclude_members = mentions_members(get("excludedAttributes"))
        || get("attributes").is_some_and(|a| !mentions_members(Some(a)));
    Ok(ListQuery {
        filter,
        start_index,
        count,
        exclude_members,
    })
}

/// The ListResponse envelope; `Resources` is always present, `[]` when empty.
pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, ScimError> {
        parse_query(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn paging_is_clamped_and_names_case_insensitive() {
        let l = q(&[
            ("STARTINDEX", "0"),
            ("count", "5000"),
            ("aadOptscim062020", ""),
        ])
        .unwrap();
        assert_eq!((l.start_index, l.count), (1, MAX_COUNT));
        let l = q(&[("count", "-3"), ("filter", "")]).unwrap();
        assert_eq!(l.count, 0);
        assert!(l.filter.is_none());
        assert_eq!(q(&[("count", "ten")]).unwrap_err().status, 400);
    }

    #[test]
    fn excluded_members_is_detected() {
        assert!(
            q(&[("excludedAttributes", "members")])
                .unwrap()
                .exclude_members
        );
        assert!(q(&[("attributes", "displayName")]).unwrap().exclude_members);
        assert!(
            !q(&[("attributes", "displayName,members")])
                .unwrap()
                .exclude_members
        );
        assert!(!q(&[]).unwrap().exclude_members);
    }

    #[test]
    fn empty_list_has_empty_resources_array() {
        let r = list_response(0, 1, vec![]);
        assert_eq!(r["Resources"], json!([]));
        assert_eq!(r["totalResults"], 0);
    }
}
