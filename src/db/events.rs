//! The event outbox. A change queues its events in its `Batch` (`emit`, with an `EventType`);
//! the batch writes them at its end, in the same transaction (`write_pending`), each with a
//! per-directory sequence number and a queued delivery for every matching webhook endpoint
//! (which `crate::events` then delivers). `feed` reads them back for the event feed.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::batch::Batch;
use super::schema::{events, webhook_deliveries, webhook_endpoints};
use super::{DbConn, now};

/// What an event reports. Stored, delivered and filtered on as its text (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::deserialize::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    UserDeleted,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    GroupUserAdded,
    GroupUserRemoved,
    DirectoryConnected,
    DirectoryDisabled,
    DirectoryDeleted,
    DirectoryAlertRaised,
    DirectoryAlertCleared,
    DirectoryBrakeEngaged,
    DirectoryBrakeReleased,
    DirectoryPaused,
    DirectoryResumed,
    DirectoryResyncStarted,
    DirectoryResyncFinished,
}

impl EventType {
    /// Every event type Roster emits.
    pub const ALL: [EventType; 21] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeactivated,
        EventType::UserReactivated,
        EventType::UserDeleted,
        EventType::GroupCreated,
        EventType::GroupUpdated,
        EventType::GroupDeleted,
        EventType::GroupUserAdded,
        EventType::GroupUserRemoved,
        EventType::DirectoryConnected,
        EventType::DirectoryDisabled,
        EventType::DirectoryDeleted,
        EventType::DirectoryAlertRaised,
        EventType::DirectoryAlertCleared,
        EventType::DirectoryBrakeEngaged,
        EventType::DirectoryBrakeReleased,
        EventType::DirectoryPaused,
        EventType::DirectoryResumed,
        EventType::DirectoryResyncStarted,
        EventType::DirectoryResyncFinished,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeactivated => "user.deactivated",
            EventType::UserReactivated => "user.reactivated",
            EventType::UserDeleted => "user.deleted",
            EventType::GroupCreated => "group.created",
            EventType::GroupUpdated => "group.updated",
            EventType::GroupDeleted => "group.deleted",
            EventType::GroupUserAdded => "group.user_added",
            EventType::GroupUserRemoved => "group.user_removed",
            EventType::DirectoryConnected => "directory.connected",
            EventType::DirectoryDisabled => "directory.disabled",
            EventType::DirectoryDeleted => "directory.deleted",
            EventType::DirectoryAlertRaised => "directory.alert_raised",
            EventType::DirectoryAlertCleared => "directory.alert_cleared",
            EventType::DirectoryBrakeEngaged => "directory.brake_engaged",
            EventType::DirectoryBrakeReleased => "directory.brake_released",
            EventType::DirectoryPaused => "directory.paused",
            EventType::DirectoryResumed => "directory.resumed",
            EventType::DirectoryResyncStarted => "directory.resync_started",
            EventType::DirectoryResyncFinished => "directory.resync_finished",
        }
    }
}

/// Every event type Roster emits, as text.
pub const EVENT_TYPES: &[&str] = &{
    let mut names = [""; EventType::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = EventType::ALL[i].as_str();
        i += 1;
    }
    names
};

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no event type.
#[derive(Debug, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(String);

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for EventType
where
    DB: diesel::backend::Backend,
    String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
        Ok(String::from_sql(value)?.parse()?)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct Event {
    pub seq: i64,
    pub id: String,
    pub org_id: String,
    pub directory_id: String,
    pub directory_seq: i64,
    pub event_type: EventType,
    pub payload: String,
    pub created_at: NaiveDateTime,
}

/// True when an endpoint's type filter (`*`, `user.*`, or a comma list) takes this type.
pub fn type_matches(filter: &str, event_type: &str) -> bool {
    filter.split(',').map(str::trim).any(|f| {
        f == "*"
            || f == event_type
            || f.strip_suffix(".*")
                .is_some_and(|p| event_type.starts_with(&format!("{p}.")))
    })
}

/// Queues an event in the change's batch; the batch writes it, with its deliveries, at its
/// end.
pub fn emit<D: serde::Serialize>(
    batch: &mut Batch<'_>,
    directory_id: &str,
    event_type: EventType,
    data: D,
) -> QueryResult<()> {
    emit_many(batch, directory_id, vec![(event_type, data)])
}

/// Key of the Postgres advisory lock that orders event-writing transactions.
const EVENT_ORDER_LOCK: i64 = 0x526f_7376;

/// Event-writing transactions take turns on Postgres (until commit), so the global `seq` the
/// feed pages by is in commit order: a reader can never skip an event that commits late.
/// Taken before any directory row lock (transactions that update the directory row and then
/// emit take it first, so locks are always taken in one order). SQLite writers are serialized
/// already.
pub fn order_lock(conn: &mut DbConn) -> QueryResult<()> {
    if let DbConn::Postgres(c) = conn {
        use diesel::connection::SimpleConnection;
        c.batch_execute(&format!("SELECT pg_advisory_xact_lock({EVENT_ORDER_LOCK})"))?;
    }
    Ok(())
}

/// `UPDATE directories SET event_seq = event_seq + n … RETURNING event_seq, org_id`, written out
/// so the connection keeps it prepared: diesel re-prepares every UPDATE it builds (its SET
/// clause may vary), and this one runs with every change.
struct ReserveSequence<'a> {
    directory_id: &'a str,
    n: i64,
}

super::prepared_statement!(
    ReserveSequence,
    (diesel::sql_types::BigInt, diesel::sql_types::Text)
);

impl<DB> diesel::query_builder::QueryFragment<DB> for ReserveSequence<'_>
where
    DB: diesel::backend::Backend,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("UPDATE directories SET event_seq = event_seq + ");
        out.push_bind_param::<diesel::sql_types::BigInt, _>(&self.n)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<diesel::sql_types::Text, _>(self.directory_id)?;
        out.push_sql(" RETURNING event_seq, org_id");
        Ok(())
    }
}

/// Rows per multi-row INSERT.
const BATCH: usize = 200;

/// An event queued in a `Batch`, written at its end (see `write_pending`).
pub struct PendingEvent {
    directory_id: String,
    event_type: EventType,
    data: String,
    /// The held user it is about: it is stored aside until the brake releases it.
    held_for: Option<String>,
}

impl PendingEvent {
    /// Whether the deprovisioning brake holds it.
    pub(super) fn is_held(&self) -> bool {
        self.held_for.is_some()
    }

    /// The event as the brake stores it.
    pub(super) fn into_held(self) -> super::brake::HeldEvent {
        super::brake::HeldEvent {
            directory_id: self.directory_id,
            user_id: self.held_for.unwrap_or_default(),
            event_type: self.event_type.as_str().to_string(),
            data: self.data,
        }
    }
}

impl EventType {
    /// Whether an event of this type may be about a user the brake holds (a new user never
    /// is; directory and group events are about no user).
    fn may_be_held(self) -> bool {
        matches!(
            self,
            EventType::UserUpdated
                | EventType::UserDeactivated
                | EventType::UserReactivated
                | EventType::UserDeleted
                | EventType::GroupUserAdded
                | EventType::GroupUserRemoved
        )
    }
}

/// The user an event's data is about (`data.user.id`).
fn user_of(data: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct About {
        user: Option<Id>,
    }
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<About>(data)
        .ok()
        .and_then(|a| a.user)
        .map(|u| u.id)
}

/// Writes events queued in a batch: per directory in the order they were emitted, the
/// directories in id order (so that concurrent transactions lock their rows in one order).
/// Returns how many webhook deliveries they queued.
pub(super) fn write_pending(conn: &mut DbConn, events: Vec<PendingEvent>) -> QueryResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut by_directory: BTreeMap<String, Vec<(EventType, String)>> = BTreeMap::new();
    for e in events {
        by_directory
            .entry(e.directory_id)
            .or_default()
            .push((e.event_type, e.data));
    }
    let mut deliveries = 0;
    for (directory_id, items) in by_directory {
        deliveries += write_events(conn, &directory_id, items)?;
    }
    Ok(deliveries)
}

/// Queues several events of one directory in the batch (they are written at its end, a
/// handful of statements for all: a group PUT that changes thousands of memberships must not
/// cost thousands of round trips).
pub fn emit_many<D: serde::Serialize>(
    batch: &mut Batch<'_>,
    directory_id: &str,
    items: Vec<(EventType, D)>,
) -> QueryResult<()> {
    let serialized = items
        .into_iter()
        .map(|(event_type, data)| {
            serde_json::to_string(&data)
                .map(|data| PendingEvent {
                    directory_id: directory_id.to_string(),
                    event_type,
                    data,
                    held_for: None,
                })
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
        })
        .collect::<QueryResult<Vec<_>>>()?;
    let mut serialized = serialized;
    if serialized.iter().any(|e| e.event_type.may_be_held()) {
        let held = batch.held_users(directory_id)?;
        if !held.is_empty() {
            for e in serialized.iter_mut().filter(|e| e.event_type.may_be_held()) {
                e.held_for = user_of(&e.data).filter(|id| held.contains(id));
            }
        }
    }
    batch.queue_events(serialized);
    Ok(())
}

/// Reserves `n` sequence numbers of the directory (its row's counter hands them out) and
/// reads the webhook endpoints (id, event types) that may want its events; returns the last
/// number, the organization and the endpoints. SQLite only: writers are serialized already,
/// and Postgres does all of it in `WriteEvents`.
fn reserve(
    c: &mut diesel::SqliteConnection,
    directory_id: &str,
    n: i64,
) -> QueryResult<(i64, String, Vec<Endpoint>)> {
    let (last, org_id): (i64, String) = ReserveSequence { directory_id, n }.get_result(c)?;
    let endpoints = webhook_endpoints::table
        .filter(webhook_endpoints::disabled_at.is_null())
        .filter(
            webhook_endpoints::org_id
                .is_null()
                .or(webhook_endpoints::org_id.eq(&org_id)),
        )
        .select((webhook_endpoints::id, webhook_endpoints::event_types))
        .load(c)?;
    Ok((last, org_id, endpoints))
}

/// A webhook endpoint's id and the event types it takes (see `type_matches`).
type Endpoint = (String, String);

/// Writes events (type and serialized data) of one directory, with their deliveries; returns
/// how many deliveries.
fn write_events(
    conn: &mut DbConn,
    directory_id: &str,
    items: Vec<(EventType, String)>,
) -> QueryResult<usize> {
    if items.is_empty() {
        return Ok(0);
    }
    let at = now();
    let created_at = crate::scim::resource::rfc3339(at);
    let events: Vec<NewEvent> = items
        .into_iter()
        .map(|(event_type, data)| NewEvent::new(event_type, &created_at, &data))
        .collect::<QueryResult<_>>()?;
    let middle = payload_middle(directory_id)?;
    let candidates = match conn {
        DbConn::Postgres(c) => write_events_pg(c, directory_id, &events, &middle, at)?,
        DbConn::Sqlite(c) => write_events_sqlite(c, directory_id, &events, &middle, at)?,
    };
    let deliveries: Vec<_> = candidates
        .iter()
        .filter(|(_, event_type, _, types)| type_matches(types, event_type))
        .map(|(seq, _, endpoint_id, _)| {
            (
                webhook_deliveries::endpoint_id.eq(endpoint_id.clone()),
                webhook_deliveries::event_seq.eq(*seq),
                webhook_deliveries::directory_id.eq(directory_id.to_string()),
                webhook_deliveries::status.eq("pending"),
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::next_attempt_at.eq(at),
                webhook_deliveries::created_at.eq(at),
            )
        })
        .collect();
    for chunk in deliveries.chunks(BATCH) {
        crate::on_backend!(&mut *conn, |c| diesel::insert_into(
            webhook_deliveries::table
        )
        .values(chunk)
        .execute(c))?;
    }
    Ok(deliveries.len())
}

/// An event about to be written. Its payload, as delivered, is
/// `{"id":…,"type":…,"org_id":…,"directory_id":…,"sequence":…,"created_at":…,"data":…}`
/// (`data` spliced in already serialized), cut where the organization and the sequence
/// number go: `head` + org + `payload_middle` + sequence + `tail` (Postgres fills them in
/// within the statement that reserves the number).
struct NewEvent {
    id: String,
    event_type: EventType,
    head: String,
    tail: String,
}

/// `s` as a JSON string.
fn json_string(s: &str) -> QueryResult<String> {
    serde_json::to_string(s).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// The payload piece between the organization and the sequence number (the same for all of a
/// directory's events).
fn payload_middle(directory_id: &str) -> QueryResult<String> {
    Ok(format!(
        ",\"directory_id\":{},\"sequence\":",
        json_string(directory_id)?
    ))
}

impl NewEvent {
    fn new(event_type: EventType, created_at: &str, data: &str) -> QueryResult<NewEvent> {
        let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
        Ok(NewEvent {
            head: format!(
                "{{\"id\":{},\"type\":{},\"org_id\":",
                json_string(&id)?,
                json_string(event_type.as_str())?
            ),
            tail: format!(
                ",\"created_at\":{},\"data\":{data}}}",
                json_string(created_at)?
            ),
            id,
            event_type,
        })
    }

    fn payload(&self, org_id: &str, middle: &str, sequence: i64) -> QueryResult<String> {
        let org = json_string(org_id)?;
        Ok(format!("{}{org}{middle}{sequence}{}", self.head, self.tail))
    }
}

/// An event's global sequence number and type, and a webhook endpoint (id and the types it
/// takes) of its organization: a delivery when the types match.
type Candidate = (i64, String, String, String);

fn write_events_sqlite(
    c: &mut diesel::SqliteConnection,
    directory_id: &str,
    events: &[NewEvent],
    middle: &str,
    at: NaiveDateTime,
) -> QueryResult<Vec<Candidate>> {
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let (last, org_id, endpoints) = reserve(c, directory_id, n)?;
    let first = last - n + 1;
    let mut candidates = Vec::new();
    for (event, directory_seq) in events.iter().zip(first..) {
        // One cached single-row statement per event: a multi-row INSERT would be prepared
        // anew each time (and keep a statement journal); SQLite has no round trips to save.
        let seq: i64 = diesel::insert_into(events::table)
            .values((
                events::id.eq(&event.id),
                events::org_id.eq(&org_id),
                events::directory_id.eq(directory_id),
                events::directory_seq.eq(directory_seq),
                events::event_type.eq(event.event_type.as_str()),
                events::payload.eq(event.payload(&org_id, middle, directory_seq)?),
                events::created_at.eq(at),
            ))
            .returning(events::seq)
            .get_result(c)?;
        for (endpoint_id, types) in &endpoints {
            candidates.push((
                seq,
                event.event_type.as_str().to_string(),
                endpoint_id.clone(),
                types.clone(),
            ));
        }
    }
    Ok(candidates)
}

/// Postgres: one prepared statement takes the order lock (`order_lock`), reserves the
/// directory's sequence numbers, inserts the events and returns the delivery candidates: a
/// change costs no round trip for its events but this one.
fn write_events_pg(
    c: &mut diesel::PgConnection,
    directory_id: &str,
    events: &[NewEvent],
    middle: &str,
    at: NaiveDateTime,
) -> QueryResult<Vec<Candidate>> {
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let statement = WriteEvents {
        lock: EVENT_ORDER_LOCK,
        n,
        directory_id,
        middle,
        at,
        ids: events.iter().map(|e| e.id.as_str()).collect(),
        types: events.iter().map(|e| e.event_type.as_str()).collect(),
        heads: events.iter().map(|e| e.head.as_str()).collect(),
        tails: events.iter().map(|e| e.tail.as_str()).collect(),
    };
    let (written, candidates): (i64, String) = statement.get_result(c)?;
    if written != n {
        // The directory is gone: its change cannot stand.
        return Err(diesel::result::Error::NotFound);
    }
    serde_json::from_str(&candidates)
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
}

/// See `write_events_pg`. The lock is taken before the update locks the directory's row (the
/// join needs the lock's row before it yields the directory's); the events are numbered in
/// their order, by the directory's counter and by the global sequence alike.
struct WriteEvents<'a> {
    lock: i64,
    n: i64,
    directory_id: &'a str,
    middle: &'a str,
    at: NaiveDateTime,
    ids: Vec<&'a str>,
    types: Vec<&'a str>,
    heads: Vec<&'a str>,
    tails: Vec<&'a str>,
}

super::prepared_statement!(
    WriteEvents,
    (diesel::sql_types::BigInt, diesel::sql_types::Text)
);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for WriteEvents<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Text, Timestamp};
        out.push_sql("WITH ordered AS (SELECT pg_advisory_xact_lock(");
        out.push_bind_param::<BigInt, _>(&self.lock)?;
        out.push_sql(
            ")), reserved AS (UPDATE directories SET event_seq = event_seq + n.count \
             FROM ordered, (SELECT ",
        );
        out.push_bind_param::<BigInt, _>(&self.n)?;
        out.push_sql(" AS count) n WHERE id = ");
        out.push_bind_param::<Text, _>(&self.directory_id)?;
        out.push_sql(
            " RETURNING id, org_id, event_seq - n.count AS before), \
             written AS (INSERT INTO events (id, org_id, directory_id, directory_seq, \
             event_type, payload, created_at) SELECT e.id, r.org_id, r.id, r.before + e.ord, \
             e.event_type, e.head || to_json(r.org_id)::text || ",
        );
        out.push_bind_param::<Text, _>(&self.middle)?;
        out.push_sql(" || (r.before + e.ord)::text || e.tail, ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" FROM reserved r, unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.types)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.heads)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.tails)?;
        out.push_sql(
            ") WITH ORDINALITY AS e (id, event_type, head, tail, ord) ORDER BY e.ord \
             RETURNING seq, event_type, org_id) \
             SELECT (SELECT count(*) FROM written), \
             COALESCE((SELECT json_agg(json_build_array(w.seq, w.event_type, h.id, \
             h.event_types) ORDER BY w.seq, h.id) FROM written w JOIN webhook_endpoints h \
             ON h.disabled_at IS NULL AND (h.org_id IS NULL OR h.org_id = w.org_id))::text, \
             '[]')",
        );
        Ok(())
    }
}

/// Which events a feed reads.
#[derive(Debug, Clone, Default)]
pub struct FeedScope {
    pub org_id: Option<String>,
    pub directory_id: Option<String>,
}

/// Events after the cursor (a global sequence number), oldest first.
pub fn feed(
    conn: &mut DbConn,
    scope: &FeedScope,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let mut q = events::table
        .filter(events::seq.gt(after))
        .order(events::seq.asc())
        .limit(limit)
        .select(Event::as_select())
        .into_boxed();
    if let Some(o) = &scope.org_id {
        q = q.filter(events::org_id.eq(o.clone()));
    }
    if let Some(d) = &scope.directory_id {
        q = q.filter(events::directory_id.eq(d.clone()));
    }
    q.load(conn)
}

/// Deletes events older than `days` (and their finished deliveries).
pub fn prune(conn: &mut DbConn, days: i64) -> QueryResult<usize> {
    let cutoff = now() - Duration::days(days);
    super::write_tx(conn, |c| {
        let old = events::table
            .filter(events::created_at.lt(cutoff))
            .select(events::seq);
        diesel::delete(
            webhook_deliveries::table
                .filter(webhook_deliveries::event_seq.eq_any(old))
                .filter(webhook_deliveries::status.ne("pending")),
        )
        .execute(c)?;
        let pending = webhook_deliveries::table.select(webhook_deliveries::event_seq);
        diesel::delete(
            events::table
                .filter(events::created_at.lt(cutoff))
                .filter(events::seq.ne_all(pending)),
        )
        .execute(c)
    })
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn event_types_read_back_from_their_text_and_nothing_else_does() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert_eq!(super::EVENT_TYPES.len(), EventType::ALL.len());
        assert!("user.exploded".parse::<EventType>().is_err());
    }
}
