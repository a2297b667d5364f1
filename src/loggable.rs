//! What a log line may say of a request's target: the path with every secret taken out.
//! Portal and setup links carry their secret in the path, and a secret pasted anywhere else
//! (a token in a made-up path) must not reach the log either; query strings are never logged
//! (`?access_token=…` and the like).

use crate::auth::tokens::SecretKind;

/// Paths whose segment after the prefix is a secret, whatever it looks like.
const SECRET_PATHS: [&str; 2] = ["/portal/link/", "/owner/setup/"];

/// Whether `text` holds one of Roster's secret prefixes, in any case. Runs for every logged
/// request, so it compares in place rather than lowercasing a copy.
fn looks_secret(text: &str) -> bool {
    let prefixes = SecretKind::ALL
        .iter()
        .map(|k| k.prefix())
        .chain([crate::db::webhooks::SECRET_PREFIX]);
    prefixes.into_iter().any(|p| {
        text.as_bytes()
            .windows(p.len())
            .any(|w| w.eq_ignore_ascii_case(p.as_bytes()))
    })
}

/// `path` as a log line may show it: link secrets and secret-shaped segments replaced.
pub fn path(path: &str) -> String {
    for prefix in SECRET_PATHS {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
        {
            let tail = rest
                .split_once('/')
                .map(|(_, t)| self::path(&format!("/{t}")));
            return format!("{prefix}[redacted]{}", tail.unwrap_or_default());
        }
    }
    if !looks_secret(path) {
        return path.to_string();
    }
    path.split('/')
        .map(|seg| if looks_secret(seg) { "[redacted]" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// Query parameters whose value is a credential, whatever it looks like.
fn secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "token",
        "password",
        "secret",
        "key",
        "code",
        "credential",
        "auth",
        "signature",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// A query string as a log may keep it: the values of credential-named parameters and of
/// anything shaped like one of Roster's secrets replaced, the rest as sent.
pub fn query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => {
                let decoded_name = url::form_urlencoded::parse(name.as_bytes())
                    .next()
                    .map(|(k, _)| k.into_owned())
                    .unwrap_or_default();
                if secret_param(&decoded_name) || looks_secret(value) {
                    format!("{name}=[redacted]")
                } else {
                    pair.to_string()
                }
            }
            None if looks_secret(pair) => "[redacted]".to_string(),
            None => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::{path, query};

    #[test]
    fn credentials_in_queries_are_redacted() {
        assert_eq!(
            query("access_token=abc&filter=userName%20eq%20%22a%22"),
            "access_token=[redacted]&filter=userName%20eq%20%22a%22"
        );
        assert_eq!(query("x=roster_scim_abc"), "x=[redacted]");
        assert_eq!(query("count=10&startIndex=1"), "count=10&startIndex=1");
        assert_eq!(query("API%5FKEY=1"), "API%5FKEY=[redacted]");
    }

    #[test]
    fn secrets_in_paths_are_redacted() {
        assert_eq!(
            path("/portal/link/roster_portal_abc"),
            "/portal/link/[redacted]"
        );
        assert_eq!(
            path("/owner/setup/roster_setup_abc"),
            "/owner/setup/[redacted]"
        );
        assert_eq!(path("/owner/setup/anything"), "/owner/setup/[redacted]");
        assert_eq!(path("/portal/users"), "/portal/users");
        assert_eq!(
            path("/scim/v2/roster_scim_x/Users"),
            "/scim/v2/[redacted]/Users"
        );
        assert_eq!(path("/x/ROSTER_KEY_abc"), "/x/[redacted]");
        assert_eq!(path("/scim/v2/d-1/Users/u-1"), "/scim/v2/d-1/Users/u-1");
    }
}
