//! Real-time delivery to the vendor's application: event payloads (Roster's normalized JSON
//! plus the raw SCIM resource), Standard Webhooks signatures and one delivery attempt. The
//! background worker that delivers queued deliveries after commit, with retries, backoff and
//! dead-lettering, is `worker` (woken by `wake` and, on Postgres, `listen`; one lane per
//! endpoint in `lanes`); `endpoint` says which endpoint URLs and event filters are accepted.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::config::Delivery;
use crate::db;
use crate::scim::redact;

pub mod endpoint;
mod lanes;
mod listen;
mod outcomes;
pub mod wake;
mod worker;

pub use worker::{Worker, WorkerHealth, start, start_with};

/// Roster's normalized view of a user, as events and the API carry it.
#[derive(serde::Serialize)]
pub struct UserView<'a> {
    id: &'a str,
    directory_id: &'a str,
    user_name: &'a str,
    external_id: Option<&'a str>,
    active: bool,
    email: Option<&'a str>,
    display_name: Option<&'a str>,
    name: Option<&'a str>,
    created_at: String,
    updated_at: String,
    /// Effective roles (slugs, sorted); left out where they are not known (a membership
    /// event's user).
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    /// Each declared custom attribute's value (`null` when its path matched nothing); left
    /// out where it is not known (a membership event's user).
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_attributes: Option<crate::custom_attributes::Values>,
}

impl<'a> UserView<'a> {
    /// The view with the user's effective roles.
    pub fn with_roles(self, roles: Vec<String>) -> UserView<'a> {
        UserView {
            roles: Some(roles),
            ..self
        }
    }

    /// The view with the user's custom attribute values.
    pub fn with_custom_attributes(self, values: crate::custom_attributes::Values) -> UserView<'a> {
        UserView {
            custom_attributes: Some(values),
            ..self
        }
    }

    pub fn of(row: &'a db::users::UserRow) -> UserView<'a> {
        UserView {
            id: &row.id,
            directory_id: &row.directory_id,
            user_name: &row.user_name,
            external_id: row.external_id.as_deref(),
            active: row.active,
            email: row.primary_email.as_deref(),
            display_name: row.display_name.as_deref(),
            name: row.full_name.as_deref(),
            created_at: crate::scim::resource::rfc3339(row.created_at),
            updated_at: crate::scim::resource::rfc3339(row.updated_at),
            roles: None,
            custom_attributes: None,
        }
    }
}

/// `UserView` as a JSON value.
pub fn user_json(row: &db::users::UserRow) -> Value {
    serde_json::to_value(UserView::of(row)).unwrap_or(Value::Null)
}

/// `UserView` with the user's effective roles, as a JSON value.
pub fn user_json_with_roles(row: &db::users::UserRow, roles: Vec<String>) -> Value {
    serde_json::to_value(UserView::of(row).with_roles(roles)).unwrap_or(Value::Null)
}

/// `UserView` with the user's effective roles and custom attributes, as a JSON value.
pub fn user_json_full(
    row: &db::users::UserRow,
    roles: Vec<String>,
    values: crate::custom_attributes::Values,
) -> Value {
    serde_json::to_value(
        UserView::of(row)
            .with_roles(roles)
            .with_custom_attributes(values),
    )
    .unwrap_or(Value::Null)
}

/// Roster's normalized view of a group.
pub fn group_json(row: &db::groups::GroupRow) -> Value {
    json!({
        "id": row.id,
        "directory_id": row.directory_id,
        "name": row.display_name,
        "external_id": row.external_id,
        "created_at": crate::scim::resource::rfc3339(row.created_at),
        "updated_at": crate::scim::resource::rfc3339(row.updated_at),
    })
}

/// Top-level attributes that differ between two SCIM documents (for `user.updated`).
pub fn changed_attributes(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<String> = b
        .keys()
        .chain(a.keys())
        .filter(|k| b.get(*k) != a.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The Standard Webhooks signature header value: `v1,` + base64(HMAC-SHA256(key, id.ts.body)),
/// where the key is the base64 part of the `whsec_` secret.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The wait before the next attempt after `attempts` failed ones, with ±20 % jitter so that
/// many failing deliveries do not retry in lockstep; `None` when retries are exhausted.
pub fn next_retry(cfg: &Delivery, attempts: i32) -> Option<chrono::Duration> {
    let base = cfg
        .retry_schedule
        .get(usize::try_from(attempts - 1).ok()?)?;
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    chrono::Duration::from_std(base.mul_f64(jitter)).ok()
}

pub fn attempt(agent: &ureq::Agent, due: &db::webhooks::Due) -> db::webhooks::Outcome {
    let ts = chrono::Utc::now().timestamp();
    let started = Instant::now();
    let refused = |why: &str| db::webhooks::Outcome {
        status_code: None,
        latency_ms: 0,
        error: Some(why.into()),
        response_excerpt: None,
    };
    let Some(secret) = &due.signing_secret else {
        return refused(
            "the endpoint's signing secret was sealed with a key this instance does not hold: give every instance the same secret key file",
        );
    };
    let Some(signature) = sign(secret, &due.event_id, ts, &due.payload) else {
        return refused("the endpoint's secret is not valid base64");
    };
    let result = agent
        .post(&due.endpoint.url)
        .header("content-type", "application/json")
        .header("user-agent", "Roster-Webhooks/1")
        .header("webhook-id", &due.event_id)
        .header("webhook-timestamp", &ts.to_string())
        .header("webhook-signature", &signature)
        .send(due.payload.as_str());
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match result {
        Ok(mut resp) => {
            let status = i32::from(resp.status().as_u16());
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            db::webhooks::Outcome {
                status_code: Some(status),
                latency_ms,
                error: (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
                response_excerpt: (!text.is_empty()).then(|| redact::truncate(&text, 1024)),
            }
        }
        Err(e) => db::webhooks::Outcome {
            status_code: None,
            latency_ms,
            error: Some(e.to_string()),
            response_excerpt: None,
        },
    }
}

/// How one delivery is attempted: [`attempt`] in production; tests may wrap it.
pub type Deliver =
    Arc<dyn Fn(&ureq::Agent, &db::webhooks::Due) -> db::webhooks::Outcome + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_signature_matches_the_spec_example() {
        // The example of the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn retries_back_off_then_stop() {
        let cfg = Delivery::default();
        let first = next_retry(&cfg, 1).unwrap().num_milliseconds();
        assert!((4000..=6000).contains(&first), "{first}");
        assert!(next_retry(&cfg, 9).unwrap() > chrono::Duration::hours(6));
        assert!(next_retry(&cfg, 10).is_none());
    }

    #[test]
    fn changed_attributes_lists_differences() {
        let a = json!({"userName": "a", "title": "x", "active": true});
        let b = json!({"userName": "a", "title": "y", "nickName": "n", "active": true});
        assert_eq!(changed_attributes(&a, &b), vec!["nickName", "title"]);
    }
}
