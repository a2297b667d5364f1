//! Postgres: each worker keeps a connection of its own listening on
//! `db::webhooks::DELIVERY_CHANNEL`, so a commit on any instance that queued deliveries wakes
//! every instance's worker. A notification lost (the connection broke) only delays deliveries
//! to the worker's next poll; after reconnecting the worker is woken once, for what it missed.
//!
//! diesel reads notifications without blocking and offers no wait on the socket, so the
//! listener looks every `CHECK_EVERY`: a read of what the socket already holds, no round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;

use super::wake::DeliveryWake;
use crate::db::{self, Backend};

/// How often the listener reads its connection for notifications.
const CHECK_EVERY: Duration = Duration::from_millis(5);
/// The wait before connecting again after the connection failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Starts the listener when `database_url` is a Postgres one; it ends when `stop` is set.
pub(super) fn start(database_url: &str, wake: DeliveryWake, stop: Arc<AtomicBool>) {
    if !matches!(Backend::from_url(database_url), Ok(Backend::Postgres)) {
        return;
    }
    let url = database_url.to_string();
    let spawned = std::thread::Builder::new()
        .name("webhook-listen".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = listen(&url, &wake, &stop) {
                    log::warn!("webhook worker: listening for new deliveries: {e}");
                }
                if !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(RECONNECT_AFTER);
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("webhook worker: no listener thread, deliveries wait for the poll: {e}");
    }
}

/// Listens on a new connection until it fails or `stop` is set.
fn listen(url: &str, wake: &DeliveryWake, stop: &AtomicBool) -> Result<(), String> {
    // The error names neither the URL nor its password.
    let mut pg = diesel::PgConnection::establish(url).map_err(|e| e.to_string())?;
    pg.batch_execute(db::webhooks::LISTEN_DELIVERIES)
        .map_err(|e| e.to_string())?;
    // Deliveries queued while no connection listened.
    wake.notify();
    while !stop.load(Ordering::Relaxed) {
        let mut heard = false;
        for notification in pg.notifications_iter() {
            notification.map_err(|e| e.to_string())?;
            heard = true;
        }
        if heard {
            wake.notify();
        }
        std::thread::sleep(CHECK_EVERY);
    }
    Ok(())
}
