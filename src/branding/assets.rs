//! The brand's files, at URLs that change with their content so they can be cached for good:
//! the logo at `/assets/logo/{sha256}.{ext}` and the accent stylesheet at
//! `/assets/brand/{rrggbb}.css` (a stylesheet, since the CSP allows no inline style).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::contrast::Rgb;
use super::logo::LogoType;
use crate::pages::{PageError, db};
use crate::state::AppState;

const FOREVER: &str = "public, max-age=31536000, immutable";
/// An SVG opened on its own may run nothing and load nothing.
const SVG_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/assets/logo/{file}", web::get().to(logo))
        .route("/assets/brand/{file}", web::get().to(stylesheet));
}

pub fn logo_url(sha256: &str, content_type: &str) -> Option<String> {
    LogoType::from_content_type(content_type)
        .map(|t| format!("/assets/logo/{sha256}.{}", t.extension()))
}

pub fn stylesheet_url(accent: Rgb) -> String {
    format!("/assets/brand/{}.css", &accent.css()[1..])
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain")
        .body("not found")
}

async fn logo(
    state: web::Data<AppState>,
    file: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let file = file.into_inner();
    let Some((sha, ext)) = file.split_once('.') else {
        return Ok(not_found());
    };
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(not_found());
    }
    let (sha, ext) = (sha.to_string(), ext.to_string());
    let found = db(&state, move |c| Ok(crate::db::brands::logo(c, &sha)?)).await?;
    let Some((content_type, bytes)) = found else {
        return Ok(not_found());
    };
    let Some(kind) = LogoType::from_content_type(&content_type) else {
        return Ok(not_found());
    };
    if kind.extension() != ext {
        return Ok(not_found());
    }
    let mut resp = HttpResponse::Ok();
    resp.content_type(kind.content_type())
        .insert_header((header::CACHE_CONTROL, FOREVER))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if kind == LogoType::Svg {
        resp.insert_header((header::CONTENT_SECURITY_POLICY, SVG_CSP));
    }
    Ok(resp.body(bytes))
}

async fn stylesheet(file: web::Path<String>) -> HttpResponse {
    let Some(accent) = file
        .strip_suffix(".css")
        .and_then(|hex| Rgb::parse(&format!("#{hex}")))
    else {
        return not_found();
    };
    // The colour is the URL, so the file never changes.
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, FOREVER))
        .body(format!("html {{ --roster-accent: {}; }}\n", accent.css()))
}
