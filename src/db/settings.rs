//! Instance-wide settings shared by every instance on one database (e.g. the session key).

use diesel::prelude::*;

use super::schema::settings;
use super::{DbConn, write_tx};

pub fn get(conn: &mut DbConn, key: &str) -> QueryResult<Option<String>> {
    settings::table
        .find(key)
        .select(settings::value)
        .first(conn)
        .optional()
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(conn: &mut DbConn, key: &str, value: &str) -> QueryResult<()> {
    write_tx(conn, |c| {
        let updated = diesel::update(settings::table.find(key))
            .set(settings::value.eq(value))
            .execute(c)?;
        if updated == 0 {
            diesel::insert_into(settings::table)
                .values((settings::key.eq(key), settings::value.eq(value)))
                .execute(c)?;
        }
        Ok(())
    })
}

/// Returns the value stored under `key`, storing `make()` first if there is none. Concurrent
/// first starts agree on one value: the loser's insert fails and it reads the winner's.
pub fn get_or_insert(
    conn: &mut DbConn,
    key: &str,
    make: impl FnOnce() -> String,
) -> QueryResult<String> {
    if let Some(v) = get(conn, key)? {
        return Ok(v);
    }
    let value = make();
    let inserted = write_tx(conn, |c| {
        diesel::insert_into(settings::table)
            .values((settings::key.eq(key), settings::value.eq(&value)))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(value),
        Err(e) if super::is_unique_violation(&e) => get(conn, key)?.ok_or(e),
        Err(e) => Err(e),
    }
}
