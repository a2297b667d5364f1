//! Prometheus metrics of one instance, in a registry of its own (so that servers started side
//! by side, as the tests do, count apart). Labels take values from fixed, short sets only:
//! never a directory, user or path, whose numbers grow without bound.
//!
//! Counted as they happen: SCIM requests and their latency, the writer's batch sizes. Read at
//! scrape time: the writer's queue, the webhook worker's outcome counts, the pool, and what
//! the database holds (active directories, delivery lag, dead letters; see `db::gauges`).

pub mod endpoint;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::db::Pool;
use crate::db::gauges::Gauges;
use crate::db::writer::WriterMetrics;
use crate::events::WorkerHealth;

/// Latency buckets of SCIM requests, in seconds: a read takes a millisecond or two, a write
/// waits for its batch's commit, a large membership change takes seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Jobs and log rows in one writer batch (at most `MAX_BATCH` jobs and a few hundred rows).
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0];
/// Seconds of a writer batch or its commit: finer than requests' at the low end, where an idle
/// disk syncs (a tenth of a millisecond) and a loaded one does not.
const WRITER_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// What a SCIM request is counted under.
#[derive(Debug, Clone, Copy)]
pub struct ScimRequest<'a> {
    pub method: &'a str,
    /// `Users`, `Groups`, `Schemas`, … or `other` (see `scim_endpoint::resource_label`).
    pub resource: &'static str,
    pub status: u16,
    /// The directory's provider slug, or `unknown` before its token was checked.
    pub provider: &'static str,
    pub seconds: f64,
}

/// The instance's metrics.
pub struct Metrics {
    registry: Registry,
    scim_requests: IntCounterVec,
    scim_latency: HistogramVec,
    writer: WriterMetrics,
    writer_queue_depth: IntGauge,
    deliveries: IntCounterVec,
    delivery_lag: Gauge,
    dead_letters: IntGauge,
    active_directories: IntGauge,
    pool_in_use: IntGauge,
    pool_max: IntGauge,
    pool_saturation: Gauge,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let scim_requests = IntCounterVec::new(
            Opts::new("roster_scim_requests_total", "SCIM requests answered"),
            &["method", "resource", "status", "provider"],
        )?;
        let scim_latency = HistogramVec::new(
            HistogramOpts::new(
                "roster_scim_request_duration_seconds",
                "Time to answer a SCIM request",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "resource", "provider"],
        )?;
        let writer_batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "roster_writer_batch_size",
                "Jobs and request-log rows committed together by the writer",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
        )?;
        let writer_batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "roster_writer_batch_duration_seconds",
                "Time the writer took to run and commit one batch",
            )
            .buckets(WRITER_BUCKETS.to_vec()),
        )?;
        let writer_commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "roster_writer_commit_duration_seconds",
                "Time the database took to make one writer batch durable (its COMMIT)",
            )
            .buckets(WRITER_BUCKETS.to_vec()),
        )?;
        let writer_queue_depth = IntGauge::new(
            "roster_writer_queue_depth",
            "Jobs and request-log rows waiting for the writer",
        )?;
        let deliveries = IntCounterVec::new(
            Opts::new(
                "roster_webhook_deliveries_total",
                "Webhook delivery attempts by this instance, by outcome",
            ),
            &["outcome"],
        )?;
        let delivery_lag = Gauge::new(
            "roster_webhook_delivery_lag_seconds",
            "Age of the oldest webhook delivery still pending (0 when none is)",
        )?;
        let dead_letters = IntGauge::new(
            "roster_webhook_dead_letters",
            "Webhook deliveries dead-lettered and not replayed",
        )?;
        let active_directories =
            IntGauge::new("roster_active_directories", "Directories not disabled")?;
        let pool_in_use = IntGauge::new(
            "roster_db_pool_connections_in_use",
            "Database connections of this instance's pool in use",
        )?;
        let pool_max = IntGauge::new(
            "roster_db_pool_connections_max",
            "Size of this instance's database pool",
        )?;
        let pool_saturation = Gauge::new(
            "roster_db_pool_saturation",
            "Connections in use over the pool's size (0 to 1)",
        )?;
        registry.register(Box::new(scim_requests.clone()))?;
        registry.register(Box::new(scim_latency.clone()))?;
        registry.register(Box::new(writer_batch_size.clone()))?;
        registry.register(Box::new(writer_batch_seconds.clone()))?;
        registry.register(Box::new(writer_commit_seconds.clone()))?;
        registry.register(Box::new(writer_queue_depth.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(delivery_lag.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(active_directories.clone()))?;
        registry.register(Box::new(pool_in_use.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(pool_saturation.clone()))?;
        // Every outcome shows from the start (a counter absent until its first increment
        // defeats `rate()` and alerts on it).
        for outcome in DeliveryOutcome::ALL {
            deliveries.with_label_values(&[outcome.label()]);
        }
        Ok(Metrics {
            registry,
            scim_requests,
            scim_latency,
            writer: WriterMetrics {
                batch_sizes: writer_batch_size,
                batch_seconds: writer_batch_seconds,
                commit_seconds: writer_commit_seconds,
            },
            writer_queue_depth,
            deliveries,
            delivery_lag,
            dead_letters,
            active_directories,
            pool_in_use,
            pool_max,
            pool_saturation,
        })
    }

    /// The histograms the writer records its batches in.
    pub fn writer(&self) -> WriterMetrics {
        self.writer.clone()
    }

    /// Counts one answered SCIM request.
    pub fn observe_scim(&self, r: &ScimRequest<'_>) {
        let class = match r.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        // Methods outside the standard set are one label, not as many as clients invent.
        let method = match r.method {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => r.method,
            _ => "other",
        };
        self.scim_requests
            .with_label_values(&[method, r.resource, class, r.provider])
            .inc();
        self.scim_latency
            .with_label_values(&[method, r.resource, r.provider])
            .observe(r.seconds);
    }

    /// Brings the values read at scrape time up to date, then renders every metric in the
    /// Prometheus text format.
    pub fn render(&self, now: Sampled<'_>) -> Result<String, prometheus::Error> {
        self.writer_queue_depth
            .set(i64::try_from(now.writer_queue_depth).unwrap_or(i64::MAX));
        for outcome in DeliveryOutcome::ALL {
            let counter = self.deliveries.with_label_values(&[outcome.label()]);
            let total = now.worker.delivered(outcome);
            // The worker's counts only grow; the counter follows them.
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        if let Some(g) = &now.gauges {
            let lag = g
                .oldest_pending_delivery
                .map(|at| (crate::db::now() - at).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            self.delivery_lag.set(lag);
            self.dead_letters.set(g.dead_letters);
            self.active_directories.set(g.active_directories);
        }
        let state = now.pool.state();
        let max = now.pool.max_size();
        let in_use = state.connections.saturating_sub(state.idle_connections);
        self.pool_in_use.set(i64::from(in_use));
        self.pool_max.set(i64::from(max));
        self.pool_saturation
            .set(f64::from(in_use) / f64::from(max.max(1)));
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// What is read at scrape time.
pub struct Sampled<'a> {
    pub writer_queue_depth: usize,
    pub worker: &'a WorkerHealth,
    pub pool: &'a Pool,
    /// `None` when the database could not be read: those gauges keep their last values.
    pub gauges: Option<Gauges>,
}

/// How a webhook delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed and will be retried.
    Failed,
    /// It failed for the last time: dead-lettered.
    Dead,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 3] = [
        DeliveryOutcome::Delivered,
        DeliveryOutcome::Failed,
        DeliveryOutcome::Dead,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Dead => "dead",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_are_built() {
        let m = Metrics::new().unwrap();
        m.observe_scim(&ScimRequest {
            method: "BREW",
            resource: "Users",
            status: 201,
            provider: "okta",
            seconds: 0.01,
        });
        let families = m.registry.gather();
        let requests = families
            .iter()
            .find(|f| f.name() == "roster_scim_requests_total")
            .unwrap();
        let labels: Vec<(&str, &str)> = requests.get_metric()[0]
            .get_label()
            .iter()
            .map(|l| (l.name(), l.value()))
            .collect();
        assert!(labels.contains(&("method", "other")), "{labels:?}");
        assert!(labels.contains(&("status", "2xx")), "{labels:?}");
    }
}
