//! The owner console (`/owner`): first-run setup, sign-in, organizations, the SCIM toggle and
//! Admin Portal links.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Duration;
use serde::Deserialize;

use crate::auth::{password, session};
use crate::db::{self, directories::Directory, orgs::Org};
use crate::pages::{
    Layout, PAGE_SIZE, PageError, Pager, db, fragment_or_page, html, html_body, html_with, is_htmx,
    live, no_store, page_number, search_text, see_other, when,
};
use crate::state::AppState;

mod attributes;
mod brake;
mod branding;
mod roles;
mod settings;
mod user;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(settings::configure);
    cfg.configure(roles::configure);
    cfg.configure(brake::configure);
    cfg.configure(attributes::configure);
    cfg.configure(user::configure);
    cfg.configure(branding::configure);
    cfg.route("/owner", web::get().to(home))
        .route("/owner/login", web::get().to(login_form))
        .route("/owner/login", web::post().to(login))
        .route("/owner/logout", web::post().to(logout))
        .route("/owner/setup/{token}", web::get().to(setup_form))
        .route("/owner/setup/{token}", web::post().to(setup))
        .route("/owner/orgs", web::post().to(create_org))
        .route("/owner/orgs/{id}", web::get().to(org_page))
        .route("/owner/orgs/{id}/scim", web::post().to(toggle_scim))
        .route(
            "/owner/orgs/{id}/portal-links",
            web::post().to(create_portal_link),
        )
        .route(
            "/owner/orgs/{id}/portal-links/{link}/revoke",
            web::post().to(revoke_portal_link),
        )
        .route("/owner/orgs/{id}/users", web::get().to(org_users))
        .route("/owner/orgs/{id}/groups", web::get().to(org_groups));
}

/// Default lifetime of an Admin Portal link made in the console, in days.
pub const DEFAULT_LINK_TTL_DAYS: i64 = 7;

pub(crate) fn require_owner(s: &Session) -> Result<String, PageError> {
    session::owner_id(s).ok_or(PageError::OwnerSignedOut)
}

/// An organization as the list shows it: its directories, users and health at a glance.
pub struct OrgRow {
    pub org: Org,
    pub directories: usize,
    pub users: i64,
    /// CSS class and words: `ok`/connected, `error`/failing, `waiting`, `off`.
    pub health: (&'static str, &'static str),
    /// Another organization has the same name (case and spaces aside).
    pub duplicate: bool,
    /// Open directory alerts (see `crate::alerts`).
    pub alerts: i64,
    /// A directory's deprovisioning brake is engaged or paused: what the list says.
    pub brake: Option<&'static str>,
}

fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The organizations matching `search`, each with its directories' numbers and health.
/// Directories' user counts taken here are kept on `writer` for the next view.
fn org_rows(
    c: &mut db::DbConn,
    counts: &db::user_pages::Bookmarks,
    writer: &db::writer::Writer,
    search: &str,
) -> Result<Vec<OrgRow>, PageError> {
    let all = db::orgs::list(c, "", i64::MAX)?;
    let mut names = std::collections::HashMap::<String, usize>::new();
    for o in &all {
        *names.entry(name_key(&o.name)).or_default() += 1;
    }
    let alerts = db::alerts::open_counts_by_org(c)?;
    let orgs = db::orgs::list(c, search, 500)?;
    // Each query below serves every listed organization at once: one per organization was
    // thousands of round trips for a thousand customers.
    let org_ids: Vec<&str> = orgs.iter().map(|o| o.id.as_str()).collect();
    let mut directories = db::directories::list_for_orgs(c, &org_ids)?;
    let active: Vec<&str> = directories
        .values()
        .flatten()
        .filter(|d| d.status == "active")
        .map(|d| d.id.as_str())
        .collect();
    let failing_directories = db::requests::failing_directories(c, &active)?;
    let versions: Vec<(&str, i64)> = directories
        .values()
        .flatten()
        .map(|d| (d.id.as_str(), d.event_seq))
        .collect();
    let live_users: std::collections::HashMap<String, i64> = versions
        .iter()
        .map(|(id, _)| id.to_string())
        .zip(counts.live_users_of(c, &versions)?)
        .collect();
    counts.keep_new_counts(writer);
    let mut out = Vec::new();
    for org in orgs {
        let dirs = directories.remove(&org.id).unwrap_or_default();
        let (mut users, mut failing, mut connected) = (0, false, false);
        for d in &dirs {
            users += live_users.get(&d.id).copied().unwrap_or(0);
            if d.status != "active" {
                continue;
            }
            connected |= d.last_request_at.is_some();
            failing |= failing_directories.contains(&d.id);
        }
        let health = match (dirs.is_empty(), failing, connected) {
            (true, _, _) => ("off", "no directory"),
            (_, true, _) => ("error", "failing"),
            (_, _, true) => ("ok", "connected"),
            _ => ("waiting", "waiting"),
        };
        let brake = if dirs.iter().any(|d| d.brake_state == "engaged") {
            Some("Deprovisioning brake engaged")
        } else if dirs.iter().any(|d| d.brake_state == "paused") {
            Some("Directory paused")
        } else {
            None
        };
        out.push(OrgRow {
            brake,
            duplicate: names.get(&name_key(&org.name)).is_some_and(|n| *n > 1),
            alerts: alerts.get(&org.id).copied().unwrap_or(0),
            directories: dirs.len(),
            users,
            health,
            org,
        });
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "owner/orgs.html")]
struct OrgsPage {
    layout: Layout,
    orgs: Vec<OrgRow>,
    q: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn home(
    state: web::Data<AppState>,
    s: Session,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let q = query.into_inner().q.unwrap_or_default();
    let search = q.clone();
    let counts = state.user_pages.clone();
    let writing = state.clone();
    let orgs = db(&state, move |c| {
        org_rows(c, &counts, &writing.writer, &search)
    })
    .await?;
    html(&OrgsPage {
        layout: Layout::new(&state, &s),
        orgs,
        q,
        error: None,
    })
}

#[derive(Template)]
#[template(path = "owner/login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
    has_owner: bool,
    /// The command that prints a setup link, as the operator can run it.
    setup_command: String,
}

async fn login_form(state: web::Data<AppState>, s: Session) -> Result<HttpResponse, PageError> {
    if session::owner_id(&s).is_some() {
        return Ok(see_other("/owner"));
    }
    let has_owner = db(&state, |c| Ok(db::owners::exists(c)?)).await?;
    html(&LoginPage {
        setup_command: format!("{} owner setup-link", state.config.command),
        layout: Layout::new(&state, &s),
        error: None,
        has_owner,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    password: String,
}

/// Key of the owner account's failed-sign-in counter (one owner account).
const LOGIN_KEY: &str = "owner";

fn login_refused(
    state: &AppState,
    s: &Session,
    status: actix_web::http::StatusCode,
    error: String,
) -> Result<HttpResponse, PageError> {
    let page = LoginPage {
        setup_command: format!("{} owner setup-link", state.config.command),
        layout: Layout::new(state, s),
        error: Some(error),
        has_owner: true,
    };
    html_with(status, &page)
}

async fn login(
    state: web::Data<AppState>,
    s: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let pw = form.into_inner().password;
    // Brute-force protection lives in the database, so every instance enforces it; the
    // attempt is reserved (counted) before the password is checked.
    let (owner, attempt) = db(&state, |c| {
        Ok((
            db::owners::get(c)?,
            db::owners::reserve_attempt(c, LOGIN_KEY)?,
        ))
    })
    .await?;
    if let db::owners::Attempt::Locked(until) = attempt {
        let secs = (until - db::now()).num_seconds().max(1);
        return login_refused(
            &state,
            &s,
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Try again in {secs} seconds."),
        );
    }
    let verified = match owner {
        Some((id, hash)) => password::verify_bounded(pw, hash)
            .await
            .map_err(|e| PageError::Internal(e.into()))?
            .then_some(id),
        None => None,
    };
    match verified {
        Some(id) => {
            let owner = id.clone();
            let sid = db(&state, move |c| {
                db::owners::record_success(c, LOGIN_KEY)?;
                Ok(db::sessions::open(
                    c,
                    db::sessions::Kind::Owner,
                    &owner,
                    None,
                )?)
            })
            .await?;
            session::sign_in_owner(&s, &id, &sid);
            Ok(see_other("/owner"))
        }
        None => {
            let lock = db(&state, |c| Ok(db::owners::locked_until(c, LOGIN_KEY)?)).await?;
            log::warn!("failed owner sign-in");
            let message = match lock {
                Some(until) => format!(
                    "That password is not right. Too many failed attempts: try again in {} seconds.",
                    (until - db::now()).num_seconds().max(1)
                ),
                None => "That password is not right.".to_string(),
            };
            login_refused(&state, &s, StatusCode::UNAUTHORIZED, message)
        }
    }
}

async fn logout(state: web::Data<AppState>, s: Session) -> HttpResponse {
    // Ended on the server too: a copy of this cookie signs nobody in any more.
    if let Some(sid) = session::session_id(&s) {
        let ended = db(&state, move |c| Ok(db::sessions::end(c, &sid)?)).await;
        if let Err(e) = ended {
            log::error!("ending an owner session: {e}");
        }
    }
    session::sign_out(&s);
    see_other("/owner/login")
}

#[derive(Template)]
#[template(path = "owner/setup.html")]
struct SetupPage {
    layout: Layout,
    valid: bool,
    error: Option<String>,
    min_len: usize,
    /// The command that prints a setup link, as the operator can run it.
    setup_command: String,
}

async fn setup_form(
    state: web::Data<AppState>,
    s: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let valid = db(&state, move |c| {
        Ok(db::owners::setup_link_valid(c, &token)?)
    })
    .await?;
    html(&SetupPage {
        setup_command: format!("{} owner setup-link", state.config.command),
        layout: Layout::new(&state, &s),
        valid,
        error: None,
        min_len: password::MIN_LEN,
    })
}

#[derive(Deserialize)]
struct SetupForm {
    password: String,
    confirm: String,
}

async fn setup(
    state: web::Data<AppState>,
    s: Session,
    token: web::Path<String>,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let form = form.into_inner();
    let problem = if form.password.chars().count() < password::MIN_LEN {
        Some(format!("Use at least {} characters.", password::MIN_LEN))
    } else if form.password != form.confirm {
        Some("The two passwords differ.".to_string())
    } else {
        None
    };
    if let Some(error) = problem {
        let page = SetupPage {
            setup_command: format!("{} owner setup-link", state.config.command),
            layout: Layout::new(&state, &s),
            valid: true,
            error: Some(error),
            min_len: password::MIN_LEN,
        };
        return html_with(StatusCode::BAD_REQUEST, &page);
    }
    let hash = password::bounded(move || password::hash(&form.password))
        .await
        .map_err(|e| PageError::Internal(e.into()))?
        // Kept as text: without its `std` feature argon2's error is no `std::error::Error`.
        .map_err(|e| PageError::Internal(e.to_string().into()))?;
    let owner = db(&state, move |c| {
        Ok(db::owners::claim_setup_link(c, &token, &hash)?)
    })
    .await?;
    match owner {
        Some(id) => {
            let owner = id.clone();
            let sid = db(&state, move |c| {
                Ok(db::sessions::open(
                    c,
                    db::sessions::Kind::Owner,
                    &owner,
                    None,
                )?)
            })
            .await?;
            session::sign_in_owner(&s, &id, &sid);
            Ok(see_other("/owner"))
        }
        None => html(&SetupPage {
            setup_command: format!("{} owner setup-link", state.config.command),
            layout: Layout::new(&state, &s),
            valid: false,
            error: None,
            min_len: password::MIN_LEN,
        }),
    }
}

#[derive(Deserialize)]
struct CreateOrgForm {
    name: String,
    scim_enabled: Option<String>,
}

async fn create_org(
    state: web::Data<AppState>,
    s: Session,
    form: web::Form<CreateOrgForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let form = form.into_inner();
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        let counts = state.user_pages.clone();
        let writing = state.clone();
        let orgs = db(&state, move |c| org_rows(c, &counts, &writing.writer, "")).await?;
        let page = OrgsPage {
            layout: Layout::new(&state, &s),
            orgs,
            q: String::new(),
            error: Some("Give the organization a name (up to 200 characters).".into()),
        };
        return html_with(StatusCode::BAD_REQUEST, &page);
    }
    let enabled = form.scim_enabled.is_some();
    let org = db(&state, move |c| Ok(db::orgs::create(c, &name, enabled)?)).await?;
    Ok(see_other(&format!("/owner/orgs/{}", org.id)))
}

/// A directory with its health, for the organization page.
pub struct DirectorySummary {
    pub dir: Directory,
    pub provider_name: String,
    pub users: i64,
    pub groups: i64,
    pub last_request: Option<String>,
    /// When and why the last request failed.
    pub last_error: Option<(String, String)>,
    /// Requests succeeded after the last error (it no longer happens).
    pub error_resolved: bool,
    /// Open alerts, oldest first.
    pub alerts: Vec<db::alerts::Alert>,
    /// Where its latest resync is, if it ever had one.
    pub resync: Option<String>,
}

/// A portal link as listed (never the link itself).
pub struct LinkRow {
    pub id: String,
    pub created: String,
    pub expires: String,
    pub state: &'static str,
    pub live: bool,
}

#[derive(Template)]
#[template(path = "owner/org.html", blocks = ["scim_toggle", "portal_link", "links"])]
struct OrgPage {
    layout: Layout,
    org: Org,
    directories: Vec<DirectorySummary>,
    links: Vec<LinkRow>,
    new_link: Option<(String, String)>,
    link_ttl_days: i64,
    /// How many other organizations have the same name.
    same_name: usize,
}

impl OrgPage {
    /// Whether a directory has an open alert (the page lists them).
    fn has_alerts(&self) -> bool {
        self.directories.iter().any(|d| !d.alerts.is_empty())
    }
}

async fn load_org_page(
    state: &web::Data<AppState>,
    s: &Session,
    id: String,
) -> Result<OrgPage, PageError> {
    let user_counts = state.user_pages.clone();
    let writing = state.clone();
    let (org, directories, links, same_name) = db(state, move |c| {
        let org = db::orgs::get(c, &id)?.ok_or(PageError::OwnerNotFound)?;
        let mut out = Vec::new();
        for dir in db::directories::list_for_org(c, &org.id)? {
            let health = db::directories::health(c, &dir, &user_counts)?;
            db::directories::keep_first_arrivals(&writing.writer, &dir.id, &health);
            let error_resolved = match &health.last_error {
                Some(e) => db::requests::successes_after(c, &dir.id, e.id, 1)? > 0,
                None => false,
            };
            let provider_name = crate::providers::by_slug(&dir.provider)
                .map(|p| p.name)
                .unwrap_or("Unknown")
                .to_string();
            let alerts = db::alerts::open_for_directory(c, &dir.id)?;
            out.push(DirectorySummary {
                alerts,
                last_error: health.last_error.as_ref().map(|r| {
                    (
                        when(&r.at),
                        crate::explain::explain(r, &provider_name, None),
                    )
                }),
                error_resolved,
                provider_name,
                last_request: dir.last_request_at.as_ref().map(when),
                resync: db::resyncs::latest(c, &dir.id)?
                    .as_ref()
                    .map(crate::reconcile::summary),
                users: health.users,
                groups: health.groups,
                dir,
            });
        }
        user_counts.keep_new_counts(&writing.writer);
        let links = db::orgs::portal_links(c, &org.id)?;
        let same_name = db::orgs::list(c, "", i64::MAX)?
            .iter()
            .filter(|o| o.id != org.id && name_key(&o.name) == name_key(&org.name))
            .count();
        Ok((org, out, links, same_name))
    })
    .await?;
    let now = db::now();
    let links = links
        .into_iter()
        .map(|l| {
            let (state, live) = match (l.revoked_at, l.expires_at <= now, l.used_at) {
                (Some(_), _, _) => ("Revoked", false),
                (None, true, _) => ("Expired", false),
                (None, false, Some(_)) => ("Opened", true),
                (None, false, None) => ("Not opened yet", true),
            };
            LinkRow {
                id: l.id,
                created: when(&l.created_at),
                expires: when(&l.expires_at),
                state,
                live,
            }
        })
        .collect();
    Ok(OrgPage {
        layout: Layout::new(state, s),
        org,
        directories,
        links,
        new_link: None,
        link_ttl_days: DEFAULT_LINK_TTL_DAYS,
        same_name,
    })
}

#[derive(Deserialize)]
struct RevokeLinkForm {
    /// "on": also end the Admin Portal sessions this link opened.
    end_sessions: Option<String>,
}

async fn revoke_portal_link(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
    form: web::Form<RevokeLinkForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let (org_id, link_id) = path.into_inner();
    let org = org_id.clone();
    let end_sessions = form.end_sessions.as_deref() == Some("on");
    db(&state, move |c| {
        let revoked = db::orgs::revoke_portal_link(c, &org, &link_id)?;
        if end_sessions && db::orgs::link_of_org(c, &org, &link_id)? {
            db::sessions::end_for_portal_link(c, &link_id)?;
        }
        Ok(revoked)
    })
    .await?;
    Ok(see_other(&format!("/owner/orgs/{org_id}")))
}

async fn org_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    html(&load_org_page(&state, &s, id.into_inner()).await?)
}

#[derive(Deserialize)]
struct ToggleForm {
    enabled: String,
}

async fn toggle_scim(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<ToggleForm>,
) -> Result<HttpResponse, PageError> {
    live(&req, async {
        require_owner(&s)?;
        let id = id.into_inner();
        let enabled = form.enabled == "on" || form.enabled == "true";
        let org_id = id.clone();
        let found = db(&state, move |c| {
            Ok(db::orgs::set_scim_enabled(c, &org_id, enabled)?)
        })
        .await?;
        if !found {
            return Err(PageError::OwnerNotFound);
        }
        if !is_htmx(&req) {
            return Ok(see_other(&format!("/owner/orgs/{id}")));
        }
        let page = load_org_page(&state, &s, id).await?;
        Ok(html_body(StatusCode::OK, page.as_scim_toggle().render()?))
    })
    .await
}

#[derive(Deserialize)]
struct LinkForm {
    ttl_days: Option<String>,
}

async fn create_portal_link(
    req: HttpRequest,
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<LinkForm>,
) -> Result<HttpResponse, PageError> {
    live(&req, async {
        require_owner(&s)?;
        let days = form
            .ttl_days
            .as_deref()
            .and_then(|d| d.trim().parse::<i64>().ok())
            .filter(|d| (1..=90).contains(d))
            .unwrap_or(DEFAULT_LINK_TTL_DAYS);
        let id = id.into_inner();
        let org_id = id.clone();
        let (token, expires) = db(&state, move |c| {
            db::orgs::get(c, &org_id)?.ok_or(PageError::OwnerNotFound)?;
            Ok(db::orgs::create_portal_link(
                c,
                &org_id,
                Duration::days(days),
            )?)
        })
        .await?;
        let mut page = load_org_page(&state, &s, id).await?;
        page.new_link = Some((
            format!("{}/portal/link/{token}", state.config.public_url),
            when(&expires),
        ));
        page.link_ttl_days = days;
        // The new link, and the list of links (out of band: it is elsewhere on the page).
        let body = fragment_or_page(&req, &page, |p| {
            Ok(p.as_portal_link().render()? + &p.as_links().render()?)
        })?;
        Ok(no_store(body))
    })
    .await
}

#[derive(Deserialize)]
struct PageQuery {
    q: Option<String>,
    page: Option<String>,
}

#[derive(Template)]
#[template(path = "owner/users.html")]
struct OrgUsersPage {
    layout: Layout,
    org: Org,
    q: String,
    users: Vec<(db::users::UserRow, String, String)>,
    pager: Pager,
}

async fn org_users(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let q = search_text(query.q.as_deref());
    let page = page_number(query.page.as_deref());
    let (id, search) = (id.into_inner(), q.clone());
    let counts = state.user_pages.clone();
    let (org, total, rows) = db(&state, move |c| {
        let org = db::orgs::get(c, &id)?.ok_or(PageError::OwnerNotFound)?;
        let view = db::users::ViewQuery {
            search,
            active: None,
            group_id: None,
            sort: db::users::ViewSort::Name,
            descending: false,
            offset: Pager::offset(page),
            limit: PAGE_SIZE,
        };
        let (total, rows) = db::users::org_page(c, &org.id, &view, &counts)?;
        Ok((org, total, rows))
    })
    .await?;
    let pager = Pager::new(
        &format!("/owner/orgs/{}/users", org.id),
        &[("q", q.clone())],
        page,
        total,
    );
    let users = rows
        .into_iter()
        .map(|u| {
            let l = u.label();
            let w = when(&u.updated_at);
            (u, l, w)
        })
        .collect();
    html(&OrgUsersPage {
        layout: Layout::new(&state, &s),
        org,
        q,
        users,
        pager,
    })
}

#[derive(Template)]
#[template(path = "owner/groups.html")]
struct OrgGroupsPage {
    layout: Layout,
    org: Org,
    q: String,
    groups: Vec<(db::groups::GroupRow, i64)>,
    pager: Pager,
}

async fn org_groups(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let q = search_text(query.q.as_deref());
    let page = page_number(query.page.as_deref());
    let (id, search) = (id.into_inner(), q.clone());
    let (org, total, groups) = db(&state, move |c| {
        let org = db::orgs::get(c, &id)?.ok_or(PageError::OwnerNotFound)?;
        let (total, groups) =
            db::groups::org_page(c, &org.id, &search, Pager::offset(page), PAGE_SIZE)?;
        Ok((org, total, groups))
    })
    .await?;
    let pager = Pager::new(
        &format!("/owner/orgs/{}/groups", org.id),
        &[("q", q.clone())],
        page,
        total,
    );
    html(&OrgGroupsPage {
        layout: Layout::new(&state, &s),
        org,
        q,
        groups,
        pager,
    })
}
