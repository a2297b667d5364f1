//! The SCIM 2.0 HTTP surface: `/scim/v2/{directory}/…`. One handler normalises the path
//! (trailing and doubled slashes, case of `Users`), authenticates the bearer token, reads the
//! body within limits, and dispatches to `ops`. Every response is `application/scim+json`.

pub mod ops;

use std::time::Instant;

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::Value;

use crate::app::AppState;
use crate::db::directories::{self, TokenCheck};
use crate::scim::discovery::{self, MAX_PAYLOAD_BYTES};
use crate::scim::list::{self, ListQuery};
use crate::scim::{CONTENT_TYPE, ScimError};
use ops::Ctx;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/scim/v2/{directory}", web::route().to(handle))
        .route("/scim/v2/{directory}/{tail:.*}", web::route().to(handle));
}

/// A SCIM response: status and optional JSON body.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    location: Option<String>,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
            location: None,
        }
    }
    fn created(body: Value) -> Reply {
        let location = body["meta"]["location"].as_str().map(str::to_string);
        Reply {
            status: StatusCode::CREATED,
            body: Some(body),
            location,
        }
    }
    fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            location: None,
        }
    }
}

pub fn error_response(e: &ScimError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CONTENT_TYPE, CONTENT_TYPE));
    if e.status == 401 {
        resp.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"roster-scim\""));
    }
    resp.body(e.to_json().to_string())
}

fn reply_response(r: Reply) -> HttpResponse {
    let mut resp = HttpResponse::build(r.status);
    if let Some(loc) = r.location {
        resp.insert_header((header::LOCATION, loc));
    }
    match r.body {
        Some(b) => resp
            .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
            .body(b.to_string()),
        None => resp.finish(),
    }
}

/// The presented bearer token (scheme matched case-insensitively).
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Reads the body, refusing more than `MAX_PAYLOAD_BYTES` with a SCIM 413.
async fn read_body(mut payload: web::Payload) -> Result<web::Bytes, ScimError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ScimError::invalid_syntax("could not read the request body"))?;
        if body.len() + chunk.len() > MAX_PAYLOAD_BYTES {
            return Err(ScimError::payload_too_large(format!(
                "request body is larger than {MAX_PAYLOAD_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn parse_json(body: &[u8]) -> Result<Value, ScimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax(
            "the request body is empty; a JSON object is required",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))
}

fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ScimError> {
    // `+` and `%20` both mean a space (item 3 of the provider pitfalls).
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map_err(|_| ScimError::invalid_syntax("the query string is not valid"))
}

/// What a normalised path asks for.
enum Target {
    Collection(crate::scim::ResourceType),
    Resource(crate::scim::ResourceType, String),
    Search(Option<crate::scim::ResourceType>),
    ServiceProviderConfig,
    ResourceTypes,
    Schemas,
    Unsupported(&'static str),
    NotFound,
}

fn route(tail: &str) -> Target {
    use crate::scim::ResourceType::{Group, User};
    let segments: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let kind = |s: &str| match s.to_ascii_lowercase().as_str() {
        "users" => Some(User),
        "groups" => Some(Group),
        _ => None,
    };
    match segments.as_slice() {
        [s] if s.eq_ignore_ascii_case("ServiceProviderConfig")
            || s.eq_ignore_ascii_case("ServiceProviderConfigs") =>
        {
            Target::ServiceProviderConfig
        }
        [s, ..] if s.eq_ignore_ascii_case("ResourceTypes") => Target::ResourceTypes,
        [s, ..] if s.eq_ignore_ascii_case("Schemas") => Target::Schemas,
        [s] if s.eq_ignore_ascii_case(".search") => Target::Search(None),
        [s] if s.eq_ignore_ascii_case("Me") => {
            Target::Unsupported("/Me is not supported: Roster has no authenticated subject")
        }
        [s] if s.eq_ignore_ascii_case("Bulk") => {
            Target::Unsupported("Bulk is not supported (see ServiceProviderConfig)")
        }
        [s] => kind(s).map(Target::Collection).unwrap_or(Target::NotFound),
        [s, t] if t.eq_ignore_ascii_case(".search") => kind(s)
            .map(|k| Target::Search(Some(k)))
            .unwrap_or(Target::NotFound),
        [s, id] => kind(s)
            .map(|k| Target::Resource(k, id.to_string()))
            .unwrap_or(Target::NotFound),
        _ => Target::NotFound,
    }
}

/// Parses a `.search` body (RFC 7644 §3.4.3) into the same query as GET parameters.
fn search_query(body: &Value) -> Result<ListQuery, ScimError> {
    let mut pairs = Vec::new();
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
    for (k, v) in obj {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => continue,
        };
        pairs.push((k.clone(), s));
    }
    list::parse_query(&pairs)
}

async fn handle(
    req: HttpRequest,
    path: web::Path<(String, Option<String>)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let (directory_id, tail) = path.into_inner();
    let tail = tail.unwrap_or_default();
    let method = req.method().clone();
    let result = serve(&req, &directory_id, &tail, payload, &state).await;
    let response = match result {
        Ok(r) => reply_response(r),
        Err(e) => {
            if e.status >= 500 {
                log::error!(
                    "SCIM {method} /scim/v2/{directory_id}/{tail} failed: {}",
                    e.detail
                );
            }
            error_response(&e)
        }
    };
    log::info!(
        "scim directory={directory_id} {method} /{tail} -> {} in {} µs",
        response.status().as_u16(),
        started.elapsed().as_micros()
    );
    response
}

async fn serve(
    req: &HttpRequest,
    directory_id: &str,
    tail: &str,
    payload: web::Payload,
    state: &web::Data<AppState>,
) -> Result<Reply, ScimError> {
    let token = bearer(req).ok_or_else(|| {
        ScimError::unauthorized("missing bearer token: send `Authorization: Bearer <token>` with the token shown in the Admin Portal")
    })?;
    let method = req.method().clone();
    let body = if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        Some(read_body(payload).await?)
    } else {
        None
    };
    let query = query_pairs(req)?;
    let target = route(tail);
    let base_url = state.config.scim_base(directory_id);
    let directory_id = directory_id.to_string();
    let tail = tail.to_string();
    let pool = state.pool.clone();

    web::block(move || -> Result<Reply, ScimError> {
        let mut conn = pool.get().map_err(|e| {
            log::error!("database pool: {e}");
            ScimError::unavailable("the server is busy; retry shortly")
        })?;
        let conn = &mut *conn;
        match directories::check_token(conn, &directory_id, &token)? {
            TokenCheck::Invalid => {
                return Err(ScimError::unauthorized("the bearer token is not valid for this directory"));
            }
            TokenCheck::Disabled => {
                return Err(ScimError::forbidden(
                    "SCIM provisioning is turned off for this organization or directory; ask the app owner",
                ));
            }
            TokenCheck::Ok { token_id, last_used_at, dir_last_request } => {
                if directories::needs_touch(dir_last_request, last_used_at) {
                    directories::touch(conn, &directory_id, &token_id, last_used_at)?;
                }
            }
        }
        let ctx = Ctx { directory_id: &directory_id, base_url: &base_url };
        let json = |b: &Option<web::Bytes>| parse_json(b.as_deref().unwrap_or_default());
        use crate::scim::ResourceType::{Group, User};
        Ok(match (target, method) {
            (Target::ServiceProviderConfig, Method::GET) => Reply::ok(discovery::service_provider_config(&base_url)),
            (Target::ResourceTypes, Method::GET) => Reply::ok(discovery::resource_types(&base_url)),
            (Target::Schemas, Method::GET) => Reply::ok(discovery::schemas(&base_url)),
            (Target::Collection(User), Method::GET) => Reply::ok(ops::list_users(conn, &ctx, &list::parse_query(&query)?)?),
            (Target::Collection(Group), Method::GET) => Reply::ok(ops::list_groups(conn, &ctx, &list::parse_query(&query)?)?),
            (Target::Search(kind), Method::POST) => {
                let q = search_query(&json(&body)?)?;
                match kind {
                    Some(Group) => Reply::ok(ops::list_groups(conn, &ctx, &q)?),
                    Some(User) => Reply::ok(ops::list_users(conn, &ctx, &q)?),
                    None => return Err(ScimError::invalid_syntax("search at the root is not supported; POST to /Users/.search or /Groups/.search")),
                }
            }
            (Target::Collection(User), Method::POST) => Reply::created(ops::create_user(conn, &ctx, &json(&body)?)?),
            (Target::Collection(Group), Method::POST) => Reply::created(ops::create_group(conn, &ctx, &json(&body)?)?),
            (Target::Resource(User, id), Method::GET) => Reply::ok(ops::get_user(conn, &ctx, &id)?),
            (Target::Resource(Group, id), Method::GET) => {
                let exclude = list::parse_query(&query)?.exclude_members;
                Reply::ok(ops::get_group(conn, &ctx, &id, exclude)?)
            }
            (Target::Resource(User, id), Method::PUT) => Reply::ok(ops::replace_user(conn, &ctx, &id, &json(&body)?)?),
            (Target::Resource(Group, id), Method::PUT) => Reply::ok(ops::replace_group(conn, &ctx, &id, &json(&body)?)?),
            (Target::Resource(User, id), Method::PATCH) => Reply::ok(ops::patch_user(conn, &ctx, &id, &json(&body)?)?),
            (Target::Resource(Group, id), Method::PATCH) => {
                ops::patch_group(conn, &ctx, &id, &json(&body)?)?;
                Reply::no_content()
            }
            (Target::Resource(User, id), Method::DELETE) => {
                ops::delete_user(conn, &ctx, &id)?;
                Reply::no_content()
            }
            (Target::Resource(Group, id), Method::DELETE) => {
                ops::delete_group(conn, &ctx, &id)?;
                Reply::no_content()
            }
            (Target::Unsupported(why), _) => return Err(ScimError::not_implemented(why)),
            (Target::NotFound, _) => return Err(ScimError::not_found(format!("no SCIM endpoint at `/{tail}`"))),
            (_, m) => return Err(ScimError::method_not_allowed(format!("{m} is not supported on `/{tail}`"))),
        })
    })
    .await
    .map_err(|_| ScimError::internal())?
}
