//! List queries (RFC 7644 §3.4.2): paging parameters and the ListResponse envelope.

use serde_json::{Value, json};

use super::filter::{self, AttrPath, Filter};
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
    /// `excludedAttributes=members` (Entra), or `attributes` without members: members are
    /// neither loaded nor returned.
    pub exclude_members: bool,
    /// `attributes`: return only these (plus `id` and `schemas`, always returned).
    pub attributes: Vec<AttrPath>,
    /// `excludedAttributes`: return all but these.
    pub excluded_attributes: Vec<AttrPath>,
    /// `sortBy`, if any, and whether `sortOrder=descending`.
    pub sort_by: Option<AttrPath>,
    pub sort_descending: bool,
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
    let paths = |name: &str| -> Result<Vec<AttrPath>, ScimError> {
        get(name)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(|a| {
                        AttrPath::parse(a)
                            .map_err(|e| ScimError::invalid_value(format!("`{name}`: {e}")))
                    })
                    .collect()
            })
            .unwrap_or_else(|| Ok(Vec::new()))
    };
    let sort_by = get("sortBy")
        .map(|a| AttrPath::parse(a).map_err(|e| ScimError::invalid_value(format!("`sortBy`: {e}"))))
        .transpose()?;
    let sort_descending = match get("sortOrder").map(str::to_ascii_lowercase).as_deref() {
        None | Some("ascending") => false,
        Some("descending") => true,
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "`sortOrder` must be ascending or descending, not `{other}`"
            )));
        }
    };
    Ok(ListQuery {
        filter,
        start_index,
        count,
        exclude_members,
        attributes: paths("attributes")?,
        excluded_attributes: paths("excludedAttributes")?,
        sort_by,
        sort_descending,
    })
}

/// The ListResponse envelope; `Resources` is always present, `[]` when empty.
pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        // Moved in, not serialized again as `json!` would do with a `Vec`.
        "Resources": Value::Array(resources),
    })
}

/// A ListResponse as text, serialized straight from its resources (see `Rendering`).
pub fn list_response_text<T: serde::Serialize>(
    total: i64,
    start_index: i64,
    resources: &[T],
) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ListResponse<'a, T> {
        schemas: [&'static str; 1],
        total_results: i64,
        start_index: i64,
        items_per_page: usize,
        #[serde(rename = "Resources")]
        resources: &'a [T],
    }
    serde_json::to_string(&ListResponse {
        schemas: [LIST_RESPONSE_SCHEMA],
        total_results: total,
        start_index,
        items_per_page: resources.len(),
        resources,
    })
    .unwrap_or_default()
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

/// Applies `attributes` / `excludedAttributes` to a rendered resource (RFC 7644 §3.9).
/// `id`, `schemas` and `meta` are always returned; `attributes` wins when both are given.
pub fn project(resource: serde_json::Value, q: &ListQuery) -> serde_json::Value {
    use serde_json::Map;
    if q.attributes.is_empty() && q.excluded_attributes.is_empty() {
        return resource;
    }
    let serde_json::Value::Object(map) = resource else {
        return resource;
    };
    let always = |k: &str| {
        ["id", "schemas", "meta"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(k))
    };
    let named = |paths: &[AttrPath], k: &str| -> Vec<AttrPath> {
        paths
            .iter()
            .filter(|p| match &p.urn {
                Some(urn) if !filter::is_core_urn(urn) => {
                    // `urn:…:User:department` selects inside the extension object `urn:…:User`.
                    urn.eq_ignore_ascii_case(k)
                        || format!("{urn}:{}", p.name).eq_ignore_ascii_case(k)
                }
                _ => p.name.eq_ignore_ascii_case(k),
            })
            .cloned()
            .collect()
    };
    let sub_pick = |v: &serde_json::Value, subs: &[&str], keep: bool| -> serde_json::Value {
        let pick = |o: &Map<String, serde_json::Value>| -> serde_json::Value {
            serde_json::Value::Object(
                o.iter()
                    .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)) == keep)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        };
        match v {
            serde_json::Value::Object(o) => pick(o),
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|i| i.as_object().map(pick).unwrap_or_else(|| i.clone()))
                    .collect(),
            ),
            other => other.clone(),
        }
    };
    let mut out = Map::new();
    for (k, v) in map {
        if always(&k) {
            out.insert(k, v);
            continue;
        }
        if !q.attributes.is_empty() {
            let hits = named(&q.attributes, &k);
            if hits.is_empty() {
                continue;
            }
            // Whole attribute asked for, or only some sub-attributes.
            let subs: Vec<&str> = hits
                .iter()
                .filter_map(|p| match &p.urn {
                    Some(urn) if !filter::is_core_urn(urn) && urn.eq_ignore_ascii_case(&k) => {
                        Some(p.name.as_str())
                    }
                    _ => p.sub.as_deref(),
                })
                .collect();
            let whole = hits.iter().any(|p| {
                p.sub.is_none()
                    && !p
                        .urn
                        .as_ref()
                        .is_some_and(|u| !filter::is_core_urn(u) && u.eq_ignore_ascii_case(&k))
            });
            out.insert(k, if whole { v } else { sub_pick(&v, &subs, true) });
        } else {
            let hits = named(&q.excluded_attributes, &k);
            if hits.iter().any(|p| {
                p.sub.is_none()
                    && !p
                        .urn
                        .as_ref()
                        .is_some_and(|u| !filter::is_core_urn(u) && u.eq_ignore_ascii_case(&k))
            }) {
                continue;
            }
            let subs: Vec<&str> = hits
                .iter()
                .filter_map(|p| match &p.urn {
                    Some(urn) if !filter::is_core_urn(urn) && urn.eq_ignore_ascii_case(&k) => {
                        Some(p.name.as_str())
                    }
                    _ => p.sub.as_deref(),
                })
                .collect();
            out.insert(
                k,
                if subs.is_empty() {
                    v
                } else {
                    sub_pick(&v, &subs, false)
                },
            );
        }
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod projection_tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> ListQuery {
        parse_query(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn attributes_and_excluded_attributes() {
        let r = json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x", "type": "work"}], "meta": {"version": "W/\"1\""},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "manager": {"value": "m"}}});
        let p = project(
            r.clone(),
            &q(&[(
                "attributes",
                "userName,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            )]),
        );
        assert_eq!(
            p,
            json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "A"}, "meta": {"version": "W/\"1\""},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}})
        );
        let p = project(
            r,
            &q(&[(
                "excludedAttributes",
                "emails,name.familyName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            )]),
        );
        assert!(p.get("emails").is_none());
        assert_eq!(p["name"], json!({"givenName": "A"}));
        assert_eq!(
            p["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"department": "D"})
        );
        assert_eq!(p["id"], "1");
    }

    #[test]
    fn sort_order_is_validated() {
        assert!(q(&[("sortBy", "userName"), ("sortOrder", "DESCENDING")]).sort_descending);
        assert!(parse_query(&[("sortOrder".to_string(), "sideways".to_string())]).is_err());
    }
}
