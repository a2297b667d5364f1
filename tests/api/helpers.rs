//! Test harness: spawns the real app on a loopback port over a fresh database — a SQLite file,
//! or a Postgres schema when `TEST_DATABASE_URL` is set — and talks to it over HTTP.
//!
//! A test that should hold on every backend is a plain `async fn` taking the [`Backend`], named
//! after the behaviour, and [`backend_tests!`] turns it into one test per backend:
//!
//! ```ignore
//! backend_tests!(users_can_be_created);
//! /// What the test pins, and why.
//! async fn users_can_be_created(backend: Backend) {
//!     let app = TestApp::spawn(backend).await;
//!     // ...
//! }
//! ```
//!
//! runs as `users_can_be_created::sqlite` and `users_can_be_created::postgres`. A test that is
//! about one backend only (SQLite file permissions, Postgres locking) is a plain
//! `#[actix_web::test]`; a Postgres-only one starts with `if !postgres_enabled(..) { return; }`.

use std::collections::BTreeMap;
use std::net::TcpListener;

use actix_web::web;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use roster::app;
use roster::config::Config;
use roster::db::{self, Pool};
use roster::state::AppState;
use serde_json::Value;

/// The databases every DB test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether a Postgres test runs: it does when `TEST_DATABASE_URL` is set; otherwise `test` says
/// it was skipped, unless `ROSTER_REQUIRE_POSTGRES=1` (as in CI), where a missing Postgres fails
/// the test instead of silently testing less.
pub fn postgres_enabled(test: &str) -> bool {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => true,
        _ => {
            assert!(
                std::env::var("ROSTER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ROSTER_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set"
            );
            println!("{test}: skipped on Postgres (TEST_DATABASE_URL is not set)");
            false
        }
    }
}

/// For each `async fn name(backend: Backend)` given, a module `name` holding the tests `sqlite`
/// and `postgres`, so a failure names its backend. The Postgres test passes, saying it skipped,
/// without `TEST_DATABASE_URL` (see [`postgres_enabled`]).
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }

            #[actix_web::test]
            async fn postgres() {
                if $crate::helpers::postgres_enabled(module_path!()) {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        }
    )+};
}
pub(crate) use backend_tests;

/// One secret key file for every app, server process and CLI call of this test run (apps on
/// one database must share it), outside the working directory.
pub fn test_key_file() -> std::path::PathBuf {
    static FILE: std::sync::LazyLock<std::path::PathBuf> = std::sync::LazyLock::new(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("roster.key");
        std::fs::write(&path, format!("{}\n", roster::at_rest::new_key_line())).unwrap();
        path
    });
    FILE.clone()
}

/// The keys in [`test_key_file`].
pub fn test_secret_keys() -> roster::at_rest::SecretKeys {
    roster::at_rest::SecretKeys::load(&test_key_file(), false).unwrap()
}

/// A webhook endpoint as its creator sees it: its id and (shown once) signing secret.
pub struct Webhook {
    pub id: String,
    pub secret: String,
}

/// A webhook endpoint created in storage with the test run's keys.
pub fn webhook(
    conn: &mut db::DbConn,
    url: &str,
    org_id: Option<&str>,
    event_types: &str,
) -> Webhook {
    let (endpoint, secret) =
        db::webhooks::create(conn, &test_secret_keys(), url, org_id, event_types).unwrap();
    Webhook {
        id: endpoint.id,
        secret,
    }
}

/// A fresh, empty database of the given backend.
pub struct TestDb {
    pub url: String,
    /// Keeps a SQLite file's directory alive; `None` for a second handle on the same database.
    pub _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("roster.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let mut base = std::env::var("TEST_DATABASE_URL").unwrap();
                // Without TLS: once libpq has set up TLS, its teardown at process exit races the
                // writer and worker threads, which still hold connections of the apps the tests
                // left running (the test binary then died with SIGSEGV after passing, ~1 run
                // in 7).
                if !base.contains("sslmode=") {
                    let sep = if base.contains('?') { '&' } else { '?' };
                    base = format!("{base}{sep}sslmode=disable");
                }
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = diesel::PgConnection::establish(&base).unwrap();
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .unwrap();
                TestDb {
                    url: format!("{base}&options=-csearch_path%3D{schema}"),
                    _dir: None,
                }
            }
        }
    }
}

/// A running Roster on a loopback port.
pub struct TestApp {
    pub base: String,
    pub pool: Pool,
    /// Keeps the database (and a SQLite temp dir) alive as long as the app.
    _db: TestDb,
    server: actix_web::dev::ServerHandle,
    _worker: Option<roster::events::Worker>,
    state: web::Data<AppState>,
}

impl TestApp {
    /// Commits the bookkeeping this instance has queued: request-log rows of reads and
    /// refusals, and a token's first use (`directory.connected`), are written a few
    /// milliseconds after the reply.
    pub async fn flush_request_log(&self) {
        self.state.writer.flush().await;
    }

    /// Waits until every job queued on the writer so far is committed (what a view queued for
    /// later, say): a job queued after them commits after them.
    pub async fn commit_queued(&self) {
        self.state
            .writer
            .run(|_| Ok::<_, diesel::result::Error>(()))
            .await
            .unwrap()
            .unwrap();
    }

    /// The app's state, for background work a test runs itself (instead of waiting for it).
    pub fn state(&self) -> &web::Data<AppState> {
        &self.state
    }

    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_on(backend, TestDb::new(backend)).await
    }

    /// Runs the app on an existing database.
    pub async fn spawn_on(backend: Backend, db: TestDb) -> TestApp {
        Self::spawn_configured(backend, db, |_| {}).await
    }

    /// Runs the app on an existing database with settings changed by `configure`.
    pub async fn spawn_configured(
        _backend: Backend,
        db: TestDb,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let pool = db::connect(&db.url).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = Config {
            bind: base.trim_start_matches("http://").to_string(),
            database_url: db.url.clone(),
            public_url: base.clone(),
            product_name: "Roster Test".into(),
            command: "roster".into(),
            limits: Default::default(),
            trusted_proxies: Vec::new(),
            frame_ancestors: Vec::new(),
            secret_keys: test_secret_keys(),
            delivery: Default::default(),
            metrics_token: None,
        };
        let mut config = config;
        configure(&mut config);
        let key = {
            let mut conn = pool.get().unwrap();
            db::sealing::open_keys(&mut conn, &test_key_file()).unwrap();
            db::sealing::session_key(&mut conn, &config.secret_keys).unwrap()
        };
        let state = web::Data::new(AppState::new(pool.clone(), config));
        let server = app::run(state.clone(), key, listener).unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestApp {
            base,
            pool,
            _db: db,
            server: handle,
            _worker: None,
            state,
        }
    }

    /// Starts this instance's webhook worker with a fast retry schedule (in seconds).
    pub fn with_worker(self, retry_schedule: &[f64]) -> TestApp {
        self.with_worker_delivering(retry_schedule, std::sync::Arc::new(roster::events::attempt))
    }

    /// [`Self::with_worker`] attempting each delivery with `deliver`.
    pub fn with_worker_delivering(
        self,
        retry_schedule: &[f64],
        deliver: roster::events::Deliver,
    ) -> TestApp {
        let cfg = roster::config::Delivery {
            retry_schedule: retry_schedule
                .iter()
                .map(|s| std::time::Duration::from_secs_f64(*s))
                .collect(),
            timeout: std::time::Duration::from_secs(10),
            poll_interval: std::time::Duration::from_millis(20),
            retention_days: 30,
        };
        self.with_worker_configured(cfg, deliver)
    }

    /// A worker that looks for due deliveries at most every `poll_interval` unless woken, and
    /// gives receivers `timeout` to answer.
    pub fn with_worker_polling(
        self,
        poll_interval: std::time::Duration,
        timeout: std::time::Duration,
    ) -> TestApp {
        let cfg = roster::config::Delivery {
            retry_schedule: vec![std::time::Duration::from_millis(50)],
            timeout,
            poll_interval,
            retention_days: 30,
        };
        self.with_worker_configured(cfg, std::sync::Arc::new(roster::events::attempt))
    }

    fn with_worker_configured(
        mut self,
        cfg: roster::config::Delivery,
        deliver: roster::events::Deliver,
    ) -> TestApp {
        self._worker = Some(roster::events::start_with(
            self.pool.clone(),
            self.state.writer.clone(),
            &self.state.config.database_url,
            cfg,
            self.state.config.secret_keys.clone(),
            self.state.worker_health.clone(),
            self.state.delivery_wake.clone(),
            deliver,
        ));
        self
    }

    /// Stops this instance's webhook worker (as a shutdown does); lanes running finish.
    pub fn stop_worker(&mut self) {
        self._worker = None;
    }

    /// A webhook endpoint created directly in storage, with its signing secret.
    pub fn webhook(&self, url: &str, org_id: Option<&str>, event_types: &str) -> Webhook {
        webhook(&mut self.conn(), url, org_id, event_types)
    }

    /// A new API key for the directory API.
    pub fn api_key(&self) -> String {
        db::api_keys::create(&mut self.conn(), "tests").unwrap().1
    }

    pub fn conn(&self) -> db::PooledConn {
        self.pool.get().unwrap()
    }

    /// An organization created directly in storage.
    pub fn org(&self, name: &str, scim_enabled: bool) -> String {
        db::orgs::create(&mut self.conn(), name, scim_enabled)
            .unwrap()
            .id
    }

    /// A directory with its SCIM client (as `roster directory create` makes).
    pub fn directory(&self, org_id: &str, provider: &str) -> Scim {
        let (dir, token) =
            db::directories::create(&mut self.conn(), org_id, provider, provider).unwrap();
        Scim::new(format!("{}/scim/v2/{}", self.base, dir.id), token)
    }

    /// A browser signed in to the owner console (the owner account set up first, with the
    /// password "correct horse battery").
    pub async fn owner(&self) -> Browser {
        let setup = db::owners::create_setup_link(&mut self.conn()).unwrap();
        let mut owner = Browser::new(&self.base);
        let form = owner.get(&format!("/owner/setup/{setup}")).await;
        let done = owner
            .post_form(
                &format!("/owner/setup/{setup}"),
                &form.body,
                &[
                    ("password", "correct horse battery"),
                    ("confirm", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        owner
    }

    /// A browser whose session opened the Admin Portal of `org_id`.
    pub async fn portal(&self, org_id: &str) -> Browser {
        let (token, _) =
            db::orgs::create_portal_link(&mut self.conn(), org_id, chrono::Duration::days(1))
                .unwrap();
        let mut b = Browser::new(&self.base);
        let r = b.get(&format!("/portal/link/{token}")).await;
        assert_eq!(r.status, 303, "portal link should redirect: {}", r.body);
        b
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.server.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// An HTTP response, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        .timeout(std::time::Duration::from_secs(30))
        .finish()
}

async fn read(
    mut resp: awc::ClientResponse<
        impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
        + Unpin,
    >,
) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = resp.body().limit(64 * 1024 * 1024).await.unwrap();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A SCIM client for one directory.
pub struct Scim {
    pub base: String,
    pub token: String,
}

impl Scim {
    pub fn new(base: String, token: String) -> Scim {
        Scim { base, token }
    }

    pub async fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.raw(method, path, body.map(|b| b.to_string()), Some(&self.token))
            .await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        token: Option<&str>,
    ) -> Resp {
        let url = format!("{}{}", self.base, path);
        let mut req = client().request(method.parse().unwrap(), &url);
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        let resp = match body {
            Some(b) => {
                req.insert_header(("Content-Type", "application/scim+json"))
                    .send_body(b)
                    .await
            }
            None => req.send().await,
        };
        read(resp.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.request("PUT", path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.request("PATCH", path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, None).await
    }
}

/// A cookie-keeping browser for the HTML surfaces.
#[derive(Clone)]
pub struct Browser {
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    fn keep_cookies(&mut self, r: &Resp) {
        for (k, v) in &r.headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap_or_default();
                if let Some((name, value)) = pair.split_once('=') {
                    if value.is_empty() {
                        self.cookies.remove(name);
                    } else {
                        self.cookies.insert(name.to_string(), value.to_string());
                    }
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        let mut req = client().request(method.parse().unwrap(), &url);
        if !self.cookies.is_empty() {
            req = req.insert_header(("Cookie", self.cookie_header()));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let resp = match form {
            Some(f) => {
                req.send_form(
                    &f.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<Vec<_>>(),
                )
                .await
            }
            None => req.send().await,
        };
        let r = read(resp.unwrap()).await;
        self.keep_cookies(&r);
        r
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, None, &[]).await
    }

    /// GET as htmx does (a fragment).
    pub async fn hx_get(&mut self, path: &str) -> Resp {
        self.send("GET", path, None, &[("HX-Request", "true")])
            .await
    }

    /// POSTs a form with the CSRF token taken from `page`.
    pub async fn post_form(&mut self, path: &str, page: &str, fields: &[(&str, &str)]) -> Resp {
        let token = csrf_token(page);
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.send("POST", path, Some(&all), &[]).await
    }
}

impl Browser {
    /// POSTs a multipart form with the CSRF token taken from `page` (unless `token` is given)
    /// and one file field: `(name, filename, content type, bytes)`.
    pub async fn post_file(
        &mut self,
        path: &str,
        page: &str,
        file: (&str, &str, &str, &[u8]),
    ) -> Resp {
        let token = csrf_token(page);
        let boundary = "----rostertestboundary7MA4YWxk";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n\
             Content-Type: {}\r\n\r\n",
            file.0, file.1, file.2
        )
        .into_bytes();
        body.extend_from_slice(file.3);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut req = client()
            .post(format!("{}{}", self.base, path))
            .insert_header((
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            ));
        if !self.cookies.is_empty() {
            req = req.insert_header(("Cookie", self.cookie_header()));
        }
        let r = read(req.send_body(body).await.unwrap()).await;
        self.keep_cookies(&r);
        r
    }
}

/// The CSRF token rendered into a page.
pub fn csrf_token(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    if let Some(i) = page.find(marker) {
        let rest = &page[i + marker.len()..];
        return rest[..rest.find('"').unwrap()].to_string();
    }
    let marker = "\"X-CSRF-Token\": \"";
    let i = page.find(marker).expect("page carries a CSRF token");
    let rest = &page[i + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The text content of the element with this id (first match, tags stripped).
pub fn element_text(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let open_end = start + page[start..].find('>')? + 1;
    let close = open_end + page[open_end..].find("</")?;
    Some(page[open_end..close].trim().to_string())
}

/// A group's member ids, sorted.
pub fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|x| x["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Starts the real `roster serve` on `db_url` and a free port, with `extra` global flags,
/// `RUST_LOG=rust_log` and its log going to `stderr`; returns the process and its base URL
/// once it says where it listens.
pub fn start_server_process(
    db_url: &str,
    extra: &[&str],
    rust_log: &str,
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["--database-url", db_url, "--bind", "127.0.0.1:0"])
        .args(extra)
        .arg("serve")
        .env("ROSTER_SECRET_KEY_FILE", test_key_file())
        .env("RUST_LOG", rust_log)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server printed where it listens")
            .unwrap();
        if let Some(rest) = line.strip_prefix("Roster listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}
