//! The owner console's roles of an organization: define a role (slug, name, description,
//! whether it is the default), remove one. Which groups give each is the IT admin's choice in
//! the Admin Portal (or the API's); this page shows how many groups do.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::require_owner;
use crate::db::{self, orgs::Org, roles::Role};
use crate::pages::{Layout, PageError, db, html, html_with, see_other};
use crate::roles::changes;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/orgs/{id}/roles", web::get().to(roles_page))
        .route("/owner/orgs/{id}/roles", web::post().to(create_role))
        .route(
            "/owner/orgs/{id}/roles/{slug}/delete",
            web::post().to(delete_role),
        );
}

#[derive(Template)]
#[template(path = "owner/roles.html")]
struct RolesPage {
    layout: Layout,
    org: Org,
    /// Each role with how many groups give it.
    roles: Vec<(Role, usize)>,
    /// A refused definition: why, and what was typed (kept in the form).
    refused: Option<String>,
    form: RoleForm,
}

#[derive(Deserialize, Default, Clone)]
struct RoleForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// "on" when checked.
    default: Option<String>,
}

async fn load(
    state: &web::Data<AppState>,
    s: &Session,
    org_id: String,
    refused: Option<String>,
    form: RoleForm,
) -> Result<RolesPage, PageError> {
    let (org, roles) = db(state, move |c| {
        let org = db::orgs::get(c, &org_id)?.ok_or(PageError::OwnerNotFound)?;
        let mut roles = Vec::new();
        for role in db::roles::list(c, &org.id)? {
            let groups = db::roles::groups_of_role(c, &role.id)?.len();
            roles.push((role, groups));
        }
        Ok((org, roles))
    })
    .await?;
    Ok(RolesPage {
        layout: Layout::new(state, s),
        org,
        roles,
        refused,
        form,
    })
}

async fn roles_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    html(&load(&state, &s, id.into_inner(), None, RoleForm::default()).await?)
}

async fn create_role(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let (org_id, form) = (id.into_inner(), form.into_inner());
    let role = db::roles::NewRole {
        slug: form.slug.trim().to_string(),
        name: form.name.trim().to_string(),
        description: Some(form.description.trim().to_string()).filter(|d| !d.is_empty()),
        is_default: form.default.as_deref() == Some("on"),
    };
    let refuse = |why: String, form: RoleForm| async {
        let page = load(&state, &s, org_id.clone(), Some(why), form).await?;
        html_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    if let Some(why) = db::roles::invalid_role(&role) {
        // The form speaks of fields, not of JSON keys.
        return refuse(why.replace('`', ""), form).await;
    }
    let org = org_id.clone();
    db(&state, move |c| {
        db::orgs::get(c, &org)?.ok_or(PageError::OwnerNotFound)
    })
    .await?;
    let slug = role.slug.clone();
    if changes::create_role(&state, &org_id, role).await?.is_none() {
        return refuse(
            format!("A role with slug {slug} already exists: choose another slug."),
            form,
        )
        .await;
    }
    Ok(see_other(&format!("/owner/orgs/{org_id}/roles")))
}

async fn delete_role(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let (org_id, slug) = path.into_inner();
    let org = org_id.clone();
    let role = db(&state, move |c| {
        db::roles::get(c, &org, &slug)?.ok_or(PageError::OwnerNotFound)
    })
    .await?;
    changes::delete_role(&state, role).await?;
    Ok(see_other(&format!("/owner/orgs/{org_id}/roles")))
}
