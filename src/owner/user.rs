//! A user's page in the owner console (read-only): attributes, groups, and why they have each
//! of their roles, and their custom attributes — what the vendor's support needs when a customer
//! asks "why can Ada do that?".

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::require_owner;
use crate::db::{self, orgs::Org, users::UserRow};
use crate::pages::{Layout, PageError, db, html, when};
use crate::roles::why::ReasonLine;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/orgs/{id}/users/{user}", web::get().to(user_page));
}

#[derive(Template)]
#[template(path = "owner/user.html")]
struct UserPage {
    layout: Layout,
    org: Org,
    user: UserRow,
    label: String,
    updated: String,
    groups: Vec<String>,
    role_reasons: Vec<ReasonLine>,
    roles_defined: bool,
    inspector: Option<String>,
    group_base: String,
    /// The organization's custom attributes and this user's values.
    custom_attributes: crate::custom_attributes::Values,
}

async fn user_page(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let (org_id, user_id) = path.into_inner();
    let (org, user, groups, reasons, roles_defined, custom_attributes) = db(&state, move |c| {
        let org = db::orgs::get(c, &org_id)?.ok_or(PageError::OwnerNotFound)?;
        let user = db::users::org_get(c, &org.id, &user_id)?.ok_or(PageError::OwnerNotFound)?;
        let groups =
            db::memberships::groups_of(c, &user.directory_id, std::slice::from_ref(&user.id))?
                .into_iter()
                .map(|(_, r)| r.display.unwrap_or_default())
                .collect();
        let reasons = crate::roles::why::reasons(c, &org.id, &user.directory_id, &user.id)?;
        let roles_defined = db::roles::any(c, &org.id)?;
        let custom_attributes =
            db::attributes::mappings(c, &user.directory_id)?.values_of_text(&user.resource);
        Ok((org, user, groups, reasons, roles_defined, custom_attributes))
    })
    .await?;
    html(&UserPage {
        layout: Layout::new(&state, &s),
        label: user.label(),
        updated: when(&user.updated_at),
        org,
        user,
        groups,
        role_reasons: reasons.into_iter().map(|r| r.line(when)).collect(),
        roles_defined,
        // The request inspector is the IT admin's; the console names the request.
        inspector: None,
        group_base: String::new(),
        custom_attributes,
    })
}
