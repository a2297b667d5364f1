//! Shows every HTML error page (`pages::error_page`) in the visitor's branding: that of
//! their portal session's organization, else the instance-wide one.

use actix_session::SessionExt;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::Brand;
use crate::pages::ErrorContent;
use crate::state::AppState;

/// Middleware (`from_fn`): re-renders a response carrying `ErrorContent` with the brand.
pub async fn rebrand(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // The APIs answer errors in JSON, never with these pages.
    if req.path().starts_with("/scim") || req.path().starts_with("/api/") {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let org = crate::auth::session::portal_org(&req.get_session());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?.map_into_boxed_body();
    let content = res.response().extensions().get::<ErrorContent>().cloned();
    let (Some(content), Some(state)) = (content, state) else {
        return Ok(res);
    };
    let product = state.config.product_name.clone();
    let pool = state.pool.clone();
    let brand = web::block(move || {
        let mut conn = pool.get().ok()?;
        Brand::load(&mut conn, &product, org.as_deref()).ok()
    })
    .await
    .ok()
    .flatten()
    // The database is what failed: show the page with the configured name.
    .unwrap_or_else(|| Brand::plain(&state.config.product_name));
    let body = content.render(&brand);
    Ok(res.map_body(|_, _| BoxBody::new(body)))
}
