//! The Admin Portal (`/portal`), scoped to the one organization its link opened: the SCIM
//! Provisioning tab (provider picker, Configure, credentials, guide, live status) and the
//! live Users and Groups views.

mod alert_banner;
mod attributes;
pub mod brake;
mod directories;
mod resync;
mod roles;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::session;
use crate::branding::Brand;
use crate::db::{self, directories::Directory, groups::GroupRow, orgs::Org, users::UserRow};
use crate::explain;
use crate::pages::{
    Layout, PAGE_SIZE, PageError, Pager, db, fragment_or_page, html, html_body, html_with,
    list_url, live, page_number, see_other, when,
};
use crate::providers::{self, Provider};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/portal/link/{token}", web::get().to(open_link))
        .route("/portal", web::get().to(home))
        .route("/portal/scim", web::get().to(scim_tab))
        .configure(directories::configure)
        .configure(brake::configure)
        .configure(roles::configure)
        .configure(resync::configure)
        .configure(attributes::configure)
        .route("/portal/users", web::get().to(users_page))
        .route("/portal/users/{id}", web::get().to(user_page))
        .route("/portal/groups", web::get().to(groups_page))
        .route("/portal/groups/{id}", web::get().to(group_page));
}

/// The header every portal page shows: product, organization, tabs.
pub struct Nav {
    pub org: Org,
    pub current: &'static str,
    pub tabs: Tabs,
    /// The organization's open directory alerts.
    pub alert_banner: alert_banner::AlertBanner,
    /// Directories whose deprovisioning brake is engaged or paused (a banner on every page).
    pub brakes: Vec<db::brake::NotClear>,
    /// The organization's branding (its overrides over the instance-wide one).
    pub brand: Brand,
}

/// The tabs shown only when the owner set up what they manage.
pub struct Tabs {
    /// Roles: the owner defined at least one role.
    pub roles: bool,
    /// Attributes: the owner declared at least one custom attribute.
    pub attributes: bool,
}

impl Nav {
    pub(crate) async fn load(
        state: &web::Data<AppState>,
        org: Org,
        current: &'static str,
    ) -> Result<Nav, PageError> {
        let org_id = org.id.clone();
        let product = state.config.product_name.clone();
        let (tabs, alert_banner, brakes, brand) = db(state, move |c| {
            let tabs = Tabs {
                roles: db::roles::any(c, &org_id)?,
                attributes: db::attributes::any(c, &org_id)?,
            };
            Ok((
                tabs,
                alert_banner::AlertBanner::load(c, &org_id)?,
                db::brake::not_clear_in_org(c, &org_id)?,
                Brand::load(c, &product, Some(&org_id))?,
            ))
        })
        .await?;
        Ok(Nav {
            org,
            current,
            tabs,
            alert_banner,
            brakes,
            brand,
        })
    }
}

pub(crate) async fn portal_org(state: &web::Data<AppState>, s: &Session) -> Result<Org, PageError> {
    let org_id = session::portal_org(s).ok_or(PageError::PortalSignedOut)?;
    db(state, move |c| {
        db::orgs::get(c, &org_id)?.ok_or(PageError::PortalSignedOut)
    })
    .await
}

#[derive(Template)]
#[template(path = "portal/link_error.html")]
struct LinkErrorPage {
    layout: Layout,
    brand: Brand,
    reason: &'static str,
}

async fn open_link(
    state: web::Data<AppState>,
    s: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let result = db(&state, move |c| {
        Ok(match db::orgs::redeem_portal_link(c, &token)? {
            Ok(link) => {
                let sid = db::sessions::open(
                    c,
                    db::sessions::Kind::Portal,
                    &link.org.id,
                    Some(&link.link_id),
                )?;
                Ok((link, sid))
            }
            Err(problem) => Err(problem),
        })
    })
    .await?;
    match result {
        Ok((link, sid)) => {
            match &link.embed_origin {
                Some(origin) => session::open_embedded_portal(&s, &link.org.id, &sid, origin),
                None => session::open_portal(&s, &link.org.id, &sid),
            }
            Ok(see_other("/portal"))
        }
        Err(problem) => {
            let reason = match problem {
                db::orgs::LinkProblem::Expired => "This Admin Portal link has expired.",
                db::orgs::LinkProblem::Revoked => "This Admin Portal link was revoked.",
                db::orgs::LinkProblem::Unknown => "This Admin Portal link is not valid.",
                db::orgs::LinkProblem::Used => {
                    "This embed link was already opened; embed links open once. \
                     Reload the page that shows the Admin Portal to get a new one."
                }
            };
            let product = state.config.product_name.clone();
            let brand = db(&state, move |c| Ok(Brand::load(c, &product, None)?)).await?;
            let page = LinkErrorPage {
                layout: Layout::new(&state, &s),
                brand,
                reason,
            };
            html_with(StatusCode::NOT_FOUND, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "portal/disabled.html")]
struct DisabledPage {
    layout: Layout,
    nav: Nav,
}

async fn home(state: web::Data<AppState>, s: Session) -> Result<HttpResponse, PageError> {
    let org = portal_org(&state, &s).await?;
    if org.scim_enabled {
        return Ok(see_other("/portal/scim"));
    }
    html(&DisabledPage {
        layout: Layout::new(&state, &s),
        nav: Nav::load(&state, org, "scim").await?,
    })
}

/// A directory as listed on the SCIM Provisioning tab.
pub struct DirectoryCard {
    pub dir: Directory,
    pub provider: &'static Provider,
    pub endpoint_url: String,
    pub users: i64,
    pub groups: i64,
    pub last_request: Option<String>,
}

pub(crate) fn card(state: &AppState, dir: Directory, users: i64, groups: i64) -> DirectoryCard {
    DirectoryCard {
        provider: providers::by_slug(&dir.provider)
            .unwrap_or(&providers::ALL[providers::ALL.len() - 1]),
        endpoint_url: state.config.scim_base(&dir.id),
        last_request: dir.last_request_at.as_ref().map(when),
        dir,
        users,
        groups,
    }
}

#[derive(Template)]
#[template(path = "portal/scim.html")]
struct ScimTab {
    layout: Layout,
    nav: Nav,
    directories: Vec<DirectoryCard>,
    providers: &'static [Provider],
    /// Just deleted a directory (the delete redirects here).
    deleted: bool,
}

#[derive(Deserialize)]
struct ScimTabQuery {
    deleted: Option<String>,
}

async fn scim_tab(
    state: web::Data<AppState>,
    s: Session,
    query: web::Query<ScimTabQuery>,
) -> Result<HttpResponse, PageError> {
    let org = portal_org(&state, &s).await?;
    if !org.scim_enabled {
        return Ok(see_other("/portal"));
    }
    let org_id = org.id.clone();
    // Users counted once per version of the directory, as for the Users view.
    let user_counts = state.user_pages.clone();
    let writing = state.clone();
    let dirs = db(&state, move |c| {
        let mut out = Vec::new();
        for d in db::directories::list_for_org(c, &org_id)? {
            let users = user_counts.live_users(c, &d.id, d.event_seq)?;
            let groups = db::directories::live_groups(c, &d.id)?;
            out.push((d, users, groups));
        }
        user_counts.keep_new_counts(&writing.writer);
        Ok(out)
    })
    .await?;
    let directories = dirs
        .into_iter()
        .map(|(d, u, g)| card(&state, d, u, g))
        .collect();
    html(&ScimTab {
        layout: Layout::new(&state, &s),
        nav: Nav::load(&state, org, "scim").await?,
        directories,
        providers: providers::ALL,
        deleted: query.deleted.as_deref() == Some("1"),
    })
}

#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    page: Option<String>,
    status: Option<String>,
    group: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
}

/// A sortable column header: its label, the URL that sorts by it, and its current state.
pub struct SortLink {
    pub label: &'static str,
    pub url: String,
    /// `ascending`/`descending` when the list is sorted by this column (for aria-sort).
    pub state: Option<&'static str>,
}

/// A user row of the Users view.
pub struct UserItem {
    pub row: UserRow,
    pub label: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "portal/users.html", blocks = ["rows"])]
struct UsersPage {
    layout: Layout,
    nav: Nav,
    q: String,
    status: String,
    group: String,
    sort: String,
    dir: String,
    groups: Vec<(String, String)>,
    columns: Vec<SortLink>,
    users: Vec<UserItem>,
    pager: Pager,
    has_directory: bool,
}

async fn users_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    live(&req, async {
        use db::users::ViewSort;
        let org = portal_org(&state, &s).await?;
        let query = query.into_inner();
        let q = crate::pages::search_text(query.q.as_deref());
        let page = page_number(query.page.as_deref());
        let status = match query.status.as_deref() {
            Some(s @ ("active" | "inactive")) => s.to_string(),
            _ => String::new(),
        };
        let group = query
            .group
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect::<String>();
        let (sort, sort_key) = match query.sort.as_deref() {
            Some("name") => (ViewSort::Name, "name"),
            Some("username") => (ViewSort::UserName, "username"),
            Some("status") => (ViewSort::Status, "status"),
            _ => (ViewSort::Updated, "updated"),
        };
        // Newest first by default; names A→Z.
        let descending = match query.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => sort == ViewSort::Updated,
        };
        let view = db::users::ViewQuery {
            search: q.clone(),
            active: match status.as_str() {
                "active" => Some(true),
                "inactive" => Some(false),
                _ => None,
            },
            group_id: (!group.is_empty()).then(|| group.clone()),
            sort,
            descending,
            offset: Pager::offset(page),
            limit: PAGE_SIZE,
        };
        let org_id = org.id.clone();
        let counts = state.user_pages.clone();
        let (total, rows, has_directory, groups) = db(&state, move |c| {
            let (total, rows) = db::users::org_page(c, &org_id, &view, &counts)?;
            let has_directory = !db::directories::list_for_org(c, &org_id)?.is_empty();
            let groups = db::groups::org_names(c, &org_id, 500)?;
            Ok((total, rows, has_directory, groups))
        })
        .await?;
        let users = rows
            .into_iter()
            .map(|row| UserItem {
                label: row.label(),
                updated: when(&row.updated_at),
                row,
            })
            .collect();
        let dir = if descending { "desc" } else { "asc" };
        let filters = |sort: &str, dir: &str| -> Vec<(&'static str, String)> {
            vec![
                ("q", q.clone()),
                ("status", status.clone()),
                ("group", group.clone()),
                ("sort", sort.to_string()),
                ("dir", dir.to_string()),
            ]
        };
        let columns = [
            ("Name", "name"),
            ("userName", "username"),
            ("Status", "status"),
            ("Updated", "updated"),
        ]
        .into_iter()
        .map(|(label, key)| {
            let current = key == sort_key;
            // Clicking the current column flips its direction.
            let next_dir = if current && !descending {
                "desc"
            } else if current {
                "asc"
            } else if key == "updated" {
                "desc"
            } else {
                "asc"
            };
            SortLink {
                label,
                url: list_url("/portal/users", &filters(key, next_dir), 1),
                state: current.then_some(if descending {
                    "descending"
                } else {
                    "ascending"
                }),
            }
        })
        .collect();
        let page = UsersPage {
            layout: Layout::new(&state, &s),
            nav: Nav::load(&state, org, "users").await?,
            pager: Pager::new("/portal/users", &filters(sort_key, dir), page, total),
            columns,
            groups,
            sort: sort_key.to_string(),
            dir: dir.to_string(),
            q,
            status,
            group,
            users,
            has_directory,
        };
        let body = fragment_or_page(&req, &page, |p| p.as_rows().render())?;
        Ok(html_body(StatusCode::OK, body))
    })
    .await
}

/// A request as a user's page lists it.
pub struct UserRequest {
    pub at: String,
    pub method: String,
    pub status: i32,
    pub explanation: String,
}

#[derive(Template)]
#[template(path = "portal/user.html")]
struct UserPage {
    layout: Layout,
    nav: Nav,
    user: UserRow,
    label: String,
    groups: Vec<(String, String)>,
    raw: String,
    created: String,
    updated: String,
    requests: Vec<UserRequest>,
    activity_url: String,
    /// When the identity provider deleted this user (the page is then its tombstone).
    deleted: Option<String>,
    provider: String,
    /// Why the user has each role (empty for a deleted user).
    role_reasons: Vec<crate::roles::why::ReasonLine>,
    roles_defined: bool,
    /// Where a request's link points (the inspector, while SCIM Provisioning is on).
    inspector: Option<String>,
    group_base: String,
    /// The organization's custom attributes and this user's values.
    custom_attributes: crate::custom_attributes::Values,
}

async fn user_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let org = portal_org(&state, &s).await?;
    let (org_id, id) = (org.id.clone(), id.into_inner());
    let found = db(&state, move |c| {
        let (user, deleted_at) = match db::users::org_get(c, &org_id, &id)? {
            Some(user) => (user, None),
            // A deleted user's link shows its tombstone.
            None => match db::users::org_get_deleted(c, &org_id, &id)? {
                Some((user, at)) => (user, Some(at)),
                None => return Err(PageError::NotFound),
            },
        };
        let groups = if deleted_at.is_some() {
            Vec::new()
        } else {
            db::memberships::groups_of(c, &user.directory_id, std::slice::from_ref(&user.id))?
                .into_iter()
                .map(|(_, r)| (r.id, r.display.unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        let requests = db::requests::for_resource(c, &user.directory_id, &user.id, 20)?;
        let provider = db::directories::get(c, &org_id, &user.directory_id)?
            .map(|d| d.name)
            .unwrap_or_default();
        let reasons = if deleted_at.is_some() {
            Vec::new()
        } else {
            crate::roles::why::reasons(c, &org_id, &user.directory_id, &user.id)?
        };
        let values =
            db::attributes::mappings(c, &user.directory_id)?.values_of_text(&user.resource);
        Ok((
            user, deleted_at, groups, requests, provider, reasons, values,
        ))
    })
    .await?;
    let (user, deleted_at, groups, requests, provider, reasons, custom_attributes) = found;
    let label = user.label();
    let requests = requests
        .iter()
        .map(|r| UserRequest {
            at: when(&r.at),
            method: r.method.clone(),
            status: r.status,
            explanation: explain::explain(r, &provider, Some(&label)),
        })
        .collect();
    let raw = serde_json::from_str::<serde_json::Value>(&user.resource)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_default();
    let inspector = org
        .scim_enabled
        .then(|| format!("/portal/scim/directories/{}/activity", user.directory_id));
    let nav = Nav::load(&state, org, "users").await?;
    let page = UserPage {
        layout: Layout::new(&state, &s),
        roles_defined: nav.tabs.roles,
        nav,
        role_reasons: reasons.into_iter().map(|r| r.line(when)).collect(),
        inspector,
        group_base: "/portal/groups".into(),
        custom_attributes,
        activity_url: list_url(
            &format!("/portal/scim/directories/{}/activity", user.directory_id),
            &[("user", user.id.clone())],
            1,
        ),
        label,
        created: when(&user.created_at),
        updated: when(&user.updated_at),
        deleted: deleted_at.as_ref().map(when),
        provider,
        user,
        groups,
        raw,
        requests,
    };
    if page.deleted.is_some() {
        return html_with(StatusCode::NOT_FOUND, &page);
    }
    html(&page)
}

/// A group row of the Groups view.
pub struct GroupItem {
    pub row: GroupRow,
    pub members: i64,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "portal/groups.html", blocks = ["rows"])]
struct GroupsPage {
    layout: Layout,
    nav: Nav,
    q: String,
    groups: Vec<GroupItem>,
    pager: Pager,
    has_directory: bool,
}

async fn groups_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    live(&req, async {
        let org = portal_org(&state, &s).await?;
        let query = query.into_inner();
        let q = crate::pages::search_text(query.q.as_deref());
        let page = page_number(query.page.as_deref());
        let (org_id, search) = (org.id.clone(), q.clone());
        let (total, rows, has_directory) = db(&state, move |c| {
            let (total, rows) =
                db::groups::org_page(c, &org_id, &search, Pager::offset(page), PAGE_SIZE)?;
            let has_directory = !db::directories::list_for_org(c, &org_id)?.is_empty();
            Ok((total, rows, has_directory))
        })
        .await?;
        let groups = rows
            .into_iter()
            .map(|(row, members)| GroupItem {
                updated: when(&row.updated_at),
                row,
                members,
            })
            .collect();
        let page = GroupsPage {
            layout: Layout::new(&state, &s),
            nav: Nav::load(&state, org, "groups").await?,
            pager: Pager::new("/portal/groups", &[("q", q.clone())], page, total),
            q,
            groups,
            has_directory,
        };
        let body = fragment_or_page(&req, &page, |p| p.as_rows().render())?;
        Ok(html_body(StatusCode::OK, body))
    })
    .await
}

#[derive(Template)]
#[template(path = "portal/group.html")]
struct GroupPage {
    layout: Layout,
    nav: Nav,
    group: GroupRow,
    members: Vec<db::memberships::Member>,
    pager: Pager,
    updated: String,
}

async fn group_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let org = portal_org(&state, &s).await?;
    let page = page_number(query.page.as_deref());
    let (org_id, id) = (org.id.clone(), id.into_inner());
    let (group, members, total) = db(&state, move |c| {
        let group = db::groups::org_get(c, &org_id, &id)?.ok_or(PageError::NotFound)?;
        let members = db::memberships::members(c, &group.id, Pager::offset(page), PAGE_SIZE)?;
        let total = db::memberships::member_count(c, &group.id)?;
        Ok((group, members, total))
    })
    .await?;
    html(&GroupPage {
        layout: Layout::new(&state, &s),
        nav: Nav::load(&state, org, "groups").await?,
        pager: Pager::new(&format!("/portal/groups/{}", group.id), &[], page, total),
        updated: when(&group.updated_at),
        group,
        members,
    })
}
