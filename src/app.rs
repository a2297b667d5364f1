//! The HTTP server: the middleware every request passes (security headers,
//! request log, sessions, NUL, live-session and CSRF guards) and the listener. Tests and
//! `serve` start it the same way; routes are in `router`, shared state in `state`.

use std::net::TcpListener;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};

use crate::state::AppState;

/// Content-Security-Policy of every response: only Roster's own scripts, styles and images.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The session cookie's name (an embed session's is made third-party in `embed`).
pub const SESSION_COOKIE: &str = "roster_session";

/// How long a client may take to send a request's head (its line and headers).
pub const REQUEST_HEAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the HTTP server on `listener`.
pub fn run(state: web::Data<AppState>, key: Key, listener: TcpListener) -> std::io::Result<Server> {
    let secure = state.config.secure_cookies();
    // Role changes another instance (or this one, before a restart) left midway.
    actix_web::rt::spawn(crate::roles::changes::finish_abandoned_forever(
        state.clone(),
    ));
    // Directory alerts, evaluated by every instance (raised and cleared once between them).
    actix_web::rt::spawn(crate::alerts::evaluate_forever(state.clone()));
    // Deprovisions whose settling time is over reach the application.
    actix_web::rt::spawn(crate::brake::decisions::release_settled_forever(
        state.clone(),
    ));
    // Resyncs past their time, of a disabled directory, or whose deactivation was cut short.
    actix_web::rt::spawn(crate::reconcile::finish_due_forever(state.clone()));
    let server = HttpServer::new(move || {
        let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_name(SESSION_COOKIE.into())
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
            .wrap(from_fn(crate::branding::error_pages::rebrand))
            // Outside `rebrand`, which replaces error responses (and their extensions).
            .wrap(from_fn(crate::embed::mark))
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
            .wrap(from_fn(crate::embed::frame_policy))
            .wrap(from_fn(crate::request_log::log_request))
            .configure(crate::router::configure)
    })
    // A client has this long to send a request's head; bodies have their own deadlines
    // (SCIM bodies in `scim_endpoint::body`, forms in the CSRF check).
    .client_request_timeout(REQUEST_HEAD_DEADLINE)
    .listen(listener)?
    .run();
    Ok(server)
}
