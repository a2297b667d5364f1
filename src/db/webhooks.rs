//! Webhook endpoints, their deliveries (one per endpoint and event) and delivery attempts.
//! Deliveries are claimed with a lease, so a crashed instance's work is retried (at least once)
//! and several instances on Postgres never work on the same delivery at once.

use chrono::{Duration, NaiveDateTime, SubsecRound};
use diesel::prelude::*;

use super::schema::{events, webhook_attempts, webhook_deliveries, webhook_endpoints};
use super::{DbConn, new_id, now, write_tx};
use crate::at_rest::{Purpose, SecretKeys};
use crate::domain::DeliveryState;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub org_id: Option<String>,
    pub event_types: String,
    /// The signing secret as stored: sealed (see `at_rest`); open it with the operator's keys.
    #[diesel(column_name = secret)]
    pub sealed_secret: String,
    pub created_at: NaiveDateTime,
    pub disabled_at: Option<NaiveDateTime>,
}

/// What every signing secret starts with (the Standard Webhooks form).
pub const SECRET_PREFIX: &str = "whsec_";

/// A new endpoint and its signing secret (`whsec_` + base64 of 24 random bytes), returned
/// this once to be shown. The secret is sealed, not hashed: Roster must sign with it.
pub fn create(
    conn: &mut DbConn,
    keys: &SecretKeys,
    url: &str,
    org_id: Option<&str>,
    event_types: &str,
) -> QueryResult<(Endpoint, String)> {
    use base64::Engine;
    let mut key = [0u8; 24];
    rand::fill(&mut key);
    let secret = format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let id = new_id();
    let e = Endpoint {
        sealed_secret: keys.seal(&secret, &Purpose::webhook_secret(&id)),
        id,
        url: url.to_string(),
        org_id: org_id.map(str::to_string),
        event_types: event_types.to_string(),
        created_at: now(),
        disabled_at: None,
    };
    write_tx(conn, |c| {
        diesel::insert_into(webhook_endpoints::table)
            .values((
                webhook_endpoints::id.eq(&e.id),
                webhook_endpoints::url.eq(&e.url),
                webhook_endpoints::org_id.eq(&e.org_id),
                webhook_endpoints::event_types.eq(&e.event_types),
                webhook_endpoints::secret.eq(&e.sealed_secret),
                webhook_endpoints::created_at.eq(e.created_at),
            ))
            .execute(c)
    })?;
    Ok((e, secret))
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::disabled_at.is_null())
        .order(webhook_endpoints::created_at.asc())
        .select(Endpoint::as_select())
        .load(conn)
}

pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<Endpoint>> {
    webhook_endpoints::table
        .find(id)
        .filter(webhook_endpoints::disabled_at.is_null())
        .select(Endpoint::as_select())
        .first(conn)
        .optional()
}

/// Removes an endpoint (its pending deliveries are dropped).
pub fn remove(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    write_tx(conn, |c| {
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::endpoint_id.eq(id)))
            .execute(c)?;
        diesel::delete(webhook_attempts::table.filter(webhook_attempts::endpoint_id.eq(id)))
            .execute(c)?;
        diesel::delete(webhook_endpoints::table.find(id))
            .execute(c)
            .map(|n| n == 1)
    })
}

/// The Postgres notification channel that says webhook deliveries were queued.
pub const DELIVERY_CHANNEL: &str = "roster_deliveries";
/// Sent in a transaction that queued deliveries (see `db::Batch`): every instance's worker
/// listening on `DELIVERY_CHANNEL` looks for due deliveries when it commits.
pub const NOTIFY_DELIVERIES: &str = "NOTIFY roster_deliveries;";
/// Makes a connection hear `NOTIFY_DELIVERIES`.
pub const LISTEN_DELIVERIES: &str = "LISTEN roster_deliveries;";

/// A delivery to attempt now.
#[derive(Debug, Clone)]
pub struct Due {
    pub delivery_id: i64,
    pub attempts: i32,
    pub endpoint: Endpoint,
    /// The directory whose events go to the endpoint in order.
    pub directory_id: String,
    /// The end of this claim's lease: its outcome is recorded only while the delivery is
    /// still under it (not replayed, nor claimed again after the lease ran out).
    pub leased_until: NaiveDateTime,
    /// The endpoint's signing secret, opened; `None` when it was sealed with a key this
    /// instance does not hold (the attempt then fails, saying so).
    pub signing_secret: Option<String>,
    pub event_id: String,
    pub payload: String,
}

/// A lane: the deliveries of one endpoint and one directory, attempted in event order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaneKey {
    pub endpoint_id: String,
    pub directory_id: String,
}

/// What a worker asks `claim` for.
pub struct ClaimRequest<'a> {
    /// Deliveries claimed at most.
    pub limit: usize,
    /// Lanes of one endpoint running at once at most, counting those in `busy`: a receiver
    /// gets up to this many deliveries at once from this worker, each of another directory.
    pub lanes_per_endpoint: usize,
    /// Deliveries of one endpoint and directory claimed at most: the oldest pending ones, in
    /// event order.
    pub per_directory: usize,
    /// How long the claimed deliveries are this worker's.
    pub lease: Duration,
    /// The lanes this worker is delivering on now: none of their deliveries is claimed, so
    /// that each directory has at most one delivery in flight per endpoint and worker.
    pub busy: &'a std::collections::HashSet<LaneKey>,
}

impl ClaimRequest<'_> {
    /// Lanes of `endpoint_id` running now.
    fn busy_lanes(&self, endpoint_id: &str) -> usize {
        self.busy
            .iter()
            .filter(|lane| lane.endpoint_id == endpoint_id)
            .count()
    }
}

/// A pending delivery as `claim` reads it.
type Pending = (i64, i32, i64, NaiveDateTime, Option<NaiveDateTime>);

/// Claims due deliveries for `lease`. Per endpoint and directory, a run of the oldest
/// undelivered events is claimed, from the oldest on and only while each is due and not
/// claimed by another: attempted in that order (and stopped at the first failure, see
/// `release`), each receiver gets a directory's events in order. Each run comes out whole,
/// in event order; the directories of one endpoint whose oldest waiting event is oldest are
/// claimed first, for as many lanes as the endpoint has free.
pub fn claim(
    conn: &mut DbConn,
    keys: &SecretKeys,
    request: &ClaimRequest,
) -> QueryResult<Vec<Due>> {
    write_tx(conn, |c| {
        let at = now();
        let heads = pending_heads(c, request)?;
        let mut due: Vec<Due> = Vec::new();
        let mut free_lanes = 0;
        let mut endpoint: Option<(Endpoint, Option<String>)> = None;
        for (endpoint_id, directory_id, seq) in heads {
            if endpoint.as_ref().is_none_or(|(e, _)| e.id != endpoint_id) {
                free_lanes = request
                    .lanes_per_endpoint
                    .saturating_sub(request.busy_lanes(&endpoint_id));
                endpoint = None;
            }
            let room = (request.limit.saturating_sub(due.len())).min(request.per_directory);
            if room == 0 {
                break;
            }
            if free_lanes == 0 {
                continue;
            }
            let run = claim_run(c, &endpoint_id, &directory_id, seq, room, at)?;
            if run.is_empty() {
                continue;
            }
            free_lanes -= 1;
            let ids: Vec<i64> = run.iter().map(|r| r.0).collect();
            // Whole microseconds, as stored: `record_attempts` compares it.
            let leased_until = (at + request.lease).trunc_subsecs(6);
            diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
                .set(webhook_deliveries::claimed_until.eq(leased_until))
                .execute(c)?;
            let (endpoint, signing_secret) = match &endpoint {
                Some(known) => known,
                None => {
                    let e = webhook_endpoints::table
                        .find(&endpoint_id)
                        .select(Endpoint::as_select())
                        .first(c)?;
                    let secret = keys
                        .open(&e.sealed_secret, &Purpose::webhook_secret(&e.id))
                        .ok();
                    endpoint.insert((e, secret))
                }
            };
            let seqs: Vec<i64> = run.iter().map(|r| r.2).collect();
            let mut payloads: std::collections::HashMap<i64, (String, String)> = events::table
                .filter(events::seq.eq_any(&seqs))
                .select((events::seq, events::id, events::payload))
                .load::<(i64, String, String)>(c)?
                .into_iter()
                .map(|(seq, id, payload)| (seq, (id, payload)))
                .collect();
            for (delivery_id, attempts, seq, _, _) in run {
                let Some((event_id, payload)) = payloads.remove(&seq) else {
                    return Err(diesel::result::Error::NotFound);
                };
                due.push(Due {
                    delivery_id,
                    attempts,
                    endpoint: endpoint.clone(),
                    directory_id: directory_id.clone(),
                    leased_until,
                    signing_secret: signing_secret.clone(),
                    event_id,
                    payload,
                });
            }
        }
        Ok(due)
    })
}

/// Heads of line: the oldest pending delivery of each endpoint and directory without a lane
/// running (`request.busy`), as (endpoint, directory, event seq), each endpoint's ordered
/// oldest first. Endpoints with no lane free are skipped.
///
/// One look per head in the pending deliveries' own index, skipping from one directory to the
/// next: a claim costs the number of directories waiting, not the number of deliveries waiting
/// (a grouping query sorted every pending row on each claim, and a large sync's backlog made
/// the worker spend the server's time re-sorting it).
fn pending_heads(
    c: &mut DbConn,
    request: &ClaimRequest,
) -> QueryResult<Vec<(String, String, i64)>> {
    let endpoints: Vec<String> = webhook_endpoints::table
        .select(webhook_endpoints::id)
        .order(webhook_endpoints::id)
        .load(c)?;
    let mut heads = Vec::new();
    let has_free_lane = |e: &String| request.busy_lanes(e) < request.lanes_per_endpoint;
    for endpoint_id in endpoints.into_iter().filter(has_free_lane) {
        let mut busy: Vec<&str> = request
            .busy
            .iter()
            .filter(|lane| lane.endpoint_id == endpoint_id)
            .map(|lane| lane.directory_id.as_str())
            .collect();
        busy.sort_unstable();
        let mut of_endpoint = match heads_between_busy(c, &endpoint_id, &busy)? {
            Some(found) => found,
            // The database orders ids otherwise than Rust does: every head, then.
            None => heads_between_busy(c, &endpoint_id, &[])?.unwrap_or_default(),
        };
        of_endpoint.retain(|(directory_id, _)| !busy.contains(&directory_id.as_str()));
        of_endpoint.sort_by_key(|h| h.1);
        heads.extend(
            of_endpoint
                .into_iter()
                .map(|(directory_id, seq)| (endpoint_id.clone(), directory_id, seq)),
        );
    }
    Ok(heads)
}

/// The heads of an endpoint's directories, as (directory, event seq), not looking into the
/// directories of `busy` (sorted): their lanes are running, and the start of a directory's
/// range in the index holds its delivered rows' entries until Postgres vacuums them (a look
/// at a large sync's head read 500 pages, 3–8 ms, and the worker looked on every wake). `None`
/// when the database's order of ids is not Rust's, so that ranges cannot be skipped.
fn heads_between_busy(
    c: &mut DbConn,
    endpoint_id: &str,
    busy: &[&str],
) -> QueryResult<Option<Vec<(String, i64)>>> {
    let mut found = Vec::new();
    let mut after = String::new();
    loop {
        let before = busy.iter().find(|b| **b > after.as_str()).copied();
        // Spelled out, not bound: only then can the planner use the partial index.
        let pending = webhook_deliveries::table
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                PENDING_CONDITION,
            ))
            .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
            .filter(webhook_deliveries::directory_id.gt(&after))
            .order((
                webhook_deliveries::directory_id.asc(),
                webhook_deliveries::event_seq.asc(),
            ))
            .select((
                webhook_deliveries::directory_id,
                webhook_deliveries::event_seq,
            ));
        let next: Option<(String, i64)> = match before {
            Some(bound) => pending
                .filter(webhook_deliveries::directory_id.lt(bound))
                .first(c)
                .optional()?,
            None => pending.first(c).optional()?,
        };
        match (next, before) {
            (Some((directory_id, _)), _)
                if directory_id <= after || before.is_some_and(|b| directory_id.as_str() >= b) =>
            {
                return Ok(None);
            }
            (Some((directory_id, seq)), _) => {
                after.clone_from(&directory_id);
                found.push((directory_id, seq));
            }
            (None, Some(bound)) => after = bound.to_string(),
            (None, None) => return Ok(Some(found)),
        }
    }
}

/// The condition of the `webhook_deliveries_pending` partial index, as SQL (the state's stored
/// name: see `DeliveryState::as_str`).
const PENDING_CONDITION: &str = "status = 'pending'";

/// The deliveries of one endpoint and directory to claim: the head (`head_seq`) if it is due
/// and free, then the pending ones after it while each is, `room` at most.
fn claim_run(
    c: &mut DbConn,
    endpoint_id: &str,
    directory_id: &str,
    head_seq: i64,
    room: usize,
    at: NaiveDateTime,
) -> QueryResult<Vec<Pending>> {
    let claimable = |p: &Pending| p.3 <= at && p.4.is_none_or(|until| until < at);
    let of_directory = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .filter(webhook_deliveries::directory_id.eq(directory_id))
        .filter(webhook_deliveries::status.eq(DeliveryState::Pending.as_str()));
    let columns = (
        webhook_deliveries::id,
        webhook_deliveries::attempts,
        webhook_deliveries::event_seq,
        webhook_deliveries::next_attempt_at,
        webhook_deliveries::claimed_until,
    );
    let head = of_directory
        .filter(webhook_deliveries::event_seq.eq(head_seq))
        .select(columns);
    // On Postgres, skip a head another instance is claiming; its lease will expire if it dies.
    let head: Option<Pending> = match c {
        DbConn::Postgres(pg) => head.for_update().skip_locked().first(pg).optional()?,
        DbConn::Sqlite(_) => head.first(c).optional()?,
    };
    let Some(head) = head.filter(claimable) else {
        return Ok(Vec::new());
    };
    let mut run = vec![head];
    if room > 1 {
        let followers = of_directory
            .filter(webhook_deliveries::event_seq.gt(head_seq))
            .order(webhook_deliveries::event_seq.asc())
            .limit(i64::try_from(room - 1).unwrap_or(i64::MAX))
            .select(columns);
        // Whoever holds the head holds the run after it: no other instance claims these.
        let followers: Vec<Pending> = match c {
            DbConn::Postgres(pg) => followers.for_update().load(pg)?,
            DbConn::Sqlite(_) => followers.load(c)?,
        };
        run.extend(followers.into_iter().take_while(claimable));
    }
    Ok(run)
}

/// What one attempt gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// One attempt to record: schedules the next one (`retry_in`) or dead-letters the delivery when
/// `retry_in` is `None`.
pub struct Attempted<'a> {
    pub due: &'a Due,
    pub outcome: Outcome,
    pub retry_in: Option<Duration>,
}

/// Records attempts and gives back the claimed deliveries not attempted (`released`: after a
/// failure in their directory, they wait for it), all in one transaction. A delivery no longer
/// under its claim's lease (replayed meanwhile, or claimed again after the lease ran out) keeps
/// its new state; the attempt is logged all the same.
pub fn record_attempts(
    conn: &mut DbConn,
    attempted: &[Attempted],
    released: &[&Due],
) -> QueryResult<()> {
    write_tx(conn, |c| {
        for a in attempted {
            record_attempt(c, a)?;
        }
        for due in released {
            diesel::update(still_leased(due))
                .set(webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>))
                .execute(c)?;
        }
        Ok(())
    })
}

/// The delivery of `due`, if it is still under that claim's lease.
fn still_leased(
    due: &Due,
) -> diesel::dsl::Filter<
    diesel::dsl::Find<webhook_deliveries::table, i64>,
    diesel::dsl::Eq<webhook_deliveries::claimed_until, NaiveDateTime>,
> {
    webhook_deliveries::table
        .find(due.delivery_id)
        .filter(webhook_deliveries::claimed_until.eq(due.leased_until))
}

fn record_attempt(c: &mut DbConn, attempted: &Attempted) -> QueryResult<()> {
    let Attempted {
        due,
        outcome,
        retry_in,
    } = attempted;
    let at = now();
    let attempt = due.attempts + 1;
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::delivery_id.eq(due.delivery_id),
            webhook_attempts::endpoint_id.eq(&due.endpoint.id),
            webhook_attempts::attempt.eq(attempt),
            webhook_attempts::at.eq(at),
            webhook_attempts::status_code.eq(outcome.status_code),
            webhook_attempts::latency_ms.eq(outcome.latency_ms),
            webhook_attempts::error.eq(&outcome.error),
            webhook_attempts::response_excerpt.eq(&outcome.response_excerpt),
        ))
        .execute(c)?;
    let (status, next, delivered) = if outcome.succeeded() {
        (DeliveryState::Delivered, at, Some(at))
    } else {
        match retry_in {
            Some(d) => (DeliveryState::Pending, at + *d, None),
            None => (DeliveryState::Dead, at, None),
        }
    };
    diesel::update(still_leased(due))
        .set((
            webhook_deliveries::status.eq(status.as_str()),
            webhook_deliveries::attempts.eq(attempt),
            webhook_deliveries::next_attempt_at.eq(next),
            webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
            webhook_deliveries::last_status.eq(outcome.status_code),
            webhook_deliveries::last_error.eq(&outcome.error),
            webhook_deliveries::delivered_at.eq(delivered),
        ))
        .execute(c)?;
    Ok(())
}

/// Queues an endpoint's deliveries again: of one event, or of every event from `since_seq` on
/// (matching the endpoint's filters). Returns how many were queued.
pub fn replay(
    conn: &mut DbConn,
    endpoint_id: &str,
    event_id: Option<&str>,
    since_seq: Option<i64>,
) -> QueryResult<usize> {
    replay_where(conn, endpoint_id, event_id, since_seq, None)
}

/// Queues again the events with sequence numbers from `from` to `to` (inclusive).
pub fn replay_range(
    conn: &mut DbConn,
    endpoint_id: &str,
    from: i64,
    to: Option<i64>,
) -> QueryResult<usize> {
    replay_where(conn, endpoint_id, None, Some(from), to)
}

fn replay_where(
    conn: &mut DbConn,
    endpoint_id: &str,
    event_id: Option<&str>,
    since_seq: Option<i64>,
    until_seq: Option<i64>,
) -> QueryResult<usize> {
    write_tx(conn, |c| {
        let Some(endpoint) = get(c, endpoint_id)? else {
            return Ok(0);
        };
        let mut q = events::table
            .select((
                events::seq,
                events::directory_id,
                events::event_type,
                events::org_id,
            ))
            .order(events::seq.asc())
            .into_boxed();
        if let Some(id) = event_id {
            q = q.filter(events::id.eq(id.to_string()));
        }
        if let Some(s) = since_seq {
            q = q.filter(events::seq.ge(s));
        }
        if let Some(u) = until_seq {
            q = q.filter(events::seq.le(u));
        }
        let rows: Vec<(i64, String, super::events::EventType, String)> = q.load(c)?;
        let at = now();
        let mut n = 0;
        for (seq, directory_id, event_type, org_id) in rows {
            if endpoint.org_id.as_ref().is_some_and(|o| o != &org_id)
                || !super::events::type_matches(&endpoint.event_types, event_type.as_str())
            {
                continue;
            }
            let updated = diesel::update(
                webhook_deliveries::table
                    .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
                    .filter(webhook_deliveries::event_seq.eq(seq)),
            )
            .set((
                webhook_deliveries::status.eq(DeliveryState::Pending.as_str()),
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::next_attempt_at.eq(at),
                webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
            ))
            .execute(c)?;
            if updated == 0 {
                diesel::insert_into(webhook_deliveries::table)
                    .values((
                        webhook_deliveries::endpoint_id.eq(endpoint_id),
                        webhook_deliveries::event_seq.eq(seq),
                        webhook_deliveries::directory_id.eq(&directory_id),
                        webhook_deliveries::status.eq(DeliveryState::Pending.as_str()),
                        webhook_deliveries::attempts.eq(0),
                        webhook_deliveries::next_attempt_at.eq(at),
                        webhook_deliveries::created_at.eq(at),
                    ))
                    .execute(c)?;
            }
            n += 1;
        }
        Ok(n)
    })
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: String,
    pub event_seq: i64,
    pub directory_id: String,
    #[diesel(deserialize_as = String)]
    pub status: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

pub fn deliveries(conn: &mut DbConn, endpoint_id: &str, limit: i64) -> QueryResult<Vec<Delivery>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)
}

/// An attempt as the delivery log shows it.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = webhook_attempts)]
pub struct Attempt {
    pub id: i64,
    pub delivery_id: i64,
    pub endpoint_id: String,
    pub attempt: i32,
    pub at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

pub fn attempts(conn: &mut DbConn, endpoint_id: &str, limit: i64) -> QueryResult<Vec<Attempt>> {
    webhook_attempts::table
        .filter(webhook_attempts::endpoint_id.eq(endpoint_id))
        .order(webhook_attempts::id.desc())
        .limit(limit)
        .select(Attempt::as_select())
        .load(conn)
}

/// Every endpoint's stored signing secret (disabled endpoints too), to re-seal at start.
pub fn stored_secrets(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    webhook_endpoints::table
        .select((webhook_endpoints::id, webhook_endpoints::secret))
        .load(conn)
}

/// Replaces an endpoint's stored signing secret (re-sealed under another key).
pub fn store_secret(conn: &mut DbConn, id: &str, sealed: &str) -> QueryResult<()> {
    write_tx(conn, |c| {
        diesel::update(webhook_endpoints::table.find(id))
            .set(webhook_endpoints::secret.eq(sealed))
            .execute(c)
            .map(|_| ())
    })
}
