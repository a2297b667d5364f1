//! The JSON API for the vendor's application (`/api/v1`, API key): organizations, portal
//! links, directories, users, groups, members, the events feed and webhook endpoints. Lists
//! page with `limit` and an opaque `cursor` (`next_cursor` in the response). Described by the
//! OpenAPI document served at `/api/v1/openapi.json`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::{self, DbConn};
use crate::events::{group_json, user_json_full};

mod alerts;
mod attributes;
mod brake;
mod reconcile;
mod roles;
use crate::scim::resource::rfc3339;
use crate::state::AppState;

/// The OpenAPI document, checked against real responses by the tests.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Default and largest page sizes.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    roles::configure(cfg);
    attributes::configure(cfg);
    alerts::configure(cfg);
    brake::configure(cfg);
    reconcile::configure(cfg);
    cfg.route("/api/v1/openapi.json", web::get().to(openapi))
        .route("/api/v1/organizations", web::get().to(list_orgs))
        .route("/api/v1/organizations", web::post().to(create_org))
        .route("/api/v1/organizations/{id}", web::get().to(get_org))
        .route("/api/v1/organizations/{id}", web::patch().to(update_org))
        .route(
            "/api/v1/organizations/{id}/portal-links",
            web::post().to(create_portal_link),
        )
        .route("/api/v1/directories", web::get().to(list_directories))
        .route("/api/v1/directories/{id}", web::get().to(get_directory))
        .route("/api/v1/users", web::get().to(list_users))
        .route("/api/v1/users/{id}", web::get().to(get_user))
        .route("/api/v1/groups", web::get().to(list_groups))
        .route("/api/v1/groups/{id}", web::get().to(get_group))
        .route("/api/v1/groups/{id}/members", web::get().to(list_members))
        .route("/api/v1/events", web::get().to(list_events))
        .route("/api/v1/webhooks", web::get().to(list_webhooks))
        .route("/api/v1/webhooks", web::post().to(create_webhook))
        .route("/api/v1/webhooks/{id}", web::delete().to(delete_webhook))
        .route(
            "/api/v1/webhooks/{id}/replay",
            web::post().to(replay_webhook),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            web::get().to(list_deliveries),
        );
}

/// API errors: `{"error": {"code", "message"}}` with the matching status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server is busy; retry shortly")]
    Unavailable(#[source] r2d2::Error),
    #[error("the server is busy; retry shortly")]
    Writer(#[source] crate::db::writer::WriteError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) | ApiError::Writer(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable(_) | ApiError::Writer(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        };
        HttpResponse::build(self.status_code())
            .json(json!({"error": {"code": code, "message": self.to_string()}}))
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

/// What an API key may reach: every organization, or one.
#[derive(Debug, Clone)]
enum Scope {
    All,
    Organization(String),
}

impl Scope {
    /// Whether the key may see `org_id`. What it may not see reads as absent (404).
    fn allows(&self, org_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Organization(own) => own == org_id,
        }
    }

    /// The organization a list is limited to: what was asked for, and for a scoped key its
    /// own organization (asking for another is a 403).
    fn restrict(&self, asked: Option<String>) -> Result<Option<String>, ApiError> {
        match (self, asked) {
            (Scope::All, asked) => Ok(asked),
            (Scope::Organization(own), None) => Ok(Some(own.clone())),
            (Scope::Organization(own), Some(asked)) if *own == asked => Ok(Some(asked)),
            (Scope::Organization(_), Some(_)) => Err(ApiError::Forbidden(
                "this API key is scoped to another organization".into(),
            )),
        }
    }

    fn vendor_wide_only(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Scope::All => Ok(()),
            Scope::Organization(_) => Err(ApiError::Forbidden(format!(
                "an organization-scoped API key cannot {what}; use a vendor-wide key"
            ))),
        }
    }

    /// 404 for a directory outside the key's organization.
    fn directory(&self, c: &mut DbConn, directory_id: &str) -> Result<(), ApiError> {
        if let Scope::Organization(own) = self {
            let org = db::directories::api_get(c, directory_id)?.map(|d| d.org_id);
            if org.as_deref() != Some(own.as_str()) {
                return Err(ApiError::NotFound(format!("no directory `{directory_id}`")));
            }
        }
        Ok(())
    }
}

/// Authenticates the API key, then runs `f` on a pooled connection off the async workers,
/// with what the key may reach.
async fn with_key<T, F>(req: &HttpRequest, state: &web::Data<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, &Scope) -> Result<T, ApiError> + Send + 'static,
{
    let key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim().to_string())
        .ok_or(ApiError::Unauthorized)?;
    // Directory health includes the last logged error: commit queued log rows first.
    state.writer.flush().await;
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get().map_err(ApiError::Unavailable)?;
        let key = db::api_keys::check(&mut conn, &key)?.ok_or(ApiError::Unauthorized)?;
        let scope = match key.org_id {
            Some(org) => Scope::Organization(org),
            None => Scope::All,
        };
        f(&mut conn, &scope)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

#[derive(Deserialize)]
struct Page {
    limit: Option<String>,
    cursor: Option<String>,
}

impl Page {
    fn limit(&self) -> Result<i64, ApiError> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "`limit` must be an integer from 1 to {MAX_LIMIT}"
                    ))
                }),
        }
    }
}

/// `{"data": [...], "next_cursor": …}`: fetches `limit + 1` rows to know whether more follow.
fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
    render: impl Fn(&T) -> Value,
) -> Value {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more {
        rows.last().map(&cursor_of)
    } else {
        None
    };
    json!({"data": rows.iter().map(render).collect::<Vec<_>>(), "next_cursor": next})
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

fn org_json(o: &db::orgs::Org) -> Value {
    json!({"id": o.id, "name": o.name, "scim_enabled": o.scim_enabled, "created_at": rfc3339(o.created_at)})
}

/// A directory, with its brake (`held`: users whose deprovision the application has not seen).
fn directory_json(state: &AppState, d: &db::directories::Directory, held: i64) -> Value {
    let brake = crate::brake::BrakeState::parse(&d.brake_state);
    json!({
        "id": d.id, "organization_id": d.org_id, "provider": d.provider, "name": d.name,
        "status": d.status, "endpoint_url": state.config.scim_base(&d.id),
        "created_at": rfc3339(d.created_at),
        "first_request_at": d.first_request_at.map(rfc3339),
        "last_request_at": d.last_request_at.map(rfc3339),
        "brake": {
            "state": brake.as_str(),
            "held": held,
            "reason": (brake != crate::brake::BrakeState::Clear).then_some(d.brake_reason.as_deref()).flatten(),
        },
    })
}

async fn list_orgs(req: HttpRequest, state: web::Data<AppState>, p: web::Query<Page>) -> ApiResult {
    let limit = p.limit()?;
    let cursor = p.cursor.clone();
    let rows = with_key(&req, &state, move |c, scope| match scope {
        Scope::All => Ok(db::orgs::api_list(c, cursor.as_deref(), limit + 1)?),
        Scope::Organization(own) => Ok(db::orgs::get(c, own)?
            .filter(|o| cursor.as_deref().is_none_or(|after| o.id.as_str() > after))
            .into_iter()
            .collect()),
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, limit, |o| o.id.clone(), org_json)))
}

#[derive(Deserialize)]
struct NewOrg {
    name: String,
    #[serde(default)]
    scim_enabled: bool,
}

async fn create_org(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewOrg>,
) -> ApiResult {
    let body = body.into_inner();
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "`name` must be 1 to 200 characters".into(),
        ));
    }
    let org = with_key(&req, &state, move |c, scope| {
        scope.vendor_wide_only("create organizations")?;
        Ok(db::orgs::create(c, &name, body.scim_enabled)?)
    })
    .await?;
    Ok(HttpResponse::Created().json(org_json(&org)))
}

fn org_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no organization `{id}`"))
}

/// The organization, or 404 for one outside the key's reach.
fn own_org(c: &mut DbConn, scope: &Scope, org_id: &str) -> Result<db::orgs::Org, ApiError> {
    db::orgs::get(c, org_id)?
        .filter(|o| scope.allows(&o.id))
        .ok_or_else(|| org_not_found(org_id))
}

/// The directory's organization, or 404 for a directory outside the key's reach.
fn own_directory(c: &mut DbConn, scope: &Scope, directory_id: &str) -> Result<String, ApiError> {
    db::directories::api_get(c, directory_id)?
        .filter(|d| scope.allows(&d.org_id))
        .map(|d| d.org_id)
        .ok_or_else(|| ApiError::NotFound(format!("no directory `{directory_id}`")))
}

async fn get_org(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> ApiResult {
    let id = id.into_inner();
    let org = with_key(&req, &state, move |c, scope| {
        db::orgs::get(c, &id)?
            .filter(|o| scope.allows(&o.id))
            .ok_or_else(|| org_not_found(&id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(org_json(&org)))
}

#[derive(Deserialize)]
struct OrgUpdate {
    name: Option<String>,
    scim_enabled: Option<bool>,
}

async fn update_org(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<OrgUpdate>,
) -> ApiResult {
    let (id, body) = (id.into_inner(), body.into_inner());
    if body
        .name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 200)
    {
        return Err(ApiError::BadRequest(
            "`name` must be 1 to 200 characters".into(),
        ));
    }
    let org = with_key(&req, &state, move |c, scope| {
        db::orgs::get(c, &id)?
            .filter(|o| scope.allows(&o.id))
            .ok_or_else(|| org_not_found(&id))?;
        if let Some(n) = &body.name {
            db::orgs::rename(c, &id, n.trim())?;
        }
        if let Some(e) = body.scim_enabled {
            db::orgs::set_scim_enabled(c, &id, e)?;
        }
        db::orgs::get(c, &id)?.ok_or_else(|| org_not_found(&id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(org_json(&org)))
}

#[derive(Deserialize)]
struct NewLink {
    ttl_seconds: Option<i64>,
}

async fn create_portal_link(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Option<web::Json<NewLink>>,
) -> ApiResult {
    let id = id.into_inner();
    let ttl = body.and_then(|b| b.ttl_seconds).unwrap_or(7 * 24 * 3600);
    if !(60..=365 * 24 * 3600).contains(&ttl) {
        return Err(ApiError::BadRequest(
            "`ttl_seconds` must be from 60 to 31536000".into(),
        ));
    }
    let (token, expires) = with_key(&req, &state, move |c, scope| {
        db::orgs::get(c, &id)?
            .filter(|o| scope.allows(&o.id))
            .ok_or_else(|| org_not_found(&id))?;
        Ok(db::orgs::create_portal_link(
            c,
            &id,
            chrono::Duration::seconds(ttl),
        )?)
    })
    .await?;
    let url = format!("{}/portal/link/{token}", state.config.public_url);
    Ok(HttpResponse::Created().json(json!({"url": url, "expires_at": rfc3339(expires)})))
}

#[derive(Deserialize)]
struct DirectoryQuery {
    organization_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_directories(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<DirectoryQuery>,
) -> ApiResult {
    let q = q.into_inner();
    let limit = Page {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let (rows, held) = with_key(&req, &state, move |c, scope| {
        let org = scope.restrict(q.organization_id)?;
        let rows = db::directories::api_list(c, org.as_deref(), q.cursor.as_deref(), limit + 1)?;
        let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
        Ok((rows, db::brake::held_counts(c, &ids)?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(
        rows,
        limit,
        |d| d.id.clone(),
        |d| directory_json(&state, d, held.get(&d.id).copied().unwrap_or(0)),
    )))
}

async fn get_directory(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let (d, held, open) = with_key(&req, &state, move |c, scope| {
        let d = db::directories::api_get(c, &id)?
            .filter(|d| scope.allows(&d.org_id))
            .ok_or_else(|| ApiError::NotFound(format!("no directory `{id}`")))?;
        let held = db::brake::held_counts(c, std::slice::from_ref(&d.id))?;
        let open = db::alerts::open_for_directory(c, &d.id)?;
        Ok((d, held.values().sum::<i64>(), open))
    })
    .await?;
    let mut body = directory_json(&state, &d, held);
    body["alerts"] = open.iter().map(alerts::open_json).collect();
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
struct UserQuery {
    organization_id: Option<String>,
    directory_id: Option<String>,
    group_id: Option<String>,
    active: Option<String>,
    updated_after: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<UserQuery>,
) -> ApiResult {
    let q = q.into_inner();
    let limit = Page {
        limit: q.limit.clone(),
        cursor: None,
    }
    .limit()?;
    let active = match q.active.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`active` must be true or false".into(),
            ));
        }
    };
    let updated_after = q
        .updated_after
        .as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|d| d.naive_utc())
                .map_err(|_| {
                    ApiError::BadRequest("`updated_after` must be an RFC 3339 time".into())
                })
        })
        .transpose()?;
    let mut filter = db::users::ApiFilter {
        organization_id: q.organization_id,
        directory_id: q.directory_id,
        group_id: q.group_id,
        active,
        updated_after,
    };
    let cursor = q.cursor;
    let rows = with_key(&req, &state, move |c, scope| {
        filter.organization_id = scope.restrict(filter.organization_id.take())?;
        let users = db::users::api_list(c, &filter, cursor.as_deref(), limit + 1)?;
        let mut users = with_roles(c, users)?;
        as_the_app_saw(c, &mut users)?;
        if let Some(active) = filter.active {
            users.retain(|(u, _, _)| u.active == active);
        }
        Ok(users)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, limit, |(u, _, _)| u.id.clone(), user_view)))
}

async fn get_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let u = with_key(&req, &state, move |c, scope| {
        let u = db::users::api_get(c, &id)?
            .ok_or_else(|| ApiError::NotFound(format!("no user `{id}`")))?;
        scope
            .directory(c, &u.directory_id)
            .map_err(|_| ApiError::NotFound(format!("no user `{id}`")))?;
        let mut with = with_roles(c, vec![u])?;
        as_the_app_saw(c, &mut with)?;
        with.pop()
            .ok_or_else(|| ApiError::NotFound(format!("no user `{id}`")))
    })
    .await?;
    Ok(HttpResponse::Ok().json(user_view(&u)))
}

/// A user with its effective roles and custom attribute values.
type UserWith = (
    db::users::UserRow,
    Vec<String>,
    crate::custom_attributes::Values,
);

/// Users with their effective roles and custom attribute values.
fn with_roles(c: &mut DbConn, users: Vec<db::users::UserRow>) -> Result<Vec<UserWith>, ApiError> {
    let mut by_directory: std::collections::BTreeMap<&str, Vec<&String>> = Default::default();
    for u in &users {
        by_directory.entry(&u.directory_id).or_default().push(&u.id);
    }
    let mut roles = std::collections::BTreeMap::new();
    let mut mappings = std::collections::BTreeMap::new();
    for (directory_id, ids) in by_directory {
        roles.extend(db::roles::effective(c, directory_id, &ids)?);
        mappings.insert(
            directory_id.to_string(),
            db::attributes::mappings(c, directory_id)?,
        );
    }
    Ok(users
        .into_iter()
        .map(|u| {
            let r = roles.remove(&u.id).unwrap_or_default();
            let v = mappings
                .get(&u.directory_id)
                .map(|m| m.values_of_text(&u.resource))
                .unwrap_or_default();
            (u, r, v)
        })
        .collect())
}

/// Users the deprovisioning brake holds are shown as the application last saw them (active,
/// not deleted, with their roles then) until their changes are released.
fn as_the_app_saw(c: &mut DbConn, users: &mut [UserWith]) -> Result<(), ApiError> {
    let ids: Vec<String> = users.iter().map(|(u, _, _)| u.id.clone()).collect();
    let mut views = db::brake::app_views(c, &ids)?;
    for (user, roles, _) in users.iter_mut() {
        if let Some(view) = views.remove(&user.id) {
            *user = db::users::UserRow {
                deleted_at: None,
                ..view.row
            };
            *roles = view.roles;
        }
    }
    Ok(())
}

fn user_view((user, roles, values): &UserWith) -> Value {
    user_json_full(user, roles.clone(), values.clone())
}

async fn list_groups(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<DirectoryQuery>,
    d: web::Query<DirFilter>,
) -> ApiResult {
    let q = q.into_inner();
    let limit = Page {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let directory_id = d.into_inner().directory_id;
    let rows = with_key(&req, &state, move |c, scope| {
        let org = scope.restrict(q.organization_id)?;
        Ok(db::groups::api_list(
            c,
            org.as_deref(),
            directory_id.as_deref(),
            q.cursor.as_deref(),
            limit + 1,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, limit, |g| g.id.clone(), group_json)))
}

#[derive(Deserialize)]
struct DirFilter {
    directory_id: Option<String>,
}

async fn get_group(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let g = with_key(&req, &state, move |c, scope| {
        let g = db::groups::api_get(c, &id)?
            .ok_or_else(|| ApiError::NotFound(format!("no group `{id}`")))?;
        scope
            .directory(c, &g.directory_id)
            .map_err(|_| ApiError::NotFound(format!("no group `{id}`")))?;
        Ok(g)
    })
    .await?;
    Ok(HttpResponse::Ok().json(group_json(&g)))
}

async fn list_members(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    p: web::Query<Page>,
) -> ApiResult {
    let id = id.into_inner();
    let limit = p.limit()?;
    let cursor = p.cursor.clone();
    let rows = with_key(&req, &state, move |c, scope| {
        let g = db::groups::api_get(c, &id)?
            .ok_or_else(|| ApiError::NotFound(format!("no group `{id}`")))?;
        scope
            .directory(c, &g.directory_id)
            .map_err(|_| ApiError::NotFound(format!("no group `{id}`")))?;
        let members = db::groups::api_members(c, &id, cursor.as_deref(), limit + 1)?;
        with_roles(c, members)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, limit, |(u, _, _)| u.id.clone(), user_view)))
}

#[derive(Deserialize)]
struct EventQuery {
    after: Option<String>,
    limit: Option<String>,
    organization_id: Option<String>,
    directory_id: Option<String>,
}

/// The events feed: events after a cursor (a sequence number; `0` or none for the oldest kept).
async fn list_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<EventQuery>,
) -> ApiResult {
    let q = q.into_inner();
    let limit = Page {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let after = match q.after.as_deref() {
        None | Some("") => 0,
        Some(a) => a.parse::<i64>().map_err(|_| {
            ApiError::BadRequest("`after` must be a cursor from a previous response".into())
        })?,
    };
    let rows = with_key(&req, &state, move |c, scope| {
        let feed = db::events::FeedScope {
            org_id: scope.restrict(q.organization_id)?,
            directory_id: q.directory_id,
        };
        Ok(db::events::feed(c, &feed, after, limit)?)
    })
    .await?;
    let next = rows
        .last()
        .map(|e| e.seq.to_string())
        .unwrap_or_else(|| after.to_string());
    let data: Vec<Value> = rows
        .iter()
        .map(|e| serde_json::from_str(&e.payload).unwrap_or(Value::Null))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

fn webhook_json(e: &db::webhooks::Endpoint) -> Value {
    json!({
        "id": e.id, "url": e.url, "organization_id": e.org_id,
        "event_types": e.event_types.split(',').map(str::trim).collect::<Vec<_>>(),
        "created_at": rfc3339(e.created_at),
    })
}

async fn list_webhooks(req: HttpRequest, state: web::Data<AppState>) -> ApiResult {
    let rows = with_key(&req, &state, |c, scope| {
        let mut rows = db::webhooks::list(c)?;
        if let Scope::Organization(own) = scope {
            rows.retain(|e| e.org_id.as_deref() == Some(own.as_str()));
        }
        Ok(rows)
    })
    .await?;
    Ok(HttpResponse::Ok().json(
        json!({"data": rows.iter().map(webhook_json).collect::<Vec<_>>(), "next_cursor": null}),
    ))
}

#[derive(Deserialize)]
struct NewWebhook {
    url: String,
    organization_id: Option<String>,
    event_types: Option<Vec<String>>,
}

async fn create_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewWebhook>,
) -> ApiResult {
    let body = body.into_inner();
    let types =
        crate::events::endpoint::validate(&body.url, body.event_types.as_deref().unwrap_or(&[]))
            .map_err(ApiError::BadRequest)?;
    let keys = state.config.secret_keys.clone();
    let (endpoint, secret) = with_key(&req, &state, move |c, scope| {
        // A scoped key's endpoints receive its organization's events only.
        let org = scope.restrict(body.organization_id)?;
        if let Some(o) = &org {
            db::orgs::get(c, o)?.ok_or_else(|| org_not_found(o))?;
        }
        Ok(db::webhooks::create(
            c,
            &keys,
            &body.url,
            org.as_deref(),
            &types,
        )?)
    })
    .await?;
    let mut out = webhook_json(&endpoint);
    out["secret"] = Value::String(secret);
    Ok(HttpResponse::Created().json(out))
}

fn webhook_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook endpoint `{id}`"))
}

/// The endpoint `id`, if the key may reach it (a scoped key: its organization's only).
fn own_endpoint(
    c: &mut DbConn,
    scope: &Scope,
    id: &str,
) -> Result<db::webhooks::Endpoint, ApiError> {
    db::webhooks::get(c, id)?
        .filter(|e| match scope {
            Scope::All => true,
            Scope::Organization(own) => e.org_id.as_deref() == Some(own.as_str()),
        })
        .ok_or_else(|| webhook_not_found(id))
}

async fn delete_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    with_key(&req, &state, move |c, scope| {
        own_endpoint(c, scope, &id)?;
        if db::webhooks::remove(c, &id)? {
            Ok(())
        } else {
            Err(webhook_not_found(&id))
        }
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct Replay {
    event_id: Option<String>,
    since_sequence: Option<i64>,
}

async fn replay_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Replay>,
) -> ApiResult {
    let (id, body) = (id.into_inner(), body.into_inner());
    if body.event_id.is_none() && body.since_sequence.is_none() {
        return Err(ApiError::BadRequest(
            "give `event_id` (one event) or `since_sequence` (everything from that point)".into(),
        ));
    }
    let n = with_key(&req, &state, move |c, scope| {
        own_endpoint(c, scope, &id)?;
        Ok(db::webhooks::replay(
            c,
            &id,
            body.event_id.as_deref(),
            body.since_sequence,
        )?)
    })
    .await?;
    state.delivery_wake.notify();
    Ok(HttpResponse::Accepted().json(json!({"queued": n})))
}

async fn list_deliveries(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let (deliveries, attempts) = with_key(&req, &state, move |c, scope| {
        own_endpoint(c, scope, &id)?;
        Ok((
            db::webhooks::deliveries(c, &id, 100)?,
            db::webhooks::attempts(c, &id, 300)?,
        ))
    })
    .await?;
    let data: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            let tries: Vec<Value> = attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .map(|a| json!({"attempt": a.attempt, "at": rfc3339(a.at), "status_code": a.status_code, "latency_ms": a.latency_ms, "error": a.error, "response_excerpt": a.response_excerpt}))
                .collect();
            json!({
                "id": d.id, "event_sequence": d.event_seq, "directory_id": d.directory_id, "status": d.status,
                "attempts": d.attempts, "next_attempt_at": rfc3339(d.next_attempt_at),
                "last_status": d.last_status, "last_error": d.last_error,
                "delivered_at": d.delivered_at.map(rfc3339), "attempt_log": tries,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": null})))
}
