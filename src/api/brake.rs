//! The deprovisioning brake through the API: each organization's thresholds
//! (`/organizations/{id}/brake`), a directory's tightening (`PUT /directories/{id}/brake`),
//! its held changes (`GET /directories/{id}/brake/held`) and the decisions
//! (`POST …/brake/release`, `…/brake/reject`, `…/resume`). `GET /directories/{id}` carries the
//! brake's state.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, own_directory, own_org, with_key};
use crate::brake::decisions::{self, DecisionError};
use crate::brake::{Thresholds, Tightened};
use crate::db::{self, brake as store};
use crate::scim::resource::rfc3339;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/organizations/{id}/brake",
        web::get().to(get_org_thresholds),
    )
    .route(
        "/api/v1/organizations/{id}/brake",
        web::put().to(put_org_thresholds),
    )
    .route(
        "/api/v1/directories/{id}/brake",
        web::get().to(get_directory_brake),
    )
    .route(
        "/api/v1/directories/{id}/brake",
        web::put().to(put_directory_brake),
    )
    .route(
        "/api/v1/directories/{id}/brake/held",
        web::get().to(list_held),
    )
    .route(
        "/api/v1/directories/{id}/brake/release",
        web::post().to(release),
    )
    .route(
        "/api/v1/directories/{id}/brake/reject",
        web::post().to(reject),
    )
    .route("/api/v1/directories/{id}/resume", web::post().to(resume));
}

impl From<DecisionError> for ApiError {
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::Refused(why) => ApiError::Conflict(why),
            DecisionError::Pool(e) => ApiError::Unavailable(e),
            DecisionError::Internal(e) => ApiError::Internal(Box::new(e)),
            DecisionError::Writer(e) => ApiError::Writer(e),
            DecisionError::Db(e) => ApiError::from(e),
            DecisionError::Scim(e) => ApiError::Internal(Box::new(e)),
        }
    }
}

/// The body of a PUT of thresholds: every field, as the owner's form has them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsBody {
    min_users: i32,
    min_percent: i32,
    window_minutes: i32,
    #[serde(default)]
    settle_seconds: i32,
}

/// A directory's tightening: each field tighter than its organization's, or null for the
/// organization's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TightenedBody {
    min_users: Option<i32>,
    min_percent: Option<i32>,
    window_minutes: Option<i32>,
    settle_seconds: Option<i32>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))
}

async fn get_org_thresholds(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let t = with_key(&req, &state, move |c, scope| {
        own_org(c, scope, &id)?;
        store::org_thresholds(c, &id)?
            .ok_or_else(|| ApiError::NotFound(format!("no organization `{id}`")))
    })
    .await?;
    Ok(HttpResponse::Ok().json(t))
}

async fn put_org_thresholds(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> ApiResult {
    let id = id.into_inner();
    let b: ThresholdsBody = parse(&body)?;
    let t = Thresholds {
        min_users: b.min_users,
        min_percent: b.min_percent,
        window_minutes: b.window_minutes,
        settle_seconds: b.settle_seconds,
    }
    .validated()
    .map_err(ApiError::BadRequest)?;
    with_key(&req, &state, move |c, scope| {
        own_org(c, scope, &id)?;
        db::write_tx(c, |c| store::set_org_thresholds(c, &id, t))?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(t))
}

/// A directory's brake as the API shows it.
fn brake_json(b: &store::DirectoryBrake, held: i64) -> Value {
    json!({
        "state": b.state.as_str(),
        "held": held,
        "reason": b.reason,
        "changed_at": b.changed_at.map(rfc3339),
        "thresholds": b.thresholds(),
        "organization_thresholds": b.org,
    })
}

/// The directory's brake, or 404 for one outside the key's reach.
fn directory_brake(
    c: &mut db::DbConn,
    scope: &super::Scope,
    id: &str,
) -> Result<(store::DirectoryBrake, i64), ApiError> {
    own_directory(c, scope, id)?;
    let b = store::of_directory(c, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no directory `{id}`")))?;
    let held = store::held_counts(c, &[id.to_string()])?.values().sum();
    Ok((b, held))
}

async fn get_directory_brake(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let (b, held) = with_key(&req, &state, move |c, scope| directory_brake(c, scope, &id)).await?;
    Ok(HttpResponse::Ok().json(brake_json(&b, held)))
}

async fn put_directory_brake(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> ApiResult {
    let id = id.into_inner();
    let b: TightenedBody = parse(&body)?;
    let tightened = Tightened {
        min_users: b.min_users,
        min_percent: b.min_percent,
        window_minutes: b.window_minutes,
        settle_seconds: b.settle_seconds,
    };
    let (b, held) = with_key(&req, &state, move |c, scope| {
        let (brake, _) = directory_brake(c, scope, &id)?;
        let tightened = tightened.checked(brake.org).map_err(ApiError::BadRequest)?;
        db::write_tx(c, |c| store::set_tightened(c, &id, tightened))?;
        directory_brake(c, scope, &id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(brake_json(&b, held)))
}

async fn list_held(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let (b, held) = with_key(&req, &state, move |c, scope| {
        let (b, _) = directory_brake(c, scope, &id)?;
        Ok((b, store::held_users(c, &id)?))
    })
    .await?;
    let data: Vec<Value> = held
        .iter()
        .map(|h| {
            let view = h.app_view();
            json!({
                "user_id": h.user_id,
                "user_name": view.as_ref().map(|v| v.row.user_name.clone()),
                "name": view.as_ref().map(|v| v.row.label()),
                "change": h.kind().as_str(),
                "held_at": rfc3339(h.held_at),
                "settles_at": h.release_at.map(rfc3339),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "brake": brake_json(&b, held.len() as i64),
        "data": data,
    })))
}

/// Checks the key may reach the directory.
async fn reach(req: &HttpRequest, state: &web::Data<AppState>, id: &str) -> Result<(), ApiError> {
    let id = id.to_string();
    with_key(req, state, move |c, scope| {
        own_directory(c, scope, &id).map(|_| ())
    })
    .await
}

async fn release(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> ApiResult {
    let id = id.into_inner();
    reach(&req, &state, &id).await?;
    let outcome = decisions::release(&state, &id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "brake": {"state": "clear"},
        "released_users": outcome.users,
        "released_events": outcome.events,
    })))
}

async fn reject(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> ApiResult {
    let id = id.into_inner();
    reach(&req, &state, &id).await?;
    let outcome = decisions::reject(&state, &id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "brake": {"state": "paused"},
        "rejected_users": outcome.users,
        "dropped_events": outcome.events,
    })))
}

async fn resume(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> ApiResult {
    let id = id.into_inner();
    reach(&req, &state, &id).await?;
    let now = decisions::resume(&state, &id).await?;
    Ok(HttpResponse::Ok().json(json!({"brake": {"state": now.as_str()}})))
}
