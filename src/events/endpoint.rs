//! What a webhook endpoint may be: an http(s) URL and a filter of known event types, as the
//! JSON API, the owner console and the CLI accept them.

use crate::db;

/// Validates a webhook endpoint's URL and event-type filter; returns the filter as stored.
pub fn validate(url: &str, types: &[String]) -> Result<String, String> {
    let u = url::Url::parse(url).map_err(|_| format!("`{url}` is not a valid URL"))?;
    if u.scheme() != "https" && u.scheme() != "http" {
        return Err("the URL must be http(s)".into());
    }
    for t in types {
        let known = t == "*"
            || db::events::EVENT_TYPES.contains(&t.as_str())
            || t.strip_suffix(".*")
                .is_some_and(|p| ["user", "group", "directory"].contains(&p));
        if !known {
            return Err(format!(
                "unknown event type `{t}`; use one of {}, `user.*`, `group.*`, `directory.*` or `*`",
                db::events::EVENT_TYPES.join(", ")
            ));
        }
    }
    Ok(if types.is_empty() {
        "*".into()
    } else {
        types.join(",")
    })
}
