//! `roster-bench`: starts a release `roster` on a fresh database and measures its SCIM
//! workloads, the portal's Users view and its memory, against a `/healthz` baseline measured in
//! the same run. See BENCHMARKS.md.
//!
//!   cargo build --release && target/release/roster-bench [--backend sqlite|postgres] [--full]
//!   target/release/roster-bench --scenario fairness|roles [--backend …]   (see `fairness`, `roles`)
//!   target/release/roster-bench --scenario realtime [--backend …] [--rate 1000] [--seconds 5]
//!   (see `realtime`)
//!   target/release/roster-bench --scenario peer [--peer-bin PATH]   (see `peer`)
//!   target/release/roster-bench --scenario scaleout --backend postgres   (see `scaleout`)
//!   target/release/roster-bench --scenario thousand [--backend …] [--thousand-scale 0.01]
//!   (see `thousand`)

mod fairness;
mod peer;
mod realtime;
mod roles;
mod scaleout;
mod thousand;
mod writer_times;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

pub(crate) struct Opts {
    backend: String,
    /// `fairness`, `realtime`, or none for the standard workloads.
    scenario: Option<String>,
    /// Creates per second under load (`realtime`).
    rate: usize,
    /// Share of the full dataset loaded (`thousand`).
    thousand_scale: f64,
    /// A database `thousand` loaded and kept before, measured again instead of loading anew.
    thousand_db: Option<String>,
    /// Leave the loaded database in place (`thousand`).
    thousand_keep: bool,
    sync_users: usize,
    sync_groups: usize,
    group_members: usize,
    concurrency: usize,
    seconds: u64,
}

fn parse_opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--full");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num =
        |name: &str, default: usize| value(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    Opts {
        backend: value("--backend").unwrap_or_else(|| "sqlite".into()),
        scenario: value("--scenario"),
        rate: num("--rate", 1000),
        thousand_scale: value("--thousand-scale")
            .and_then(|v| v.parse().ok())
            .filter(|s: &f64| *s > 0.0)
            .unwrap_or(1.0),
        thousand_db: value("--thousand-db"),
        thousand_keep: args.iter().any(|a| a == "--thousand-keep"),
        sync_users: num("--sync-users", if full { 100_000 } else { 20_000 }),
        sync_groups: num("--sync-groups", if full { 1_000 } else { 200 }),
        group_members: num("--group-members", 10_000),
        concurrency: num("--concurrency", 16),
        seconds: num("--seconds", 5) as u64,
    }
}

/// A running server process.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn roster_bin() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("roster")))
        .unwrap_or_else(|| "roster".into())
}

/// The local server's Unix socket when it has one (what libpq uses when no host is given, and
/// how a Postgres on Roster's own machine is best reached: TCP with TLS over loopback made
/// every round trip cost both processes far more), else TCP on 127.0.0.1.
fn default_pg_admin() -> String {
    let dir = "/var/run/postgresql";
    if std::path::Path::new(dir).join(".s.PGSQL.5432").exists() {
        "postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/postgres".into()
    } else {
        "postgres://postgres@127.0.0.1:5432/postgres".into()
    }
}

fn fresh_database(backend: &str) -> String {
    match backend {
        "postgres" => {
            let admin = std::env::var("BENCH_PG_ADMIN").unwrap_or_else(|_| default_pg_admin());
            let name = format!("roster_bench_{}", std::process::id());
            let status = Command::new("psql")
                .args([&admin, "-q", "-c", &format!("CREATE DATABASE {name}")])
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "could not create the Postgres database (is psql installed and the server up?)"
            );
            format!(
                "{}/{name}",
                admin.rsplit_once('/').map(|(a, _)| a).unwrap_or(&admin)
            )
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("roster-bench-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            format!("sqlite://{}", dir.join("roster.db").display())
        }
    }
}

/// The secret key file of this run's servers and CLI calls: apart from the working directory
/// (on Postgres the default would be `roster.key` there); `ROSTER_BENCH_KEY_FILE` names one
/// that outlives the run (for a database kept with `--thousand-keep`).
fn key_file() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("ROSTER_BENCH_KEY_FILE") {
        return path.into();
    }
    std::env::temp_dir()
        .join(format!("roster-bench-{}", std::process::id()))
        .join("roster.key")
}

fn start(db: &str) -> Server {
    let mut child = Command::new(roster_bin())
        .args(["--database-url", db, "--bind", "127.0.0.1:0", "serve"])
        .env("ROSTER_SECRET_KEY_FILE", key_file())
        .env("ROSTER_METRICS_TOKEN", writer_times::METRICS_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("target/release/roster exists (cargo build --release)");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server starts")
            .expect("stdout line");
        if let Some(rest) = line.strip_prefix("Roster listening on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

pub(crate) fn cli(db: &str, base: &str, args: &[&str]) -> String {
    let out = Command::new(roster_bin())
        .args(["--database-url", db, "--public-url", base])
        .env("ROSTER_SECRET_KEY_FILE", key_file())
        .args(args)
        .output()
        .expect("roster CLI");
    assert!(
        out.status.success(),
        "roster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new Okta directory of the organization, made with the CLI: its endpoint URL and token.
pub(crate) fn okta_directory(db: &str, base: &str, org_id: &str) -> (String, String) {
    let dir: Value = serde_json::from_str(&cli(
        db,
        base,
        &[
            "directory",
            "create",
            org_id,
            "--provider",
            "okta",
            "--json",
        ],
    ))
    .unwrap_or(Value::Null);
    (
        dir["endpoint_url"].as_str().unwrap_or_default().to_string(),
        dir["token"].as_str().unwrap_or_default().to_string(),
    )
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections_per_host(64)
        .build()
        .into()
}

/// Results of one workload.
pub(crate) struct Figures {
    name: String,
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Runs `n` requests with `concurrency` threads; `make(i)` performs request `i` and says
/// whether it succeeded.
pub(crate) fn run(
    name: &str,
    n: usize,
    concurrency: usize,
    make: impl Fn(&ureq::Agent, usize) -> bool + Sync,
) -> Figures {
    let next = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(n));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| {
                let a = agent();
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let t = Instant::now();
                    if !make(&a, i) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    local.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                latencies.lock().map(|mut l| l.extend(local)).ok();
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut l = latencies.into_inner().unwrap_or_default();
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Figures {
        name: name.into(),
        requests: n,
        seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        errors: errors.into_inner(),
    }
}

pub(crate) fn send(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let result = match (method, body) {
        ("GET", _) => a.get(url).header("authorization", &auth).call(),
        ("DELETE", _) => a.delete(url).header("authorization", &auth).call(),
        (m, Some(b)) => {
            let req = match m {
                "POST" => a.post(url),
                "PUT" => a.put(url),
                _ => a.patch(url),
            };
            req.header("authorization", &auth)
                .header("content-type", "application/scim+json")
                .send(b.to_string().as_str())
        }
        _ => return (0, String::new()),
    };
    match result {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

fn rss_peak_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Lua for wrk: request paths come from a file (one per line, picked at random) or, for
/// `POST`, a body with a userName unique to the run, thread and request.
const WRK_SCRIPT: &str = r#"
local paths = {}
local n = 0
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end
function init(args)
  local f = io.open(os.getenv("BENCH_PATHS"), "r")
  for l in f:lines() do paths[#paths + 1] = l end
  f:close()
  math.randomseed(tonumber(tid))
  headers = {["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
             ["Content-Type"] = "application/scim+json"}
end
function request()
  local path = paths[math.random(#paths)]
  if os.getenv("BENCH_POST") == "1" then
    n = n + 1
    local name = os.getenv("BENCH_PREFIX") .. tid .. "-" .. n .. "@bench.example"
    local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. name ..
      '","name":{"givenName":"Given' .. n .. '","familyName":"Family' .. tid ..
      '"},"emails":[{"value":"' .. name .. '","type":"work","primary":true}],"active":true}'
    return wrk.format("POST", path, headers, body)
  end
  return wrk.format("GET", path, headers)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"#;

/// Requests/s of a bare actix-web handler, with this load tool over loopback, on the machine
/// where Roster's throughput targets (printed at the end of a run; see BENCHMARKS.md) were set.
const REFERENCE_BARE_ACTIX: f64 = 52_000.0;

/// Starts a bare actix-web handler in this process (idle while Roster is measured) and
/// returns its base URL: what this machine does per request with no Roster in it, so that
/// a run's figures can be read against the targets on a machine of another speed.
fn start_bare_actix() -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("a bound port");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(|| {
                App::new().route(
                    "/",
                    web::get()
                        .to(|| async { HttpResponse::Ok().content_type("text/plain").body("ok") }),
                )
            })
            .listen(listener)?
            .run()
            .await
        })
    });
    format!("http://{addr}")
}

/// Runs wrk (2 threads, or 1 for a single connection; `concurrency` connections) for
/// `seconds` against `paths` (picked at random). wrk is a C load generator: on this machine
/// it reaches ~10× the requests/s of a Rust blocking client, so it leaves the cores to the
/// server.
fn wrk(
    name: &str,
    base: &str,
    paths: &[String],
    token: &str,
    post_prefix: Option<&str>,
    seconds: u64,
    concurrency: usize,
) -> Figures {
    let load = spawn_wrk(
        "main",
        base,
        paths,
        token,
        post_prefix,
        seconds,
        concurrency,
    );
    wrk_figures(name, load)
}

/// Starts wrk as [`wrk`] runs it, with its script and path list in files named after `tag`
/// (wrk processes running at once need a tag each); [`wrk_figures`] waits for it.
pub(crate) fn spawn_wrk(
    tag: &str,
    base: &str,
    paths: &[String],
    token: &str,
    post_prefix: Option<&str>,
    seconds: u64,
    concurrency: usize,
) -> Child {
    let dir = std::env::temp_dir().join(format!("roster-bench-wrk-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let script = dir.join(format!("{tag}.lua"));
    let list = dir.join(format!("{tag}-paths.txt"));
    std::fs::write(&script, WRK_SCRIPT).expect("write the wrk script");
    std::fs::write(&list, paths.join("\n") + "\n").expect("write the path list");
    Command::new("wrk")
        .args([
            // wrk refuses fewer connections than threads.
            &format!("-t{}", concurrency.clamp(1, 2)),
            &format!("-c{concurrency}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(&script)
        .arg(base)
        .env("BENCH_PATHS", &list)
        .env("BENCH_TOKEN", token)
        .env("BENCH_POST", if post_prefix.is_some() { "1" } else { "0" })
        .env("BENCH_PREFIX", post_prefix.unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk is installed (Debian: apt-get install wrk)")
}

/// Waits for a wrk started by [`spawn_wrk`] and reads its summary.
pub(crate) fn wrk_figures(name: &str, load: Child) -> Figures {
    let out = load.wait_with_output().expect("wrk ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK "))
        .unwrap_or_else(|| panic!("wrk printed no summary: {stdout}"))
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [requests, duration_us, p50_us, p99_us, errors] = figures[..] else {
        panic!("unexpected wrk summary: {stdout}");
    };
    Figures {
        name: name.into(),
        requests: requests as usize,
        seconds: duration_us / 1e6,
        p50_ms: p50_us / 1000.0,
        p99_ms: p99_us / 1000.0,
        errors: errors as usize,
    }
}

/// Every user id and userName of the directory, read page by page.
pub(crate) fn all_users(scim: &str, token: &str, filter: Option<&str>) -> Vec<(String, String)> {
    let a = agent();
    let mut users = Vec::new();
    let mut start = 1;
    let filter = filter.map(|f| format!("&filter={f}")).unwrap_or_default();
    loop {
        let (_, body) = send(
            &a,
            "GET",
            &format!("{scim}/Users?startIndex={start}&count=1000&attributes=userName{filter}"),
            token,
            None,
        );
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let page: Vec<(String, String)> = v["Resources"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|u| {
                        Some((
                            u["id"].as_str()?.to_string(),
                            u["userName"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if page.is_empty() {
            break;
        }
        start += page.len();
        users.extend(page);
    }
    users
}

/// The groups of a PingOne-style initial sync: `groups` groups named `{name} {i}`, each made by
/// a `POST` and then given its members by a full `PUT` (consecutive runs of `ids`, each user in
/// about two groups), at `concurrency`.
pub(crate) fn pingone_groups(
    label: &str,
    scim: &str,
    token: &str,
    ids: &[String],
    name: &str,
    groups: usize,
    concurrency: usize,
) -> Figures {
    let per_group = (ids.len() / groups.max(1)).max(1);
    run(label, groups, concurrency, |a, i| {
        let name = format!("{name} {i}");
        let (s, body) = send(
            a,
            "POST",
            &format!("{scim}/Groups"),
            token,
            Some(&json!({"displayName": name})),
        );
        let gid = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .unwrap_or_default();
        let members: Vec<Value> = ids
            .iter()
            .skip(i * per_group)
            .take(per_group * 2)
            .map(|id| json!({"value": id}))
            .collect();
        s == 201
            && send(
                a,
                "PUT",
                &format!("{scim}/Groups/{gid}"),
                token,
                Some(&json!({"displayName": name, "members": members})),
            )
            .0 == 200
    })
}

pub(crate) fn user_body(i: usize, prefix: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{prefix}{i}@bench.example"),
        "name": {"givenName": format!("Given{i}"), "familyName": format!("Family{i}")},
        "emails": [{"value": format!("{prefix}{i}@bench.example"), "type": "work", "primary": true}], "active": true})
}

fn main() {
    let o = parse_opts();
    let db = fresh_database(&o.backend);
    if o.scenario.as_deref() == Some("thousand") {
        thousand::run_scenario(&o, &db);
        if o.thousand_keep && o.thousand_db.is_none() {
            println!(
                "kept: --thousand-db {db} (its key: {})",
                key_file().display()
            );
        } else {
            clean_up(&db, &o.backend);
        }
        return;
    }
    let server = start(&db);
    let base = server.base.clone();
    let org: Value = serde_json::from_str(&cli(
        &db,
        &base,
        &["org", "create", "Bench", "--scim-enabled", "--json"],
    ))
    .unwrap_or(Value::Null);
    let org_id = org["id"].as_str().unwrap_or_default().to_string();
    let dir: Value = serde_json::from_str(&cli(
        &db,
        &base,
        &[
            "directory",
            "create",
            &org_id,
            "--provider",
            "pingidentity",
            "--json",
        ],
    ))
    .unwrap_or(Value::Null);
    let scim = dir["endpoint_url"].as_str().unwrap_or_default().to_string();
    let token = dir["token"].as_str().unwrap_or_default().to_string();
    println!(
        "roster-bench: backend {}, {} cores, server {base}, concurrency {}",
        o.backend,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        o.concurrency
    );
    println!("database: {db}");
    match o.scenario.as_deref() {
        None => {}
        Some("fairness") => {
            fairness::run_scenario(&o, &db, &base, &org_id, &scim, &token);
            drop(server);
            clean_up(&db, &o.backend);
            return;
        }
        Some("roles") => {
            roles::run_scenario(&o, &db, &base, &org_id, &scim, &token);
            drop(server);
            clean_up(&db, &o.backend);
            return;
        }
        Some("peer") => {
            peer::run_scenario(&o, &base, &scim, &token);
            drop(server);
            clean_up(&db, &o.backend);
            return;
        }
        Some("realtime") => {
            realtime::run_scenario(&o, &db, &base, &org_id, &scim, &token);
            drop(server);
            clean_up(&db, &o.backend);
            return;
        }
        Some("scaleout") => {
            scaleout::run_scenario(&o, &db, &base, &org_id, &scim, &token);
            drop(server);
            clean_up(&db, &o.backend);
            return;
        }
        Some(other) => {
            eprintln!(
                "roster-bench: unknown scenario `{other}` (known: fairness, roles, realtime, peer, scaleout, thousand)"
            );
            drop(server);
            clean_up(&db, &o.backend);
            std::process::exit(2);
        }
    }
    let mut results = Vec::new();

    let path = |url: &str| url.trim_start_matches(&base).to_string();
    let scim_path = path(&scim);
    let secs = o.seconds;
    results.push(wrk(
        "baseline GET /healthz",
        &base,
        &["/healthz".to_string()],
        &token,
        None,
        secs,
        o.concurrency,
    ));
    let bare = wrk(
        "calibration: bare actix-web handler",
        &start_bare_actix(),
        &["/".to_string()],
        &token,
        None,
        secs,
        o.concurrency,
    );
    let machine = bare.rate() / REFERENCE_BARE_ACTIX;
    results.push(bare);
    results.push(wrk(
        "POST /Users (distinct)",
        &base,
        &[format!("{scim_path}/Users")],
        &token,
        Some("u"),
        secs,
        o.concurrency,
    ));
    let users = all_users(&scim, &token, None);
    let ids: Vec<String> = users.iter().map(|(id, _)| id.clone()).collect();
    results.push(wrk(
        "GET /Users/{id} (random)",
        &base,
        &ids.iter()
            .map(|id| format!("{scim_path}/Users/{id}"))
            .collect::<Vec<_>>(),
        &token,
        None,
        secs,
        o.concurrency,
    ));
    results.push(wrk(
        "GET /Users?filter=userName eq (random)",
        &base,
        &users
            .iter()
            .map(|(_, name)| {
                format!(
                    "{scim_path}/Users?filter=userName%20eq%20%22{}%22",
                    name.replace('@', "%40")
                )
            })
            .collect::<Vec<_>>(),
        &token,
        None,
        secs,
        o.concurrency,
    ));
    results.push(wrk(
        "GET /Users?startIndex&count=100 (random pages)",
        &base,
        &(0..users.len().div_ceil(100))
            .map(|i| format!("{scim_path}/Users?startIndex={}&count=100", i * 100 + 1))
            .collect::<Vec<_>>(),
        &token,
        None,
        secs,
        o.concurrency,
    ));

    // Membership adds one at a time: is the 10 000th as cheap as the 1st?
    let members = o.group_members.min(ids.len());
    let group = {
        let a = agent();
        let (_, body) = send(
            &a,
            "POST",
            &format!("{scim}/Groups"),
            &token,
            Some(&json!({"displayName": "Big group"})),
        );
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let a = agent();
    let mut add_ms = Vec::with_capacity(members);
    for id in ids.iter().take(members) {
        let t = Instant::now();
        send(
            &a,
            "PATCH",
            &format!("{scim}/Groups/{group}"),
            &token,
            Some(
                &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}),
            ),
        );
        add_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let window = 1000.min(members / 2).max(1);
    let first = add_ms.iter().take(window).sum::<f64>() / window as f64;
    let last = add_ms.iter().rev().take(window).sum::<f64>() / window as f64;

    // A PingOne-style initial sync: users by POST, then every group by a full-member PUT. Its
    // time is those two phases: between them the harness lists the users it made, to know
    // their ids, which a provider knows already.
    let created = run("sync: POST users", o.sync_users, o.concurrency, |a, i| {
        send(
            a,
            "POST",
            &format!("{scim}/Users"),
            &token,
            Some(&user_body(i, "p1-")),
        )
        .0 == 201
    });
    let listing_started = Instant::now();
    let sync_ids: Vec<String> = all_users(&scim, &token, Some("userName%20sw%20%22p1-%22"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let listing = listing_started.elapsed().as_secs_f64();
    let groups = pingone_groups(
        "sync: POST + PUT groups",
        &scim,
        &token,
        &sync_ids,
        "Ping group",
        o.sync_groups,
        o.concurrency,
    );
    let pingone_total = created.seconds + groups.seconds;

    // An Entra-style membership sync: PATCH Add members in batches of 100.
    let per_group = (sync_ids.len() / o.sync_groups.max(1)).max(1);
    let entra_started = Instant::now();
    let entra = run(
        "sync: Entra PATCH add batches",
        o.sync_groups,
        o.concurrency,
        |a, i| {
            let (_, body) = send(
                a,
                "POST",
                &format!("{scim}/Groups"),
                &token,
                Some(&json!({"displayName": format!("Entra group {i}")})),
            );
            let gid = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .unwrap_or_default();
            sync_ids.iter().skip(i * per_group).take(per_group).collect::<Vec<_>>().chunks(100).all(|chunk| {
            let value: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
            send(a, "PATCH", &format!("{scim}/Groups/{gid}"), &token, Some(&json!({"Operations": [{"op": "Add", "path": "members", "value": value}]}))).0 == 204
        })
        },
    );
    let entra_total = entra_started.elapsed().as_secs_f64();
    // Portal Users view at the full size: the first page and a search, over a portal session.
    let link = cli(&db, &base, &["portal-link", &org_id]);
    let portal = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let cookie = portal
        .get(&link)
        .call()
        .ok()
        .and_then(|r| {
            r.headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .map(|c| c.split(';').next().unwrap_or_default().to_string())
        })
        .unwrap_or_default();
    let view = |path: &str| {
        let t = Instant::now();
        let n = 50;
        for _ in 0..n {
            let _ = portal
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .header("hx-request", "true")
                .call()
                .map(|mut r| r.body_mut().read_to_string());
        }
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    };
    let view_first = view("/portal/users");
    let view_search = view("/portal/users?q=given9876");
    // The SCIM tab: each directory with its numbers of users and groups; a directory's page.
    let scim_tab = view("/portal/scim");
    let directory_page = view(&format!(
        "/portal/scim/directories/{}",
        dir["id"].as_str().unwrap_or_default()
    ));

    let rss = rss_peak_mb(server.child.id());

    let baseline = results[0].rate();
    println!(
        "\n{:<44} {:>9} {:>10} {:>9} {:>9} {:>8} {:>7}",
        "workload", "requests", "req/s", "p50 ms", "p99 ms", "÷ base", "errors"
    );
    for r in results.iter().chain([&created, &groups, &entra]) {
        println!(
            "{:<44} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>8.3} {:>7}",
            r.name,
            r.requests,
            r.rate(),
            r.p50_ms,
            r.p99_ms,
            r.rate() / baseline,
            r.errors
        );
    }
    println!(
        "\nmembership adds, one at a time up to {members}: first {window} mean {first:.2} ms, last {window} mean {last:.2} ms, last/first {:.2}×",
        last / first.max(1e-9)
    );
    println!(
        "PingOne-style initial sync ({} users, {} groups by full PUT): {pingone_total:.1} s \
         (the harness's listing of the users' ids between the two phases, {listing:.1} s, not counted)",
        o.sync_users, o.sync_groups
    );
    println!(
        "Entra-style membership sync ({} groups, PATCH Add batches of 100): {entra_total:.1} s",
        o.sync_groups
    );
    println!(
        "portal Users view at {} users: first page {view_first:.1} ms, search {view_search:.1} ms (mean of 50, client-side wall time)",
        ids.len() + sync_ids.len()
    );
    println!(
        "portal SCIM tab: {scim_tab:.1} ms, a directory's page: {directory_page:.1} ms (mean of 50)"
    );
    println!("server peak RSS: {rss:.1} MB");
    println!(
        "\nthis machine runs a bare actix-web handler at {machine:.2}× the targets' reference \
         machine ({REFERENCE_BARE_ACTIX:.0}/s): its SQLite targets read, here, POST ≥ {:.0}, \
         GET by id ≥ {:.0}, userName eq ≥ {:.0}, pages ≥ {:.0} req/s",
        8000.0 * machine,
        16000.0 * machine,
        14000.0 * machine,
        3000.0 * machine,
    );
    drop(server);
    clean_up(&db, &o.backend);
}

/// Removes the run's database (its directory on SQLite) and the wrk scripts.
fn clean_up(db: &str, backend: &str) {
    if let Some(path) = db.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path).parent()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("roster-bench-wrk-{}", std::process::id())),
    );
    if backend == "postgres" {
        let admin = std::env::var("BENCH_PG_ADMIN")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = db.rsplit('/').next().unwrap_or_default().to_string();
        let _ = Command::new("psql")
            .args([
                &admin,
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {name}"),
            ])
            .status();
    }
}
