//! The owner console's "Custom attributes" section of an organization: declare an attribute
//! (name and default source path) and remove one. The organization page loads the section
//! from here (`attributes_slot.html`); without JavaScript it is a page of its own.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::require_owner;
use crate::custom_attributes::remap::{self, Reach, RemapError};
use crate::custom_attributes::{AttributeName, MAX_PER_ORG};
use crate::db::{self, attributes, orgs::Org};
use crate::pages::{Layout, PageError, db, fragment_or_page, html_body, see_other};
use crate::scim::source_path::SourcePath;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/orgs/{id}/attributes", web::get().to(section))
        .route("/owner/orgs/{id}/attributes", web::post().to(declare))
        .route(
            "/owner/orgs/{id}/attributes/{name}/delete",
            web::post().to(remove),
        );
}

impl From<RemapError> for PageError {
    fn from(e: RemapError) -> Self {
        PageError::Internal(e.into())
    }
}

#[derive(Template)]
#[template(path = "owner/attributes.html", blocks = ["section"])]
struct AttributesPage {
    layout: Layout,
    org: Org,
    declared: Vec<attributes::Declared>,
    /// Why the last declaration was refused, and what was typed.
    error: Option<String>,
    name: String,
    source: String,
}

async fn load(
    state: &web::Data<AppState>,
    s: &Session,
    org_id: String,
) -> Result<AttributesPage, PageError> {
    let (org, declared) = db(state, move |c| {
        let org = db::orgs::get(c, &org_id)?.ok_or(PageError::OwnerNotFound)?;
        let declared = attributes::list(c, &org.id)?;
        Ok((org, declared))
    })
    .await?;
    Ok(AttributesPage {
        layout: Layout::new(state, s),
        org,
        declared,
        error: None,
        name: String::new(),
        source: String::new(),
    })
}

async fn section(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let page = load(&state, &s, id.into_inner()).await?;
    let body = fragment_or_page(&req, &page, |p| p.as_section().render())?;
    Ok(html_body(StatusCode::OK, body))
}

#[derive(Deserialize)]
struct DeclareForm {
    name: String,
    source: String,
}

async fn declare(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<DeclareForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let (org_id, form) = (id.into_inner(), form.into_inner());
    let name = form.name.trim().to_string();
    let checked = AttributeName::parse(&name).and_then(|n| {
        SourcePath::parse(&form.source)
            .map(|p| (n, p))
            .map_err(|e| format!("Default source: {e}"))
    });
    let refused = match checked {
        Err(why) => Some(why),
        Ok((name, source)) => {
            let org = org_id.clone();
            remap::apply(&state, Reach::Organization(org_id.clone()), move |b| {
                db::orgs::get(b, &org)?.ok_or(PageError::OwnerNotFound)?;
                if attributes::list(b, &org)?.len() >= MAX_PER_ORG {
                    return Ok(Some(format!(
                        "An organization declares at most {MAX_PER_ORG} attributes."
                    )));
                }
                Ok::<_, PageError>(
                    attributes::insert(b, &org, name.as_str(), source.as_str())?
                        .is_none()
                        .then(|| format!("`{name}` is already declared.")),
                )
            })
            .await??
            .0
        }
    };
    if let Some(why) = refused {
        let mut page = load(&state, &s, org_id).await?;
        page.error = Some(why);
        page.name = name;
        page.source = form.source;
        return Ok(html_body(StatusCode::BAD_REQUEST, page.render()?));
    }
    Ok(see_other(&format!(
        "/owner/orgs/{org_id}#custom-attributes"
    )))
}

async fn remove(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let (org_id, name) = path.into_inner();
    let org = org_id.clone();
    remap::apply(&state, Reach::Organization(org_id.clone()), move |b| {
        db::orgs::get(b, &org)?.ok_or(PageError::OwnerNotFound)?;
        if attributes::delete(b, &org, &name)? {
            Ok::<_, PageError>(())
        } else {
            Err(PageError::OwnerNotFound)
        }
    })
    .await??;
    Ok(see_other(&format!(
        "/owner/orgs/{org_id}#custom-attributes"
    )))
}
