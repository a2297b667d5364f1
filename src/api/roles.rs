//! Roles through the API: the organization's roles (`/organizations/{id}/roles`) and which
//! groups of a directory give them (`/directories/{id}/role-mappings`). A change that moves
//! users' effective roles records one `user.updated` event per user moved (applied through
//! `roles::changes`, in steps).

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, own_directory, own_org, with_key};
use crate::db::{self, roles};
use crate::roles::changes;
use crate::scim::resource::rfc3339;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/organizations/{id}/roles",
        web::get().to(list_roles),
    )
    .route(
        "/api/v1/organizations/{id}/roles",
        web::post().to(create_role),
    )
    .route(
        "/api/v1/organizations/{id}/roles/{slug}",
        web::delete().to(delete_role),
    )
    .route(
        "/api/v1/directories/{id}/role-mappings",
        web::get().to(get_mappings),
    )
    .route(
        "/api/v1/directories/{id}/role-mappings",
        web::put().to(put_mappings),
    );
}

fn role_json(r: &roles::Role) -> Value {
    json!({
        "slug": r.slug,
        "name": r.name,
        "description": r.description,
        "default": r.is_default,
        "created_at": rfc3339(r.created_at),
    })
}

fn mappings_json(mappings: &[(String, String)]) -> Value {
    json!(
        mappings
            .iter()
            .map(|(group_id, role)| json!({"group_id": group_id, "role": role}))
            .collect::<Vec<_>>()
    )
}

async fn list_roles(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let list = with_key(&req, &state, move |c, scope| {
        own_org(c, scope, &id)?;
        Ok(roles::list(c, &id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"data": list.iter().map(role_json).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoleBody {
    slug: String,
    name: String,
    description: Option<String>,
    #[serde(default)]
    default: bool,
}

async fn create_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<NewRoleBody>,
) -> ApiResult {
    let (org_id, body) = (id.into_inner(), body.into_inner());
    let role = roles::NewRole {
        slug: body.slug,
        name: body.name,
        description: body.description,
        is_default: body.default,
    };
    if let Some(why) = roles::invalid_role(&role) {
        return Err(ApiError::BadRequest(why));
    }
    let org = org_id.clone();
    with_key(&req, &state, move |c, scope| {
        own_org(c, scope, &org)?;
        Ok(())
    })
    .await?;
    let created = changes::create_role(&state, &org_id, role.clone())
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "a role with slug `{}` already exists in this organization",
                role.slug
            ))
        })?;
    Ok(HttpResponse::Created().json(role_json(&created)))
}

async fn delete_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (org_id, slug) = path.into_inner();
    let (org, s) = (org_id.clone(), slug.clone());
    let role = with_key(&req, &state, move |c, scope| {
        own_org(c, scope, &org)?;
        roles::get(c, &org, &s)?
            .ok_or_else(|| ApiError::NotFound(format!("no role `{s}` in this organization")))
    })
    .await?;
    changes::delete_role(&state, role).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn get_mappings(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let mappings = with_key(&req, &state, move |c, scope| {
        own_directory(c, scope, &id)?;
        Ok(roles::mappings(c, &id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"data": mappings_json(&mappings)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingBody {
    group_id: String,
    role: String,
}

async fn put_mappings(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Vec<MappingBody>>,
) -> ApiResult {
    let (directory_id, body) = (id.into_inner(), body.into_inner());
    if body.len() > 10_000 {
        return Err(ApiError::BadRequest(
            "at most 10 000 mappings per directory".into(),
        ));
    }
    let dir = directory_id.clone();
    // Every group a live group of the directory, every role one of its organization's.
    let wanted = with_key(&req, &state, move |c, scope| {
        let org_id = own_directory(c, scope, &dir)?;
        let roles: std::collections::BTreeMap<String, String> = roles::list(c, &org_id)?
            .into_iter()
            .map(|r| (r.slug, r.id))
            .collect();
        let group_ids: BTreeSet<String> = body.iter().map(|m| m.group_id.clone()).collect();
        let known = db::groups::known_group_ids(c, &dir, &group_ids)?;
        let mut wanted = BTreeSet::new();
        for m in &body {
            if !known.contains(&m.group_id) {
                return Err(ApiError::BadRequest(format!(
                    "no group `{}` in this directory",
                    m.group_id
                )));
            }
            let role_id = roles.get(&m.role).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "no role `{}` in this organization; define it first (POST /api/v1/organizations/{org_id}/roles)",
                    m.role
                ))
            })?;
            wanted.insert((m.group_id.clone(), role_id.clone()));
        }
        Ok(wanted)
    })
    .await?;
    let done = changes::replace_mappings(&state, &directory_id, wanted).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"data": mappings_json(&done.mappings), "users_changed": done.users_changed})))
}

impl From<changes::ChangeError> for ApiError {
    fn from(e: changes::ChangeError) -> Self {
        use changes::ChangeError;
        match e {
            ChangeError::Pool(e) => ApiError::Unavailable(e),
            ChangeError::Writer(e) => ApiError::Writer(e),
            ChangeError::Db(e) => e.into(),
            ChangeError::Internal(e) => ApiError::Internal(e),
        }
    }
}
