//! The owner console's Branding page: the product name, logo, accent colour and support
//! contact the Admin Portal shows, instance-wide (`/owner/branding`) or as one
//! organization's overrides (`/owner/orgs/{id}/branding`). A field left empty falls back.

use actix_multipart::Multipart;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::require_owner;
use crate::branding::{self, Brand, Support, logo};
use crate::db::{self, brands::BrandRow, orgs::Org};
use crate::pages::{Layout, PageError, db, html_with, see_other};
use crate::state::AppState;

/// Longest product name accepted.
const MAX_NAME: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/branding", web::get().to(page))
        .route("/owner/branding", web::post().to(save))
        .route("/owner/branding/logo", web::post().to(upload_logo))
        .route("/owner/branding/logo/remove", web::post().to(remove_logo))
        .route("/owner/orgs/{id}/branding", web::get().to(page))
        .route("/owner/orgs/{id}/branding", web::post().to(save))
        .route(
            "/owner/orgs/{id}/branding/logo",
            web::post().to(upload_logo),
        )
        .route(
            "/owner/orgs/{id}/branding/logo/remove",
            web::post().to(remove_logo),
        );
}

#[derive(Template)]
#[template(path = "owner/branding.html")]
struct BrandingPage {
    layout: Layout,
    /// The organization whose overrides these are; None: instance-wide.
    org: Option<Org>,
    /// Where this page's forms post.
    base: String,
    stored: BrandRow,
    /// What the portal shows with these settings, every fallback applied.
    effective: Brand,
    error: Option<String>,
    saved: bool,
}

/// The organization of the path, if any (a missing one is the owner console's 404).
async fn scope(state: &web::Data<AppState>, req: &HttpRequest) -> Result<Option<Org>, PageError> {
    let Some(id) = req.match_info().get("id").map(str::to_string) else {
        return Ok(None);
    };
    db(state, move |c| {
        db::orgs::get(c, &id)?
            .map(Some)
            .ok_or(PageError::OwnerNotFound)
    })
    .await
}

async fn render(
    state: &web::Data<AppState>,
    s: &Session,
    org: Option<Org>,
    status: StatusCode,
    error: Option<String>,
    saved: bool,
) -> Result<HttpResponse, PageError> {
    let org_id = org.as_ref().map(|o| o.id.clone());
    let product = state.config.product_name.clone();
    let (stored, effective) = db(state, move |c| {
        let key = org_id.as_deref().unwrap_or(db::brands::INSTANCE);
        Ok((
            db::brands::get(c, key)?.unwrap_or_default(),
            Brand::load(c, &product, org_id.as_deref())?,
        ))
    })
    .await?;
    let base = match &org {
        Some(o) => format!("/owner/orgs/{}/branding", o.id),
        None => "/owner/branding".to_string(),
    };
    html_with(
        status,
        &BrandingPage {
            layout: Layout::new(state, s),
            org,
            base,
            stored,
            effective,
            error,
            saved,
        },
    )
}

async fn page(
    state: web::Data<AppState>,
    s: Session,
    req: HttpRequest,
    query: web::Query<SavedQuery>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let org = scope(&state, &req).await?;
    render(&state, &s, org, StatusCode::OK, None, query.saved.is_some()).await
}

#[derive(Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

#[derive(Deserialize)]
struct BrandForm {
    #[serde(default)]
    product_name: String,
    #[serde(default)]
    accent: String,
    #[serde(default)]
    support: String,
}

/// The form's values, checked; an empty one is None (the wider scope applies).
struct Checked {
    name: Option<String>,
    accent: Option<String>,
    support: Option<String>,
}

/// Checks the form; the error says what to fix.
fn checked(form: &BrandForm) -> Result<Checked, String> {
    let name = form.product_name.trim();
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(format!(
            "The product name must be at most {MAX_NAME} characters on one line."
        ));
    }
    let accent = match form.accent.trim() {
        "" => None,
        a => Some(branding::check_accent(a)?.css()),
    };
    let support = match form.support.trim() {
        "" => None,
        v => Some(Support::parse(v)?.label().to_string()),
    };
    Ok(Checked {
        name: (!name.is_empty()).then(|| name.to_string()),
        accent,
        support,
    })
}

fn back(org: &Option<Org>) -> String {
    match org {
        Some(o) => format!("/owner/orgs/{}/branding?saved=1", o.id),
        None => "/owner/branding?saved=1".to_string(),
    }
}

fn key(org: &Option<Org>) -> String {
    org.as_ref()
        .map_or(db::brands::INSTANCE.to_string(), |o| o.id.clone())
}

async fn save(
    state: web::Data<AppState>,
    s: Session,
    req: HttpRequest,
    form: web::Form<BrandForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let org = scope(&state, &req).await?;
    let Checked {
        name,
        accent,
        support,
    } = match checked(&form) {
        Ok(v) => v,
        Err(e) => return render(&state, &s, org, StatusCode::BAD_REQUEST, Some(e), false).await,
    };
    let k = key(&org);
    db(&state, move |c| {
        Ok(db::brands::set_text(
            c,
            &k,
            name.as_deref(),
            accent.as_deref(),
            support.as_deref(),
        )?)
    })
    .await?;
    Ok(see_other(&back(&org)))
}

/// Reads the `logo` file of the form, stopping just past the size limit.
async fn read_logo(mut form: Multipart) -> Result<Vec<u8>, String> {
    let mut logo = None;
    while let Some(field) = form.next().await {
        let mut field =
            field.map_err(|_| "The upload could not be read. Try again.".to_string())?;
        if field.name() != Some("logo") {
            // Drain other fields (the CSRF token, already checked).
            while let Some(chunk) = field.next().await {
                chunk.map_err(|_| "The upload could not be read. Try again.".to_string())?;
            }
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk =
                chunk.map_err(|_| "The upload could not be read. Try again.".to_string())?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() > logo::MAX_BYTES {
                break;
            }
        }
        logo = Some(bytes);
        break;
    }
    Ok(logo.unwrap_or_default())
}

async fn upload_logo(
    state: web::Data<AppState>,
    s: Session,
    req: HttpRequest,
    form: Multipart,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let org = scope(&state, &req).await?;
    let checked = read_logo(form)
        .await
        .and_then(|b| logo::check(&b).map(|t| (b, t)).map_err(|e| e.to_string()));
    let (bytes, kind) = match checked {
        Ok(v) => v,
        Err(e) => return render(&state, &s, org, StatusCode::BAD_REQUEST, Some(e), false).await,
    };
    let sha = hex::encode(Sha256::digest(&bytes));
    let k = key(&org);
    db(&state, move |c| {
        Ok(db::brands::set_logo(
            c,
            &k,
            Some((&bytes, kind.content_type(), &sha)),
        )?)
    })
    .await?;
    Ok(see_other(&back(&org)))
}

async fn remove_logo(
    state: web::Data<AppState>,
    s: Session,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let org = scope(&state, &req).await?;
    let k = key(&org);
    db(&state, move |c| Ok(db::brands::set_logo(c, &k, None)?)).await?;
    Ok(see_other(&back(&org)))
}
