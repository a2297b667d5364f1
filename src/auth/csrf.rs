//! CSRF protection for the owner console and the Admin Portal: every unsafe request must come
//! from our own origin (Fetch Metadata / Origin) and carry the session's token, in the
//! `X-CSRF-Token` header (htmx sends it from `hx-headers`) or a `csrf_token` form field.

use actix_session::SessionExt;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use super::session;
use super::tokens::ct_eq;

pub const HEADER: &str = "x-csrf-token";
pub const FIELD: &str = "csrf_token";
/// Largest form body read for the token; forms here are small.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Largest multipart form (a logo upload) read for the token.
const MAX_MULTIPART_BYTES: usize = 1024 * 1024;
/// How long a form's body may take to arrive.
const FORM_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

fn protected(req: &ServiceRequest) -> bool {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.path();
    unsafe_method && (path.starts_with("/owner") || path.starts_with("/portal"))
}

fn same_origin(req: &ServiceRequest, public_origin: &str) -> bool {
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        return site == "same-origin" || site == "none";
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => true, // Non-browser clients; the token check below still applies.
        Some(origin) => {
            // Compare with the configured public origin, or with the Host header the browser
            // sent (X-Forwarded-* is not trusted here).
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok());
            let authority = origin.split_once("://").map(|(_, a)| a);
            origin == public_origin || (authority.is_some() && authority == host)
        }
    }
}

fn refuse(req: ServiceRequest, why: &str) -> ServiceResponse<BoxBody> {
    log::warn!(
        "CSRF check refused {} {}: {why}",
        req.method(),
        crate::loggable::path(req.path())
    );
    let resp = HttpResponse::Forbidden()
        .content_type("text/html; charset=utf-8")
        .body(
            "<!doctype html><title>Request refused</title><h1>Request refused</h1>\
             <p>This form was stale or came from another site. Go back, reload the page and try again.</p>",
        );
    req.into_response(resp)
}

/// Middleware (`from_fn`) enforcing origin and token checks on unsafe portal/owner requests.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !protected(&req) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let public_origin = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map(|s| s.config.public_origin())
        .unwrap_or_default();
    if !same_origin(&req, &public_origin) {
        return Ok(refuse(req, "cross-site request"));
    }
    let Some(expected) = session::existing_csrf_token(&req.get_session()) else {
        return Ok(refuse(req, "no session"));
    };
    let presented = match req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(t) => Some(t.to_string()),
        None => {
            let is_form = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
            let is_multipart = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("multipart/form-data"));
            if is_multipart {
                let Ok(body) =
                    actix_web::rt::time::timeout(FORM_DEADLINE, read_limited(&mut req)).await
                else {
                    return Ok(refuse(req, "form body too slow"));
                };
                let Some(body) = body else {
                    return Ok(req.into_response(
                        HttpResponse::PayloadTooLarge()
                            .content_type("text/plain; charset=utf-8")
                            .body("The upload is larger than 1 MB. Choose a smaller file."),
                    ));
                };
                let token = multipart_token(&body);
                req.set_payload(actix_web::dev::Payload::from(body));
                token
            } else if is_form {
                // A form trickling in byte by byte must not hold its connection for ever.
                let Ok(body) =
                    actix_web::rt::time::timeout(FORM_DEADLINE, req.extract::<web::Bytes>()).await
                else {
                    return Ok(refuse(req, "form body too slow"));
                };
                let body = body.unwrap_or_default();
                if body.len() > MAX_FORM_BYTES {
                    return Ok(refuse(req, "form too large"));
                }
                let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                    .ok()
                    .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v));
                req.set_payload(actix_web::dev::Payload::from(body));
                token
            } else {
                None
            }
        }
    };
    match presented {
        Some(t) if ct_eq(t.as_bytes(), expected.as_bytes()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body),
        _ => Ok(refuse(req, "missing or wrong CSRF token")),
    }
}

/// The request's body, or None past `MAX_MULTIPART_BYTES` (or if it broke off).
async fn read_limited(req: &mut ServiceRequest) -> Option<web::Bytes> {
    use actix_web::HttpMessage;
    use futures_util::StreamExt;
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        body.extend_from_slice(&chunk.ok()?);
        if body.len() > MAX_MULTIPART_BYTES {
            return None;
        }
    }
    Some(body.freeze())
}

/// The `csrf_token` field of a multipart body. Lax parsing is safe: the value found must
/// still equal the session's token.
fn multipart_token(body: &[u8]) -> Option<String> {
    let marker = format!("name=\"{FIELD}\"");
    let at = body
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())?;
    let rest = &body[at..];
    let start = rest.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let value = &rest[start..];
    let end = value.windows(2).position(|w| w == b"\r\n")?;
    std::str::from_utf8(&value[..end]).ok().map(str::to_string)
}
