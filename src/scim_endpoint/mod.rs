//! The SCIM 2.0 HTTP surface: `/scim/v2/{directory}/…`. One handler normalises the path
//! (trailing and doubled slashes, case of `Users`), authenticates the bearer token, reads the
//! body within limits, and dispatches to `ops`: changes run in the writer's next batch
//! (`write`; `POST /Users` through `post_user`), reads on a pooled connection (`read`). Every
//! response is `application/scim+json`. While the directory has a running resync, what each
//! answer shows the provider knows is confirmed (`resync`).

pub mod ops;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use crate::db::directories::{self, TokenCheck};
use crate::db::requests::NewRequest;
use crate::db::user_pages::Bookmarks;
use crate::db::{Batch, DbConn};
use crate::scim::discovery;
use crate::scim::list::{self, ListQuery};
use crate::scim::redact;
use crate::scim::{CONTENT_TYPE, ScimError};
use crate::state::AppState;
use ops::Ctx;

pub mod body;
pub mod fair_share;
pub mod group_turns;
mod member_steps;
pub mod read_slots;
mod resync;

/// Polls `f` once: its output if it is ready (for tests of what waits its turn).
#[cfg(test)]
fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    use std::task::{Context, Poll, Waker};
    match std::pin::Pin::new(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Every path under `/scim/v2/`, split by hand: a pattern with `{directory}` is matched by a
/// regular expression, which cost a seventh of a read's time in the server's own threads.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/scim/v2").default_service(web::route().to(handle)));
}

/// The directory id and the rest of the path after `/scim/v2/` (`None` when there is no
/// directory id).
fn split_scim_path(rest: &str) -> Option<(String, String)> {
    let rest = rest.strip_prefix('/')?;
    let (directory, tail) = rest.split_once('/').unwrap_or((rest, ""));
    (!directory.is_empty()).then(|| (directory.to_string(), tail.to_string()))
}

/// The presented bearer token (scheme matched case-insensitively), or what is wrong with the
/// `Authorization` header: each cause gets its own `detail`, which the inspector explains.
fn bearer(req: &HttpRequest) -> Result<String, &'static str> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(NO_AUTHORIZATION);
    };
    let value = value.to_str().map_err(|_| NOT_BEARER)?.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(token.trim().to_string())
        }
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("basic") => Err(BASIC_AUTH),
        Some(_) => Err(OTHER_SCHEME),
        None if value.is_empty() => Err(NO_AUTHORIZATION),
        None => Err(NOT_BEARER),
    }
}

/// The `detail` of each refused `Authorization` header (`portal::explain` keys on their starts).
pub const NO_AUTHORIZATION: &str = "no Authorization header: send `Authorization: Bearer <token>` with the token shown in the Admin Portal";
pub const BASIC_AUTH: &str = "the Authorization header uses Basic authentication; Roster takes `Authorization: Bearer <token>`: set the provider's authentication type to Bearer and paste the token shown in the Admin Portal";
pub const NOT_BEARER: &str = "the Authorization header has no `Bearer ` before the token: send `Authorization: Bearer <token>`";
pub const OTHER_SCHEME: &str = "the Authorization header uses a scheme other than Bearer: send `Authorization: Bearer <token>`";

fn parse_json(body: &[u8]) -> Result<Value, ScimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax(
            "the request body is empty; a JSON object is required",
        ));
    }
    let value = serde_json::from_slice(body).map_err(|e| {
        ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
    })?;
    crate::scim::check_document(&value)?;
    Ok(value)
}

fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ScimError> {
    // `+` and `%20` both mean a space (docs/provider-pitfalls.md, item 3).
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map_err(|_| ScimError::invalid_syntax("the query string is not valid"))
}

/// What a normalised path asks for.
enum Target {
    Collection(crate::scim::ResourceType),
    Resource(crate::scim::ResourceType, String),
    Search(Option<crate::scim::ResourceType>),
    ServiceProviderConfig,
    /// `/ResourceTypes` or one of them by id.
    ResourceTypes(Option<String>),
    /// `/Schemas` or one of them by URN.
    Schemas(Option<String>),
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
        [s] if s.eq_ignore_ascii_case("ResourceTypes") => Target::ResourceTypes(None),
        [s, id] if s.eq_ignore_ascii_case("ResourceTypes") => {
            Target::ResourceTypes(Some(id.to_string()))
        }
        [s] if s.eq_ignore_ascii_case("Schemas") => Target::Schemas(None),
        [s, id] if s.eq_ignore_ascii_case("Schemas") => Target::Schemas(Some(id.to_string())),
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
        // No id holds U+0000 (and PostgreSQL could not even compare one that did).
        [s, id] if !id.contains('\0') => kind(s)
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

/// Every SCIM request; the access log (`app::run`) records each one.
async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let Some((directory_id, tail)) = split_scim_path(req.match_info().unprocessed()) else {
        let rendered = Rendered::error(&ScimError::not_found(
            "no directory in the path: the endpoint URL is /scim/v2/<directory id>, as shown in the Admin Portal",
        ));
        count(&state, &req, "other", UNKNOWN_PROVIDER, &rendered, started);
        return rendered.into_response();
    };
    let resource = resource_label(&route(&tail));
    let provider = Arc::new(OnceLock::new());
    let rendered = serve(
        &req,
        directory_id,
        tail,
        payload,
        &state,
        started,
        &provider,
    )
    .await;
    let provider = provider.get().copied().unwrap_or(UNKNOWN_PROVIDER);
    count(&state, &req, resource, provider, &rendered, started);
    rendered.into_response()
}

/// The provider label of a request whose token was not accepted.
const UNKNOWN_PROVIDER: &str = "unknown";

/// Counts an answered request in the metrics.
fn count(
    state: &AppState,
    req: &HttpRequest,
    resource: &'static str,
    provider: &'static str,
    rendered: &Rendered,
    started: Instant,
) {
    if let Some(metrics) = &state.metrics {
        metrics.observe_scim(&crate::metrics::ScimRequest {
            method: req.method().as_str(),
            resource,
            status: rendered.status.as_u16(),
            provider,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
}

/// What a request is counted under in the metrics: one of a few fixed names, never an id.
fn resource_label(target: &Target) -> &'static str {
    use crate::scim::ResourceType::{Group, User};
    match target {
        Target::Collection(User) | Target::Resource(User, _) | Target::Search(Some(User)) => {
            "Users"
        }
        Target::Collection(Group) | Target::Resource(Group, _) | Target::Search(Some(Group)) => {
            "Groups"
        }
        Target::Search(None) => "search",
        Target::ServiceProviderConfig => "ServiceProviderConfig",
        Target::ResourceTypes(_) => "ResourceTypes",
        Target::Schemas(_) => "Schemas",
        Target::Unsupported(_) | Target::NotFound => "other",
    }
}

/// The request as the log and the operations need it, gathered before going off-thread.
struct Incoming {
    directory_id: String,
    tail: String,
    method: Method,
    logged_path: String,
    /// The bearer token, or why the `Authorization` header has none.
    token: Result<String, &'static str>,
    body: Option<web::Bytes>,
    /// The body as the request log keeps it (secrets redacted), prepared before a change is
    /// queued: the writer's thread is what every change waits for.
    logged_body: Option<String>,
    query: Vec<(String, String)>,
    if_match: Option<String>,
    if_none_match: Option<String>,
    base_url: String,
    started: Instant,
    /// See `Ctx::member_step`.
    member_step: usize,
    /// Set to the directory's provider once its token is accepted (for the metrics).
    provider: Arc<OnceLock<&'static str>>,
    /// The id `request_log` gave the request (sent back as `X-Request-Id`).
    request_id: Option<String>,
    /// Set to the directory's running resync, if any, once its token is accepted.
    resync: Arc<OnceLock<String>>,
}

fn header(req: &HttpRequest, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A SCIM response, serialized once, for both the client and the request log.
struct Rendered {
    status: StatusCode,
    location: Option<String>,
    /// `W/"n"`: the version of the one resource this body is.
    etag: Option<String>,
    body: Option<String>,
    /// The id of the resource a POST created (for the request log).
    created_id: Option<String>,
    /// Set on errors: 401s get a `WWW-Authenticate` challenge.
    challenge: bool,
    /// What a write changed (for the request log).
    change_summary: Option<String>,
    /// Seconds for `Retry-After`.
    retry_after: Option<u64>,
}

impl Rendered {
    /// The answer to an address refused for its failed authentications (see
    /// `auth::throttle`): nothing of the request is looked at.
    fn throttled(wait: std::time::Duration) -> Rendered {
        let secs = wait.as_secs().max(1);
        let e = ScimError::new(
            429,
            None,
            format!(
                "too many requests with a wrong or missing bearer token came from this address; \
                 retry in {secs} s with the token shown in the Admin Portal"
            ),
        );
        Rendered {
            retry_after: Some(secs),
            ..Rendered::error(&e)
        }
    }

    fn empty(status: StatusCode) -> Rendered {
        Rendered {
            status,
            location: None,
            etag: None,
            body: None,
            created_id: None,
            challenge: false,
            change_summary: None,
            retry_after: None,
        }
    }

    fn ok(body: Value) -> Rendered {
        Rendered {
            etag: body["meta"]["version"].as_str().map(str::to_string),
            body: Some(body.to_string()),
            ..Rendered::empty(StatusCode::OK)
        }
    }

    /// A body serialized already (a list).
    fn ok_text(text: String) -> Rendered {
        Rendered {
            body: Some(text),
            ..Rendered::empty(StatusCode::OK)
        }
    }

    /// One resource serialized already, with its ETag.
    fn ok_resource((text, etag): (String, String)) -> Rendered {
        Rendered {
            etag: Some(etag),
            ..Rendered::ok_text(text)
        }
    }

    fn created(body: Value) -> Rendered {
        Rendered {
            status: StatusCode::CREATED,
            location: body["meta"]["location"].as_str().map(str::to_string),
            created_id: body["id"].as_str().map(str::to_string),
            ..Rendered::ok(body)
        }
    }

    /// A created resource serialized already.
    fn created_text(created: ops::Created) -> Rendered {
        Rendered {
            status: StatusCode::CREATED,
            location: Some(created.location),
            etag: Some(created.etag),
            body: Some(created.text),
            created_id: Some(created.id),
            challenge: false,
            change_summary: None,
            retry_after: None,
        }
    }

    fn no_content() -> Rendered {
        Rendered::empty(StatusCode::NO_CONTENT)
    }

    fn error(e: &ScimError) -> Rendered {
        Rendered {
            body: Some(e.to_json().to_string()),
            challenge: e.status == 401,
            // A provider retries a 503 sooner or later; this says when.
            retry_after: e.retry_after(),
            ..Rendered::empty(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            )
        }
    }

    fn into_response(self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if let Some(loc) = self.location {
            resp.insert_header((header::LOCATION, loc));
        }
        if let Some(etag) = self.etag {
            resp.insert_header((header::ETAG, etag));
        }
        if self.challenge {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"roster-scim\""));
        }
        if let Some(secs) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        match self.body {
            Some(b) => resp
                .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
                .body(b),
            None => resp.finish(),
        }
    }
}

fn unavailable(e: &crate::db::writer::WriteError) -> ScimError {
    log::error!("SCIM write not done: {e}");
    ScimError::unavailable("the server is busy; retry shortly")
}

/// Serves one SCIM request. Writes (with their log row) run on the process's writer, which
/// commits them in batches; reads run on a pooled connection and then queue their log row.
async fn serve(
    req: &HttpRequest,
    directory_id: String,
    tail: String,
    payload: web::Payload,
    state: &web::Data<AppState>,
    started: Instant,
    provider: &Arc<OnceLock<&'static str>>,
) -> Rendered {
    // An address past its allowance of failed authentications is refused before anything.
    let client = crate::auth::throttle::client_addr(req, &state.config.trusted_proxies);
    if let Some(wait) = client.and_then(|a| state.auth_throttle.refused_for(a)) {
        return Rendered::throttled(wait);
    }
    // Held until the answer is ready: a directory sending many requests at once waits its
    // turn here, not in every other directory's way.
    let _place = state.fair_share.enter(&directory_id).await;
    let method = req.method().clone();
    let has_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
    let query = query_pairs(req);
    let mut incoming = Incoming {
        base_url: state.config.scim_base(&directory_id),
        directory_id,
        method,
        logged_path: logged_path(&tail, req.query_string()),
        token: bearer(req),
        logged_body: None,
        body: None,
        query: query.as_ref().cloned().unwrap_or_default(),
        if_match: header(req, header::IF_MATCH),
        if_none_match: header(req, header::IF_NONE_MATCH),
        started,
        tail,
        member_step: state
            .config
            .limits
            .member_step(state.fair_share.others_active()),
        provider: provider.clone(),
        request_id: crate::request_log::request_id(req),
        resync: Arc::default(),
    };
    let target = Arc::new(route(&incoming.tail));
    // A request with a body is authenticated from its headers before the body is read, so
    // one without a valid token costs no memory and no parsing; the body then has a
    // deadline and a share of a bounded budget.
    let mut authenticated = None;
    if has_body {
        let received = match authenticate_apart(state, &incoming).await {
            Ok(auth) => {
                authenticated = Some(auth);
                match body::check_declared_length(req) {
                    Ok(()) => {
                        let deadline = state.config.limits.body_deadline;
                        body::receive(payload, &state.body_budget, deadline).await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match received {
            Ok(b) => {
                incoming.logged_body = redact::request_body(&b);
                incoming.body = Some(b);
            }
            Err(e) => return refused(state, &incoming, &target, e, client).await,
        }
    }
    let incoming = Arc::new(incoming);
    let is_write = matches!(
        incoming.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && !matches!(*target, Target::Search(_));
    let outcome = match query {
        Err(e) => Err(e),
        Ok(_) if is_write => write(state, incoming.clone(), target.clone(), authenticated).await,
        Ok(_) => read(state, incoming.clone(), target.clone(), authenticated).await,
    };
    let rendered = match outcome {
        Ok(rendered) => rendered,
        Err(e) => refused(state, &incoming, &target, e, client).await,
    };
    resync::confirm(state, &incoming, &target, &rendered);
    rendered
}

/// A refused request: its error, logged on its own (its effect, if any, was rolled back).
async fn refused(
    state: &web::Data<AppState>,
    incoming: &Incoming,
    target: &Target,
    e: ScimError,
    client: Option<std::net::IpAddr>,
) -> Rendered {
    if e.status == 401
        && let Some(addr) = client
    {
        state.auth_throttle.record_failure(addr);
    }
    if e.status >= 500 {
        log::error!(
            "SCIM {} /scim/v2/{}/{} failed: {}",
            incoming.method,
            incoming.directory_id,
            crate::loggable::path(&incoming.tail),
            e.detail
        );
    }
    let rendered = Rendered::error(&e);
    let row = log_row(incoming, target, &rendered, Some(error_kind(&e)));
    state.writer.log(row).await;
    rendered
}

/// The path the request log keeps: the query's secret-looking values redacted.
fn logged_path(tail: &str, query: &str) -> String {
    match query {
        "" => format!("/{tail}"),
        q => format!("/{tail}?{}", crate::loggable::query(q)),
    }
}

/// [`authenticate`] on a pooled connection of its own, off the async workers.
async fn authenticate_apart(
    state: &web::Data<AppState>,
    incoming: &Incoming,
) -> Result<Authenticated, ScimError> {
    let pool = state.pool.clone();
    let (directory_id, token) = (incoming.directory_id.clone(), incoming.token.clone());
    let (provider, resync) = (incoming.provider.clone(), incoming.resync.clone());
    web::block(move || {
        let token = token.as_deref().map_err(|detail| *detail);
        let mut conn = pooled(&pool)?;
        let auth = authenticate(&mut conn, &directory_id, token)?;
        let _ = provider.set(auth.provider);
        note_resync(&mut conn, &directory_id, &resync)?;
        Ok(auth)
    })
    .await
    .map_err(|_| ScimError::internal())?
}

/// A change: authenticated on a pooled connection, then applied and logged as one job of the
/// writer's next batch (undone alone if it fails).
async fn write(
    state: &web::Data<AppState>,
    incoming: Arc<Incoming>,
    target: Arc<Target>,
    authenticated: Option<Authenticated>,
) -> Result<Rendered, ScimError> {
    // The token is checked beside the writer, not on it: the writer's thread is what every
    // change waits for. A token revoked between this check and the commit lets this one
    // request through, as if it had arrived a moment earlier.
    let auth = match authenticated {
        Some(auth) => auth,
        None => authenticate_apart(state, &incoming).await?,
    };
    let creates_user = matches!(
        (&*target, &incoming.method),
        (
            Target::Collection(crate::scim::ResourceType::User),
            &Method::POST
        )
    );
    let prepared = if creates_user {
        Some(prepare_user_apart(&incoming).await?)
    } else {
        None
    };
    let touch = auth.touch.filter(|t| state.touches.claim(&t.token_id));
    if let Some(prepared) = prepared {
        if let Some(touch) = touch {
            let directory_id = incoming.directory_id.clone();
            state.writer.spawn("recording a token's use", move |batch| {
                touch.apply(batch, &directory_id)
            });
        }
        return post_user(state, &incoming, &target, prepared).await;
    }
    // Parsed beside the writer, whose time is every directory's.
    let body = if uses_body(&target, &incoming.method) {
        Some(Arc::new(parse_body_apart(&incoming).await?))
    } else {
        None
    };
    let live = match &body {
        Some(body) => live_members_apart(state, &incoming, &target, body).await?,
        None => None,
    };
    // A group's writes one at a time (see `group_turns`), held until the reply.
    let _turn = match &*target {
        Target::Resource(crate::scim::ResourceType::Group, id) => {
            Some(state.group_turns.take(&incoming.directory_id, id).await)
        }
        _ => None,
    };
    let mut touch = touch;
    let mut tries = 1;
    let applied = loop {
        let (inc, tgt, body, live, touch_now) = (
            incoming.clone(),
            target.clone(),
            body.clone(),
            live.clone(),
            touch.take(),
        );
        let result: Result<Applied, ScimError> = state
            .writer
            .run(move |batch| {
                if let Some(touch) = &touch_now {
                    touch.apply(batch, &inc.directory_id)?;
                }
                let applied = dispatch_write(batch, &inc, &tgt, body.as_deref(), live.as_deref())?;
                // The change and its log row commit together, or neither does (a change
                // that continues in steps logs its row with its last).
                if let Applied::Done(rendered) = &applied {
                    batch.log(log_row(&inc, &tgt, rendered, None));
                }
                Ok(applied)
            })
            .await
            .map_err(|e| unavailable(&e))?;
        // Rolled back after giving way to another instance's change on the same rows: run
        // it again rather than hand the provider a 5xx for a valid request.
        match result {
            Err(e) if e.is_concurrent_conflict() && tries < MAX_CONFLICT_TRIES => tries += 1,
            other => break other?,
        }
    };
    match applied {
        Applied::Done(rendered) => Ok(rendered),
        Applied::Continues(continued) => {
            member_steps::finish(state, &incoming, &target, continued).await
        }
    }
}

/// The members of a large group `POST` or `PUT` checked on a pooled connection before its job
/// (see `ops::live_members`).
async fn live_members_apart(
    state: &web::Data<AppState>,
    incoming: &Arc<Incoming>,
    target: &Target,
    body: &Arc<Value>,
) -> Result<Option<Arc<BTreeSet<String>>>, ScimError> {
    use crate::scim::ResourceType::Group;
    let is_group = matches!(
        (target, &incoming.method),
        (Target::Collection(Group), &Method::POST) | (Target::Resource(Group, _), &Method::PUT)
    );
    if !is_group || !ops::names_many_members(body, incoming.member_step) {
        return Ok(None);
    }
    let (pool, inc, body) = (state.pool.clone(), incoming.clone(), body.clone());
    web::block(move || {
        ops::live_members(&mut *pooled(&pool)?, &ctx(&inc, None), &body).map(|l| l.map(Arc::new))
    })
    .await
    .map_err(|_| ScimError::internal())?
}

/// What a write's job did: all of it, or a first step of a large membership change.
enum Applied {
    Done(Rendered),
    Continues(member_steps::Continued),
}

/// How many times a change that gave way to a concurrent one is run.
const MAX_CONFLICT_TRIES: u32 = 5;

/// Bodies up to this size are parsed on the async worker; larger ones on the blocking pool,
/// so that one large body never holds up the requests that share its worker.
const PARSE_INLINE_BYTES: usize = 64 * 1024;

/// The body of a `POST /Users` parsed and validated (`ops::prepare_user`) beside the writer,
/// and off the async workers when it is large.
async fn prepare_user_apart(incoming: &Arc<Incoming>) -> Result<ops::PreparedUser, ScimError> {
    off_workers_if_large(incoming, |incoming| {
        let body = parse_json(incoming.body.as_deref().unwrap_or_default())?;
        ops::prepare_user(&ctx(incoming, None), &body)
    })
    .await
}

/// The body parsed beside the writer, and off the async workers when it is large.
async fn parse_body_apart(incoming: &Arc<Incoming>) -> Result<Value, ScimError> {
    off_workers_if_large(incoming, |incoming| {
        parse_json(incoming.body.as_deref().unwrap_or_default())
    })
    .await
}

/// Runs `f` on the request here, or on the blocking pool when its body is large.
async fn off_workers_if_large<T: Send + 'static>(
    incoming: &Arc<Incoming>,
    f: impl FnOnce(&Incoming) -> Result<T, ScimError> + Send + 'static,
) -> Result<T, ScimError> {
    let small = incoming
        .body
        .as_ref()
        .is_none_or(|b| b.len() <= PARSE_INLINE_BYTES);
    if small {
        return f(incoming);
    }
    let inc = incoming.clone();
    web::block(move || f(&inc))
        .await
        .map_err(|_| ScimError::internal())?
}

/// `POST /Users`: queues the prepared user on the writer (`Writer::run_create`), which stores
/// it with `ops::create_user` in its next batch. A user that joins no groups is inserted with
/// the batch's other new users, and its reply is ready before the write.
async fn post_user(
    state: &web::Data<AppState>,
    incoming: &Arc<Incoming>,
    target: &Arc<Target>,
    mut prepared: ops::PreparedUser,
) -> Result<Rendered, ScimError> {
    let mut tries = 1;
    loop {
        let ops::PreparedUser {
            user,
            groups,
            created,
        } = prepared;
        let user_name = user.row.user_name.clone();
        let insert_first = groups.is_none();
        let rendered = Rendered::created_text(created);
        let row = log_row(incoming, target, &rendered, None);
        let (inc, tgt) = (incoming.clone(), target.clone());
        let outcome = state
            .writer
            .run_create(user, insert_first, move |batch, user, inserted| {
                let ctx = ctx(&inc, None);
                let joined = ops::create_user(batch, &ctx, user, groups.as_ref(), inserted)?;
                let (row, reply) = match joined {
                    None => (
                        NewRequest {
                            // Up to the moment the writer takes it, as for other changes.
                            duration_us: elapsed_us(inc.started),
                            ..row.clone()
                        },
                        None,
                    ),
                    Some(created) => {
                        let reply = Rendered::created_text(created);
                        (log_row(&inc, &tgt, &reply, None), Some(reply))
                    }
                };
                batch.log(row);
                Ok::<_, ScimError>(reply)
            })
            .await
            .map_err(|e| unavailable(&e))?;
        match outcome {
            None => return Err(ops::user_name_taken(&user_name)),
            Some(Ok(reply)) => return Ok(reply.unwrap_or(rendered)),
            // Gave way to another instance's change (see `write`): prepared anew and run again.
            Some(Err(e)) if e.is_concurrent_conflict() && tries < MAX_CONFLICT_TRIES => {
                tries += 1;
                prepared = prepare_user_apart(incoming).await?;
            }
            Some(Err(e)) => return Err(e),
        }
    }
}

/// A read on a pooled connection; its log row (and a due token touch) are queued on the
/// writer, not waited for.
///
/// A read of one resource on SQLite runs right here on the async worker when a connection is
/// free: it is a few indexed lookups in this process's memory, shorter than handing it to the
/// blocking pool and back (two thread wake-ups, a third of such a read's time). Lists, searches
/// and every Postgres read (a network round trip) go to the blocking pool.
async fn read(
    state: &web::Data<AppState>,
    incoming: Arc<Incoming>,
    target: Arc<Target>,
    authenticated: Option<Authenticated>,
) -> Result<Rendered, ScimError> {
    let (inc, tgt) = (incoming.clone(), target.clone());
    let bookmarks = state.user_pages.clone();
    let one_resource = matches!(*target, Target::Resource(..)) && incoming.method == Method::GET;
    let work = move |mut conn: crate::db::PooledConn| {
        let reads = |conn: &mut crate::db::DbConn| {
            let auth = match authenticated {
                Some(auth) => auth,
                None => authenticate(
                    conn,
                    &inc.directory_id,
                    inc.token.as_deref().map_err(|detail| *detail),
                )?,
            };
            let _ = inc.provider.set(auth.provider);
            note_resync(conn, &inc.directory_id, &inc.resync)?;
            let rendered = dispatch_read(conn, &inc, &tgt, Some(&bookmarks))?;
            let rendered = not_modified(rendered, inc.if_none_match.as_deref());
            Ok::<_, ScimError>((rendered, auth.touch))
        };
        // One resource's reads in one transaction; a list may scan a whole directory in
        // chunks, and a transaction that long would keep SQLite's WAL from being reset.
        if one_resource {
            crate::db::read_snapshot(&mut conn, reads)
        } else {
            reads(&mut conn)
        }
    };
    let pool = state.pool.clone();
    // Postgres reads wait for one of a few slots (see `read_slots`).
    let slot = state.read_slots.enter().await;
    let (rendered, touch) = match pool.try_get() {
        Some(conn) if one_resource && matches!(*conn, DbConn::Sqlite(_)) => work(conn)?,
        Some(conn) => web::block(move || work(conn))
            .await
            .map_err(|_| ScimError::internal())??,
        None => web::block(move || work(pooled(&pool)?))
            .await
            .map_err(|_| ScimError::internal())??,
    };
    drop(slot);
    if let Some(touch) = touch
        && state.touches.claim(&touch.token_id)
    {
        let directory_id = incoming.directory_id.clone();
        state.writer.spawn("recording a token's use", move |c| {
            touch.apply(c, &directory_id)
        });
    }
    state
        .writer
        .log(log_row(&incoming, &target, &rendered, None))
        .await;
    Ok(rendered)
}

/// Notes the directory's running resync, if any (cheap: see `resyncs::running`).
fn note_resync(
    conn: &mut DbConn,
    directory_id: &str,
    resync: &OnceLock<String>,
) -> Result<(), ScimError> {
    if let Some(id) = crate::db::resyncs::running(conn, directory_id)? {
        let _ = resync.set(id);
    }
    Ok(())
}

/// A connection from the pool, or 503.
fn pooled(pool: &crate::db::Pool) -> Result<crate::db::PooledConn, ScimError> {
    pool.get().map_err(|e| {
        log::error!("database pool: {e}");
        ScimError::unavailable("the server is busy; retry shortly")
    })
}

/// A short, stable name for what went wrong, for the inspector's filters.
fn error_kind(e: &ScimError) -> String {
    match (e.status, e.scim_type) {
        (_, Some(t)) => t.to_string(),
        (401, _) => "unauthorized".into(),
        (403, _) => "forbidden".into(),
        (404, _) => "notFound".into(),
        (405, _) => "methodNotAllowed".into(),
        (408, _) => "requestTimeout".into(),
        (412, _) => "preconditionFailed".into(),
        (413, _) => "payloadTooLarge".into(),
        (501, _) => "notImplemented".into(),
        (s, _) if s >= 500 => "serverError".into(),
        _ => "error".into(),
    }
}

fn log_row(
    incoming: &Incoming,
    target: &Target,
    rendered: &Rendered,
    error_kind: Option<String>,
) -> NewRequest {
    let (resource_type, resource_id) = match target {
        Target::Resource(kind, id) => (Some(kind.name().to_string()), Some(id.clone())),
        Target::Collection(kind) => (Some(kind.name().to_string()), rendered.created_id.clone()),
        _ => (None, None),
    };
    NewRequest {
        directory_id: incoming.directory_id.clone(),
        at: crate::db::now(),
        method: incoming.method.to_string(),
        path: redact::truncate(&incoming.logged_path, 2048),
        status: i32::from(rendered.status.as_u16()),
        duration_us: elapsed_us(incoming.started),
        request_body: incoming.logged_body.clone(),
        response_excerpt: rendered
            .body
            .as_deref()
            .map(|r| redact::truncate(r, redact::MAX_LOGGED_RESPONSE)),
        error_kind,
        resource_type,
        resource_id,
        change_summary: rendered.change_summary.clone(),
        request_id: incoming.request_id.clone(),
    }
}

fn elapsed_us(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX)
}

/// The token's last use (and the directory's last request) are recorded at most every few
/// seconds, not on every request.
struct TokenTouch {
    token_id: String,
    last_used_at: Option<chrono::NaiveDateTime>,
}

impl TokenTouch {
    fn apply(
        &self,
        batch: &mut Batch<'_>,
        directory_id: &str,
    ) -> Result<(), diesel::result::Error> {
        directories::touch(batch, directory_id, &self.token_id, self.last_used_at)
    }
}

/// What a valid token tells about its directory.
struct Authenticated {
    /// Set when the token's last use is due to be recorded.
    touch: Option<TokenTouch>,
    /// The directory's provider slug.
    provider: &'static str,
}

/// Checks the bearer token.
fn authenticate(
    conn: &mut DbConn,
    directory_id: &str,
    token: Result<&str, &'static str>,
) -> Result<Authenticated, ScimError> {
    let token = match token {
        Ok(token) => token,
        Err(detail) => return Err(ScimError::unauthorized(detail)),
    };
    match directories::check_token(conn, directory_id, token)? {
        TokenCheck::Invalid => Err(ScimError::unauthorized(
            "the bearer token is not valid for this directory (wrong, or for another directory)",
        )),
        TokenCheck::Revoked(at) => Err(ScimError::unauthorized(format!(
            "this bearer token was revoked at {}; paste the directory's current token into the provider",
            crate::scim::resource::rfc3339(at)
        ))),
        TokenCheck::Disabled => Err(ScimError::forbidden(
            "this directory is disabled in the Admin Portal: its requests are refused until an IT admin enables it again",
        )),
        TokenCheck::Paused => Err(ScimError::paused()),
        TokenCheck::ScimOff => Err(ScimError::forbidden(
            "SCIM Provisioning is turned off for this organization; ask the app owner to turn it on",
        )),
        TokenCheck::Ok {
            token_id,
            last_used_at,
            dir_last_request,
            provider,
        } => Ok(Authenticated {
            provider: crate::providers::by_slug(&provider).map_or("other", |p| p.slug),
            touch: directories::needs_touch(dir_last_request, last_used_at).then_some(TokenTouch {
                token_id,
                last_used_at,
            }),
        }),
    }
}

/// `If-None-Match` on a GET of one resource: 304 when the client already has this version.
fn not_modified(rendered: Rendered, if_none_match: Option<&str>) -> Rendered {
    match (if_none_match, rendered.etag.as_deref()) {
        (Some(want), Some(have))
            if rendered.status == StatusCode::OK && ops::etag_matches(want, have) =>
        {
            Rendered::empty(StatusCode::NOT_MODIFIED)
        }
        _ => rendered,
    }
}

fn ctx<'a>(incoming: &'a Incoming, user_pages: Option<&'a Bookmarks>) -> Ctx<'a> {
    Ctx {
        directory_id: &incoming.directory_id,
        base_url: &incoming.base_url,
        if_match: incoming.if_match.as_deref(),
        user_pages,
        member_step: incoming.member_step,
        live_members: None,
        notes: Default::default(),
        backlog: Default::default(),
    }
}

/// Whether `dispatch_write` reads the request's body (parsed before the job, by `write`).
fn uses_body(target: &Target, method: &Method) -> bool {
    use crate::scim::ResourceType::Group;
    matches!(
        (target, method),
        (Target::Collection(Group), &Method::POST)
            | (Target::Resource(..), &Method::PUT | &Method::PATCH)
    )
}

/// Runs the change a request asks for (`PUT`, `PATCH`, `DELETE`, `POST /Groups`; `POST /Users`
/// goes to `post_user`) in the writer's batch; anything else is refused by `dispatch_read`.
/// `body`: the parsed body, when `uses_body`; `live`: see `Ctx::live_members`.
fn dispatch_write(
    batch: &mut Batch<'_>,
    incoming: &Incoming,
    target: &Target,
    body: Option<&Value>,
    live: Option<&BTreeSet<String>>,
) -> Result<Applied, ScimError> {
    use crate::scim::ResourceType::{Group, User};
    let ctx = &Ctx {
        live_members: live,
        ..ctx(incoming, None)
    };
    // `write` parses it for every target `uses_body` names.
    let json = || body.ok_or_else(ScimError::internal);
    let rendered = match (target, &incoming.method) {
        (Target::Collection(Group), &Method::POST) => {
            ops::create_group(batch, ctx, json()?)?.map(Rendered::created)
        }
        (Target::Resource(User, id), &Method::PUT) => {
            Some(Rendered::ok(ops::replace_user(batch, ctx, id, json()?)?))
        }
        (Target::Resource(Group, id), &Method::PUT) => {
            ops::replace_group(batch, ctx, id, json()?)?.map(Rendered::ok)
        }
        (Target::Resource(User, id), &Method::PATCH) => {
            Some(Rendered::ok(ops::patch_user(batch, ctx, id, json()?)?))
        }
        (Target::Resource(Group, id), &Method::PATCH) => {
            ops::patch_group(batch, ctx, id, json()?)?;
            Some(Rendered::no_content())
        }
        (Target::Resource(User, id), &Method::DELETE) => {
            ops::delete_user(batch, ctx, id)?;
            Some(Rendered::no_content())
        }
        (Target::Resource(Group, id), &Method::DELETE) => {
            ops::delete_group(batch, ctx, id)?;
            Some(Rendered::no_content())
        }
        _ => return dispatch_read(batch, incoming, target, None).map(Applied::Done),
    };
    if let Some(backlog) = ctx.backlog.take() {
        let reply = match incoming.method {
            Method::POST => member_steps::Reply::CreatedGroup,
            Method::PUT => member_steps::Reply::Group,
            _ => member_steps::Reply::NoContent,
        };
        return Ok(Applied::Continues(member_steps::Continued {
            backlog,
            notes: ctx.notes.take(),
            reply,
        }));
    }
    // Only a write that continues in steps has no reply yet.
    let rendered = rendered.ok_or_else(ScimError::internal)?;
    Ok(Applied::Done(Rendered {
        change_summary: ctx.change_summary(),
        ..rendered
    }))
}

/// Runs the read a request asks for, or refuses what is no SCIM operation. `user_pages`: the
/// process's bookmarks (see `db::user_pages`).
fn dispatch_read(
    conn: &mut DbConn,
    incoming: &Incoming,
    target: &Target,
    user_pages: Option<&Bookmarks>,
) -> Result<Rendered, ScimError> {
    use crate::scim::ResourceType::{Group, User};
    let ctx = &ctx(incoming, user_pages);
    let json = || parse_json(incoming.body.as_deref().unwrap_or_default());
    let query = || list::parse_query(&incoming.query);
    let base_url = ctx.base_url;
    let rendered = match (target, &incoming.method) {
        (Target::ServiceProviderConfig, &Method::GET) => {
            Rendered::ok(discovery::service_provider_config(base_url))
        }
        (Target::ResourceTypes(None), &Method::GET) => {
            Rendered::ok(discovery::resource_types(base_url))
        }
        (Target::ResourceTypes(Some(id)), &Method::GET) => {
            Rendered::ok(discovery::resource_type(base_url, id).ok_or_else(|| {
                ScimError::not_found(format!(
                    "no resource type `{id}`: Roster serves User and Group"
                ))
            })?)
        }
        (Target::Schemas(None), &Method::GET) => Rendered::ok(discovery::schemas(base_url)),
        (Target::Schemas(Some(id)), &Method::GET) => {
            Rendered::ok(discovery::schema(base_url, id).ok_or_else(|| {
                ScimError::not_found(format!("no schema `{id}`; GET /Schemas lists them"))
            })?)
        }
        (Target::Collection(User), &Method::GET) => {
            Rendered::ok_text(ops::list_users(conn, ctx, &query()?)?)
        }
        (Target::Collection(Group), &Method::GET) => {
            Rendered::ok(ops::list_groups(conn, ctx, &query()?)?)
        }
        (Target::Search(kind), &Method::POST) => {
            let q = search_query(&json()?)?;
            match kind {
                Some(Group) => Rendered::ok(ops::list_groups(conn, ctx, &q)?),
                Some(User) => Rendered::ok_text(ops::list_users(conn, ctx, &q)?),
                None => {
                    // RFC 7644 §3.4.3: a server without root search answers 501.
                    return Err(ScimError::not_implemented(
                        "search at the root is not supported; POST to /Users/.search or /Groups/.search",
                    ));
                }
            }
        }
        (Target::Resource(User, id), &Method::GET) => {
            let q = query()?;
            if q.attributes.is_empty() && q.excluded_attributes.is_empty() {
                Rendered::ok_resource(ops::get_user_text(conn, ctx, id)?)
            } else {
                Rendered::ok(crate::scim::list::project(
                    ops::get_user(conn, ctx, id)?,
                    &q,
                ))
            }
        }
        (Target::Resource(Group, id), &Method::GET) => {
            let q = query()?;
            Rendered::ok(crate::scim::list::project(
                ops::get_group(conn, ctx, id, q.exclude_members)?,
                &q,
            ))
        }
        (Target::Unsupported(why), _) => return Err(ScimError::not_implemented(*why)),
        (Target::NotFound, _) => {
            return Err(ScimError::not_found(format!(
                "no SCIM endpoint at `/{}`",
                incoming.tail
            )));
        }
        (_, m) => {
            return Err(ScimError::method_not_allowed(format!(
                "{m} is not supported on `/{}`",
                incoming.tail
            )));
        }
    };
    Ok(Rendered {
        change_summary: ctx.change_summary(),
        ..rendered
    })
}
