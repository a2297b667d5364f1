//! Refuses text holding U+0000 (NUL) in the pages' and the API's requests: PostgreSQL text
//! cannot store it, so a NUL in a path, a query, a form field or a JSON field would otherwise
//! become a database error (a 500) there, and silently differ on SQLite. No legitimate name,
//! search or URL contains one. The SCIM endpoint checks its own requests and answers in SCIM's
//! error format (`crate::scim::check_document`).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

/// Bodies declared larger than this are left to the handlers' own limits (forms take 64 KiB).
const MAX_CHECKED_BODY: usize = 256 * 1024;

/// What the refusal says.
const REFUSAL: &str = "text containing U+0000 (NUL) cannot be accepted";

/// True when URL-encoded text (`%00`, in any case) decodes to a NUL.
fn encodes_nul(text: &[u8]) -> bool {
    text.contains(&0) || text.windows(3).any(|w| w == b"%00")
}

/// The bodies checked: the pages' forms and the API's JSON.
#[derive(Clone, Copy)]
enum TextBody {
    Form,
    Json,
}

fn text_body(req: &ServiceRequest) -> Option<TextBody> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())?
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        Some(TextBody::Form)
    } else if ct.starts_with("application/json") {
        Some(TextBody::Json)
    } else {
        None
    }
}

/// Whether a body carries a NUL in any of its strings.
fn body_has_nul(body: &[u8], kind: TextBody) -> bool {
    match kind {
        TextBody::Form => encodes_nul(body),
        // Malformed JSON is the handler's to refuse; a raw NUL byte is never valid JSON anyway.
        TextBody::Json => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| crate::scim::nul_in(&v).is_some()),
    }
}

fn refuse(req: ServiceRequest) -> ServiceResponse<BoxBody> {
    let response = if req.path().starts_with("/api/") {
        HttpResponse::BadRequest()
            .json(serde_json::json!({"error": {"code": "bad_request", "message": REFUSAL}}))
    } else {
        HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body(REFUSAL)
    };
    req.into_response(response)
}

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.path().starts_with("/scim/") {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let uri = req.uri();
    let in_uri = encodes_nul(uri.path().as_bytes())
        || uri.query().is_some_and(|q| encodes_nul(q.as_bytes()));
    if in_uri {
        return Ok(refuse(req));
    }
    if let Some(kind) = text_body(&req) {
        let length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if length.is_none_or(|n| n <= MAX_CHECKED_BODY) {
            let body = req.extract::<web::Bytes>().await.unwrap_or_default();
            if body_has_nul(&body, kind) {
                return Ok(refuse(req));
            }
            req.set_payload(actix_web::dev::Payload::from(body));
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_however_it_is_encoded() {
        assert!(encodes_nul(b"name=a%00b"));
        assert!(encodes_nul(b"q=%00"));
        assert!(!encodes_nul(b"name=a%2500b&x=%0A"));
        assert!(body_has_nul(br#"{"name":"a\u0000"}"#, TextBody::Json));
        assert!(!body_has_nul(br#"{"name":"a\\u0000"}"#, TextBody::Json));
        assert!(!body_has_nul(b"not json", TextBody::Json));
    }
}
