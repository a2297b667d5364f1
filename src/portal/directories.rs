//! A directory in the Admin Portal: credentials and guide, live connection health, bearer
//! tokens (rotation with two live tokens, revocation), disable/delete, and the request inspector.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{DirectoryCard, Nav, card, portal_org};
use crate::db::{self, directories::Health, directories::TokenInfo, orgs::Org, requests::Request};
use crate::pages::{
    Layout, PageError, db, fragment_or_page, html_body, live, no_store, see_other, when,
};
use crate::state::AppState;
use crate::{explain, providers};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/portal/scim/configure",
        web::post().to(configure_directory),
    )
    .route(
        "/portal/scim/directories/{id}",
        web::get().to(directory_page),
    )
    .route(
        "/portal/scim/directories/{id}/status",
        web::get().to(directory_status),
    )
    .route(
        "/portal/scim/directories/{id}/tokens",
        web::post().to(create_token),
    )
    .route(
        "/portal/scim/directories/{id}/tokens/{token}/revoke",
        web::post().to(revoke_token),
    )
    .route(
        "/portal/scim/directories/{id}/disable",
        web::post().to(disable),
    )
    .route(
        "/portal/scim/directories/{id}/enable",
        web::post().to(enable),
    )
    .route(
        "/portal/scim/directories/{id}/delete",
        web::post().to(delete),
    )
    .route(
        "/portal/scim/directories/{id}/activity",
        web::get().to(activity),
    );
}

/// One line of the connection-health checklist.
pub struct Check {
    pub label: &'static str,
    pub done: bool,
    pub detail: String,
}

fn checklist(h: &Health) -> Vec<Check> {
    let at = |t: &Option<chrono::NaiveDateTime>, waiting: &str| {
        t.as_ref().map(when).unwrap_or_else(|| waiting.to_string())
    };
    vec![
        Check {
            label: "Test connection received",
            done: h.first_request_at.is_some(),
            detail: at(
                &h.first_request_at,
                "not yet: run the provider's connection test",
            ),
        },
        Check {
            label: "First user",
            done: h.first_user_at.is_some(),
            detail: at(
                &h.first_user_at,
                "not yet: assign users to the app and start provisioning",
            ),
        },
        Check {
            label: "First group",
            done: h.first_group_at.is_some(),
            detail: at(&h.first_group_at, "not yet: push groups if you use them"),
        },
    ]
}

/// A token row: the token itself is never shown again after creation.
pub struct TokenRow {
    pub info: TokenInfo,
    pub created: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/directory.html", blocks = ["status", "tokens"])]
struct DirectoryPage {
    layout: Layout,
    nav: Nav,
    card: DirectoryCard,
    active: bool,
    /// The bearer token, present only on the response to Configure.
    token: Option<String>,
    checks: Vec<Check>,
    /// When and why the last request failed.
    last_error: Option<(String, String)>,
    /// Successful requests since the last error (0: it is still happening).
    since_error: String,
    resolved: bool,
    /// "1 of 4 requests failed in the last 24 h (25 %)", when there were requests.
    error_rate: Option<String>,
    /// Requests refused for their token in the last hour, when there were any.
    refused: Option<RefusedAuth>,
    tokens: Vec<TokenRow>,
    live_tokens: usize,
    /// A token just created for rotation (shown once).
    new_token: Option<String>,
    token_error: Option<String>,
    /// Open alerts and those cleared lately, newest first.
    alerts: Vec<AlertRow>,
}

/// An alert as the directory page lists it.
pub struct AlertRow {
    pub title: &'static str,
    pub sentence: String,
    pub raised: String,
    pub cleared: Option<String>,
}

async fn scim_org(state: &web::Data<AppState>, s: &Session) -> Result<Org, PageError> {
    let org = portal_org(state, s).await?;
    if !org.scim_enabled {
        return Err(PageError::ScimOff);
    }
    Ok(org)
}

async fn load(
    state: &web::Data<AppState>,
    s: &Session,
    org: Org,
    id: String,
) -> Result<DirectoryPage, PageError> {
    let org_id = org.id.clone();
    let user_counts = state.user_pages.clone();
    let writing = state.clone();
    let (dir, health, tokens, since_error, counts, refused, alerts) = db(state, move |c| {
        let d = db::directories::get(c, &org_id, &id)?.ok_or(PageError::NotFound)?;
        let health = db::directories::health(c, &d, &user_counts)?;
        db::directories::keep_first_arrivals(&writing.writer, &d.id, &health);
        user_counts.keep_new_counts(&writing.writer);
        let tokens = db::directories::tokens(c, &d.id)?;
        let since_error = match &health.last_error {
            Some(e) => db::requests::successes_after(c, &d.id, e.id, SUCCESS_CAP)?,
            None => 0,
        };
        let counts = db::requests::counts_since(c, &d.id, db::now() - chrono::Duration::hours(24))?;
        let refused = db::requests::refused_for_credentials_since(
            c,
            &d.id,
            db::now() - chrono::Duration::hours(1),
        )?;
        let alerts =
            db::alerts::recent_for_directory(c, &d.id, db::now() - db::alerts::CLEARED_KEPT)?;
        Ok((d, health, tokens, since_error, counts, refused, alerts))
    })
    .await?;
    let alerts = alerts
        .into_iter()
        .map(|a| AlertRow {
            title: a.title(),
            raised: when(&a.raised_at),
            cleared: a.cleared_at.as_ref().map(when),
            sentence: a.detail,
        })
        .collect();
    let provider = providers::by_slug(&dir.provider)
        .map(|p| p.name)
        .unwrap_or("the provider");
    let last_error = health
        .last_error
        .as_ref()
        .map(|r| (when(&r.at), explain::explain(r, provider, None)));
    let tokens: Vec<TokenRow> = tokens
        .into_iter()
        .map(|info| TokenRow {
            created: when(&info.created_at),
            last_used: info
                .last_used_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "never".into()),
            revoked: info.revoked_at.as_ref().map(when),
            info,
        })
        .collect();
    Ok(DirectoryPage {
        layout: Layout::new(state, s),
        nav: Nav::load(state, org, "scim").await?,
        active: dir.status == "active",
        checks: checklist(&health),
        last_error,
        resolved: since_error > 0,
        since_error: match since_error {
            n if n >= SUCCESS_CAP => format!("{SUCCESS_CAP}+ successful requests"),
            1 => "1 successful request".to_string(),
            n => format!("{n} successful requests"),
        },
        error_rate: error_rate(counts),
        refused: RefusedAuth::of(refused, provider),
        live_tokens: tokens.iter().filter(|t| t.revoked.is_none()).count(),
        tokens,
        card: card(state, dir, health.users, health.groups),
        token: None,
        new_token: None,
        token_error: None,
        alerts,
    })
}

/// Requests refused for their token in the last hour, as the health checklist shows them.
struct RefusedAuth {
    /// "37 in the last hour" ("500+" when the log's bound was reached).
    count: String,
    /// When the newest came and its explanation (which cause, what to do).
    newest: (String, String),
    /// Many more than a provider retrying a wrong token would send: someone may be guessing.
    spike: bool,
}

/// Refusals in an hour from which the checklist calls it a spike: a provider with a wrong
/// token retries a few times an hour, a guesser sends far more.
const REFUSED_SPIKE_PER_HOUR: i64 = 30;

impl RefusedAuth {
    fn of((count, newest): (i64, Option<db::requests::Request>), provider: &str) -> Option<Self> {
        let newest = newest?;
        let kept = db::requests::KEEP_UNAUTHENTICATED_PER_DIRECTORY;
        Some(RefusedAuth {
            count: if count >= kept {
                format!("{kept}+ in the last hour")
            } else {
                format!("{count} in the last hour")
            },
            newest: (when(&newest.at), explain::explain(&newest, provider, None)),
            spike: count >= REFUSED_SPIKE_PER_HOUR,
        })
    }
}

/// Successes after the last error are counted up to this many.
const SUCCESS_CAP: i64 = 1000;

/// "1 of 4 requests failed in the last 24 h (25 %)".
fn error_rate((total, failed): (i64, i64)) -> Option<String> {
    if total == 0 {
        return None;
    }
    let pct = failed as f64 * 100.0 / total as f64;
    let pct = if failed > 0 && pct < 1.0 {
        "under 1 %".to_string()
    } else {
        format!("{pct:.0} %")
    };
    Some(format!(
        "{failed} of {total} request{} failed in the last 24 h ({pct})",
        if total == 1 { "" } else { "s" }
    ))
}

#[derive(Deserialize)]
struct ConfigureForm {
    provider: String,
}

async fn configure_directory(
    state: web::Data<AppState>,
    s: Session,
    form: web::Form<ConfigureForm>,
) -> Result<HttpResponse, PageError> {
    let org = scim_org(&state, &s).await?;
    let Some(provider) = providers::by_slug(&form.provider) else {
        return Err(PageError::NotFound);
    };
    let org_id = org.id.clone();
    let (dir, token) = db(&state, move |c| {
        Ok(db::directories::create(
            c,
            &org_id,
            provider.slug,
            provider.name,
        )?)
    })
    .await?;
    // Post/Redirect/Get: a reload of the page shown next must not create another directory.
    // The token is kept in the (encrypted) session for that one view.
    crate::auth::session::flash_token(&s, &dir.id, &token);
    Ok(see_other(&format!("/portal/scim/directories/{}", dir.id)))
}

async fn directory_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let org = scim_org(&state, &s).await?;
    let id = id.into_inner();
    let mut page = load(&state, &s, org, id.clone()).await?;
    page.token = crate::auth::session::take_token(&s, &id);
    // Never cached: it may show a token, and it shows live state.
    Ok(no_store(page.render()?))
}

async fn directory_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    live(&req, async {
        let org = scim_org(&state, &s).await?;
        let page = load(&state, &s, org, id.into_inner()).await?;
        Ok(html_body(StatusCode::OK, page.as_status().render()?))
    })
    .await
}

/// Re-renders the tokens card (htmx) or the whole page.
fn tokens_response(req: &HttpRequest, page: &DirectoryPage) -> Result<HttpResponse, PageError> {
    let body = fragment_or_page(req, page, |p| p.as_tokens().render())?;
    Ok(no_store(body))
}

async fn create_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    live(&req, async {
        let org = scim_org(&state, &s).await?;
        let (org_id, dir_id) = (org.id.clone(), id.into_inner());
        let created = {
            let dir_id = dir_id.clone();
            db(&state, move |c| {
                db::directories::get(c, &org_id, &dir_id)?.ok_or(PageError::NotFound)?;
                Ok(db::directories::create_token(c, &dir_id)?)
            })
            .await?
        };
        let mut page = load(&state, &s, org, dir_id).await?;
        match created {
            Some(t) => page.new_token = Some(t),
            None => {
                page.token_error = Some(format!(
                    "A directory can have {} live tokens at once. Revoke the old one first.",
                    db::directories::MAX_LIVE_TOKENS
                ));
            }
        }
        tokens_response(&req, &page)
    })
    .await
}

async fn revoke_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    live(&req, async {
        let org = scim_org(&state, &s).await?;
        let (dir_id, token_id) = path.into_inner();
        let org_id = org.id.clone();
        {
            let dir_id = dir_id.clone();
            db(&state, move |c| {
                db::directories::get(c, &org_id, &dir_id)?.ok_or(PageError::NotFound)?;
                Ok(db::directories::revoke_token(c, &dir_id, &token_id)?)
            })
            .await?;
        }
        let page = load(&state, &s, org, dir_id).await?;
        tokens_response(&req, &page)
    })
    .await
}

async fn set_active(
    state: web::Data<AppState>,
    s: Session,
    id: String,
    active: bool,
) -> Result<HttpResponse, PageError> {
    let org = scim_org(&state, &s).await?;
    let org_id = org.id.clone();
    let dir_id = id.clone();
    let found = db(&state, move |c| {
        Ok(db::directories::set_status(c, &org_id, &dir_id, active)?)
    })
    .await?;
    if !found {
        return Err(PageError::NotFound);
    }
    // Disabling queues `directory.disabled` for the webhooks.
    state.delivery_wake.notify();
    Ok(see_other(&format!("/portal/scim/directories/{id}")))
}

async fn disable(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    set_active(state, s, id.into_inner(), false).await
}

async fn enable(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    set_active(state, s, id.into_inner(), true).await
}

#[derive(Deserialize)]
struct DeleteForm {
    confirm: Option<String>,
}

async fn delete(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, PageError> {
    let org = scim_org(&state, &s).await?;
    if form.confirm.as_deref() != Some("delete") {
        // The form carries the confirmation; without it nothing is deleted.
        return Ok(see_other(&format!(
            "/portal/scim/directories/{}",
            id.into_inner()
        )));
    }
    let (org_id, dir_id) = (org.id.clone(), id.into_inner());
    let found = db(&state, move |c| {
        Ok(db::directories::delete(c, &org_id, &dir_id)?)
    })
    .await?;
    if !found {
        return Err(PageError::NotFound);
    }
    // `directory.deleted` is queued for the webhooks.
    state.delivery_wake.notify();
    Ok(see_other("/portal/scim?deleted=1"))
}

/// A request as the inspector shows it.
pub struct RequestRow {
    pub r: Request,
    pub at: String,
    pub explanation: String,
    pub request_body: String,
    pub response: String,
    pub ms: String,
}

fn pretty(text: Option<&str>) -> String {
    match text {
        None => String::new(),
        Some(t) => serde_json::from_str::<serde_json::Value>(t)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| t.to_string()),
    }
}

#[derive(Template)]
#[template(path = "portal/activity.html", blocks = ["rows"])]
struct ActivityPage {
    layout: Layout,
    nav: Nav,
    card: DirectoryCard,
    rows: Vec<RequestRow>,
    errors_only: bool,
    method: String,
    user: String,
    /// `?…` that reloads these rows (for live polling).
    current: String,
    /// A message when the user filter names nobody.
    notice: Option<String>,
    /// The next page of older requests (keyset: before the last row shown), filters kept.
    older: Option<String>,
    /// The first page, when this one is not.
    newest: Option<String>,
}

#[derive(Deserialize)]
struct ActivityQuery {
    errors: Option<String>,
    method: Option<String>,
    user: Option<String>,
    /// Keyset cursor: only requests logged before this row id.
    before: Option<String>,
}

/// Rows shown by the inspector.
const ACTIVITY_ROWS: i64 = 100;

async fn activity(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse, PageError> {
    live(&req, async {
        let org = scim_org(&state, &s).await?;
        let q = q.into_inner();
        let errors_only = q
            .errors
            .as_deref()
            .is_some_and(|e| !e.is_empty() && e != "0");
        let method = q
            .method
            .filter(|m| ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()))
            .unwrap_or_default();
        let user = crate::pages::search_text(q.user.as_deref());
        let before = q
            .before
            .as_deref()
            .and_then(|b| b.parse::<i64>().ok())
            .filter(|b| *b > 0);
        let (org_id, dir_id) = (org.id.clone(), id.into_inner());
        let (dir, rows, labels, user_known) = {
            let (method, user) = (method.clone(), user.clone());
            db(&state, move |c| {
                let dir = db::directories::get(c, &org_id, &dir_id)?.ok_or(PageError::NotFound)?;
                // "By user": a userName (case-insensitive) or an id.
                let resource_id = if user.is_empty() {
                    None
                } else {
                    Some(db::users::id_by_user_name(c, &dir.id, &user)?.unwrap_or(user.clone()))
                };
                let user_known = resource_id.as_ref().is_none_or(|r| {
                    r != &user || db::users::get(c, &dir.id, r).ok().flatten().is_some()
                });
                let filter = db::requests::Filter {
                    errors_only,
                    method: (!method.is_empty()).then_some(method),
                    resource_id,
                };
                // One more than shown: whether there is an older page.
                let rows = db::requests::search(c, &dir.id, &filter, before, ACTIVITY_ROWS + 1)?;
                let ids: Vec<String> = rows.iter().filter_map(|r| r.resource_id.clone()).collect();
                let labels = db::users::labels(c, &dir.id, &ids)?;
                Ok((dir, rows, labels, user_known))
            })
            .await?
        };
        let provider = providers::by_slug(&dir.provider)
            .map(|p| p.name)
            .unwrap_or("the provider");
        let mut rows = rows;
        let more = rows.len() > usize::try_from(ACTIVITY_ROWS).unwrap_or(100);
        rows.truncate(usize::try_from(ACTIVITY_ROWS).unwrap_or(100));
        let filters = |before: Option<i64>| {
            let before = before.map(|b| b.to_string()).unwrap_or_default();
            let pairs: Vec<(&str, &str)> = [
                ("errors", if errors_only { "1" } else { "" }),
                ("method", method.as_str()),
                ("user", user.as_str()),
                ("before", before.as_str()),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
            format!(
                "/portal/scim/directories/{}/activity?{}",
                dir.id,
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            )
        };
        let older = more
            .then(|| rows.last().map(|r| filters(Some(r.id))))
            .flatten();
        let newest = before.map(|_| filters(None));
        let current = filters(before);
        let rows = rows
            .into_iter()
            .map(|r| {
                let subject = r
                    .resource_id
                    .as_ref()
                    .and_then(|id| labels.get(id))
                    .map(String::as_str);
                RequestRow {
                    at: when(&r.at),
                    explanation: explain::explain(&r, provider, subject),
                    request_body: pretty(r.request_body.as_deref()),
                    response: pretty(r.response_excerpt.as_deref()),
                    ms: format!("{:.1}", r.duration_us as f64 / 1000.0),
                    r,
                }
            })
            .collect();
        let notice = (!user_known).then(|| {
            format!(
                "No user named “{user}” in this directory; showing requests that mention that id."
            )
        });
        let page = ActivityPage {
            layout: Layout::new(&state, &s),
            nav: Nav::load(&state, org, "scim").await?,
            card: card(&state, dir, 0, 0),
            rows,
            errors_only,
            method,
            user,
            current,
            notice,
            older,
            newest,
        };
        let body = fragment_or_page(&req, &page, |p| p.as_rows().render())?;
        Ok(html_body(StatusCode::OK, body))
    })
    .await
}
