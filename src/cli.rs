//! The `roster` command line: `serve` (the default) and operator commands usable from scripts
//! (`--json` prints one JSON object on stdout).

use crate::embed::origins::FrameOrigin;
use std::net::TcpListener;

use actix_web::web;
use chrono::Duration;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::app;
use crate::at_rest::SecretKeys;
use crate::config::{Config, parse_public_url};
use crate::db::{self, Pool};
use crate::metrics::endpoint::MetricsToken;
use crate::providers;
use crate::state::AppState;

#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "Self-hosted SCIM 2.0 onboarding: owner console, Admin Portal and a multi-tenant SCIM server."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Database: `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://roster.db",
        global = true
    )]
    pub database_url: String,
    /// Public base URL that identity providers and browsers use to reach Roster (Endpoint URLs
    /// and links are built from it). Default: http://<bind address>.
    #[arg(long, env = "ROSTER_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Address to listen on.
    #[arg(
        long,
        env = "ROSTER_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// Product name shown to IT admins in the Admin Portal.
    #[arg(
        long,
        env = "ROSTER_PRODUCT_NAME",
        default_value = "Roster",
        global = true
    )]
    pub product_name: String,
    /// Seconds to wait before each webhook retry, comma-separated; after the last, a delivery
    /// is dead-lettered (replay it from the API or the owner console).
    #[arg(
        long,
        env = "ROSTER_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5,30,120,600,1800,3600,7200,14400,28800",
        global = true
    )]
    pub webhook_retry_schedule: String,
    /// Seconds a webhook receiver may take to answer.
    #[arg(
        long,
        env = "ROSTER_WEBHOOK_TIMEOUT",
        default_value_t = 10,
        global = true
    )]
    pub webhook_timeout: u64,
    /// Addresses of reverse proxies in front of Roster, comma-separated: only from these is
    /// `X-Forwarded-For` believed (to rate-limit failed authentications by client address).
    #[arg(
        long,
        env = "ROSTER_TRUSTED_PROXIES",
        global = true,
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<String>,
    /// Origins allowed to frame the Admin Portal (embed links), comma-separated:
    /// `https://host[:port]`, or http only for localhost. Added to those the owner allows
    /// on the settings page.
    #[arg(
        long,
        env = "ROSTER_FRAME_ANCESTORS",
        global = true,
        value_delimiter = ','
    )]
    pub frame_ancestors: Vec<String>,
    /// Days events are kept for the events feed and replays.
    #[arg(
        long,
        env = "ROSTER_EVENT_RETENTION_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub event_retention_days: i64,
    /// File holding the key that seals webhook signing secrets and the session key in the
    /// database (one base64 key per line; the first seals, all open; see README). Created on
    /// first start. Default: beside a SQLite database (`roster.key` for `roster.db`), else
    /// `roster.key` in the working directory. Every instance on one database needs the same.
    #[arg(long, env = "ROSTER_SECRET_KEY_FILE", global = true)]
    pub secret_key_file: Option<std::path::PathBuf>,
    /// Token a Prometheus scraper sends as `Authorization: Bearer <token>` to read `/metrics`
    /// (at least 16 printable characters). Without it, `/metrics` is not served (404).
    #[arg(
        long,
        env = "ROSTER_METRICS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub metrics_token: Option<String>,
    /// Log lines on stderr: `text`, or `json` (one object per line).
    #[arg(
        long,
        env = "ROSTER_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: crate::log_format::LogFormat,
}

impl Global {
    /// The secret key file: the flag's, or the default beside the database.
    pub fn secret_key_path(&self) -> std::path::PathBuf {
        if let Some(p) = &self.secret_key_file {
            return p.clone();
        }
        match db::sqlite_path(&self.database_url) {
            Some(db_file) => std::path::Path::new(db_file).with_extension("key"),
            None => "roster.key".into(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Create an Admin Portal link for an organization.
    PortalLink {
        /// Organization id or exact name.
        org: String,
        /// Lifetime: e.g. `7d`, `12h`, `30m` (default 7 days).
        #[arg(long, default_value = "7d")]
        ttl: String,
        #[arg(long)]
        json: bool,
    },
    /// Manage directories (what the portal's Configure button creates).
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Owner account.
    #[command(subcommand)]
    Owner(OwnerCommand),
    /// Webhook endpoints of the vendor's application.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// API keys of the vendor's application.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// The key that seals secrets at rest.
    #[command(subcommand)]
    SecretKey(SecretKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretKeyCommand {
    /// Print a new key, one line to add to the secret key file (see README: rotation).
    New,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint; prints its id and signing secret (shown once).
    Add {
        url: String,
        /// Only this organization's events (id or exact name); default: all organizations.
        #[arg(long)]
        org: Option<String>,
        /// Event types, comma-separated (`user.created,group.*`); default: all.
        #[arg(long)]
        events: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List endpoints.
    List,
    /// Remove an endpoint.
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; prints it once.
    Create {
        name: String,
        /// Scope the key to one organization (id or exact name): it reaches nothing else.
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints its id.
    Create {
        name: String,
        /// Turn the SCIM Provisioning tab on right away.
        #[arg(long)]
        scim_enabled: bool,
        #[arg(long)]
        json: bool,
    },
    /// Turn SCIM Provisioning on or off for an organization.
    Scim {
        /// Organization id or exact name.
        org: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Create a directory and print its Endpoint URL and Bearer token (shown once).
    Create {
        /// Organization id or exact name.
        org: String,
        /// pingidentity, okta, entra, onelogin, jumpcloud, rippling or generic.
        #[arg(long)]
        provider: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OwnerCommand {
    /// Print a fresh one-time owner setup link (also resets the owner password when used).
    SetupLink,
}

/// A failure the CLI reports on stderr with its exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: i32,
}

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError {
            message: e.to_string(),
            code: 1,
        }
    }
}

fn not_found(what: &str) -> CliError {
    CliError {
        message: what.to_string(),
        code: 3,
    }
}

fn public_url(g: &Global, bound: Option<&str>) -> Result<String, CliError> {
    match &g.public_url {
        Some(u) => parse_public_url(u).map_err(bad_flag),
        None => Ok(format!("http://{}", bound.unwrap_or(&g.bind))),
    }
}

fn trusted_proxies(g: &Global) -> Result<Vec<std::net::IpAddr>, CliError> {
    g.trusted_proxy
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim().parse().map_err(|_| {
                bad_flag(format!(
                    "invalid --trusted-proxy `{p}`: use IP addresses, comma-separated"
                ))
            })
        })
        .collect()
}

fn frame_ancestors(g: &Global) -> Result<Vec<FrameOrigin>, CliError> {
    crate::embed::origins::parse_list(&g.frame_ancestors.join(","))
        .map_err(|e| bad_flag(format!("invalid --frame-ancestors: {e}")))
}

/// The operator's secret keys, with every stored secret brought under the first (see
/// `db::sealing`). A key file that cannot open what the database holds is a bad flag.
fn secret_keys(g: &Global, conn: &mut db::DbConn) -> Result<SecretKeys, CliError> {
    let path = g.secret_key_path();
    let (keys, resealed) = db::sealing::open_keys(conn, &path).map_err(|e| match e {
        db::sealing::SealingError::Keys(e) => bad_flag(e.to_string()),
        e => CliError::from(e),
    })?;
    // On stderr: a `--json` command's stdout holds its one JSON object.
    if resealed > 0 {
        eprintln!(
            "Sealed {resealed} stored secret(s) under key {} of {}",
            keys.ids()[0],
            path.display()
        );
    }
    Ok(keys)
}

fn metrics_token(g: &Global) -> Result<Option<MetricsToken>, CliError> {
    g.metrics_token
        .as_deref()
        .map(|t| MetricsToken::parse(t).map_err(bad_flag))
        .transpose()
}

fn connect(g: &Global) -> Result<Pool, CliError> {
    db::connect_single(&g.database_url).map_err(|e| CliError {
        message: format!("{e}"),
        code: 1,
    })
}

/// Parses `7d`, `12h`, `30m` or a bare number of days.
pub fn parse_ttl(s: &str) -> Result<Duration, CliError> {
    let s = s.trim();
    let bad = || CliError {
        message: format!("invalid --ttl `{s}`: use e.g. 7d, 12h or 30m"),
        code: 2,
    };
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 'd'),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    // Checked constructors: a huge number is a bad flag, not a panic.
    let d = match unit {
        'd' => Duration::try_days(n),
        'h' => Duration::try_hours(n),
        'm' => Duration::try_minutes(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    if n <= 0 || d > Duration::days(365) {
        return Err(CliError {
            message: format!("invalid --ttl `{s}`: a link lives from 1 minute to 365 days"),
            code: 2,
        });
    }
    Ok(d)
}

fn find_org(conn: &mut db::DbConn, org: &str) -> Result<db::orgs::Org, CliError> {
    db::orgs::find(conn, org)?
        .ok_or_else(|| not_found(&format!("no organization with id or name `{org}`")))
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    // Every flag is checked before anything runs: a bad value is exit 2 with its reason.
    delivery(g)?;
    public_url(g, None)?;
    trusted_proxies(g)?;
    frame_ancestors(g)?;
    metrics_token(g)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(g),
        Command::Migrate => {
            connect(g)?;
            println!("migrations applied to {}", db::redact_url(&g.database_url));
            Ok(())
        }
        Command::Org(OrgCommand::Create {
            name,
            scim_enabled,
            json,
        }) => {
            let name = name.trim();
            if name.is_empty() {
                return Err(CliError {
                    message: "the organization needs a name".into(),
                    code: 2,
                });
            }
            let pool = connect(g)?;
            let org = db::orgs::create(&mut *pool.get()?, name, scim_enabled)?;
            if json {
                println!(
                    "{}",
                    json!({"id": org.id, "name": org.name, "scim_enabled": org.scim_enabled})
                );
            } else {
                println!("{}", org.id);
            }
            Ok(())
        }
        Command::Org(OrgCommand::Scim { org, state }) => {
            let pool = connect(g)?;
            let mut conn = pool.get()?;
            let org = find_org(&mut conn, &org)?;
            db::orgs::set_scim_enabled(&mut conn, &org.id, state == "on")?;
            println!("SCIM Provisioning is {state} for {}", org.name);
            Ok(())
        }
        Command::PortalLink { org, ttl, json } => {
            let ttl = parse_ttl(&ttl)?;
            let public_url = public_url(g, None)?;
            let pool = connect(g)?;
            let mut conn = pool.get()?;
            let org = find_org(&mut conn, &org)?;
            let (token, expires) = db::orgs::create_portal_link(&mut conn, &org.id, ttl)?;
            let url = format!("{public_url}/portal/link/{token}");
            if json {
                println!(
                    "{}",
                    json!({"url": url, "org_id": org.id, "expires_at": crate::scim::resource::rfc3339(expires)})
                );
            } else {
                println!("{url}");
            }
            Ok(())
        }
        Command::Directory(DirectoryCommand::Create {
            org,
            provider,
            json,
        }) => {
            let Some(p) = providers::by_slug(&provider) else {
                let known: Vec<&str> = providers::ALL.iter().map(|p| p.slug).collect();
                return Err(CliError {
                    message: format!(
                        "unknown provider `{provider}`; use one of {}",
                        known.join(", ")
                    ),
                    code: 2,
                });
            };
            let public_url = public_url(g, None)?;
            let pool = connect(g)?;
            let mut conn = pool.get()?;
            let org = find_org(&mut conn, &org)?;
            let (dir, token) = db::directories::create(&mut conn, &org.id, p.slug, p.name)?;
            let endpoint_url = crate::config::scim_base(&public_url, &dir.id);
            if json {
                println!(
                    "{}",
                    json!({"id": dir.id, "endpoint_url": endpoint_url, "token": token})
                );
            } else {
                println!(
                    "Endpoint URL: {endpoint_url}\nBearer token: {token}\n(the token is shown only now)"
                );
            }
            Ok(())
        }
        Command::Webhook(WebhookCommand::Add {
            url,
            org,
            events,
            json,
        }) => {
            let types: Vec<String> = events
                .map(|e| {
                    e.split(',')
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let filter = crate::events::endpoint::validate(&url, &types).map_err(|m| CliError {
                message: m,
                code: 2,
            })?;
            let pool = connect(g)?;
            let mut conn = pool.get()?;
            let org_id = match org {
                Some(o) => Some(find_org(&mut conn, &o)?.id),
                None => None,
            };
            let keys = secret_keys(g, &mut conn)?;
            let (e, secret) =
                db::webhooks::create(&mut conn, &keys, &url, org_id.as_deref(), &filter)?;
            if json {
                println!("{}", json!({"id": e.id, "secret": secret}));
            } else {
                println!(
                    "Webhook {} → {url}\nSigning secret: {secret} (shown only now)",
                    e.id
                );
            }
            Ok(())
        }
        Command::Webhook(WebhookCommand::List) => {
            let pool = connect(g)?;
            for e in db::webhooks::list(&mut *pool.get()?)? {
                println!(
                    "{}\t{}\t{}\t{}",
                    e.id,
                    e.url,
                    e.org_id.as_deref().unwrap_or("all organizations"),
                    e.event_types
                );
            }
            Ok(())
        }
        Command::Webhook(WebhookCommand::Remove { id }) => {
            let pool = connect(g)?;
            if db::webhooks::remove(&mut *pool.get()?, &id)? {
                println!("removed {id}");
                Ok(())
            } else {
                Err(not_found(&format!("no webhook endpoint `{id}`")))
            }
        }
        Command::ApiKey(ApiKeyCommand::Create { name, org, json }) => {
            let pool = connect(g)?;
            let mut conn = pool.get()?;
            let org_id = match org {
                Some(o) => Some(find_org(&mut conn, &o)?.id),
                None => None,
            };
            let (id, key) = db::api_keys::create_scoped(&mut conn, name.trim(), org_id.as_deref())?;
            if json {
                println!(
                    "{}",
                    json!({"id": id, "key": key, "organization_id": org_id})
                );
            } else {
                println!("API key {id}: {key}\n(shown only now)");
            }
            Ok(())
        }
        Command::Owner(OwnerCommand::SetupLink) => {
            let public_url = public_url(g, None)?;
            let pool = connect(g)?;
            let token = db::owners::create_setup_link(&mut *pool.get()?)?;
            println!("{public_url}/owner/setup/{token}");
            Ok(())
        }
        Command::SecretKey(SecretKeyCommand::New) => {
            println!("{}", crate::at_rest::new_key_line());
            Ok(())
        }
    }
}

/// Longest wait a retry schedule may name: a week (the default's longest is 8 hours).
const MAX_RETRY_WAIT_SECS: f64 = 7.0 * 24.0 * 3600.0;
/// Most retries a schedule may name.
const MAX_RETRIES: usize = 1000;
/// Longest a webhook receiver may be given to answer.
const MAX_WEBHOOK_TIMEOUT_SECS: u64 = 300;
/// Longest events may be kept (ten years).
const MAX_EVENT_RETENTION_DAYS: i64 = 3650;

fn bad_flag(message: String) -> CliError {
    CliError { message, code: 2 }
}

/// The webhook worker's settings from the flags, each checked against its range, so that no
/// value an operator can type makes the worker fail later.
pub fn delivery(g: &Global) -> Result<crate::config::Delivery, CliError> {
    let bad_schedule = |why: &str| {
        bad_flag(format!(
            "invalid --webhook-retry-schedule `{}`: {why}",
            g.webhook_retry_schedule
        ))
    };
    let schedule = g
        .webhook_retry_schedule
        .split(',')
        .map(|s| {
            let secs = s
                .trim()
                .parse::<f64>()
                .map_err(|_| bad_schedule("use seconds separated by commas, e.g. 5,30,120"))?;
            if !(secs.is_finite() && secs > 0.0 && secs <= MAX_RETRY_WAIT_SECS) {
                return Err(bad_schedule(&format!(
                    "each wait must be more than 0 and at most {MAX_RETRY_WAIT_SECS} seconds (a week)"
                )));
            }
            std::time::Duration::try_from_secs_f64(secs)
                .map_err(|_| bad_schedule("a wait is out of range"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if schedule.len() > MAX_RETRIES {
        return Err(bad_schedule(&format!("at most {MAX_RETRIES} retries")));
    }
    if !(1..=MAX_WEBHOOK_TIMEOUT_SECS).contains(&g.webhook_timeout) {
        return Err(bad_flag(format!(
            "invalid --webhook-timeout `{}`: use 1 to {MAX_WEBHOOK_TIMEOUT_SECS} seconds",
            g.webhook_timeout
        )));
    }
    if !(1..=MAX_EVENT_RETENTION_DAYS).contains(&g.event_retention_days) {
        return Err(bad_flag(format!(
            "invalid --event-retention-days `{}`: use 1 to {MAX_EVENT_RETENTION_DAYS} days",
            g.event_retention_days
        )));
    }
    Ok(crate::config::Delivery {
        retry_schedule: schedule,
        timeout: std::time::Duration::from_secs(g.webhook_timeout),
        retention_days: g.event_retention_days,
        ..Default::default()
    })
}

fn serve(g: &Global) -> Result<(), CliError> {
    let listener = TcpListener::bind(&g.bind).map_err(|e| CliError {
        message: format!("cannot listen on {}: {e}", g.bind),
        code: 1,
    })?;
    let bound = listener.local_addr()?.to_string();
    let pool = db::connect(&g.database_url).map_err(|e| CliError {
        message: e.to_string(),
        code: 1,
    })?;
    let (secret_keys, key) = {
        let mut conn = pool.get()?;
        let keys = secret_keys(g, &mut conn)?;
        let key = db::sealing::session_key(&mut conn, &keys)?;
        (keys, key)
    };
    let cfg = Config {
        bind: g.bind.clone(),
        database_url: g.database_url.clone(),
        public_url: public_url(g, Some(&bound))?,
        product_name: g.product_name.clone(),
        command: crate::config::self_command(),
        limits: Default::default(),
        trusted_proxies: trusted_proxies(g)?,
        frame_ancestors: frame_ancestors(g)?,
        secret_keys,
        delivery: delivery(g)?,
        metrics_token: metrics_token(g)?,
    };
    println!(
        "Roster listening on http://{bound} (public URL {}), database {}",
        cfg.public_url,
        db::redact_url(&cfg.database_url)
    );
    {
        let mut conn = pool.get()?;
        if !db::owners::exists(&mut conn)? {
            let token = db::owners::create_setup_link(&mut conn)?;
            println!(
                "\nNo owner account yet. Open this one-time setup link to set the owner password (valid {} h):\n  {}/owner/setup/{token}\nAsk for a fresh one any time with: {} owner setup-link\n",
                db::owners::SETUP_LINK_TTL_HOURS,
                cfg.public_url,
                cfg.command
            );
        } else {
            println!("Owner console: {}/owner", cfg.public_url);
        }
    }
    let state = web::Data::new(AppState::new(pool.clone(), cfg));
    let _worker = crate::events::start(
        pool,
        state.writer.clone(),
        &state.config.database_url,
        state.config.delivery.clone(),
        state.config.secret_keys.clone(),
        state.worker_health.clone(),
        state.delivery_wake.clone(),
    );
    actix_web::rt::System::new().block_on(async move { app::run(state, key, listener)?.await })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_ttl("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_ttl("3").unwrap(), Duration::days(3));
        assert!(parse_ttl("0d").is_err());
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("1000d").is_err());
        assert!(parse_ttl("x").is_err());
        assert!(parse_ttl("99999999999999999d").is_err());
        assert!(parse_ttl("9223372036854775807m").is_err());
        assert!(parse_ttl("-5d").is_err());
    }

    /// The README's configuration table names every flag `roster --help` shows, with its
    /// environment variable, and nothing else.
    #[test]
    fn the_readme_lists_every_flag_and_variable() {
        use clap::CommandFactory;
        let readme = include_str!("../README.md");
        let table = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").find(|block| block.contains("| flag |")))
            .unwrap();
        let documented: Vec<(String, String)> = table
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let flag = cells.get(1)?.strip_prefix("`--")?.strip_suffix('`')?;
                let var = cells.get(2)?.trim_matches('`');
                Some((flag.to_string(), var.to_string()))
            })
            .collect();
        let mut declared: Vec<(String, String)> = Cli::command()
            .get_arguments()
            .filter_map(|a| {
                Some((
                    a.get_long()?.to_string(),
                    a.get_env()?.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        let mut documented_sorted = documented.clone();
        documented_sorted.sort();
        declared.sort();
        assert_eq!(documented_sorted, declared);
        assert!(table.contains("`RUST_LOG`"));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
