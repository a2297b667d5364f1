//! Static files (htmx, Pico CSS, Roster's CSS and JS), embedded in the binary.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{path:.*}", web::get().to(serve));
}

async fn serve(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    let Some(file) = Static::get(&path) else {
        return HttpResponse::NotFound()
            .content_type("text/plain")
            .body("not found");
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish();
    }
    // Vendored files carry their version in the name, so they never change.
    let cache = if path.starts_with("vendor/") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    HttpResponse::Ok()
        .content_type(file.metadata.mimetype())
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(file.data.into_owned())
}
