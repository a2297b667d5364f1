//! Shared pieces of the HTML surfaces (owner console and Admin Portal): the page layout data,
//! the page error type and its live-fragment banners, the 404 page, htmx detection and the
//! responses built on it, pagers, and running database work off the async workers.

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::db::DbConn;
use crate::state::AppState;

/// Data every page's layout needs.
pub struct Layout {
    pub product: String,
    pub csrf: String,
    /// In an embedded portal: the framing page's origin, the only one its messages go to.
    pub embed_origin: Option<String>,
}

impl Layout {
    pub fn new(state: &AppState, session: &actix_session::Session) -> Layout {
        Layout {
            product: state.config.product_name.clone(),
            csrf: crate::auth::session::csrf_token(session),
            embed_origin: crate::auth::session::embed_origin(session),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    action: Option<(&'a str, &'a str)>,
    brand: &'a crate::branding::Brand,
}

/// What an error page says, kept on its response so `branding::error_pages` can show it in
/// the visitor's branding (building the response has no access to the database).
#[derive(Debug, Clone)]
pub struct ErrorContent {
    pub title: String,
    pub message: String,
    pub action: Option<(String, String)>,
}

impl ErrorContent {
    /// The page's HTML in `brand`.
    pub fn render(&self, brand: &crate::branding::Brand) -> String {
        ErrorPage {
            title: &self.title,
            message: &self.message,
            action: self.action.as_ref().map(|(h, l)| (h.as_str(), l.as_str())),
            brand,
        }
        .render()
        .unwrap_or_else(|_| self.title.clone())
    }
}

/// An error page: rendered unbranded here, branded on its way out.
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    action: Option<(&str, &str)>,
) -> HttpResponse {
    let content = ErrorContent {
        title: title.to_string(),
        message: message.to_string(),
        action: action.map(|(h, l)| (h.to_string(), l.to_string())),
    };
    let body = content.render(&crate::branding::Brand::plain(""));
    let mut resp = HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body);
    resp.extensions_mut().insert(content);
    resp
}

/// What caused an internal error, kept for the request's log line.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the HTML surfaces: an error page (or a redirect to sign in), never internals.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    /// Not found in the owner console (its page links back there).
    #[error("not found")]
    OwnerNotFound,
    /// The portal page needs SCIM Provisioning, which the owner turned off: a page goes to the
    /// portal's home, a live fragment says so.
    #[error("SCIM provisioning is off")]
    ScimOff,
    /// What a live (htmx) fragment shows in place when its refresh failed.
    #[error("live update refused: {0:?}")]
    Live(LiveProblem),
    /// An owner console page without a signed-in owner: it goes to the sign-in page.
    #[error("owner not signed in")]
    OwnerSignedOut,
    #[error("portal session ended")]
    PortalSignedOut,
    #[error("no database connection")]
    Unavailable(#[source] r2d2::Error),
    /// The shared writer could not take the change (it is busy or stopping); nothing more
    /// was applied.
    #[error("the writer is unavailable")]
    Busy(#[source] Cause),
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl From<diesel::result::Error> for PageError {
    fn from(e: diesel::result::Error) -> Self {
        PageError::Internal(e.into())
    }
}

impl From<crate::roles::changes::ChangeError> for PageError {
    fn from(e: crate::roles::changes::ChangeError) -> Self {
        use crate::roles::changes::ChangeError;
        match e {
            ChangeError::Pool(e) => PageError::Unavailable(e),
            ChangeError::Writer(e) => PageError::Busy(e.into()),
            ChangeError::Db(e) => e.into(),
            ChangeError::Internal(e) => PageError::Internal(e),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Internal(e.into())
    }
}

/// Why a live fragment could not be refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveProblem {
    SessionEnded,
    OwnerSignedOut,
    ScimOff,
    /// The directory (or what the fragment shows) no longer exists.
    Gone,
    Unavailable,
    Failed,
}

#[derive(Template)]
#[template(path = "live_error.html")]
struct LiveBanner<'a> {
    title: &'a str,
    message: &'a str,
    action: Option<(&'a str, &'a str)>,
}

impl LiveProblem {
    fn status(self) -> StatusCode {
        match self {
            LiveProblem::SessionEnded | LiveProblem::OwnerSignedOut => StatusCode::UNAUTHORIZED,
            LiveProblem::ScimOff => StatusCode::FORBIDDEN,
            LiveProblem::Gone => StatusCode::NOT_FOUND,
            LiveProblem::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            LiveProblem::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn banner(self) -> LiveBanner<'static> {
        let (title, message, action) = match self {
            LiveProblem::SessionEnded => (
                "Your session ended.",
                "Live updates stopped. Open the portal link your application's owner sent you again (ask them for a new one if it expired) to sign back in.",
                None,
            ),
            LiveProblem::OwnerSignedOut => (
                "You are signed out of the owner console.",
                "Your session ended, so this was not saved.",
                Some(("/owner/login", "Sign in again")),
            ),
            LiveProblem::ScimOff => (
                "SCIM Provisioning was turned off for this organization.",
                "The application's owner turned it off, so live updates stopped and your provider's requests are refused. Your directories and their users are kept: ask the owner to turn it back on.",
                Some(("/portal", "Admin Portal home")),
            ),
            LiveProblem::Gone => (
                "This directory was deleted.",
                "Live updates stopped: the directory, its tokens and its users are gone.",
                Some(("/portal/scim", "Back to SCIM Provisioning")),
            ),
            LiveProblem::Unavailable => (
                "The server is busy.",
                "Live updates stopped for now. Reload the page in a moment.",
                None,
            ),
            LiveProblem::Failed => (
                "Live updates stopped.",
                "The server could not refresh this view. Reload the page to try again.",
                None,
            ),
        };
        LiveBanner {
            title,
            message,
            action,
        }
    }
}

impl PageError {
    /// The error as a live fragment's refresh (an htmx request) shows it: a banner in place of
    /// a page that would otherwise be swapped into the fragment. Other requests keep it.
    pub fn live(self, req: &HttpRequest) -> PageError {
        if !is_htmx(req) {
            return self;
        }
        PageError::Live(match self {
            PageError::PortalSignedOut => LiveProblem::SessionEnded,
            PageError::ScimOff => LiveProblem::ScimOff,
            PageError::NotFound | PageError::OwnerNotFound => LiveProblem::Gone,
            PageError::Unavailable(_) | PageError::Busy(_) => LiveProblem::Unavailable,
            PageError::Live(p) => p,
            PageError::OwnerSignedOut => LiveProblem::OwnerSignedOut,
            PageError::Internal(_) => LiveProblem::Failed,
        })
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::NotFound | PageError::OwnerNotFound => StatusCode::NOT_FOUND,
            PageError::ScimOff => StatusCode::SEE_OTHER,
            PageError::Live(p) => p.status(),
            PageError::OwnerSignedOut => StatusCode::SEE_OTHER,
            PageError::PortalSignedOut => StatusCode::UNAUTHORIZED,
            PageError::Unavailable(_) | PageError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::OwnerSignedOut => return see_other("/owner/login"),
            PageError::ScimOff => return see_other("/portal"),
            _ => {}
        }
        if let PageError::Live(p) = self {
            let body = p.banner().render().unwrap_or_default();
            return HttpResponse::build(p.status())
                .content_type(ContentType::html())
                .insert_header(("Cache-Control", "no-store"))
                .body(body);
        }
        let (title, message, action) = match self {
            PageError::NotFound => (
                "Page not found",
                "This page does not exist, or it belongs to another organization.",
                Some(("/portal", "Back to the Admin Portal")),
            ),
            PageError::OwnerNotFound => (
                "Page not found",
                "This page does not exist: the organization may have been deleted.",
                Some(("/owner", "Back to the owner console")),
            ),
            PageError::PortalSignedOut => (
                "Your session has ended",
                "Open the Admin Portal link your application's owner sent you again. If it has expired, ask them for a new one.",
                None,
            ),
            PageError::Unavailable(_) | PageError::Busy(_) => {
                ("Busy", "The server is busy. Try again in a moment.", None)
            }
            _ => (
                "Something went wrong",
                "The request was not completed. Try again; if it keeps failing, contact the application's owner.",
                Some(("/", "Home")),
            ),
        };
        error_page(self.status_code(), title, message, action)
    }
}

/// Any URL no route serves: JSON under the APIs (`/scim/`, `/api/`), an HTML page elsewhere
/// with a link back to where the visitor is signed in.
pub async fn not_found(req: HttpRequest, s: actix_session::Session) -> HttpResponse {
    let path = req.path();
    if path.starts_with("/api/") {
        return HttpResponse::NotFound().json(serde_json::json!({
            "error": {"code": "not_found", "message": format!("no API endpoint at {path}")}
        }));
    }
    if path.starts_with("/scim/") {
        return HttpResponse::NotFound()
            .content_type(crate::scim::CONTENT_TYPE)
            .body(
                crate::scim::ScimError::not_found(format!("no SCIM endpoint at {path}"))
                    .to_json()
                    .to_string(),
            );
    }
    let action = if crate::auth::session::portal_org(&s).is_some() {
        ("/portal", "Back to the Admin Portal")
    } else if crate::auth::session::owner_id(&s).is_some() {
        ("/owner", "Back to the owner console")
    } else {
        ("/", "Back to the start page")
    };
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. It may have moved, or the link may be mistyped.",
        Some(action),
    )
}

/// True for an htmx request that wants a fragment (not a history restore, which needs a page).
pub fn is_htmx(req: &HttpRequest) -> bool {
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()) == Some("true");
    h("hx-request") && !h("hx-history-restore-request")
}

/// Runs a handler whose failures a live (htmx) fragment shows in place of its content.
pub async fn live(
    req: &HttpRequest,
    handler: impl Future<Output = Result<HttpResponse, PageError>>,
) -> Result<HttpResponse, PageError> {
    handler.await.map_err(|e| e.live(req))
}

/// What an htmx request gets (`fragment`: a block of the page) or any other (the whole page).
pub fn fragment_or_page<T: Template>(
    req: &HttpRequest,
    page: &T,
    fragment: impl FnOnce(&T) -> askama::Result<String>,
) -> Result<String, PageError> {
    Ok(if is_htmx(req) {
        fragment(page)?
    } else {
        page.render()?
    })
}

/// Runs database work on the blocking pool with a pooled connection.
pub async fn db<T, F>(state: &web::Data<AppState>, f: F) -> Result<T, PageError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, PageError> + Send + 'static,
{
    // Pages show the request log: make this instance's queued rows visible first.
    state.writer.flush().await;
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get().map_err(PageError::Unavailable)?;
        f(&mut conn)
    })
    .await
    .map_err(|e| PageError::Internal(e.into()))?
}

/// Renders a template to a 200 HTML response.
pub fn html(t: &impl Template) -> Result<HttpResponse, PageError> {
    html_with(StatusCode::OK, t)
}

/// Renders a template to an HTML response with `status`.
pub fn html_with(status: StatusCode, t: &impl Template) -> Result<HttpResponse, PageError> {
    Ok(html_body(status, t.render()?))
}

/// An HTML response.
pub fn html_body(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body)
}

/// A 200 HTML response no cache may keep: the page shows a secret or a live link.
pub fn no_store(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// `303 See Other` to `location`: where a form's work, done, continues.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

/// Formats a timestamp for display: `2026-11-28 14:02:11 UTC`.
pub fn when(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A search box's text, trimmed and bounded (it goes into a LIKE pattern and back to the page).
pub fn search_text(raw: Option<&str>) -> String {
    raw.unwrap_or_default().trim().chars().take(200).collect()
}

/// Rows per page of the HTML lists.
pub const PAGE_SIZE: i64 = 50;

/// Links of a paged list.
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
    /// The URL that reloads this very page (used for live polling).
    pub current: String,
}

impl Pager {
    /// Page `page` (1-based) of `total` rows listed at `base` with `params`.
    pub fn new(base: &str, params: &[(&str, String)], page: i64, total: i64) -> Pager {
        let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
        Pager {
            page,
            pages,
            total,
            prev: (page > 1).then(|| list_url(base, params, page - 1)),
            next: (page < pages).then(|| list_url(base, params, page + 1)),
            current: list_url(base, params, page),
        }
    }

    /// The first row of page `page`.
    pub fn offset(page: i64) -> i64 {
        (page - 1) * PAGE_SIZE
    }
}

/// `base?params&page=n`, encoded; empty values and page 1 are left out.
pub fn list_url(base: &str, params: &[(&str, String)], page: i64) -> String {
    let mut all: Vec<(&str, String)> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect();
    if page > 1 {
        all.push(("page", page.to_string()));
    }
    match serde_urlencoded::to_string(&all).unwrap_or_default() {
        q if q.is_empty() => base.to_string(),
        q => format!("{base}?{q}"),
    }
}

/// Paging for HTML lists: 1-based page number from a query value.
pub fn page_number(raw: Option<&str>) -> i64 {
    raw.and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
        .min(1_000_000)
}
