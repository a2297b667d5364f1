//! Application wiring: shared state, middleware, routes and the HTTP server. Tests and `serve`
//! build the app the same way.

use std::net::TcpListener;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, Logger, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::config::Config;
use crate::db::{self, Pool};

/// State shared by every handler.
pub struct AppState {
    pub pool: Pool,
    pub config: Config,
    /// Group commit of the SCIM endpoint's writes.
    pub writer: db::writer::Writer,
    /// Bookmarks for paging each directory's users (see `db::user_pages`).
    pub user_pages: std::sync::Arc<db::user_pages::Bookmarks>,
    /// Which tokens' use this process recorded lately (see `db::directories::TouchGate`).
    pub touches: std::sync::Arc<db::directories::TouchGate>,
    /// Memory for SCIM bodies being received, shared by all requests.
    pub body_budget: crate::scim_endpoint::body::BodyBudget,
    /// Failed SCIM authentications by client address.
    pub auth_throttle: crate::auth::throttle::AuthThrottle,
    /// This instance's webhook worker, as `/readyz` reports it.
    pub worker_health: std::sync::Arc<crate::events::WorkerHealth>,
}

impl AppState {
    /// The state of one instance; starts its database writer thread.
    pub fn new(pool: Pool, config: Config) -> AppState {
        let writer = db::writer::Writer::start(pool.clone());
        let body_budget =
            crate::scim_endpoint::body::BodyBudget::new(config.limits.in_flight_body_bytes);
        let auth_throttle =
            crate::auth::throttle::AuthThrottle::new(config.limits.failed_auth_per_minute);
        AppState {
            pool,
            config,
            writer,
            user_pages: Default::default(),
            touches: Default::default(),
            worker_health: Default::default(),
            body_budget,
            auth_throttle,
        }
    }
}

/// Content-Security-Policy of every response: only Roster's own scripts, styles and images.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let ok = web::block(move || {
        use diesel::connection::SimpleConnection;
        pool.get()
            .ok()
            .map(|mut c| c.batch_execute("SELECT 1").is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    // The worker's line is informative: an instance without one (tests, or between a crash
    // and its restart) still serves SCIM; only the database decides readiness.
    let worker = state.worker_health.describe();
    if ok {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body(format!("ready\n{worker}\n"))
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(format!("database unavailable\n{worker}\n"))
    }
}

async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/owner"))
        .finish()
}

/// How long a client may take to send a request's head (its line and headers).
pub const REQUEST_HEAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the HTTP server on `listener`.
pub fn run(state: web::Data<AppState>, key: Key, listener: TcpListener) -> std::io::Result<Server> {
    let secure = state.config.secure_cookies();
    let server = HttpServer::new(move || {
        let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_name("roster_session".into())
            .cookie_secure(secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(PersistentSession::default().session_ttl(
                actix_web::cookie::time::Duration::seconds(crate::auth::session::MAX_AGE_SECONDS),
            ))
            .build();
        App::new()
            .app_data(state.clone())
            .app_data(web::FormConfig::default().limit(64 * 1024))
            .wrap(from_fn(crate::auth::csrf::guard))
            .wrap(from_fn(crate::auth::live_session::guard))
            .wrap(from_fn(crate::nul_guard::guard))
            .wrap(session)
            .wrap(
                DefaultHeaders::new()
                    .add(("Content-Security-Policy", CSP))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer"))
                    .add(("X-Frame-Options", "DENY")),
            )
            .wrap(
                Logger::new("%{method}xi %{path}xi %s %Dms")
                    .custom_request_replace("method", |req| req.method().to_string())
                    .custom_request_replace("path", |req| crate::loggable::path(req.path())),
            )
            .route("/", web::get().to(root))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            // First: the SCIM API is what takes load, and routes are tried in this order.
            .configure(crate::scim_endpoint::configure)
            .configure(crate::assets::configure)
            .configure(crate::api::configure)
            .configure(crate::owner::configure)
            .configure(crate::portal::configure)
    })
    // A client has this long to send a request's head; bodies have their own deadlines
    // (SCIM bodies in `scim_endpoint::body`, forms in the CSRF check).
    .client_request_timeout(REQUEST_HEAD_DEADLINE)
    .listen(listener)?
    .run();
    Ok(server)
}
