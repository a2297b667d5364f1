//! Real-time delivery to the vendor's application: event payloads (Roster's normalized JSON
//! plus the raw SCIM resource), Standard Webhooks signatures, and the background worker that
//! delivers queued deliveries after commit, with retries, backoff and dead-lettering;
//! `endpoint` says which endpoint URLs and event filters are accepted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::at_rest::SecretKeys;
use crate::config::Delivery;
use crate::db::{self, Pool};
use crate::scim::redact;

pub mod endpoint;

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
}

impl<'a> UserView<'a> {
    /// The view with the user's effective roles.
    pub fn with_roles(self, roles: Vec<String>) -> UserView<'a> {
        UserView {
            roles: Some(roles),
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

/// The text of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Runs one round: claims due deliveries and attempts them. Returns how many were attempted.
/// A delivery whose attempt panics is recorded as a failed attempt (and retried on schedule),
/// so one bad delivery never stops the others.
pub fn run_once(
    pool: &Pool,
    agent: &ureq::Agent,
    cfg: &Delivery,
    deliver: &Deliver,
    health: &WorkerHealth,
    keys: &SecretKeys,
) -> Result<usize, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let lease = chrono::Duration::from_std(cfg.timeout + Duration::from_secs(30))
        .unwrap_or(chrono::Duration::seconds(60));
    let due = db::webhooks::claim(&mut conn, keys, 16, lease).map_err(|e| e.to_string())?;
    drop(conn);
    for d in &due {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| deliver(agent, d)))
            .unwrap_or_else(|payload| {
                let why = panic_message(payload.as_ref());
                health.record_failure(&format!("a delivery attempt panicked: {why}"));
                db::webhooks::Outcome {
                    status_code: None,
                    latency_ms: 0,
                    error: Some(format!("internal error in Roster's delivery worker: {why}")),
                    response_excerpt: None,
                }
            });
        let retry = if outcome.succeeded() {
            None
        } else {
            next_retry(cfg, d.attempts + 1)
        };
        if !outcome.succeeded() {
            log::warn!(
                "webhook delivery {} to endpoint {} failed (attempt {}): {}",
                d.delivery_id,
                d.endpoint.id,
                d.attempts + 1,
                outcome.error.as_deref().unwrap_or("?")
            );
        }
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        db::webhooks::record_attempt(&mut conn, d, &outcome, retry).map_err(|e| e.to_string())?;
    }
    Ok(due.len())
}

/// What `/readyz` says of this instance's delivery worker.
#[derive(Debug, Default)]
pub struct WorkerHealth {
    /// Whether a worker thread is running now (false between a crash and its restart).
    running: AtomicBool,
    /// Panics recovered from: in an attempt, or of the whole thread (then restarted).
    failures: std::sync::atomic::AtomicU64,
    last_failure: std::sync::Mutex<Option<String>>,
}

impl WorkerHealth {
    fn record_failure(&self, why: &str) {
        log::error!("webhook worker: {why}");
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(why.to_string());
        }
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// One line for `/readyz`: running or not, and the panics recovered from.
    pub fn describe(&self) -> String {
        let failures = self.failures.load(Ordering::Relaxed);
        let state = if self.running() {
            "running"
        } else {
            "not running"
        };
        match self.last_failure.lock().ok().and_then(|l| l.clone()) {
            Some(last) if failures > 0 => format!(
                "webhook worker: {state}; recovered from {failures} failure(s), last: {last}"
            ),
            _ => format!("webhook worker: {state}"),
        }
    }
}

/// A running delivery worker; dropping the handle stops it.
pub struct Worker {
    stop: Arc<AtomicBool>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the delivery worker on its own thread (one per instance; instances share the work).
pub fn start(pool: Pool, cfg: Delivery, keys: SecretKeys, health: Arc<WorkerHealth>) -> Worker {
    start_with(pool, cfg, keys, health, Arc::new(attempt))
}

/// [`start`] with another way to attempt a delivery. A supervisor thread restarts the worker
/// if it ever dies (the log and `health` say why), so delivery never stops silently.
pub fn start_with(
    pool: Pool,
    cfg: Delivery,
    keys: SecretKeys,
    health: Arc<WorkerHealth>,
    deliver: Deliver,
) -> Worker {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let (pool, cfg, flag, health_in, deliver, keys) = (
                pool.clone(),
                cfg.clone(),
                flag.clone(),
                health.clone(),
                deliver.clone(),
                keys.clone(),
            );
            health.running.store(true, Ordering::Relaxed);
            let run = std::thread::Builder::new()
                .name("webhook-worker".into())
                .spawn(move || work(&pool, &cfg, &flag, &health_in, &deliver, &keys))
                .map_err(|e| e.to_string())
                .and_then(|t| t.join().map_err(|p| panic_message(p.as_ref())));
            health.running.store(false, Ordering::Relaxed);
            match run {
                Ok(()) => break,
                Err(why) => {
                    health.record_failure(&format!("the worker died ({why}); restarting it"));
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    });
    Worker { stop }
}

/// The worker's loop: deliver what is due, prune old events now and then, until stopped.
fn work(
    pool: &Pool,
    cfg: &Delivery,
    stop: &AtomicBool,
    health: &WorkerHealth,
    deliver: &Deliver,
    keys: &SecretKeys,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut last_prune = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match run_once(pool, &agent, cfg, deliver, health, keys) {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => log::error!("webhook worker: {e}"),
        }
        if last_prune.elapsed() > Duration::from_secs(600) {
            last_prune = Instant::now();
            if let Ok(mut c) = pool.get()
                && let Err(e) = db::events::prune(&mut c, cfg.retention_days)
            {
                log::error!("pruning events: {e}");
            }
        }
        std::thread::sleep(cfg.poll_interval);
    }
}

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
