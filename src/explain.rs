//! One plain-language line per logged SCIM request, for the request inspector: what the
//! provider asked for and what Roster did, or why it refused.

use serde_json::Value;

use crate::db::requests::Request;
use crate::scim::filter::get_ci;

/// Explains a logged request. `provider` is the directory's provider name; `subject` the
/// current name of the user or group it touched, if known.
pub fn explain(r: &Request, provider: &str, subject: Option<&str>) -> String {
    let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resource = segments
        .first()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    let body: Option<Value> = r
        .request_body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok());
    let response: Option<Value> = r
        .response_excerpt
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok());
    let kind = if resource == "groups" {
        "group"
    } else {
        "user"
    };
    let who = subject
        .map(str::to_string)
        .unwrap_or_else(|| format!("the {kind}"));

    if r.status >= 400 {
        let detail = response
            .as_ref()
            .and_then(|v| v["detail"].as_str())
            .unwrap_or("no detail")
            .to_string();
        return match r.status {
            401 => explain_401(&detail, provider),
            403 if detail.starts_with("this directory is disabled") => format!(
                "403: this directory is disabled → {provider}'s requests are refused until you enable it below"
            ),
            403 if detail.starts_with("SCIM Provisioning is turned off") => {
                "403: SCIM Provisioning is turned off for this organization → ask the app owner to turn it on".into()
            }
            403 => "403: SCIM Provisioning is turned off for this organization, or this directory is disabled".into(),
            404 => format!("404: {detail}"),
            409 => format!("409: {detail} → {provider} should look it up and update it instead"),
            412 => format!("412: {detail} → {provider} should read the {kind} again and retry"),
            413 => format!("413: {detail}"),
            400 if r.error_kind.as_deref() == Some("invalidFilter") => format!("400: the filter was refused: {detail}"),
            s => format!("{s}: {detail}"),
        };
    }

    // Writes carry what Roster recorded while applying them: trusted over the logged body,
    // which is cut at 16 KiB (a 200-member PUT) and says what was asked, not what changed.
    if let Some(summary) = r.change_summary.as_deref()
        && matches!(r.method.as_str(), "PUT" | "PATCH")
        && segments.len() == 2
    {
        let activity = match r.method.as_str() {
            "PATCH" => explain_patch(body.as_ref(), provider, &who, kind),
            _ => String::new(),
        };
        if activity.contains(" sent active ") {
            return activity;
        }
        if r.method == "PUT"
            && let Some(a) = body.as_ref().and_then(|b| get_ci(b, "active"))
            && is_false(a)
            && summary.contains("active")
        {
            return format!("{provider} sent active {a} → {who} deactivated");
        }
        let verb = if r.method == "PUT" {
            "replaced"
        } else {
            "updated"
        };
        return format!("{verb} {kind} {who}: {summary}");
    }

    let filter = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("filter"))
                .map(|(_, v)| v)
        });
    match (r.method.as_str(), resource.as_str(), segments.len()) {
        ("GET", "users" | "groups", 1) => {
            let total = response.as_ref().and_then(|v| v["totalResults"].as_i64());
            match (filter, total) {
                (Some(f), Some(0)) => {
                    format!("filter {f} matched no {kind} → {provider} will create one")
                }
                (Some(f), Some(n)) => format!("filter {f} found {n} {kind}{}", plural(n)),
                (None, Some(n)) => format!("listed {kind}s ({n} in all)"),
                _ => format!("listed {kind}s"),
            }
        }
        ("GET", _, 2) => format!("read {who}"),
        ("GET", "serviceproviderconfig" | "schemas" | "resourcetypes", _) => {
            format!("read Roster's capabilities ({})", segments[0])
        }
        ("POST", "users", 1) => {
            let name = body
                .as_ref()
                .and_then(|b| get_ci(b, "userName"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            let inactive = body
                .as_ref()
                .and_then(|b| get_ci(b, "active"))
                .is_some_and(is_false);
            format!(
                "created user {name}{}",
                if inactive { " (inactive)" } else { "" }
            )
        }
        ("POST", "groups", 1) => {
            let name = body
                .as_ref()
                .and_then(|b| get_ci(b, "displayName"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            let n = body
                .as_ref()
                .and_then(|b| get_ci(b, "members"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            format!("created group {name} with {n} member{}", plural(n as i64))
        }
        ("POST", _, 2) => format!("searched {kind}s"),
        ("PUT", "users", 2) => match body.as_ref().and_then(|b| get_ci(b, "active")) {
            Some(a) if is_false(a) => format!("{provider} sent active {a} → {who} deactivated"),
            _ => format!("replaced {who}'s attributes"),
        },
        ("PUT", "groups", 2) => {
            let n = body
                .as_ref()
                .and_then(|b| get_ci(b, "members"))
                .and_then(Value::as_array)
                .map(Vec::len);
            match n {
                Some(n) => format!("replaced group {who} with {n} member{}", plural(n as i64)),
                None => format!("replaced group {who} (members kept)"),
            }
        }
        ("PATCH", _, 2) => explain_patch(body.as_ref(), provider, &who, kind),
        ("DELETE", _, 2) => format!("deleted {kind} {who}"),
        _ => format!("{} {}", r.method, r.path),
    }
}

/// The four refused `Authorization` headers, each with its fix (keyed on the SCIM `detail`s
/// of `scim_endpoint`).
fn explain_401(detail: &str, provider: &str) -> String {
    let bearer_fix = if provider == "PingIdentity" {
        format!("set Auth Type Header to Bearer in {provider} and paste the token")
    } else {
        format!("set the authentication type to Bearer token in {provider} and paste the token")
    };
    if detail.contains("revoked at") {
        let at = detail
            .split("revoked at ")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .unwrap_or("");
        format!(
            "401: token revoked at {at} → {provider} still uses an old token; paste the current one into it"
        )
    } else if detail.starts_with("no Authorization header") {
        format!(
            "401: {provider} sent no Authorization header → paste the bearer token into its SCIM settings"
        )
    } else if detail.contains("Basic authentication") {
        format!("401: {provider} used Basic authentication (user name and password) → {bearer_fix}")
    } else if detail.contains("no `Bearer ` before the token") {
        format!(
            "401: {provider} sent the token without the word Bearer → the header must read Authorization: Bearer <token>; {bearer_fix}"
        )
    } else if detail.contains("scheme other than Bearer") {
        format!("401: {provider} used an authentication scheme other than Bearer → {bearer_fix}")
    } else if detail.contains("not valid for this directory") {
        format!(
            "401: {provider} sent a token that is not a token of this directory (mistyped, or another directory's) → copy this directory's token into its settings again"
        )
    } else {
        format!(
            "401: {provider} sent a missing or wrong bearer token → copy the token into its settings again"
        )
    }
}

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn is_false(v: &Value) -> bool {
    matches!(v, Value::Bool(false)) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("false"))
}

fn explain_patch(body: Option<&Value>, provider: &str, who: &str, kind: &str) -> String {
    let ops = body
        .and_then(|b| get_ci(b, "Operations"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (mut added, mut removed, mut changed) = (0usize, 0usize, Vec::new());
    for op in &ops {
        let name = get_ci(op, "op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let path = get_ci(op, "path").and_then(Value::as_str).unwrap_or("");
        let value = get_ci(op, "value");
        // `active`, by path or inside a no-path object.
        let active = if path.eq_ignore_ascii_case("active") {
            value
        } else {
            value.and_then(|v| get_ci(v, "active"))
        };
        if let Some(a) = active {
            let became = if is_false(a) {
                "deactivated"
            } else {
                "reactivated"
            };
            return format!("{provider} sent active {a} → {who} {became}");
        }
        let members = path.to_ascii_lowercase().starts_with("members")
            || (path.is_empty() && value.and_then(|v| get_ci(v, "members")).is_some());
        if members {
            let n = value
                .map(|v| get_ci(v, "members").unwrap_or(v))
                .and_then(Value::as_array)
                .map_or(1, Vec::len);
            match name.as_str() {
                "add" => added += n,
                "remove" => removed += n,
                _ => changed.push("members".to_string()),
            }
        } else if path.is_empty() {
            if let Some(obj) = value.and_then(Value::as_object) {
                changed.extend(
                    obj.keys()
                        .filter(|k| !k.eq_ignore_ascii_case("id"))
                        .cloned(),
                );
            }
        } else {
            changed.push(path.to_string());
        }
    }
    let mut parts = Vec::new();
    if added > 0 {
        parts.push(format!("added {added} member{}", plural(added as i64)));
    }
    if removed > 0 {
        parts.push(format!(
            "removed {removed} member{}",
            plural(removed as i64)
        ));
    }
    if !changed.is_empty() {
        parts.push(format!("changed {}", changed.join(", ")));
    }
    if parts.is_empty() {
        format!("updated {kind} {who} (no change)")
    } else {
        format!("{} of {kind} {who}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(
        method: &str,
        path: &str,
        status: i32,
        body: Option<&str>,
        response: Option<&str>,
        kind: Option<&str>,
    ) -> Request {
        Request {
            id: 1,
            directory_id: "d".into(),
            at: chrono::NaiveDateTime::default(),
            method: method.into(),
            path: path.into(),
            status,
            duration_us: 1,
            request_body: body.map(str::to_string),
            response_excerpt: response.map(str::to_string),
            error_kind: kind.map(str::to_string),
            resource_type: None,
            resource_id: None,
            change_summary: None,
            request_id: None,
        }
    }

    #[test]
    fn entra_string_false_deactivation() {
        let r = req(
            "PATCH",
            "/Users/1",
            200,
            Some(r#"{"Operations":[{"op":"Replace","path":"active","value":"False"}]}"#),
            None,
            None,
        );
        assert_eq!(
            explain(&r, "Microsoft Entra ID", Some("Jane Doe")),
            r#"Microsoft Entra ID sent active "False" → Jane Doe deactivated"#
        );
    }

    #[test]
    fn lookup_that_matched_nothing() {
        let r = req(
            "GET",
            "/Users?filter=externalId+eq+%22abc%22",
            200,
            None,
            Some(r#"{"totalResults":0,"Resources":[]}"#),
            None,
        );
        assert_eq!(
            explain(&r, "Okta", None),
            r#"filter externalId eq "abc" matched no user → Okta will create one"#
        );
    }

    #[test]
    fn revoked_token() {
        let r = req(
            "GET",
            "/Users",
            401,
            None,
            Some(
                r#"{"status":"401","detail":"this bearer token was revoked at 2026-11-28T14:02:00.000Z; paste the directory's current token into the provider"}"#,
            ),
            Some("unauthorized"),
        );
        assert_eq!(
            explain(&r, "Okta", None),
            "401: token revoked at 2026-11-28T14:02:00.000Z → Okta still uses an old token; paste the current one into it"
        );
    }

    #[test]
    fn membership_patch_and_errors() {
        let r = req(
            "PATCH",
            "/Groups/g",
            204,
            Some(
                r#"{"Operations":[{"op":"add","path":"members","value":[{"value":"a"},{"value":"b"}]},{"op":"remove","path":"members[value eq \"c\"]"}]}"#,
            ),
            None,
            None,
        );
        assert_eq!(
            explain(&r, "Okta", Some("Engineering")),
            "added 2 members, removed 1 member of group Engineering"
        );
        let r = req(
            "GET",
            "/Users?filter=bad",
            400,
            None,
            Some(r#"{"status":"400","detail":"invalid filter: expected an operator after `bad`"}"#),
            Some("invalidFilter"),
        );
        assert!(explain(&r, "Okta", None).starts_with("400: the filter was refused"));
        let r = req(
            "POST",
            "/Users",
            409,
            Some(r#"{"userName":"a"}"#),
            Some(r#"{"detail":"a user with userName `a` already exists in this directory"}"#),
            Some("uniqueness"),
        );
        assert!(explain(&r, "PingIdentity", None).contains("should look it up"));
    }

    #[test]
    fn writes_are_summarised_from_what_was_recorded() {
        // The logged body was cut short: the recorded summary is what counts.
        let mut r = req(
            "PUT",
            "/Groups/g",
            200,
            Some(r#"{"displayName":"All","members":[{"va"#),
            None,
            None,
        );
        r.change_summary = Some("+200 members".into());
        assert_eq!(
            explain(&r, "PingIdentity", Some("All")),
            "replaced group All: +200 members"
        );
        let mut r = req(
            "PUT",
            "/Users/u",
            200,
            Some(r#"{"userName":"jo"}"#),
            None,
            None,
        );
        r.change_summary = Some("familyName Gonzalez → Nakamura".into());
        assert_eq!(
            explain(&r, "Okta", Some("Jo")),
            "replaced user Jo: familyName Gonzalez → Nakamura"
        );
    }

    #[test]
    fn each_401_cause_has_its_own_explanation() {
        let causes = [
            crate::scim_endpoint::NO_AUTHORIZATION,
            crate::scim_endpoint::BASIC_AUTH,
            crate::scim_endpoint::NOT_BEARER,
            crate::scim_endpoint::OTHER_SCHEME,
            "the bearer token is not valid for this directory (wrong, or for another directory)",
        ];
        let explained: std::collections::BTreeSet<String> = causes
            .iter()
            .map(|detail| {
                let body = serde_json::json!({"status": "401", "detail": detail}).to_string();
                explain(
                    &req("GET", "/Users", 401, None, Some(&body), None),
                    "PingIdentity",
                    None,
                )
            })
            .collect();
        assert_eq!(explained.len(), causes.len(), "{explained:?}");
        assert!(
            explained
                .iter()
                .any(|e| e.contains("set Auth Type Header to Bearer in PingIdentity"))
        );
    }
}
