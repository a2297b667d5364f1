//! What `/metrics` reads from the database at scrape time: counts that every instance sees
//! alike, so any instance scraped reports the same.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{directories, webhook_deliveries};
use crate::domain::DeliveryState;

/// The database's side of the metrics.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Directories not disabled.
    pub active_directories: i64,
    /// When the oldest delivery still waiting for its receiver was queued.
    pub oldest_pending_delivery: Option<NaiveDateTime>,
    /// Deliveries dead-lettered and not replayed.
    pub dead_letters: i64,
}

pub fn read(conn: &mut DbConn) -> QueryResult<Gauges> {
    crate::on_backend!(conn, |c| {
        let active_directories = directories::table
            .filter(directories::status.eq("active"))
            .count()
            .get_result(c)?;
        let oldest_pending_delivery = webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(DeliveryState::Pending.as_str()))
            .select(diesel::dsl::min(webhook_deliveries::created_at))
            .first(c)?;
        let dead_letters = webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(DeliveryState::Dead.as_str()))
            .count()
            .get_result(c)?;
        Ok(Gauges {
            active_directories,
            oldest_pending_delivery,
            dead_letters,
        })
    })
}
