//! The Admin Portal's page of a directory's deprovisioning brake: the held changes and the
//! decision (release, reject, resume), and the IT admin's tightening of the thresholds.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Nav, portal_org};
use crate::brake::decisions::{self, DecisionError};
use crate::brake::review::{self, Review};
use crate::db;
use crate::pages::{Layout, PageError, db, html, html_with, see_other};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/portal/scim/directories/{id}/brake",
        web::get().to(brake_page),
    )
    .route(
        "/portal/scim/directories/{id}/brake/thresholds",
        web::post().to(tighten),
    )
    .route(
        "/portal/scim/directories/{id}/brake/{decision}",
        web::post().to(decide),
    );
}

#[derive(Template)]
#[template(path = "portal/brake.html")]
struct BrakePage {
    layout: Layout,
    nav: Nav,
    review: Review,
    base: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

/// The notice after a decision (`?done=`), in words.
pub fn notice(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "release" => "Released: the held changes are on their way to the application, in the order they were made.",
            "reject" => "Rejected: the users stay active and the directory is paused. Fix the provider's scope, then resume.",
            "resume" => "Resumed: the provider's requests are accepted again.",
            "thresholds" => "Saved: the directory's thresholds apply from the next deactivation or deletion.",
            "stale" => "Nothing to do: someone else decided meanwhile; this is where the brake stands now.",
            _ => return None,
        }
        .to_string(),
    )
}

async fn render(
    state: &web::Data<AppState>,
    s: &Session,
    id: String,
    notice: Option<String>,
    error: Option<String>,
) -> Result<BrakePage, PageError> {
    let org = portal_org(state, s).await?;
    let org_id = org.id.clone();
    let review = db(state, move |c| {
        review::load(c, &org_id, &id)?.ok_or(PageError::NotFound)
    })
    .await?;
    Ok(BrakePage {
        layout: Layout::new(state, s),
        nav: Nav::load(state, org, "scim").await?,
        base: format!("/portal/scim/directories/{}/brake", review.directory.id),
        review,
        notice,
        error,
    })
}

async fn brake_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    q: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    let page = render(&state, &s, id.into_inner(), notice(q.done.as_deref()), None).await?;
    html(&page)
}

/// Carries out a decision on a directory (already checked to be the organization's); the
/// `done=` value of the page it returns to.
pub async fn carry_out(
    state: &web::Data<AppState>,
    directory_id: &str,
    decision: &str,
) -> Result<&'static str, PageError> {
    let result = match decision {
        "release" => decisions::release(state, directory_id)
            .await
            .map(|_| "release"),
        "reject" => decisions::reject(state, directory_id)
            .await
            .map(|_| "reject"),
        "resume" => decisions::resume(state, directory_id)
            .await
            .map(|_| "resume"),
        _ => return Err(PageError::NotFound),
    };
    match result {
        Ok(done) => Ok(done),
        // Another admin (or the API) decided first: the page shows where it stands.
        Err(DecisionError::Refused(_)) => Ok("stale"),
        Err(DecisionError::Pool(e)) => Err(PageError::Unavailable(e)),
        Err(DecisionError::Writer(e)) => Err(PageError::Busy(e.into())),
        Err(DecisionError::Internal(e)) => Err(PageError::Internal(e.into())),
        Err(DecisionError::Db(e)) => Err(e.into()),
        Err(DecisionError::Scim(e)) => Err(PageError::Internal(e.into())),
    }
}

async fn decide(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (id, decision) = path.into_inner();
    let org = portal_org(&state, &s).await?;
    let (org_id, dir) = (org.id.clone(), id.clone());
    db(&state, move |c| {
        db::directories::get(c, &org_id, &dir)?.ok_or(PageError::NotFound)
    })
    .await?;
    let done = carry_out(&state, &id, &decision).await?;
    Ok(see_other(&format!(
        "/portal/scim/directories/{id}/brake?done={done}"
    )))
}

#[derive(Deserialize)]
struct TightenForm {
    #[serde(default)]
    min_users: String,
    #[serde(default)]
    min_percent: String,
    #[serde(default)]
    window_minutes: String,
    #[serde(default)]
    settle_seconds: String,
}

async fn tighten(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<TightenForm>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let org = portal_org(&state, &s).await?;
    let (org_id, dir, f) = (org.id.clone(), id.clone(), form.into_inner());
    let refused = db(&state, move |c| {
        let review = review::load(c, &org_id, &dir)?.ok_or(PageError::NotFound)?;
        let fields = [
            f.min_users.as_str(),
            f.min_percent.as_str(),
            f.window_minutes.as_str(),
            f.settle_seconds.as_str(),
        ];
        match review::tightened_from_form(fields, review.org_thresholds) {
            Ok(t) => {
                db::write_tx(c, |c| db::brake::set_tightened(c, &dir, t))?;
                Ok(None)
            }
            Err(why) => Ok(Some(why)),
        }
    })
    .await?;
    match refused {
        None => Ok(see_other(&format!(
            "/portal/scim/directories/{id}/brake?done=thresholds"
        ))),
        Some(why) => {
            let page = render(&state, &s, id, None, Some(why)).await?;
            html_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}
