//! The delivery worker: one per instance (instances share the work through leases). Its
//! dispatcher claims due deliveries when a commit wakes it (`wake`; on Postgres also other
//! instances' commits, `listen`) or at the latest every `Delivery::poll_interval`, and hands
//! each endpoint's deliveries of each directory to a lane of their own (`lanes`), which
//! attempts them in order; the outcomes are recorded with the dispatcher's next claim
//! (`outcomes`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::lanes::Lanes;
use super::outcomes::{self, Outcomes, RunOutcome};
use super::wake::DeliveryWake;
use super::{Deliver, attempt, listen, next_retry};
use crate::at_rest::SecretKeys;
use crate::config::Delivery;
use crate::db::webhooks::{self, ClaimRequest, Due, LaneKey, Outcome};
use crate::db::writer::Writer;
use crate::db::{self, DbConn, Pool};
use crate::metrics::DeliveryOutcome;

/// Deliveries claimed in one round at most.
const CLAIM_LIMIT: usize = 256;
/// Deliveries of one endpoint and directory claimed in one round at most (a lane's run). A
/// run's claim and the recording of its outcomes each wait for the writer's batch during a
/// large sync: at 8 a run, a tenant creating 400 users a second beside another's initial sync
/// fell seconds behind on the endpoint both deliver to.
const PER_DIRECTORY: usize = 32;
/// Lanes of one endpoint running at once at most (deliveries in flight to one receiver): a
/// quiet directory's change goes out beside a large sync's run to the same receiver, not
/// after it, and a receiver that hangs holds this many lanes at most.
const LANES_PER_ENDPOINT: usize = 4;
/// Lanes running at once at most.
const MAX_LANES: usize = 64;
/// Attempts a lane's run has time for, each taking the whole timeout: the lease covers them
/// (and `LEASE_MARGIN`); the lane gives back what it has no time left for.
const ATTEMPTS_PER_LEASE: u32 = 4;
/// What the lease adds to the time for the attempts: time to record the outcomes.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// What `/readyz` says of this instance's delivery worker.
#[derive(Debug, Default)]
pub struct WorkerHealth {
    /// Whether a worker thread is running now (false between a crash and its restart).
    running: AtomicBool,
    /// Panics recovered from: in an attempt, or of the whole thread (then restarted).
    failures: AtomicU64,
    last_failure: std::sync::Mutex<Option<String>>,
    /// Attempts that ended delivered, failed (to be retried) and dead, for `/metrics`.
    outcomes: [AtomicU64; 3],
}

impl WorkerHealth {
    fn record_failure(&self, why: &str) {
        log::error!("webhook worker: {why}");
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(why.to_string());
        }
    }

    fn record_outcome(&self, outcome: DeliveryOutcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Attempts of this instance that ended with `outcome`.
    pub fn delivered(&self, outcome: DeliveryOutcome) -> u64 {
        self.outcomes[outcome as usize].load(Ordering::Relaxed)
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// One line for `/readyz`: running or not, and the panics recovered from.
    pub fn describe(&self) -> String {
        let failures = self.failures.load(Ordering::Relaxed);
        let state = if self.running() {
            "running"
        } else {
            "not running"
        };
        match self.last_failure.lock().ok().and_then(|l| l.clone()) {
            Some(last) if failures > 0 => format!(
                "webhook worker: {state}; recovered from {failures} failure(s), last: {last}"
            ),
            _ => format!("webhook worker: {state}"),
        }
    }
}

/// A running delivery worker; dropping the handle stops it and waits for its dispatcher to
/// end (lanes finish what they hold, and record it themselves).
pub struct Worker {
    stop: Arc<AtomicBool>,
    wake: DeliveryWake,
    supervisor: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify();
        // The dispatcher holds the writer on SQLite: once it has ended, the writer can finish
        // what is queued when the rest of the instance lets it go.
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
    }
}

/// Where the dispatcher records outcomes and claims deliveries.
#[derive(Clone)]
enum Claims {
    /// SQLite: in the writer's batches. One connection then does every write, and keeps its
    /// page cache: another connection's commit makes it read every page it touches again (the
    /// writer read 1.9 times the bytes during a large sync while a quiet directory's lane
    /// claimed and recorded on a connection of its own).
    InWriter(Arc<Writer>),
    /// Postgres: in a transaction of the dispatcher's own, committed without waiting for the
    /// WAL flush: lost in a crash, the deliveries are attempted again (at least once), and
    /// the dispatcher, which claims for every lane in turn, does not wait on the disk.
    Own,
}

/// What the dispatcher and its lanes share.
struct Context {
    pool: Pool,
    cfg: Delivery,
    keys: SecretKeys,
    health: Arc<WorkerHealth>,
    deliver: Deliver,
    wake: DeliveryWake,
    agent: ureq::Agent,
    /// Runs ended, recorded with the next claim.
    outcomes: Outcomes,
}

/// Starts the delivery worker on its own thread, woken by `wake` (and on Postgres by other
/// instances' commits, heard on a connection of its own to `database_url`).
pub fn start(
    pool: Pool,
    writer: Arc<Writer>,
    database_url: &str,
    cfg: Delivery,
    keys: SecretKeys,
    health: Arc<WorkerHealth>,
    wake: DeliveryWake,
) -> Worker {
    start_with(
        pool,
        writer,
        database_url,
        cfg,
        keys,
        health,
        wake,
        Arc::new(attempt),
    )
}

/// [`start`] with another way to attempt a delivery. A supervisor thread restarts the worker
/// if it ever dies (the log and `health` say why), so delivery never stops silently.
#[allow(clippy::too_many_arguments)]
pub fn start_with(
    pool: Pool,
    writer: Arc<Writer>,
    database_url: &str,
    cfg: Delivery,
    keys: SecretKeys,
    health: Arc<WorkerHealth>,
    wake: DeliveryWake,
    deliver: Deliver,
) -> Worker {
    let stop = Arc::new(AtomicBool::new(false));
    listen::start(database_url, wake.clone(), stop.clone());
    let claims = match db::Backend::from_url(database_url) {
        Ok(db::Backend::Sqlite) => Claims::InWriter(writer),
        _ => Claims::Own,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let context = Arc::new(Context {
        pool,
        cfg,
        keys,
        health,
        deliver,
        wake: wake.clone(),
        agent,
        outcomes: Outcomes::default(),
    });
    let flag = stop.clone();
    let supervisor = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let (context_in, flag_in) = (context.clone(), flag.clone());
            let claims_in = claims.clone();
            context.health.running.store(true, Ordering::Relaxed);
            let run = std::thread::Builder::new()
                .name("webhook-worker".into())
                .spawn(move || work(&context_in, &claims_in, &flag_in))
                .map_err(|e| e.to_string())
                .and_then(|t| t.join().map_err(|p| panic_message(p.as_ref())));
            context.health.running.store(false, Ordering::Relaxed);
            match run {
                Ok(()) => break,
                Err(why) => {
                    context
                        .health
                        .record_failure(&format!("the worker died ({why}); restarting it"));
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    });
    Worker {
        stop,
        wake,
        supervisor: Some(supervisor),
    }
}

/// The dispatcher's loop: hand what is due to lanes, prune old events now and then, wait for
/// a wake or the poll interval; until stopped.
fn work(context: &Arc<Context>, claims: &Claims, stop: &AtomicBool) {
    let lanes = Lanes::new(context.wake.clone());
    let mut last_prune = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match dispatch(context, claims, &lanes) {
            // A full claim: more may be due at once.
            Ok(n) if n >= CLAIM_LIMIT => continue,
            Ok(_) => {}
            Err(e) => log::error!("webhook worker: {e}"),
        }
        if last_prune.elapsed() > PRUNE_EVERY {
            last_prune = Instant::now();
            if let Ok(mut c) = context.pool.get()
                && let Err(e) = db::events::prune(&mut c, context.cfg.retention_days)
            {
                log::error!("pruning events: {e}");
            }
        }
        context.wake.wait(context.cfg.poll_interval);
    }
    // Lanes still running record their own outcomes from now on.
    record_alone(context, &context.outcomes.close());
}

/// Records the runs that ended and claims due deliveries of the endpoints and directories
/// without a running lane, in one transaction, and starts a lane for each run claimed.
/// Returns how many deliveries were claimed.
fn dispatch(context: &Arc<Context>, claims: &Claims, lanes: &Lanes) -> Result<usize, String> {
    // Busy first: a lane hands its outcomes over before it stops being busy, so every lane
    // not counted busy here has its outcomes recorded below, before its next claim.
    let busy = lanes.busy();
    let ended = context.outcomes.take();
    let attempts_time = context.cfg.timeout.saturating_mul(ATTEMPTS_PER_LEASE);
    let lease = chrono::Duration::from_std(attempts_time + LEASE_MARGIN)
        .unwrap_or(chrono::Duration::seconds(60));
    let attempts_until = Instant::now() + attempts_time;
    let keys = context.keys.clone();
    let record_and_claim = move |c: &mut DbConn| {
        outcomes::record(c, &ended)?;
        if busy.len() >= MAX_LANES {
            return Ok(Vec::new());
        }
        webhooks::claim(
            c,
            &keys,
            &ClaimRequest {
                limit: CLAIM_LIMIT,
                lanes_per_endpoint: LANES_PER_ENDPOINT,
                per_directory: PER_DIRECTORY,
                lease,
                busy: &busy,
            },
        )
    };
    // Failed, the leases end and the deliveries are attempted again: at least once.
    let failed = |e: diesel::result::Error| format!("recording attempts and claiming: {e}");
    let due = match claims {
        Claims::InWriter(writer) => writer
            .run_blocking(move |batch| record_and_claim(batch.conn()))
            .map_err(|e| e.to_string())?
            .map_err(failed)?,
        Claims::Own => {
            let mut conn = context.pool.get().map_err(|e| e.to_string())?;
            db::relaxed_tx(&mut conn, record_and_claim).map_err(failed)?
        }
    };
    let claimed = due.len();
    // `claim` gives each lane's run together, in event order.
    let mut rest = due.into_iter().peekable();
    while let Some(first) = rest.next() {
        let key = LaneKey {
            endpoint_id: first.endpoint.id.clone(),
            directory_id: first.directory_id.clone(),
        };
        let mut run = vec![first];
        while let Some(next) =
            rest.next_if(|d| d.endpoint.id == key.endpoint_id && d.directory_id == key.directory_id)
        {
            run.push(next);
        }
        let context = context.clone();
        lanes.run(key, move || {
            let ended = deliver_run(&context, run, attempts_until);
            if let Some(ended) = context.outcomes.hand_over(ended) {
                record_alone(&context, &[ended]);
            }
        });
    }
    Ok(claimed)
}

/// Records `runs` in a transaction of their own (the dispatcher has stopped).
fn record_alone(context: &Context, runs: &[RunOutcome]) {
    if runs.is_empty() {
        return;
    }
    let recorded = context
        .pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut c| {
            db::write_tx(&mut c, |c| outcomes::record(c, runs)).map_err(|e| e.to_string())
        });
    if let Err(e) = recorded {
        // The leases end and the deliveries are attempted again: at least once.
        log::error!("webhook worker: recording attempts: {e}");
    }
}

/// A lane's work: attempts one endpoint's deliveries of one directory in order, and returns
/// the outcomes, for the dispatcher to record. A delivery whose attempt panics is recorded as
/// a failed attempt (and retried on schedule), so one bad delivery never stops the others.
/// After a failure, the rest of the run is given back unattempted (they must not overtake
/// it), and so is whatever an attempt could no longer finish before `attempts_until` (their
/// lease would run out).
fn deliver_run(context: &Context, run: Vec<Due>, attempts_until: Instant) -> RunOutcome {
    let mut ended = RunOutcome::new(run);
    let mut failed = false;
    for index in 0..ended.run().len() {
        let no_time_left = Instant::now() + context.cfg.timeout > attempts_until;
        if no_time_left || failed {
            ended.released(index);
            continue;
        }
        let due = &ended.run()[index];
        let outcome = attempt_caught(context, due);
        let retry_in = if outcome.succeeded() {
            context.health.record_outcome(DeliveryOutcome::Delivered);
            None
        } else {
            failed = true;
            log::warn!(
                "webhook delivery {} to endpoint {} failed (attempt {}): {}",
                due.delivery_id,
                due.endpoint.id,
                due.attempts + 1,
                outcome.error.as_deref().unwrap_or("?")
            );
            let retry_in = next_retry(&context.cfg, due.attempts + 1);
            context.health.record_outcome(if retry_in.is_some() {
                DeliveryOutcome::Failed
            } else {
                DeliveryOutcome::Dead
            });
            retry_in
        };
        ended.attempted(index, outcome, retry_in);
    }
    ended
}

fn attempt_caught(context: &Context, due: &Due) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (context.deliver)(&context.agent, due)
    }))
    .unwrap_or_else(|payload| {
        let why = panic_message(payload.as_ref());
        context
            .health
            .record_failure(&format!("a delivery attempt panicked: {why}"));
        Outcome {
            status_code: None,
            latency_ms: 0,
            error: Some(format!("internal error in Roster's delivery worker: {why}")),
            response_excerpt: None,
        }
    })
}

/// The text of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}
