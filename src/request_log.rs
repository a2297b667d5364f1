//! One log line per request: an id assigned to it (sent back as `X-Request-Id`), its method,
//! its path as `loggable` shows it, the status and the time taken. A failed request's line
//! (5xx) adds its error's cause chain. Neither bodies nor headers are logged. The fields are
//! also the record's key-values, which `--log-format json` writes as they are; the id is in the
//! request's extensions for handlers that store it (the SCIM request log).

use std::error::Error as StdError;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

use crate::api::ApiError;
use crate::pages::PageError;

/// The response header that carries the request's id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, in its extensions for the handlers that record it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The id `log_request` gave this request.
pub fn request_id(req: &actix_web::HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// Assigns the request its id, runs it, and logs its line.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // From the thread's generator: `Uuid::new_v4` asks the kernel for each id, a system call
    // per request.
    let id = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .simple()
        .to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = crate::loggable::path(req.path());
    let start = Instant::now();
    let result = next.call(req).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    // A handler's error is in its response; a middleware's comes back as an error (and gets
    // its response, without the id, from actix).
    let (status, error) = match &result {
        Ok(res) => (res.status(), res.response().error()),
        Err(e) => (e.as_response_error().status_code(), Some(e)),
    };
    let code = status.as_u16();
    // Rounded to microseconds, as the text shows them.
    let ms = (ms * 1000.0).round() / 1000.0;
    if status.is_server_error() {
        let cause = error.map(cause_chain).unwrap_or_default();
        log::error!(
            request_id = id.as_str(), method = method.as_str(), path = path.as_str(),
            status = code, ms = ms;
            "{id} {method} {path} {code} {ms:.3}ms: {cause}"
        );
    } else {
        log::info!(
            request_id = id.as_str(), method = method.as_str(), path = path.as_str(),
            status = code, ms = ms;
            "{id} {method} {path} {code} {ms:.3}ms"
        );
    }
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// `error: its cause: that one's cause …`, for the surfaces' own error types.
fn cause_chain(e: &actix_web::Error) -> String {
    let top: &dyn StdError = if let Some(e) = e.as_error::<PageError>() {
        e
    } else if let Some(e) = e.as_error::<ApiError>() {
        e
    } else {
        return e.to_string();
    };
    let mut out = top.to_string();
    let mut next = top.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    use super::{REQUEST_ID, cause_chain, log_request};
    use crate::pages::PageError;

    async fn failing() -> Result<HttpResponse, PageError> {
        Err(diesel::result::Error::NotFound.into())
    }

    #[actix_web::test]
    async fn every_response_carries_a_fresh_request_id() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(log_request))
                .route("/ok", web::get().to(HttpResponse::Ok))
                .route("/fails", web::get().to(failing)),
        )
        .await;
        let mut ids = Vec::new();
        for path in ["/ok", "/ok", "/fails", "/missing"] {
            let res =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            let id = res
                .headers()
                .get(REQUEST_ID)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(id.len(), 32, "{path}: {id}");
            ids.push(id);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4);
    }

    #[actix_web::test]
    async fn a_failed_request_names_its_error_and_its_cause() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(log_request))
                .route("/fails", web::get().to(failing)),
        )
        .await;
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/fails").to_request()).await;
        assert_eq!(res.status().as_u16(), 500);
        let chain = cause_chain(res.response().error().unwrap());
        assert_eq!(chain, "internal error: Record not found");
    }
}
