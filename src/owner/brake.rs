//! The owner console's deprovisioning brake: each organization's thresholds (the default its
//! IT admins may only tighten), and each directory's held changes with the same decisions as
//! the Admin Portal (release, reject, resume).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::require_owner;
use crate::brake::Thresholds;
use crate::brake::review::{self, Review};
use crate::db::{self, directories::Directory, orgs::Org};
use crate::pages::{Layout, PageError, db, html, html_with, see_other};
use crate::portal::brake::{carry_out, notice};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/orgs/{id}/brake", web::get().to(thresholds_page))
        .route("/owner/orgs/{id}/brake", web::post().to(save_thresholds))
        .route(
            "/owner/orgs/{id}/directories/{dir}/brake",
            web::get().to(review_page),
        )
        .route(
            "/owner/orgs/{id}/directories/{dir}/brake/{decision}",
            web::post().to(decide),
        );
}

#[derive(Template)]
#[template(path = "owner/brake.html")]
struct ThresholdsPage {
    layout: Layout,
    org: Org,
    thresholds: Thresholds,
    /// What was typed, when refused.
    typed: Option<[String; 4]>,
    directories: Vec<Directory>,
    notice: Option<String>,
    error: Option<String>,
}

impl ThresholdsPage {
    /// A field's value: what was typed when refused, else the stored threshold.
    fn value(&self, i: usize) -> String {
        match &self.typed {
            Some(typed) => typed[i].clone(),
            None => [
                self.thresholds.min_users,
                self.thresholds.min_percent,
                self.thresholds.window_minutes,
                self.thresholds.settle_seconds,
            ][i]
                .to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn load(
    state: &web::Data<AppState>,
    s: &Session,
    id: String,
) -> Result<ThresholdsPage, PageError> {
    let (org, thresholds, directories) = db(state, move |c| {
        let org = db::orgs::get(c, &id)?.ok_or(PageError::OwnerNotFound)?;
        let t = db::brake::org_thresholds(c, &id)?.ok_or(PageError::OwnerNotFound)?;
        Ok((org, t, db::directories::list_for_org(c, &id)?))
    })
    .await?;
    Ok(ThresholdsPage {
        layout: Layout::new(state, s),
        org,
        thresholds,
        typed: None,
        directories,
        notice: None,
        error: None,
    })
}

async fn thresholds_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    q: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let mut page = load(&state, &s, id.into_inner()).await?;
    page.notice = (q.done.as_deref() == Some("saved"))
        .then(|| "Saved: the thresholds apply from the next deactivation or deletion.".into());
    html(&page)
}

#[derive(Deserialize)]
struct ThresholdsForm {
    #[serde(default)]
    min_users: String,
    #[serde(default)]
    min_percent: String,
    #[serde(default)]
    window_minutes: String,
    #[serde(default)]
    settle_seconds: String,
}

async fn save_thresholds(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<ThresholdsForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let id = id.into_inner();
    let f = form.into_inner();
    let typed = [
        f.min_users,
        f.min_percent,
        f.window_minutes,
        f.settle_seconds,
    ];
    let fields = [
        typed[0].as_str(),
        typed[1].as_str(),
        typed[2].as_str(),
        typed[3].as_str(),
    ];
    match review::thresholds_from_form(fields) {
        Ok(t) => {
            let org = id.clone();
            let found = db(&state, move |c| {
                Ok(db::write_tx(c, |c| {
                    db::brake::set_org_thresholds(c, &org, t)
                })?)
            })
            .await?;
            if !found {
                return Err(PageError::OwnerNotFound);
            }
            Ok(see_other(&format!("/owner/orgs/{id}/brake?done=saved")))
        }
        Err(why) => {
            let mut page = load(&state, &s, id).await?;
            page.typed = Some(typed);
            page.error = Some(why);
            html_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "owner/directory_brake.html")]
struct ReviewPage {
    layout: Layout,
    org: Org,
    review: Review,
    base: String,
    notice: Option<String>,
    error: Option<String>,
}

async fn review_page(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String)>,
    q: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let (id, dir) = path.into_inner();
    let (org, review) = db(&state, move |c| {
        let org = db::orgs::get(c, &id)?.ok_or(PageError::OwnerNotFound)?;
        let review = review::load(c, &id, &dir)?.ok_or(PageError::OwnerNotFound)?;
        Ok((org, review))
    })
    .await?;
    html(&ReviewPage {
        layout: Layout::new(&state, &s),
        base: format!(
            "/owner/orgs/{}/directories/{}/brake",
            org.id, review.directory.id
        ),
        org,
        review,
        notice: notice(q.done.as_deref()),
        error: None,
    })
}

async fn decide(
    state: web::Data<AppState>,
    s: Session,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let (id, dir, decision) = path.into_inner();
    let (org, d) = (id.clone(), dir.clone());
    db(&state, move |c| {
        db::directories::get(c, &org, &d)?.ok_or(PageError::OwnerNotFound)
    })
    .await?;
    let done = carry_out(&state, &dir, &decision).await?;
    Ok(see_other(&format!(
        "/owner/orgs/{id}/directories/{dir}/brake?done={done}"
    )))
}
