//! Role changes whose users are still being recomputed: written in the change's own
//! transaction and removed after its last step, so a change cut short (the instance stopped
//! midway) is finished by whichever instance next finds its claim run out.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::role_refreshes;
use super::{DbConn, new_id, now};

/// How long a change's recomputation may take before another instance takes it over.
pub const CLAIM: Duration = Duration::minutes(10);

/// An unfinished recomputation of a directory's users' roles.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = role_refreshes)]
pub struct Pending {
    pub id: String,
    pub directory_id: String,
    pub default_changed: bool,
    pub default_before: Option<String>,
}

impl Pending {
    /// The default role before the change, when the change moved it (see `roles::refresh`).
    pub fn default_before(&self) -> Option<Option<String>> {
        self.default_changed.then(|| self.default_before.clone())
    }
}

/// Records that a change's users are about to be recomputed; returns its id.
pub fn begin(
    conn: &mut DbConn,
    directory_id: &str,
    default_before: &Option<Option<String>>,
) -> QueryResult<String> {
    let id = new_id();
    let at = now();
    diesel::insert_into(role_refreshes::table)
        .values((
            role_refreshes::id.eq(&id),
            role_refreshes::directory_id.eq(directory_id),
            role_refreshes::default_changed.eq(default_before.is_some()),
            role_refreshes::default_before.eq(default_before.clone().flatten()),
            role_refreshes::claimed_until.eq(at + CLAIM),
            role_refreshes::created_at.eq(at),
        ))
        .execute(conn)?;
    Ok(id)
}

/// The change's users are all recomputed.
pub fn done(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(role_refreshes::table.filter(role_refreshes::id.eq(id))).execute(conn)?;
    Ok(())
}

/// Claims the oldest change whose claim ran out (one instance wins it), if any.
pub fn claim_abandoned(conn: &mut DbConn, at: NaiveDateTime) -> QueryResult<Option<Pending>> {
    let candidates: Vec<Pending> = role_refreshes::table
        .filter(role_refreshes::claimed_until.lt(at))
        .order(role_refreshes::created_at.asc())
        .limit(10)
        .select(Pending::as_select())
        .load(conn)?;
    for pending in candidates {
        // Only the instance whose update still sees the run-out claim takes it.
        let won = diesel::update(
            role_refreshes::table
                .filter(role_refreshes::id.eq(&pending.id))
                .filter(role_refreshes::claimed_until.lt(at)),
        )
        .set(role_refreshes::claimed_until.eq(at + CLAIM))
        .execute(conn)?;
        if won == 1 {
            return Ok(Some(pending));
        }
    }
    Ok(None)
}
