//! The banner every Admin Portal page shows while a directory of the organization has an open
//! alert (see `crate::alerts`): each alert's sentence, with a link to its directory.

use crate::db::{self, DbConn};
use crate::providers;

/// One open alert as the banner shows it.
pub struct BannerAlert {
    pub directory_id: String,
    pub provider: &'static str,
    pub title: &'static str,
    pub sentence: String,
}

/// The organization's open alerts (none: no banner).
#[derive(Default)]
pub struct AlertBanner {
    pub alerts: Vec<BannerAlert>,
}

impl AlertBanner {
    pub fn load(c: &mut DbConn, org_id: &str) -> diesel::QueryResult<AlertBanner> {
        let dirs = db::directories::list_for_org(c, org_id)?;
        let alerts = db::alerts::open_for_org(c, org_id)?
            .into_iter()
            .map(|a| BannerAlert {
                provider: dirs
                    .iter()
                    .find(|d| d.id == a.directory_id)
                    .and_then(|d| providers::by_slug(&d.provider))
                    .map_or("Directory", |p| p.name),
                title: a.title(),
                directory_id: a.directory_id,
                sentence: a.detail,
            })
            .collect();
        Ok(AlertBanner { alerts })
    }
}
