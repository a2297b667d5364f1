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

fn redact_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map.iter_mut() {
                if is_secret_key(k) {
                    *inner = Value::String("[redacted]".into());
                } else {
                    redact_value(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
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
        // Not JSON (the request failed as invalidSyntax): keep a bounded prefix as text.
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(MAX_LOGGED_BODY)]).into_owned(),
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
        assert!(request_body(b"{not json").unwrap().contains("{not json"));
    }
}
