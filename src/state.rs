//! `AppState`: what every request handler shares (database pool, configuration, the SCIM
//! writer, paging bookmarks, throttles, the webhook worker's health and wake, and the metrics).

use std::sync::Arc;

use crate::auth::throttle::AuthThrottle;
use crate::config::Config;
use crate::db::{self, Pool};
use crate::events::WorkerHealth;
use crate::events::wake::DeliveryWake;
use crate::metrics::Metrics;
use crate::scim_endpoint::body::BodyBudget;
use crate::scim_endpoint::fair_share::FairShare;
use crate::scim_endpoint::group_turns::GroupTurns;
use crate::scim_endpoint::read_slots::ReadSlots;

/// State shared by every handler.
pub struct AppState {
    pub pool: Pool,
    pub config: Config,
    /// Group commit of the SCIM endpoint's writes (and on SQLite the webhook worker's).
    pub writer: Arc<db::writer::Writer>,
    /// Bookmarks for paging each directory's users (see `db::user_pages`).
    pub user_pages: Arc<db::user_pages::Bookmarks>,
    /// Which tokens' use this process recorded lately (see `db::directories::TouchGate`).
    pub touches: Arc<db::directories::TouchGate>,
    /// Memory for SCIM bodies being received, shared by all requests.
    pub body_budget: BodyBudget,
    /// Failed SCIM authentications by client address.
    pub auth_throttle: AuthThrottle,
    /// This instance's webhook worker, as `/readyz` reports it.
    pub worker_health: Arc<WorkerHealth>,
    /// Wakes this instance's webhook worker when a commit queued deliveries.
    pub delivery_wake: DeliveryWake,
    /// Writes to a group one at a time (see `scim_endpoint::group_turns`).
    pub group_turns: GroupTurns,
    /// The places SCIM requests are served in, shared fairly between directories (see
    /// `scim_endpoint::fair_share`).
    pub fair_share: Arc<FairShare>,
    /// The slots SCIM reads hold while they query the database (see
    /// `scim_endpoint::read_slots`).
    pub read_slots: Arc<ReadSlots>,
    /// What `/metrics` serves (`None` if they could not be set up: logged at start).
    pub metrics: Option<Metrics>,
}

impl AppState {
    /// The state of one instance; starts its database writer thread.
    pub fn new(pool: Pool, config: Config) -> AppState {
        let delivery_wake = DeliveryWake::default();
        let metrics = Metrics::new()
            .inspect_err(|e| log::error!("metrics are not available: {e}"))
            .ok();
        let writer = Arc::new(match &metrics {
            Some(m) => {
                db::writer::Writer::start_measured(pool.clone(), delivery_wake.clone(), m.writer())
            }
            None => db::writer::Writer::start(pool.clone(), delivery_wake.clone()),
        });
        let body_budget = BodyBudget::new(config.limits.in_flight_body_bytes);
        let auth_throttle = AuthThrottle::new(config.limits.failed_auth_per_minute);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // The pool was opened from this URL: it names a backend.
        let backend = db::Backend::from_url(&config.database_url).unwrap_or(db::Backend::Sqlite);
        AppState {
            pool,
            config,
            writer,
            user_pages: Default::default(),
            touches: Default::default(),
            worker_health: Default::default(),
            delivery_wake,
            group_turns: Default::default(),
            fair_share: Arc::new(FairShare::for_cores(cores)),
            read_slots: Arc::new(ReadSlots::new(backend, cores)),
            body_budget,
            auth_throttle,
            metrics,
        }
    }
}
