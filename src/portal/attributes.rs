//! The Admin Portal's Attributes page: per directory of the organization, each custom
//! attribute the app owner declared, the path it is read from (the default or the
//! directory's own), an input to change it with a live preview on real users of the
//! directory, save and "reset to default". Shown as a tab only when attributes are declared.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Nav, portal_org};
use crate::custom_attributes::remap::{self, Reach};
use crate::db::{self, attributes, directories::Directory, users::UserRow};
use crate::pages::{Layout, PageError, db, html, html_body, see_other};
use crate::scim::source_path::SourcePath;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/portal/attributes", web::get().to(page))
        .route("/portal/attributes/preview", web::get().to(preview))
        .route(
            "/portal/attributes/{directory}/{name}",
            web::post().to(save),
        )
        .route(
            "/portal/attributes/{directory}/{name}/reset",
            web::post().to(reset),
        );
}

/// Users a preview evaluates a path on: the directory's most recently changed ones. A path
/// is flagged when none of them has a value there. Bounded, so a keystroke's preview costs
/// the same in a directory of 10 000 users as in one of 10: a provider sends every user the
/// same shape, so the users it changed last show what it sends now (and for a directory of
/// up to this many users, the flag is exact).
const SAMPLE: i64 = 200;
/// Users a preview lists.
const SHOWN: usize = 5;

/// What a path gives on a directory's sample of users.
pub struct Preview {
    pub name: String,
    /// Why the path is refused.
    pub error: Option<String>,
    /// A few users (label, value), those with a value first.
    pub shown: Vec<(String, Option<String>)>,
    /// No user of the sample has a value at this path.
    pub unmatched: bool,
    pub no_users: bool,
    /// The sample is the directory's latest `SAMPLE` users, not all of them.
    pub sampled: bool,
}

impl Preview {
    fn of(name: &str, source: &str, users: &[UserRow]) -> Preview {
        let mut p = Preview {
            name: name.to_string(),
            error: None,
            shown: Vec::new(),
            unmatched: false,
            no_users: users.is_empty(),
            sampled: users.len() as i64 >= SAMPLE,
        };
        let path = match SourcePath::parse(source) {
            Ok(path) => path,
            Err(e) => {
                p.error = Some(e);
                return p;
            }
        };
        let mut values: Vec<(String, Option<String>)> = users
            .iter()
            .map(|u| {
                let doc = serde_json::from_str(&u.resource).unwrap_or_default();
                (u.label(), path.evaluate(&doc))
            })
            .collect();
        p.unmatched = !users.is_empty() && values.iter().all(|(_, v)| v.is_none());
        // Stable: users with a value first, in the sample's order.
        values.sort_by_key(|(_, v)| v.is_none());
        values.truncate(SHOWN);
        p.shown = values;
        p
    }
}

#[derive(Template)]
#[template(path = "portal/attribute_preview.html")]
struct PreviewFragment<'a> {
    p: &'a Preview,
}

/// An attribute as a directory's section lists it.
pub struct AttributeRow {
    pub name: String,
    pub default: String,
    pub own: Option<String>,
    /// What the input shows: the path in force, or what was typed when it was refused.
    pub typed: String,
    pub error: Option<String>,
    pub preview_html: String,
}

pub struct DirectorySection {
    pub dir: Directory,
    pub provider_name: String,
    pub no_users: bool,
    pub attributes: Vec<AttributeRow>,
}

#[derive(Template)]
#[template(path = "portal/attributes.html")]
struct AttributesPage {
    layout: Layout,
    nav: Nav,
    any_declared: bool,
    directories: Vec<DirectorySection>,
    saved: Option<String>,
}

/// A refused save, shown at its attribute: (directory id, attribute, what was typed, why).
type Refused = (String, String, String, String);

async fn render(
    state: &web::Data<AppState>,
    s: &Session,
    saved: Option<String>,
    refused: Option<Refused>,
) -> Result<AttributesPage, PageError> {
    let org = portal_org(state, s).await?;
    let org_id = org.id.clone();
    let nav = Nav::load(state, org, "attributes").await?;
    let any_declared = nav.tabs.attributes;
    let loaded = db(state, move |c| {
        let mut out = Vec::new();
        if any_declared {
            for d in db::directories::list_for_org(c, &org_id)? {
                let rows = attributes::for_directory(c, &d.id)?;
                let users = attributes::recent_users(c, &d.id, SAMPLE)?;
                out.push((d, rows, users));
            }
        }
        Ok(out)
    })
    .await?;
    let mut directories = Vec::with_capacity(loaded.len());
    for (dir, rows, users) in loaded {
        let mut attributes = Vec::with_capacity(rows.len());
        for (name, default, own) in rows {
            let in_force = own.clone().unwrap_or_else(|| default.clone());
            let (typed, error) = match &refused {
                Some((d, n, typed, why)) if *d == dir.id && *n == name => {
                    (typed.clone(), Some(why.clone()))
                }
                _ => (in_force, None),
            };
            let preview = Preview::of(&name, &typed, &users);
            attributes.push(AttributeRow {
                preview_html: PreviewFragment { p: &preview }.render()?,
                name,
                default,
                own,
                typed,
                error,
            });
        }
        directories.push(DirectorySection {
            provider_name: crate::providers::by_slug(&dir.provider)
                .map(|p| p.name)
                .unwrap_or("Generic SCIM 2.0")
                .to_string(),
            no_users: users.is_empty(),
            dir,
            attributes,
        });
    }
    Ok(AttributesPage {
        layout: Layout::new(state, s),
        nav,
        any_declared,
        directories,
        saved,
    })
}

#[derive(Deserialize)]
struct PageQuery {
    saved: Option<String>,
}

async fn page(
    state: web::Data<AppState>,
    s: Session,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, PageError> {
    // Only a name as Roster writes it is echoed back.
    let saved = q
        .into_inner()
        .saved
        .filter(|n| crate::custom_attributes::AttributeName::parse(n).is_ok());
    html(&render(&state, &s, saved, None).await?)
}

#[derive(Deserialize)]
struct PreviewQuery {
    directory: String,
    attribute: String,
    source: Option<String>,
}

/// The live preview of a path being typed (a fragment; a refused path is said in it).
async fn preview(
    state: web::Data<AppState>,
    s: Session,
    q: web::Query<PreviewQuery>,
) -> Result<HttpResponse, PageError> {
    let org = portal_org(&state, &s).await?;
    let q = q.into_inner();
    let (org_id, dir, attribute) = (org.id, q.directory, q.attribute.clone());
    let users = db(&state, move |c| {
        db::directories::get(c, &org_id, &dir)?.ok_or(PageError::NotFound)?;
        let declared = attributes::for_directory(c, &dir)?
            .iter()
            .any(|(n, _, _)| *n == attribute);
        if !declared {
            return Err(PageError::NotFound);
        }
        Ok(attributes::recent_users(c, &dir, SAMPLE)?)
    })
    .await?;
    let p = Preview::of(&q.attribute, q.source.as_deref().unwrap_or(""), &users);
    Ok(html_body(
        StatusCode::OK,
        PreviewFragment { p: &p }.render()?,
    ))
}

#[derive(Deserialize)]
struct SaveForm {
    source: String,
}

async fn save(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
    form: web::Form<SaveForm>,
) -> Result<HttpResponse, PageError> {
    let (dir, name) = path.into_inner();
    let typed = form.into_inner().source;
    let source = match SourcePath::parse(&typed) {
        Ok(p) => p,
        Err(why) => {
            let refused = Some((dir, name, typed, why));
            let page = render(&state, &s, None, refused).await?;
            return Ok(html_body(StatusCode::BAD_REQUEST, page.render()?));
        }
    };
    set(&state, &s, dir, name, Some(source.as_str().to_string())).await
}

async fn reset(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (dir, name) = path.into_inner();
    set(&state, &s, dir, name, None).await
}

/// Sets (or with `None` removes) the directory's own path for an attribute (a path equal to
/// the default removes it too), then applies it to the directory's users.
async fn set(
    state: &web::Data<AppState>,
    s: &Session,
    dir: String,
    name: String,
    source: Option<String>,
) -> Result<HttpResponse, PageError> {
    let org = portal_org(state, s).await?;
    let (org_id, d, n) = (org.id, dir.clone(), name.clone());
    remap::apply(state, Reach::Directory(dir.clone()), move |b| {
        db::directories::get(b, &org_id, &d)?.ok_or(PageError::NotFound)?;
        let (_, default, _) = attributes::for_directory(b, &d)?
            .into_iter()
            .find(|(a, _, _)| *a == n)
            .ok_or(PageError::NotFound)?;
        let own = source.as_deref().filter(|s| *s != default);
        attributes::set_override(b, &d, &n, own)?;
        Ok::<_, PageError>(())
    })
    .await??;
    Ok(see_other(&format!(
        "/portal/attributes?saved={name}#dir-{dir}"
    )))
}
