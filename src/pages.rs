//! Shared pieces of the HTML surfaces (owner console and Admin Portal): the page layout data,
//! the page error type, htmx detection and running database work off the async workers.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::app::AppState;
use crate::db::DbConn;

/// Data every page's layout needs.
pub struct Layout {
    pub product: String,
    pub csrf: String,
}

impl Layout {
    pub fn new(state: &AppState, session: &actix_session::Session) -> Layout {
        Layout {
            product: state.config.product_name.clone(),
            csrf: crate::auth::session::csrf_token(session),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    action: Option<(&'a str, &'a str)>,
}

/// Errors of the HTML surfaces: an error page (or a redirect), never internals.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    #[error("redirect to {0}")]
    Redirect(String),
    #[error("portal session ended")]
    PortalSignedOut,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<diesel::result::Error> for PageError {
    fn from(e: diesel::result::Error) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Redirect(_) => StatusCode::SEE_OTHER,
            PageError::PortalSignedOut => StatusCode::UNAUTHORIZED,
            PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::Redirect(to) = self {
            return HttpResponse::SeeOther()
                .insert_header(("Location", to.as_str()))
                .finish();
        }
        if let PageError::Internal(cause) = self {
            log::error!("page error: {cause}");
        }
        let (title, message, action) = match self {
            PageError::NotFound => (
                "Not found",
                "This page does not exist, or it belongs to another organization.",
                None,
            ),
            PageError::PortalSignedOut => (
                "Your session has ended",
                "Open the Admin Portal link your application's owner sent you again. If it has expired, ask them for a new one.",
                None,
            ),
            PageError::Unavailable => ("Busy", "The server is busy. Try again in a moment.", None),
            _ => (
                "Something went wrong",
                "The request was not completed. Try again; if it keeps failing, contact the application's owner.",
                Some(("/", "Home")),
            ),
        };
        let body = ErrorPage {
            title,
            message,
            action,
        }
        .render()
        .unwrap_or_else(|_| title.to_string());
        HttpResponse::build(self.status_code())
            .content_type(ContentType::html())
            .body(body)
    }
}

/// True for an htmx request that wants a fragment (not a history restore, which needs a page).
pub fn is_htmx(req: &HttpRequest) -> bool {
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()) == Some("true");
    h("hx-request") && !h("hx-history-restore-request")
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
        let mut conn = pool.get().map_err(|e| {
            log::error!("database pool: {e}");
            PageError::Unavailable
        })?;
        f(&mut conn)
    })
    .await
    .map_err(|e| PageError::Internal(e.to_string()))?
}

/// Renders a template to a 200 HTML response.
pub fn html(t: &impl Template) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(t.render()?))
}

/// Formats a timestamp for display: `2026-11-28 14:02:11 UTC`.
pub fn when(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A search box's text, trimmed and bounded (it goes into a LIKE pattern and back to the page).
pub fn search_text(raw: Option<&str>) -> String {
    raw.unwrap_or_default().trim().chars().take(200).collect()
}

/// Paging for HTML lists: 1-based page number from a query value.
pub fn page_number(raw: Option<&str>) -> i64 {
    raw.and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
        .min(1_000_000)
}
