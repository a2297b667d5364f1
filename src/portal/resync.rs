//! A directory's resync in the Admin Portal: start one, see how to make the provider push
//! everything again, finish it, and deactivate or keep the users and groups the provider no
//! longer knows. Applied through `crate::reconcile`, like the API.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Nav, portal_org};
use crate::db::directories::Directory;
use crate::db::resyncs::{Action, State};
use crate::pages::{Layout, PageError, db, no_store, see_other, when};
use crate::reconcile::{self, Report, ResyncError};
use crate::state::AppState;
use crate::{db as database, providers};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/portal/scim/directories/{id}/resync",
        web::get().to(resync_page),
    )
    .route(
        "/portal/scim/directories/{id}/resync/start",
        web::post().to(start),
    )
    .route(
        "/portal/scim/directories/{id}/resync/finish",
        web::post().to(finish),
    )
    .route(
        "/portal/scim/directories/{id}/resync/apply",
        web::post().to(apply),
    );
}

/// How to make each provider push every user and group again (trusted static HTML).
pub fn push_everything(slug: &str) -> &'static str {
    match slug {
        "pingidentity" => {
            "In the PingOne admin console open the provisioning <strong>rule</strong> and click <kbd>Full Resync</kbd> (or turn the connection off and on again)."
        }
        "okta" => {
            "In the Okta app, on the <kbd>Push Groups</kbd> tab use <kbd>Push Now</kbd> on each pushed group (<kbd>Force Sync</kbd> where offered); users are sent again when you re-assign them on the <kbd>Assignments</kbd> tab."
        }
        "entra" => {
            "In the Microsoft Entra admin center open the enterprise app → <kbd>Provisioning</kbd> → <kbd>Overview</kbd> and click <kbd>Restart provisioning</kbd>. The next cycle checks every assigned user and group (20 minutes to several hours)."
        }
        "onelogin" => {
            "In OneLogin open the app, and on its <kbd>Users</kbd> tab choose <kbd>More Actions</kbd> → <kbd>Reapply entitlement mappings</kbd>: every user is sent again."
        }
        "jumpcloud" => {
            "JumpCloud has no full-sync button: on the app's <kbd>User Groups</kbd> tab save the bound groups again, and leave the resync running while their members are sent."
        }
        "rippling" => {
            "Rippling has no sync-now button: leave the resync running (for example its full 24 hours) so that its scheduled syncs reach Roster."
        }
        _ => {
            "Run your provider's full sync (often called <kbd>Full Resync</kbd>, <kbd>Sync now</kbd> or <kbd>Restart provisioning</kbd>)."
        }
    }
}

#[derive(Template)]
#[template(path = "portal/resync.html")]
struct ResyncPage {
    layout: Layout,
    nav: Nav,
    dir: Directory,
    provider: &'static str,
    how: &'static str,
    report: Option<Report>,
    started: String,
    finish_by: String,
    finished: String,
    /// Why the last button did nothing (shown once, from the query).
    problem: Option<String>,
}

impl ResyncPage {
    fn state(&self) -> &'static str {
        self.report
            .as_ref()
            .map_or("none", |r| r.resync.state.as_str())
    }

    fn running(&self) -> bool {
        self.report
            .as_ref()
            .is_some_and(|r| r.resync.state == State::Running)
    }

    /// "23 users and 2 groups"
    fn stale_summary(&self) -> String {
        let Some(r) = &self.report else {
            return String::new();
        };
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} and {}",
            plural(r.users.len(), "user", "users"),
            plural(r.groups.len(), "group", "groups")
        )
    }

    fn kept(&self) -> bool {
        self.report
            .as_ref()
            .is_some_and(|r| r.resync.action == Some(Action::Keep))
    }
}

#[derive(Deserialize)]
struct PageQuery {
    problem: Option<String>,
}

async fn resync_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PageError> {
    let org = scim_org(&state, &s).await?;
    let org_id = org.id.clone();
    let id = id.into_inner();
    let (dir, report) = db(&state, move |c| {
        let dir = database::directories::get(c, &org_id, &id)?.ok_or(PageError::NotFound)?;
        let report = reconcile::report(c, &dir.id)?;
        Ok((dir, report))
    })
    .await?;
    let provider = providers::by_slug(&dir.provider);
    let at = |f: fn(&Report) -> Option<chrono::NaiveDateTime>| {
        report
            .as_ref()
            .and_then(f)
            .map(|t| when(&t))
            .unwrap_or_default()
    };
    let page = ResyncPage {
        layout: Layout::new(&state, &s),
        nav: Nav::load(&state, org, "scim").await?,
        provider: provider.map_or("the provider", |p| p.name),
        how: push_everything(&dir.provider),
        started: at(|r| Some(r.resync.started_at)),
        finish_by: at(|r| Some(r.resync.finish_by)),
        finished: at(|r| r.resync.finished_at),
        problem: query.into_inner().problem.and_then(|p| problem_text(&p)),
        dir,
        report,
    };
    Ok(no_store(page.render()?))
}

/// The sentence a problem code in the page's query stands for (only known codes are shown).
fn problem_text(code: &str) -> Option<String> {
    let e = match code {
        "running" => ResyncError::AlreadyRunning,
        "not-running" => ResyncError::NotRunning,
        "nothing" => ResyncError::NothingToApply,
        "disabled" => ResyncError::Disabled,
        "paused" => ResyncError::Paused,
        _ => return None,
    };
    Some(format!("{e}."))
}

async fn scim_org(
    state: &web::Data<AppState>,
    s: &Session,
) -> Result<database::orgs::Org, PageError> {
    let org = portal_org(state, s).await?;
    if !org.scim_enabled {
        return Err(PageError::ScimOff);
    }
    Ok(org)
}

/// Checks the directory belongs to the signed-in organization.
async fn own(state: &web::Data<AppState>, s: &Session, id: &str) -> Result<(), PageError> {
    let org = scim_org(state, s).await?;
    let id = id.to_string();
    db(state, move |c| {
        database::directories::get(c, &org.id, &id)?.ok_or(PageError::NotFound)?;
        Ok(())
    })
    .await
}

/// Back to the page, saying why the button did nothing if it did not.
fn back(id: &str, result: Result<(), ResyncError>) -> Result<HttpResponse, PageError> {
    let problem = match result {
        Ok(()) => return Ok(see_other(&format!("/portal/scim/directories/{id}/resync"))),
        Err(ResyncError::AlreadyRunning) => "running",
        Err(ResyncError::NotRunning) => "not-running",
        Err(ResyncError::NothingToApply) => "nothing",
        Err(ResyncError::Disabled) => "disabled",
        Err(ResyncError::Paused) => "paused",
        Err(ResyncError::Pool(e)) => return Err(PageError::Unavailable(e)),
        Err(ResyncError::Writer(e)) => return Err(PageError::Busy(e.into())),
        Err(ResyncError::Db(e)) => return Err(e.into()),
        Err(ResyncError::Internal(e)) => return Err(PageError::Internal(e)),
    };
    Ok(see_other(&format!(
        "/portal/scim/directories/{id}/resync?problem={problem}"
    )))
}

async fn start(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    own(&state, &s, &id).await?;
    let result = reconcile::start(&state, &id, reconcile::DEFAULT_RUNS_FOR).await;
    back(&id, result.map(|_| ()))
}

async fn finish(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    own(&state, &s, &id).await?;
    let result = reconcile::finish(&state, &id).await;
    back(&id, result.map(|_| ()))
}

#[derive(Deserialize)]
struct ApplyForm {
    action: String,
}

async fn apply(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<ApplyForm>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    own(&state, &s, &id).await?;
    let Some(action) = Action::parse(&form.action) else {
        return back(&id, Err(ResyncError::NothingToApply));
    };
    let result = reconcile::apply(&state, &id, action).await;
    back(&id, result.map(|_| ()))
}
