//! The Admin Portal's Roles page: the roles the app owner defined, which of the directory's
//! groups give each, and changing that — a group given a role or taken off it — shown first
//! as a preview of whose roles it moves, applied only on confirmation.

use std::collections::{BTreeMap, BTreeSet};

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Nav, portal_org};
use crate::db::{self, directories::Directory, roles::Role};
use crate::pages::{Layout, PageError, db, fragment_or_page, html, see_other};
use crate::roles::{changes, preview::Preview};
use crate::state::AppState;

/// Groups a picker lists (a directory with more is told to search its groups by name).
const PICKER_GROUPS: i64 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/portal/roles", web::get().to(roles_page))
        .route("/portal/roles/preview", web::post().to(preview))
        .route("/portal/roles/apply", web::post().to(apply));
}

/// A role with the directory's groups that give it, as (group id, name).
pub struct RoleRow {
    pub role: Role,
    pub groups: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "portal/roles.html")]
struct RolesPage {
    layout: Layout,
    nav: Nav,
    directories: Vec<Directory>,
    directory: Option<Directory>,
    roles: Vec<RoleRow>,
    groups: Vec<(String, String)>,
    more_groups: bool,
    /// Set after a change was applied: how many users' roles it moved.
    applied: Option<usize>,
}

#[derive(Deserialize)]
struct RolesQuery {
    directory: Option<String>,
    applied: Option<String>,
}

async fn roles_page(
    state: web::Data<AppState>,
    s: Session,
    query: web::Query<RolesQuery>,
) -> Result<HttpResponse, PageError> {
    let org = portal_org(&state, &s).await?;
    let query = query.into_inner();
    let org_id = org.id.clone();
    let (directories, directory, roles, groups) = db(&state, move |c| {
        let directories = db::directories::list_for_org(c, &org_id)?;
        // The directory asked for, else the first; one of another organization is not found.
        let directory = match query.directory.as_deref() {
            Some(id) => Some(
                directories
                    .iter()
                    .find(|d| d.id == id)
                    .cloned()
                    .ok_or(PageError::NotFound)?,
            ),
            None => directories.first().cloned(),
        };
        let all = db::roles::list(c, &org_id)?;
        let (mappings, groups) = match &directory {
            Some(d) => (
                db::roles::mappings(c, &d.id)?,
                db::groups::names(c, &d.id, PICKER_GROUPS + 1)?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        let names: BTreeMap<&String, &String> = groups.iter().map(|(id, n)| (id, n)).collect();
        let mut mapped_names = BTreeMap::new();
        let missing: BTreeSet<String> = mappings
            .iter()
            .filter(|(g, _)| !names.contains_key(g))
            .map(|(g, _)| g.clone())
            .collect();
        // Mapped groups past the picker's limit still show by name.
        if let Some(d) = &directory {
            mapped_names.extend(db::users::labels(
                c,
                &d.id,
                &missing.into_iter().collect::<Vec<_>>(),
            )?);
        }
        let roles = all
            .into_iter()
            .map(|role| {
                let mut groups: Vec<(String, String)> = mappings
                    .iter()
                    .filter(|(_, slug)| *slug == role.slug)
                    .map(|(g, _)| {
                        let name = names
                            .get(g)
                            .map(|n| (*n).clone())
                            .or_else(|| mapped_names.get(g).cloned())
                            .unwrap_or_else(|| g.clone());
                        (g.clone(), name)
                    })
                    .collect();
                groups.sort_by_key(|g| g.1.to_lowercase());
                RoleRow { role, groups }
            })
            .collect::<Vec<_>>();
        Ok((directories, directory, roles, groups))
    })
    .await?;
    let more_groups = groups.len() as i64 > PICKER_GROUPS;
    let mut groups = groups;
    groups.truncate(PICKER_GROUPS as usize);
    html(&RolesPage {
        layout: Layout::new(&state, &s),
        nav: Nav::load(&state, org, "roles").await?,
        directories,
        directory,
        roles,
        groups,
        more_groups,
        applied: query.applied.and_then(|n| n.parse().ok()),
    })
}

/// A proposed change: give a group a role, or take the role off it.
#[derive(Deserialize, Clone)]
struct ChangeForm {
    directory: String,
    group: String,
    role: String,
    /// `add` or `remove`.
    change: String,
}

/// The change checked against what the organization has, with the directory's mappings it
/// would leave (group id, role id).
struct Checked {
    group_name: String,
    role_name: String,
    adds: bool,
    wanted: BTreeSet<(String, String)>,
}

/// Checks a change: the directory, group and role must be the organization's.
fn check(c: &mut db::DbConn, org_id: &str, form: &ChangeForm) -> Result<Checked, PageError> {
    let adds = match form.change.as_str() {
        "add" => true,
        "remove" => false,
        _ => return Err(PageError::NotFound),
    };
    db::directories::get(c, org_id, &form.directory)?.ok_or(PageError::NotFound)?;
    let all = db::roles::list(c, org_id)?;
    let role = all
        .iter()
        .find(|r| r.slug == form.role)
        .ok_or(PageError::NotFound)?;
    let group = db::groups::get(c, &form.directory, &form.group)?
        .filter(|g| g.deleted_at.is_none())
        .ok_or(PageError::NotFound)?;
    let id_of: BTreeMap<&String, &String> = all.iter().map(|r| (&r.slug, &r.id)).collect();
    let mut wanted: BTreeSet<(String, String)> = db::roles::mappings(c, &form.directory)?
        .into_iter()
        .filter_map(|(g, slug)| id_of.get(&slug).map(|id| (g, (*id).clone())))
        .collect();
    let pair = (group.id.clone(), role.id.clone());
    if adds {
        wanted.insert(pair);
    } else {
        wanted.remove(&pair);
    }
    Ok(Checked {
        group_name: group.display_name,
        role_name: role.name.clone(),
        adds,
        wanted,
    })
}

#[derive(Template)]
#[template(path = "portal/role_preview.html", blocks = ["preview"])]
struct PreviewPage {
    layout: Layout,
    nav: Nav,
    form: ChangeForm,
    group_name: String,
    role_name: String,
    adds: bool,
    preview: Preview,
}

async fn preview(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, PageError> {
    let org = portal_org(&state, &s).await?;
    let (org_id, f) = (org.id.clone(), form.into_inner());
    let asked = f.clone();
    let (checked, preview) = db(&state, move |c| {
        let checked = check(c, &org_id, &asked)?;
        let preview =
            crate::roles::preview::preview(c, &org_id, &asked.directory, &checked.wanted)?;
        Ok((checked, preview))
    })
    .await?;
    let page = PreviewPage {
        layout: Layout::new(&state, &s),
        nav: Nav::load(&state, org, "roles").await?,
        form: f,
        group_name: checked.group_name,
        role_name: checked.role_name,
        adds: checked.adds,
        preview,
    };
    let body = fragment_or_page(&req, &page, |p| p.as_preview().render())?;
    Ok(crate::pages::no_store(body))
}

async fn apply(
    state: web::Data<AppState>,
    s: Session,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, PageError> {
    let org = portal_org(&state, &s).await?;
    let (org_id, f) = (org.id.clone(), form.into_inner());
    let directory = f.directory.clone();
    let checked = db(&state, move |c| check(c, &org_id, &f)).await?;
    let done = changes::replace_mappings(&state, &directory, checked.wanted).await?;
    Ok(see_other(&format!(
        "/portal/roles?directory={directory}&applied={}",
        done.users_changed
    )))
}
