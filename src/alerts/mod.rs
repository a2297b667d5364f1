//! Freshness and drift alerts about directories: a provisioning sync that silently stopped
//! (`quiet`), a provider sending a refused token (`rejected_tokens`), an old token still in
//! use days after a rotation (`old_token`), and many failed requests (`errors`). The rules
//! (`rules`) are a pure function of what was observed of a directory and the time;
//! `evaluate_all` applies them to every directory at a given time, raising and clearing the
//! stored alerts (`db::alerts`, each with its `directory.alert_raised` or
//! `directory.alert_cleared` event), and every instance runs it once a minute
//! (`evaluate_forever`).

pub mod rules;

use chrono::NaiveDateTime;
use diesel::QueryResult;

use crate::db::{self, DbConn};
use crate::state::AppState;
pub use rules::AlertKind;

/// What one evaluation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub raised: usize,
    pub cleared: usize,
}

/// Evaluates every directory at `now`: raises the alerts whose condition holds and clears the
/// open ones whose condition ended. Instances running it together raise and clear each alert
/// once.
pub fn evaluate_all(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<Outcome> {
    let mut outcome = Outcome::default();
    for candidate in db::alerts::candidates(conn)? {
        let observed = db::alerts::observe(conn, &candidate, now)?;
        let findings = rules::evaluate(&observed, now);
        let open = db::alerts::open_for_directory(conn, &candidate.id)?;
        for finding in &findings {
            match open.iter().find(|a| a.kind == finding.kind.as_str()) {
                Some(alert) if alert.detail != finding.sentence => {
                    db::alerts::update_detail(conn, &alert.id, &finding.sentence)?
                }
                Some(_) => {}
                None => {
                    if db::alerts::raise(conn, &candidate.id, finding.kind, &finding.sentence, now)?
                    {
                        outcome.raised += 1;
                    }
                }
            }
        }
        for alert in &open {
            if !findings.iter().any(|f| f.kind.as_str() == alert.kind)
                && db::alerts::clear(conn, alert, now)?
            {
                outcome.cleared += 1;
            }
        }
    }
    Ok(outcome)
}

/// How often an instance evaluates.
const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Evaluates at start and then every minute, for as long as the server runs.
pub async fn evaluate_forever(state: actix_web::web::Data<AppState>) {
    loop {
        let pool = state.pool.clone();
        let result = actix_web::web::block(move || -> Result<Outcome, String> {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            evaluate_all(&mut conn, db::now()).map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(o)) if o != Outcome::default() => {
                log::info!("alerts: {} raised, {} cleared", o.raised, o.cleared)
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => log::warn!("evaluating directory alerts: {e}"),
            Err(e) => log::warn!("evaluating directory alerts: {e}"),
        }
        actix_web::rt::time::sleep(EVERY).await;
    }
}
