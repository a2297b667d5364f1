//! How much one request may carry: bounds sized to what real providers send, so that no
//! single request (legal under the body cap) can hold the shared writer or memory for long.

use serde_json::Value;

use super::ScimError;

/// Most values one multi-valued attribute (emails, phoneNumbers, addresses, roles …) may
/// carry in a request. Providers send a handful; 100 leaves room for any real directory.
pub const MAX_MULTI_VALUED: usize = 100;

/// Most group members one request may name in all (a group PUT lists every member; PATCHes
/// add or remove them in batches). Larger groups are sent in several PATCH requests.
pub const MAX_MEMBERS_PER_REQUEST: usize = 50_000;

/// The first bound a request document breaks, as a SCIM 400 `tooMany` naming it.
pub fn check(document: &Value) -> Result<(), ScimError> {
    let mut members = 0usize;
    walk(document, "", None, &mut members)?;
    if members > MAX_MEMBERS_PER_REQUEST {
        return Err(ScimError::too_many(format!(
            "this request names {members} group members; at most {MAX_MEMBERS_PER_REQUEST} are \
             accepted in one request (send the rest in further PATCH requests)"
        )));
    }
    Ok(())
}

fn is_members(name: &str) -> bool {
    // `urn:…:Group:members[…]`: the attribute follows the schema URN's last colon before
    // any filter.
    let filter_at = name.find('[').unwrap_or(name.len());
    let name = match name[..filter_at].rfind(':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    };
    let (head, rest) = name.split_at(name.find(['[', '.']).unwrap_or(name.len()));
    head.eq_ignore_ascii_case("members") && (rest.is_empty() || rest.starts_with(['[', '.']))
}

/// Walks `v`, found at `at` under the attribute `name` (a PATCH operation's `value` is named
/// by the operation's `path`).
fn walk(v: &Value, at: &str, name: Option<&str>, members: &mut usize) -> Result<(), ScimError> {
    match v {
        Value::Array(items) => {
            match name {
                Some(n) if is_members(n) => *members += items.len(),
                Some(n) if n.eq_ignore_ascii_case("Operations") => {}
                _ if items.len() > MAX_MULTI_VALUED => {
                    return Err(ScimError::too_many(format!(
                        "`{}` carries {} values; a multi-valued attribute may carry at most \
                         {MAX_MULTI_VALUED}",
                        at.trim_start_matches('.'),
                        items.len()
                    )));
                }
                _ => {}
            }
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{at}[{i}]"), None, members)?;
            }
        }
        Value::Object(map) => {
            let op_path = map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .and_then(|(_, p)| p.as_str());
            for (k, inner) in map {
                let named = if k.eq_ignore_ascii_case("value") && op_path.is_some() {
                    op_path
                } else {
                    Some(k.as_str())
                };
                walk(inner, &format!("{at}.{k}"), named, members)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn values(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"value": format!("v{i}")})).collect()
    }

    #[test]
    fn multi_valued_attributes_are_bounded_anywhere() {
        assert!(check(&json!({"emails": values(MAX_MULTI_VALUED)})).is_ok());
        let e = check(&json!({"emails": values(MAX_MULTI_VALUED + 1)})).unwrap_err();
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(crate::scim::ScimType::TooMany))
        );
        assert!(e.detail.contains("`emails`"), "{}", e.detail);
        let patch =
            json!({"Operations": [{"op": "add", "path": "phoneNumbers", "value": values(500)}]});
        assert!(
            check(&patch)
                .unwrap_err()
                .detail
                .contains("Operations[0].value")
        );
        let ext = json!({"urn:x:User": {"tags": values(101)}});
        assert!(check(&ext).is_err());
    }

    #[test]
    fn members_are_bounded_per_request_not_per_attribute() {
        assert!(check(&json!({"displayName": "g", "members": values(10_000)})).is_ok());
        let patch = json!({"Operations": [
            {"op": "add", "path": "members", "value": values(30_000)},
            {"op": "remove", "path": "members", "value": values(30_000)},
        ]});
        let e = check(&patch).unwrap_err();
        assert!(e.detail.contains("60000 group members"), "{}", e.detail);
        let no_path = json!({"Operations": [{"op": "add", "value": {"members": values(200)}}]});
        assert!(check(&no_path).is_ok());
        assert!(is_members("members[value eq \"x:y\"]") && !is_members("membership"));
        assert!(is_members(
            "urn:ietf:params:scim:schemas:core:2.0:Group:members"
        ));
        assert!(is_members("Members.value"));
    }
}
