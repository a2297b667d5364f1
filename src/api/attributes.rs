//! Custom attributes through the API: the organization's declarations
//! (`/organizations/{id}/attributes`, each with its default source path) and a directory's own
//! paths (`/directories/{id}/attribute-mappings`). A change that moves users' values records
//! one `user.updated` per user moved, applied in steps (`custom_attributes::remap`).

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, own_directory, own_org, with_key};
use crate::custom_attributes::remap::{self, Reach, RemapError};
use crate::custom_attributes::{AttributeName, MAX_PER_ORG};
use crate::db::attributes;
use crate::scim::resource::rfc3339;
use crate::scim::source_path::SourcePath;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/organizations/{id}/attributes",
        web::get().to(list_attributes),
    )
    .route(
        "/api/v1/organizations/{id}/attributes",
        web::post().to(declare),
    )
    .route(
        "/api/v1/organizations/{id}/attributes/{name}",
        web::delete().to(remove),
    )
    .route(
        "/api/v1/directories/{id}/attribute-mappings",
        web::get().to(get_mappings),
    )
    .route(
        "/api/v1/directories/{id}/attribute-mappings",
        web::put().to(put_mappings),
    );
}

impl From<RemapError> for ApiError {
    fn from(e: RemapError) -> Self {
        match e {
            RemapError::Writer(w) => ApiError::Writer(w),
            RemapError::Failed(cause) => ApiError::Internal(cause),
        }
    }
}

fn declared_json(d: &attributes::Declared) -> Value {
    json!({"name": d.name, "source": d.source, "created_at": rfc3339(d.created_at)})
}

/// Each attribute with the path in force for the directory, and whether it is the
/// directory's own.
fn mappings_json(rows: &[(String, String, Option<String>)]) -> Value {
    json!(
        rows.iter()
            .map(|(name, default, own)| json!({
                "attribute": name,
                "source": own.as_deref().unwrap_or(default),
                "default_source": default,
                "overridden": own.is_some(),
            }))
            .collect::<Vec<_>>()
    )
}

async fn list_attributes(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let list = with_key(&req, &state, move |c, scope| {
        own_org(c, scope, &id)?;
        Ok(attributes::list(c, &id)?)
    })
    .await?;
    Ok(
        HttpResponse::Ok()
            .json(json!({"data": list.iter().map(declared_json).collect::<Vec<_>>()})),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Declaration {
    name: String,
    source: String,
}

/// A name and path as checked for a declaration or a mapping.
fn checked(name: &str, source: &str) -> Result<(AttributeName, SourcePath), ApiError> {
    let name = AttributeName::parse(name).map_err(ApiError::BadRequest)?;
    let source = SourcePath::parse(source)
        .map_err(|e| ApiError::BadRequest(format!("`source` of `{name}`: {e}")))?;
    Ok((name, source))
}

async fn declare(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Declaration>,
) -> ApiResult {
    let (org_id, body) = (id.into_inner(), body.into_inner());
    let (name, source) = checked(&body.name, &body.source)?;
    let org = org_id.clone();
    with_key(&req, &state, move |c, scope| {
        own_org(c, scope, &org).map(drop)
    })
    .await?;
    let created = remap::apply(&state, Reach::Organization(org_id.clone()), move |b| {
        if attributes::list(b, &org_id)?.len() >= MAX_PER_ORG {
            return Err(ApiError::BadRequest(format!(
                "an organization declares at most {MAX_PER_ORG} attributes"
            )));
        }
        attributes::insert(b, &org_id, name.as_str(), source.as_str())?.ok_or_else(|| {
            ApiError::Conflict(format!(
                "an attribute named `{name}` is already declared in this organization"
            ))
        })
    })
    .await??;
    let (declared, moved) = created;
    let mut out = declared_json(&declared);
    out["users_changed"] = json!(moved);
    Ok(HttpResponse::Created().json(out))
}

async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (org_id, name) = path.into_inner();
    let org = org_id.clone();
    with_key(&req, &state, move |c, scope| {
        own_org(c, scope, &org).map(drop)
    })
    .await?;
    remap::apply(&state, Reach::Organization(org_id.clone()), move |b| {
        if attributes::delete(b, &org_id, &name)? {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!(
                "no attribute `{name}` in this organization"
            )))
        }
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}

async fn get_mappings(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> ApiResult {
    let id = id.into_inner();
    let rows = with_key(&req, &state, move |c, scope| {
        own_directory(c, scope, &id)?;
        Ok(attributes::for_directory(c, &id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"data": mappings_json(&rows)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingBody {
    attribute: String,
    source: String,
}

async fn put_mappings(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Vec<MappingBody>>,
) -> ApiResult {
    let (directory_id, body) = (id.into_inner(), body.into_inner());
    if body.len() > MAX_PER_ORG {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_PER_ORG} mappings per directory"
        )));
    }
    let mut wanted = BTreeMap::new();
    for m in &body {
        let (name, source) = checked(&m.attribute, &m.source)?;
        if wanted
            .insert(name.as_str().to_string(), source.as_str().to_string())
            .is_some()
        {
            return Err(ApiError::BadRequest(format!(
                "`{name}` is mapped twice; give each attribute one source"
            )));
        }
    }
    let dir = directory_id.clone();
    with_key(&req, &state, move |c, scope| {
        own_directory(c, scope, &dir).map(|_| ())
    })
    .await?;
    let dir = directory_id.clone();
    let (rows, moved) = remap::apply(&state, Reach::Directory(directory_id), move |b| {
        // Every attribute one the organization declared (checked in the job: a declaration
        // removed meanwhile is refused, not orphaned).
        let declared = attributes::for_directory(b, &dir)?;
        if let Some(unknown) = wanted
            .keys()
            .find(|n| !declared.iter().any(|(d, _, _)| d == *n))
        {
            return Err(ApiError::BadRequest(format!(
                "no attribute `{unknown}` is declared in this organization; declare it first (POST /api/v1/organizations/{{id}}/attributes)"
            )));
        }
        attributes::replace_overrides(b, &dir, &wanted)?;
        Ok(attributes::for_directory(b, &dir)?)
    })
    .await??;
    Ok(HttpResponse::Ok().json(json!({"data": mappings_json(&rows), "users_changed": moved})))
}
