//! Resyncs through the API (`/directories/{id}/reconcile`): start one, read where it is,
//! finish it (the users and groups the provider never named), and deactivate or keep them.
//! Applied through `crate::reconcile`, like the Admin Portal's buttons.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, own_directory, with_key};
use crate::db::resyncs::Action;
use crate::reconcile::{self, ResyncError};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/directories/{id}/reconcile",
        web::get().to(get_resync),
    )
    .route("/api/v1/directories/{id}/reconcile", web::post().to(start))
    .route(
        "/api/v1/directories/{id}/reconcile/finish",
        web::post().to(finish),
    )
    .route(
        "/api/v1/directories/{id}/reconcile/apply",
        web::post().to(apply),
    );
}

impl From<ResyncError> for ApiError {
    fn from(e: ResyncError) -> Self {
        match e {
            ResyncError::AlreadyRunning
            | ResyncError::NotRunning
            | ResyncError::NothingToApply
            | ResyncError::Disabled
            | ResyncError::Paused => ApiError::Conflict(e.to_string()),
            ResyncError::Pool(e) => ApiError::Unavailable(e),
            ResyncError::Writer(e) => ApiError::Writer(e),
            ResyncError::Db(e) => e.into(),
            ResyncError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// Checks the key may reach the directory.
async fn own(req: &HttpRequest, state: &web::Data<AppState>, id: &str) -> Result<(), ApiError> {
    let id = id.to_string();
    with_key(req, state, move |c, scope| {
        own_directory(c, scope, &id).map(|_| ())
    })
    .await
}

/// The directory's latest resync as JSON (`{"state": "none"}` before the first).
async fn report(state: &web::Data<AppState>, id: String) -> ApiResult {
    let pool = state.pool.clone();
    let report = web::block(move || {
        let mut c = pool.get().map_err(ApiError::Unavailable)?;
        Ok::<_, ApiError>(reconcile::report(&mut c, &id)?)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))??;
    Ok(HttpResponse::Ok().json(match report {
        Some(r) => r.to_json(),
        None => json!({"state": "none"}),
    }))
}

async fn get_resync(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    own(&req, &state, &id).await?;
    report(&state, id).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StartBody {
    /// Finished automatically after this many minutes (default 24 h).
    finish_after_minutes: Option<i64>,
}

async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> ApiResult {
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?
    };
    let runs_for = match body.finish_after_minutes {
        None => reconcile::DEFAULT_RUNS_FOR,
        Some(m) if (1..=reconcile::LONGEST_RUN_MINUTES).contains(&m) => {
            chrono::Duration::minutes(m)
        }
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "`finish_after_minutes` must be an integer from 1 to {}",
                reconcile::LONGEST_RUN_MINUTES
            )));
        }
    };
    let id = id.into_inner();
    own(&req, &state, &id).await?;
    reconcile::start(&state, &id, runs_for).await?;
    let mut response = report(&state, id).await?;
    *response.status_mut() = actix_web::http::StatusCode::CREATED;
    Ok(response)
}

async fn finish(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> ApiResult {
    let id = id.into_inner();
    own(&req, &state, &id).await?;
    reconcile::finish(&state, &id).await?;
    report(&state, id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    action: String,
}

async fn apply(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ApplyBody>,
) -> ApiResult {
    let action = Action::parse(&body.action).ok_or_else(|| {
        ApiError::BadRequest("`action` must be \"deactivate\" or \"keep\"".into())
    })?;
    let id = id.into_inner();
    own(&req, &state, &id).await?;
    reconcile::apply(&state, &id, action).await?;
    report(&state, id).await
}
