//! Roles through the API: the organization's roles (`/organizations/{id}/roles`) and which
//! groups of a directory give them (`/directories/{id}/role-mappings`). A change that moves
//! users' effective roles records one `user.updated` event per user moved; the users are
//! recomputed in steps, each a job of the shared writer committed alone, so a change that
//! reaches 10 000 users never holds other directories' writes for long.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, org_not_found, with_key};
use crate::db::{self, roles};
use crate::scim::resource::rfc3339;
use crate::scim_endpoint::ops;
use crate::state::AppState;

/// Users recomputed per step.
const USERS_PER_STEP: usize = 250;

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
        db::orgs::get(c, &id)?
            .filter(|o| scope.allows(&o.id))
            .ok_or_else(|| org_not_found(&id))?;
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
        db::orgs::get(c, &org)?
            .filter(|o| scope.allows(&o.id))
            .ok_or_else(|| org_not_found(&org))?;
        Ok(())
    })
    .await?;
    let (org, new) = (org_id.clone(), role.clone());
    let (created, default_before) = state
        .writer
        .run(move |b| {
            let before = roles::list(b, &org)?
                .into_iter()
                .find(|r| r.is_default)
                .map(|r| r.slug);
            Ok::<_, diesel::result::Error>((roles::insert(b, &org, &new)?, before))
        })
        .await
        .map_err(ApiError::Writer)??;
    let created = created.ok_or_else(|| {
        ApiError::Conflict(format!(
            "a role with slug `{}` already exists in this organization",
            role.slug
        ))
    })?;
    if created.is_default {
        // The users whose groups give no role now have this one.
        for directory_id in directories_of(&state, &org_id).await? {
            refresh_roleless(&state, &directory_id, default_before.clone()).await?;
        }
    }
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
        db::orgs::get(c, &org)?
            .filter(|o| scope.allows(&o.id))
            .ok_or_else(|| org_not_found(&org))?;
        roles::get(c, &org, &s)?
            .ok_or_else(|| ApiError::NotFound(format!("no role `{s}` in this organization")))
    })
    .await?;
    let role_id = role.id.clone();
    // The role and its mappings go in one job; the users who had it are recomputed after.
    let mapped = state
        .writer
        .run(move |b| {
            let groups = roles::groups_of_role(b, &role_id)?;
            let mut members = Vec::new();
            for (directory_id, group_id) in &groups {
                for user in db::memberships::member_ids(b, group_id)? {
                    members.push((directory_id.clone(), user));
                }
            }
            roles::delete(b, &role_id)?;
            Ok::<_, diesel::result::Error>(members)
        })
        .await
        .map_err(ApiError::Writer)??;
    let mut by_directory: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (directory_id, user) in mapped {
        by_directory.entry(directory_id).or_default().push(user);
    }
    for (directory_id, users) in by_directory {
        refresh_in_steps(&state, &directory_id, users, None).await?;
    }
    if role.is_default {
        for directory_id in directories_of(&state, &org_id).await? {
            refresh_roleless(&state, &directory_id, Some(role.slug.clone())).await?;
        }
    }
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
    let dir = directory_id.clone();
    let (affected, mappings) = state
        .writer
        .run(move |b| {
            let changed = roles::replace_mappings(b, &dir, &wanted)?;
            let mut users = BTreeSet::new();
            for group_id in &changed {
                users.extend(db::memberships::member_ids(b, group_id)?);
            }
            Ok::<_, diesel::result::Error>((users, roles::mappings(b, &dir)?))
        })
        .await
        .map_err(ApiError::Writer)??;
    let moved =
        refresh_in_steps(&state, &directory_id, affected.into_iter().collect(), None).await?;
    Ok(HttpResponse::Ok().json(json!({"data": mappings_json(&mappings), "users_changed": moved})))
}

/// The directory's organization, or 404 for a directory outside the key's reach.
fn own_directory(
    c: &mut db::DbConn,
    scope: &super::Scope,
    directory_id: &str,
) -> Result<String, ApiError> {
    db::directories::api_get(c, directory_id)?
        .filter(|d| scope.allows(&d.org_id))
        .map(|d| d.org_id)
        .ok_or_else(|| ApiError::NotFound(format!("no directory `{directory_id}`")))
}

async fn directories_of(state: &AppState, org_id: &str) -> Result<Vec<String>, ApiError> {
    let (pool, org) = (state.pool.clone(), org_id.to_string());
    web::block(move || {
        let mut c = pool.get().map_err(ApiError::Unavailable)?;
        Ok(roles::org_directories(&mut c, &org)?)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

/// Recomputes the roles of the given users of a directory, `USERS_PER_STEP` per job; returns
/// how many users' effective roles moved.
async fn refresh_in_steps(
    state: &AppState,
    directory_id: &str,
    users: Vec<String>,
    default_before: Option<Option<String>>,
) -> Result<usize, ApiError> {
    let mut moved = 0;
    for chunk in users.chunks(USERS_PER_STEP) {
        moved += refresh_step(state, directory_id, chunk.to_vec(), default_before.clone()).await?;
    }
    Ok(moved)
}

/// After a change of the default role: the directory's users whose groups give no role,
/// in steps (they stay without given roles, so paging by id sees each once).
async fn refresh_roleless(
    state: &AppState,
    directory_id: &str,
    default_before: Option<String>,
) -> Result<usize, ApiError> {
    let mut after = String::new();
    let mut moved = 0;
    loop {
        let (pool, dir, from) = (state.pool.clone(), directory_id.to_string(), after.clone());
        let users = web::block(move || {
            let mut c = pool.get().map_err(ApiError::Unavailable)?;
            Ok::<_, ApiError>(roles::users_without_given_roles(
                &mut c,
                &dir,
                &from,
                USERS_PER_STEP as i64,
            )?)
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
        let Some(last) = users.last() else {
            return Ok(moved);
        };
        after = last.clone();
        moved += refresh_step(state, directory_id, users, Some(default_before.clone())).await?;
    }
}

async fn refresh_step(
    state: &AppState,
    directory_id: &str,
    users: Vec<String>,
    default_before: Option<Option<String>>,
) -> Result<usize, ApiError> {
    let dir = directory_id.to_string();
    let base_url = state.config.scim_base(directory_id);
    state
        .writer
        .run_alone(move |b| {
            let ctx = ops::Ctx::for_directory(&dir, &base_url);
            let ids: Vec<&String> = users.iter().collect();
            ops::refresh_roles(b, &ctx, &ids, default_before.clone())
        })
        .await
        .map_err(ApiError::Writer)?
        .map_err(|e| ApiError::Internal(Box::new(e)))
}
