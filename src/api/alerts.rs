//! A directory's alerts through the API: its open ones in `GET /directories/{id}` (`alerts`),
//! and open and recently cleared ones in `GET /directories/{id}/alerts` (see `crate::alerts`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{ApiResult, own_directory, with_key};
use crate::db::{self, alerts::Alert};
use crate::scim::resource::rfc3339;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/directories/{id}/alerts",
        web::get().to(list_alerts),
    );
}

/// An open alert, as `GET /directories/{id}` lists it.
pub(super) fn open_json(a: &Alert) -> Value {
    json!({"kind": a.kind, "sentence": a.detail, "raised_at": rfc3339(a.raised_at)})
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "kind": a.kind,
        "sentence": a.detail,
        "raised_at": rfc3339(a.raised_at),
        "cleared_at": a.cleared_at.map(rfc3339),
    })
}

async fn list_alerts(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let alerts = with_key(&req, &state, move |c, scope| {
        own_directory(c, scope, &id)?;
        Ok(db::alerts::recent_for_directory(
            c,
            &id,
            db::now() - db::alerts::CLEARED_KEPT,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"data": alerts.iter().map(alert_json).collect::<Vec<_>>()})))
}
