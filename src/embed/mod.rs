//! The Admin Portal embedded in a vendor's page (an iframe): an embed link opens a portal
//! session marked with the origin of the framing page. Responses to that session's portal
//! pages may be framed by the instance's allowed origins (`origins`), and its session cookie
//! is `SameSite=None; Secure; Partitioned` so the browser sends it inside a third-party frame. Every other
//! response keeps `frame-ancestors 'none'` and a `SameSite=Lax` cookie.

pub mod origins;

use actix_session::SessionExt;
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::auth::session;
use crate::state::AppState;

/// What the inner middleware learned from the session for the outer one, which runs after
/// the session cookie and the default headers are set.
#[derive(Clone)]
struct Embedded {
    /// `frame-ancestors` sources, or None when this response may not be framed.
    ancestors: Option<String>,
}

/// Inside the session middleware: marks the response of an embed session (after the handler,
/// so the response that opens one is marked too).
pub async fn mark(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let portal = req.path().starts_with("/portal");
    let s = req.get_session();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let mut res = next.call(req).await?;
    if session::embed_origin(&s).is_none() {
        return Ok(res);
    }
    let ancestors = match (portal, state) {
        (true, Some(state)) => {
            let pool = state.pool.clone();
            let by_flag = state.config.frame_ancestors.clone();
            let allowed = web::block(move || {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                origins::allowed(&mut conn, &by_flag).map_err(|e| e.to_string())
            })
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
            (!allowed.is_empty()).then(|| {
                allowed
                    .iter()
                    .map(origins::FrameOrigin::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        }
        _ => None,
    };
    res.response_mut()
        .extensions_mut()
        .insert(Embedded { ancestors });
    Ok(res)
}

/// Outermost: for a marked response, the CSP's `frame-ancestors` lists the allowed origins
/// (instead of `'none'`) and the session cookie is made usable in a third-party frame.
pub async fn frame_policy(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let Some(embedded) = res.response().extensions().get::<Embedded>().cloned() else {
        return Ok(res);
    };
    let headers = res.headers_mut();
    if let Some(ancestors) = &embedded.ancestors {
        // The response's own policy (the default one or a stricter one it set), framing aside.
        let csp = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(crate::app::CSP)
            .replace(
                "frame-ancestors 'none'",
                &format!("frame-ancestors {ancestors}"),
            );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            headers.insert(header::CONTENT_SECURITY_POLICY, v);
            // Superseded by frame-ancestors, and DENY would block older browsers.
            headers.remove(header::X_FRAME_OPTIONS);
        }
    }
    let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).cloned().collect();
    if !cookies.is_empty() {
        headers.remove(header::SET_COOKIE);
        for value in cookies {
            headers.append(header::SET_COOKIE, third_party(value));
        }
    }
    Ok(res)
}

/// The session cookie with `SameSite=None; Secure; Partitioned` (a cookie being removed is
/// left alone). Partitioned (CHIPS): browsers that block third-party cookies still keep it,
/// separately for each site that frames the portal.
fn third_party(value: HeaderValue) -> HeaderValue {
    let Some(mut cookie) = value
        .to_str()
        .ok()
        .and_then(|v| Cookie::parse(v.to_string()).ok())
    else {
        return value;
    };
    if cookie.name() != crate::app::SESSION_COOKIE || cookie.value().is_empty() {
        return value;
    }
    cookie.set_same_site(SameSite::None);
    cookie.set_secure(true);
    // The cookie crate predates the attribute.
    HeaderValue::from_str(&format!("{cookie}; Partitioned")).unwrap_or(value)
}
