//! Middleware: a signed-in cookie counts only while its server-side session row is live, so
//! signing out, a password change or revoking a portal link ends it on every instance, even
//! for a copy of the cookie.

use actix_session::SessionExt;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::session;
use crate::state::AppState;

fn signs_in(path: &str) -> bool {
    path.starts_with("/owner") || path.starts_with("/portal")
}

/// Forgets the sign-in of a cookie whose session has ended (or that has none on the server).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if signs_in(req.path()) {
        let s = req.get_session();
        if let Some((kind, subject, sid)) = session::claimed(&s) {
            let live = match (sid, req.app_data::<web::Data<AppState>>()) {
                (Some(sid), Some(state)) => {
                    let pool = state.pool.clone();
                    web::block(move || {
                        let mut conn = pool.get().map_err(|e| e.to_string())?;
                        crate::db::sessions::is_live(&mut conn, &sid, kind, &subject)
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(actix_web::error::ErrorInternalServerError)?
                    .map_err(actix_web::error::ErrorServiceUnavailable)?
                }
                _ => false,
            };
            if !live {
                session::sign_out(&s);
            }
        }
    }
    next.call(req).await
}
