//! Owner console settings: API keys, webhook endpoints (with their delivery logs and replay)
//! and the origins allowed to embed the Admin Portal.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::require_owner;
use crate::db::{self, api_keys::ApiKey, orgs::Org, webhooks::Endpoint};
use crate::domain::DeliveryState;
use crate::pages::{Layout, PageError, db, html, html_with, no_store, see_other, when};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/settings", web::get().to(settings))
        .route("/owner/api-keys", web::post().to(create_key))
        .route("/owner/api-keys/{id}/revoke", web::post().to(revoke_key))
        .route("/owner/webhooks", web::post().to(create_webhook))
        .route("/owner/webhooks/{id}", web::get().to(webhook_page))
        .route(
            "/owner/webhooks/{id}/remove",
            web::post().to(remove_webhook),
        )
        .route("/owner/webhooks/{id}/replay", web::post().to(replay))
        .route(
            "/owner/frame-ancestors",
            web::post().to(set_frame_ancestors),
        );
}

#[derive(Template)]
#[template(path = "owner/settings.html")]
struct SettingsPage {
    layout: Layout,
    keys: Vec<(ApiKey, String, String)>,
    webhooks: Vec<(Endpoint, String)>,
    orgs: Vec<Org>,
    event_types: &'static [&'static str],
    /// A secret just created (API key or webhook signing secret), shown once.
    new_secret: Option<(String, String)>,
    error: Option<String>,
    /// The origins allowed to frame the Admin Portal, one per line.
    frame_ancestors: String,
    /// The origins the `--frame-ancestors` flag allows (not editable here).
    flag_ancestors: Vec<String>,
}

async fn load(state: &web::Data<AppState>, s: &Session) -> Result<SettingsPage, PageError> {
    let (keys, webhooks, orgs, frame_ancestors) = db(state, |c| {
        Ok((
            db::api_keys::list(c)?,
            db::webhooks::list(c)?,
            db::orgs::list(c, "", 500)?,
            crate::embed::origins::owner_allowed(c)?,
        ))
    })
    .await?;
    let org_name = |id: &Option<String>| match id {
        None => "All organizations".to_string(),
        Some(id) => orgs
            .iter()
            .find(|o| &o.id == id)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| id.clone()),
    };
    Ok(SettingsPage {
        layout: Layout::new(state, s),
        keys: keys
            .into_iter()
            .map(|k| {
                let last = k
                    .last_used_at
                    .as_ref()
                    .map(when)
                    .unwrap_or_else(|| "never".into());
                let created = when(&k.created_at);
                (k, created, last)
            })
            .collect(),
        webhooks: webhooks
            .into_iter()
            .map(|w| {
                let o = org_name(&w.org_id);
                (w, o)
            })
            .collect(),
        orgs,
        event_types: db::events::EVENT_TYPES,
        new_secret: None,
        error: None,
        frame_ancestors: frame_ancestors
            .iter()
            .map(crate::embed::origins::FrameOrigin::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        flag_ancestors: state
            .config
            .frame_ancestors
            .iter()
            .map(|o| o.as_str().to_string())
            .collect(),
    })
}

#[derive(Deserialize)]
struct FrameAncestorsForm {
    origins: String,
}

async fn set_frame_ancestors(
    state: web::Data<AppState>,
    s: Session,
    form: web::Form<FrameAncestorsForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    match crate::embed::origins::parse_list(&form.origins) {
        Ok(origins) => {
            db(&state, move |c| {
                Ok(crate::embed::origins::set_allowed(c, &origins)?)
            })
            .await?;
            Ok(see_other("/owner/settings#embedding"))
        }
        Err(e) => {
            let mut page = load(&state, &s).await?;
            page.error = Some(format!("Nothing saved: {e}."));
            page.frame_ancestors = form.into_inner().origins;
            html_with(actix_web::http::StatusCode::BAD_REQUEST, &page)
        }
    }
}

async fn settings(state: web::Data<AppState>, s: Session) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    html(&load(&state, &s).await?)
}

#[derive(Deserialize)]
struct KeyForm {
    name: String,
}

async fn create_key(
    state: web::Data<AppState>,
    s: Session,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let name = form
        .into_inner()
        .name
        .trim()
        .chars()
        .take(100)
        .collect::<String>();
    if name.is_empty() {
        let mut page = load(&state, &s).await?;
        page.error = Some("Name the key after the application that will use it.".into());
        return Ok(no_store(page.render()?));
    }
    let (_, key) = db(&state, move |c| Ok(db::api_keys::create(c, &name)?)).await?;
    let mut page = load(&state, &s).await?;
    page.new_secret = Some(("API key".into(), key));
    Ok(no_store(page.render()?))
}

async fn revoke_key(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let id = id.into_inner();
    db(&state, move |c| Ok(db::api_keys::revoke(c, &id)?)).await?;
    Ok(see_other("/owner/settings"))
}

#[derive(Deserialize)]
struct WebhookForm {
    url: String,
    org: Option<String>,
    events: Option<String>,
}

async fn create_webhook(
    state: web::Data<AppState>,
    s: Session,
    form: web::Form<WebhookForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let form = form.into_inner();
    let types: Vec<String> = form
        .events
        .unwrap_or_default()
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let filter = match crate::events::endpoint::validate(form.url.trim(), &types) {
        Ok(f) => f,
        Err(e) => {
            let mut page = load(&state, &s).await?;
            page.error = Some(e);
            return Ok(no_store(page.render()?));
        }
    };
    let url = form.url.trim().to_string();
    let org = form.org.filter(|o| !o.is_empty());
    let keys = state.config.secret_keys.clone();
    let (_, secret) = db(&state, move |c| {
        if let Some(o) = &org {
            db::orgs::get(c, o)?.ok_or(PageError::OwnerNotFound)?;
        }
        Ok(db::webhooks::create(
            c,
            &keys,
            &url,
            org.as_deref(),
            &filter,
        )?)
    })
    .await?;
    let mut page = load(&state, &s).await?;
    page.new_secret = Some(("Webhook signing secret".into(), secret));
    Ok(no_store(page.render()?))
}

async fn remove_webhook(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let id = id.into_inner();
    db(&state, move |c| Ok(db::webhooks::remove(c, &id)?)).await?;
    Ok(see_other("/owner/settings"))
}

/// A delivery with its attempts, for the log.
pub struct DeliveryRow {
    pub d: db::webhooks::Delivery,
    pub attempts: Vec<(db::webhooks::Attempt, String)>,
    pub next: String,
}

#[derive(Template)]
#[template(path = "owner/webhook.html")]
struct WebhookPage {
    layout: Layout,
    endpoint: Endpoint,
    deliveries: Vec<DeliveryRow>,
    queued: Option<usize>,
}

async fn load_webhook(
    state: &web::Data<AppState>,
    s: &Session,
    id: String,
) -> Result<WebhookPage, PageError> {
    let (endpoint, deliveries, attempts) = db(state, move |c| {
        let e = db::webhooks::get(c, &id)?.ok_or(PageError::OwnerNotFound)?;
        let d = db::webhooks::deliveries(c, &id, 100)?;
        let a = db::webhooks::attempts(c, &id, 500)?;
        Ok((e, d, a))
    })
    .await?;
    let deliveries = deliveries
        .into_iter()
        .map(|d| DeliveryRow {
            attempts: attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .map(|a| (a.clone(), when(&a.at)))
                .collect(),
            next: when(&d.next_attempt_at),
            d,
        })
        .collect();
    Ok(WebhookPage {
        layout: Layout::new(state, s),
        endpoint,
        deliveries,
        queued: None,
    })
}

async fn webhook_page(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    html(&load_webhook(&state, &s, id.into_inner()).await?)
}

#[derive(Deserialize)]
struct ReplayForm {
    event_seq: Option<String>,
    since_seq: Option<String>,
}

async fn replay(
    state: web::Data<AppState>,
    s: Session,
    id: web::Path<String>,
    form: web::Form<ReplayForm>,
) -> Result<HttpResponse, PageError> {
    require_owner(&s)?;
    let id = id.into_inner();
    let form = form.into_inner();
    let parse = |v: Option<String>| v.and_then(|s| s.trim().parse::<i64>().ok());
    let (one, since) = (parse(form.event_seq), parse(form.since_seq));
    let endpoint_id = id.clone();
    let n = db(&state, move |c| {
        Ok(match (one, since) {
            // One event: replay exactly that sequence number.
            (Some(seq), _) => db::webhooks::replay_range(c, &endpoint_id, seq, Some(seq))?,
            (None, Some(seq)) => db::webhooks::replay_range(c, &endpoint_id, seq, None)?,
            (None, None) => 0,
        })
    })
    .await?;
    state.delivery_wake.notify();
    let mut page = load_webhook(&state, &s, id).await?;
    page.queued = Some(n);
    html(&page)
}
