//! Runtime configuration: one `Config` built from the flags (each with an environment variable,
//! declared and checked in `cli`), and its parts.

use url::Url;

/// Settings the server needs at run time.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub bind: String,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Public base URL, without a trailing slash; Endpoint URLs and links are built from it.
    pub public_url: String,
    /// The vendor's product name, shown in the portal header.
    pub product_name: String,
    /// How the operator runs this binary from where they started it (e.g. `cargo run --release
    /// --`), so pages and messages can name a command that works: see [`self_command`].
    pub command: String,
    /// How much a client may take of the server while it sends a request.
    pub limits: RequestLimits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (none: the peer is).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Origins allowed to frame the Admin Portal by flag, besides the owner's allow-list.
    pub frame_ancestors: Vec<crate::embed::origins::FrameOrigin>,
    /// The operator's keys that seal secrets stored in the database (see `at_rest`).
    pub secret_keys: crate::at_rest::SecretKeys,
    /// How webhook deliveries are retried and timed, and how long events are kept.
    pub delivery: Delivery,
    /// The token `/metrics` asks for; without one, `/metrics` is not served.
    pub metrics_token: Option<crate::metrics::endpoint::MetricsToken>,
}

/// How deliveries are retried and timed.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Waits before the 2nd, 3rd, … attempt; after the last, the delivery is dead-lettered.
    pub retry_schedule: Vec<std::time::Duration>,
    /// How long a receiver may take to answer.
    pub timeout: std::time::Duration,
    /// How often the worker looks for due deliveries unless a commit wakes it first: retries
    /// coming due, and deliveries whose wake was lost, wait at most this long.
    pub poll_interval: std::time::Duration,
    /// Days events are kept for the feed and replays.
    pub retention_days: i64,
}

impl Default for Delivery {
    fn default() -> Self {
        let s = |secs: u64| std::time::Duration::from_secs(secs);
        Delivery {
            // About 16 hours in all: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h.
            retry_schedule: vec![
                s(5),
                s(30),
                s(120),
                s(600),
                s(1800),
                s(3600),
                s(7200),
                s(14400),
                s(28800),
            ],
            timeout: s(10),
            poll_interval: std::time::Duration::from_millis(200),
            retention_days: 30,
        }
    }
}

/// Bounds on receiving requests (see `scim_endpoint::body`).
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// How long a client has to send a whole SCIM body.
    pub body_deadline: std::time::Duration,
    /// Memory all SCIM bodies being received at once may take, in bytes.
    pub in_flight_body_bytes: usize,
    /// Failed SCIM authentications allowed per client address and minute (see
    /// `auth::throttle`).
    pub failed_auth_per_minute: std::num::NonZeroU32,
    /// Memberships one job of the shared writer changes at most: a larger change is applied
    /// in steps (see `scim_endpoint::member_steps`). Not a setting: tests make it small.
    pub member_step: usize,
    /// The same, while other directories are active too (see `member_step`).
    pub member_step_beside_others: usize,
}

impl RequestLimits {
    /// Memberships per writer job for a request of a directory, given whether other
    /// directories sent requests lately: fewer when they did, so their writes wait less.
    pub fn member_step(&self, others_active: bool) -> usize {
        if others_active {
            self.member_step.min(self.member_step_beside_others)
        } else {
            self.member_step
        }
    }
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            // 8 MiB at 300 KiB/s; providers send far less.
            body_deadline: std::time::Duration::from_secs(30),
            // Eight of the largest bodies.
            in_flight_body_bytes: 8 * crate::scim::discovery::MAX_PAYLOAD_BYTES,
            // A provider with a wrong token retries a few times a minute; a guesser wants
            // thousands a second.
            failed_auth_per_minute: std::num::NonZeroU32::new(60)
                .unwrap_or(std::num::NonZeroU32::MIN),
            member_step: crate::scim_endpoint::ops::MEMBER_STEP,
            member_step_beside_others: crate::scim_endpoint::ops::MEMBER_STEP_BESIDE_OTHERS,
        }
    }
}

impl Config {
    /// Cookies are marked Secure when the public URL is https, or loopback (browsers treat
    /// http://localhost as a secure context); plain http on another host would lose them.
    pub fn secure_cookies(&self) -> bool {
        match Url::parse(&self.public_url) {
            Ok(u) => {
                u.scheme() == "https"
                    || matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
            }
            Err(_) => true,
        }
    }

    /// `scheme://host[:port]` of the public URL, for Origin checks.
    pub fn public_origin(&self) -> String {
        Url::parse(&self.public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// The SCIM base URL of a directory (what the IT admin pastes into the provider).
    pub fn scim_base(&self, directory_id: &str) -> String {
        scim_base(&self.public_url, directory_id)
    }
}

/// The SCIM base URL of a directory under `public_url`.
pub fn scim_base(public_url: &str, directory_id: &str) -> String {
    format!("{public_url}/scim/v2/{directory_id}")
}

/// The command that runs this binary again, as the operator can type it where they started it:
/// `cargo run [--release] --` under cargo (there is no `roster` on PATH after `cargo run`),
/// `roster` when that is what PATH finds, otherwise the binary's own path.
pub fn self_command() -> String {
    let exe = std::env::current_exe().ok();
    if std::env::var_os("CARGO").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        let release = exe
            .as_ref()
            .and_then(|p| p.parent())
            .is_some_and(|dir| dir.ends_with("release"));
        return if release {
            "cargo run --release --".into()
        } else {
            "cargo run --".into()
        };
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
    };
    match exe {
        Some(p) if p.file_name().is_some_and(|n| n == "roster") && on_path("roster") => {
            "roster".into()
        }
        Some(p) => p.display().to_string(),
        None => "roster".into(),
    }
}

/// Normalises a public URL: must be absolute http(s); trailing slash removed.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    let u = Url::parse(s).map_err(|e| format!("invalid public URL `{s}`: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!(
            "public URL `{s}` must start with http:// or https://"
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "public URL `{s}` must not have a query or fragment"
        ));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_normalised() {
        assert_eq!(
            parse_public_url("https://roster.example.com/").unwrap(),
            "https://roster.example.com"
        );
        assert_eq!(
            parse_public_url("http://h:8080/base/").unwrap(),
            "http://h:8080/base"
        );
        assert!(parse_public_url("ftp://x").is_err());
        assert!(parse_public_url("nope").is_err());
    }
}
