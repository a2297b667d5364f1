//! Which path goes where: the health checks and `/metrics`, then every surface's routes (SCIM
//! endpoint, assets, JSON API, owner console, Admin Portal) and the 404 of whatever none serves.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// Every route of the application, in the order they are tried.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .configure(crate::metrics::endpoint::configure)
        // First: the SCIM API is what takes load, and routes are tried in this order.
        .configure(crate::scim_endpoint::configure)
        .configure(crate::assets::configure)
        .configure(crate::branding::assets::configure)
        .configure(crate::api::configure)
        .configure(crate::owner::configure)
        .configure(crate::portal::configure)
        // Whatever no route serves, anywhere: an HTML 404 page (JSON under the APIs).
        .default_service(web::to(crate::pages::not_found));
}

async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/owner"))
        .finish()
}

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
