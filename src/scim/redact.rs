//! What the request log keeps of a body: secrets replaced, size bounded.

use serde_json::Value;

/// Longest request body kept in the log, in bytes.
pub const MAX_LOGGED_BODY: usize = 16 * 1024;
/// Longest response excerpt kept in the log, in bytes.
pub const MAX_LOGGED_RESPONSE: usize = 2 * 1024;

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential"]
        .iter()
        .any(|s| k.contains(s))
}

const REDACTED: &str = "[redacted]";

fn redact_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            redact_patch_operation(map);
            for (k, inner) in map.iter_mut() {
                if is_secret_key(k) {
                    *inner = Value::String(REDACTED.into());
                } else {
                    redact_value(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// The attribute a SCIM path ends at: `urn:…:User:password` → `password`,
/// `emails[type eq "work"].value` → `value`, `name.givenName` → `givenName`.
fn path_leaf(path: &str) -> &str {
    let without_filter = match (path.find('['), path.rfind(']')) {
        (Some(open), Some(close)) if close > open => {
            let after = &path[close + 1..];
            if after.is_empty() {
                &path[..open]
            } else {
                after
            }
        }
        _ => path,
    };
    without_filter
        .rsplit(['.', ':'])
        .next()
        .unwrap_or(without_filter)
}

/// A PATCH operation (`{"op", "path", "value"}`) whose path names a secret (a `password`
/// anywhere, in any case) keeps its path but not its value: the value is the secret.
fn redact_patch_operation(op: &mut serde_json::Map<String, Value>) {
    let path_names_secret = op.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("path")
            && v.as_str()
                .is_some_and(|p| is_secret_key(p) || is_secret_key(path_leaf(p)))
    });
    if path_names_secret {
        for (k, v) in op.iter_mut() {
            if k.eq_ignore_ascii_case("value") {
                *v = Value::String(REDACTED.into());
            }
        }
    }
}

/// Longest prefix of a body that is not JSON kept in the log.
const MAX_UNPARSED_PREFIX: usize = 256;

/// What the log keeps of a body that is not valid JSON: its size and the shape of its start,
/// with every string that is not an object key replaced (a secret may sit in any of them,
/// and without a parse there is no telling which attribute a value belongs to).
fn unparsed_summary(body: &[u8]) -> String {
    let prefix = String::from_utf8_lossy(&body[..body.len().min(MAX_UNPARSED_PREFIX)]);
    let chars: Vec<char> = prefix.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '"' {
            // Outside strings only JSON's punctuation, literals and numbers are kept.
            let c = chars[i];
            let kept = c.is_ascii_punctuation()
                || c.is_ascii_digit()
                || c.is_whitespace()
                || matches!(c, 't' | 'r' | 'u' | 'e' | 'f' | 'a' | 'l' | 's' | 'n');
            // A run of anything else (it may be a secret sent unquoted) shows as one `…`.
            if kept {
                out.push(c);
            } else if !out.ends_with('…') {
                out.push('…');
            }
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < chars.len() && chars[i] != '"' {
            i += if chars[i] == '\\' { 2 } else { 1 };
        }
        let closed = i < chars.len();
        let text: String = chars[start..i.min(chars.len())].iter().collect();
        i += 1;
        let next = chars
            .get(i..)
            .and_then(|rest| rest.iter().find(|c| !c.is_whitespace()));
        if closed && next == Some(&':') && !text.contains(['\\']) {
            out.push_str(&text);
            out.push('"');
        } else {
            out.push_str("\"…\"");
        }
    }
    let cut = if body.len() > MAX_UNPARSED_PREFIX {
        " …"
    } else {
        ""
    };
    format!(
        "[not valid JSON, {} bytes; strings hidden] {out}{cut}",
        body.len()
    )
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &s[..end], s.len() - end)
}

/// A request body as the log keeps it: JSON with secrets replaced; other text bounded.
pub fn request_body(body: &[u8]) -> Option<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            redact_value(&mut v);
            v.to_string()
        }
        // Not JSON (the request failed as invalidSyntax): its size and shape only.
        Err(_) => unparsed_summary(body),
    };
    Some(truncate(&text, MAX_LOGGED_BODY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_redacted_everywhere() {
        let body = br#"{"userName":"a","password":"hunter2","x":[{"apiToken":"t"}],"urn:x":{"Secret":"s"}}"#;
        let out = request_body(body).unwrap();
        assert!(
            !out.contains("hunter2") && !out.contains("\"t\"") && !out.contains("\"s\""),
            "{out}"
        );
        assert!(out.contains("\"userName\":\"a\""));
    }

    #[test]
    fn long_bodies_are_cut_on_char_boundaries() {
        let s = "é".repeat(MAX_LOGGED_BODY);
        let t = truncate(&s, 5);
        assert!(t.starts_with("éé") && t.contains("bytes cut"));
        assert_eq!(request_body(b"   "), None);
        assert!(
            request_body(b"{not json")
                .unwrap()
                .contains("not valid JSON, 9 bytes")
        );
    }

    #[test]
    fn patch_values_are_redacted_by_their_path() {
        for path in [
            "password",
            "PASSWORD",
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User:backupPassword",
            "credentials[type eq \"x\"].pin",
        ] {
            for op in ["add", "replace", "Replace"] {
                let body = serde_json::json!({"Operations": [
                    {"op": op, "path": path, "value": "hunter2"},
                    {"op": op, "path": "title", "value": "Boss"}
                ]});
                let out = request_body(body.to_string().as_bytes()).unwrap();
                assert!(!out.contains("hunter2"), "{path}: {out}");
                assert!(out.contains("Boss"), "{path}: {out}");
                assert!(
                    out.contains(path.split('[').next().unwrap_or(path)) || path.contains('\\'),
                    "{out}"
                );
            }
        }
        // Values of other paths stay, even when they merely look like words.
        let body = br#"{"Operations":[{"op":"replace","path":"displayName","value":"Pass Word"}]}"#;
        assert!(request_body(body).unwrap().contains("Pass Word"));
    }

    #[test]
    fn bodies_that_do_not_parse_keep_no_string_values() {
        let body = br#"{"Operations":[{"op":"replace","value":"hunter2","path":"password"}"#;
        let out = request_body(body).unwrap();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains(&format!("{} bytes", body.len())), "{out}");
        assert!(out.contains(r#""op":"#), "keys are kept: {out}");
        let out = request_body(b"password=hunter2&user=alice").unwrap();
        assert!(!out.contains("hunter2") && !out.contains("alice"), "{out}");
        let out = request_body(br#"{"password": "hunter2"#).unwrap();
        assert!(!out.contains("hunter2"), "{out}");
        let big = format!("{{\"x\": \"{}\"", "a".repeat(100_000));
        assert!(request_body(big.as_bytes()).unwrap().len() < 1024);
    }
}
