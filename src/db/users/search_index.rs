//! SQLite's trigram index behind the portal's user search (Postgres indexes the expression
//! itself): new users are queued for it (`queue_for_search_index`), `Batch::commit` indexes the
//! queued ones in bulk (`index_pending`), and a search reads the index and the queue
//! (`trigram_prefilter`).

use diesel::prelude::*;

use crate::db::DbConn;

/// SQLite's search-index bookkeeping (see the migrations `user_search` and
/// `search_once_per_commit`), not in `schema.rs`, which holds the tables both backends have.
mod search_tables {
    diesel::table! {
        user_search_keys (key) {
            key -> BigInt,
            user_id -> Text,
        }
    }
    diesel::table! {
        user_search_pending (key) {
            key -> BigInt,
            indexed -> Integer,
        }
    }
}

/// Gives a new user its search key and queues it for the trigram index (a trigger did this
/// until the `search_key_by_insert` migration).
pub(super) fn queue_for_search_index(
    c: &mut diesel::SqliteConnection,
    user_id: &str,
) -> QueryResult<()> {
    use search_tables::{user_search_keys as keys, user_search_pending as pending};
    let key: i64 = diesel::insert_into(keys::table)
        .values(keys::user_id.eq(user_id))
        .returning(keys::key)
        .get_result(c)?;
    diesel::insert_into(pending::table)
        .values((pending::key.eq(key), pending::indexed.eq(0)))
        .execute(c)?;
    Ok(())
}

/// Users noted in `user_search_pending` are indexed together once there are this many: FTS5
/// writes a new segment (and merges segments) at every flush, which cost a sixth of a create
/// when done at every commit of the writer's batches of a few users. Searches read the
/// pending users beside the index (see `trigram_prefilter`).
const SEARCH_PENDING_MAX: i64 = 256;

/// Brings SQLite's trigram index up to date with the users noted as changed (see the
/// `search_once_per_commit` migration) once `SEARCH_PENDING_MAX` of them are waiting; `Batch::commit`
/// calls it just before committing.
pub fn index_pending(conn: &mut DbConn) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::{BigInt, Bool};
    let DbConn::Sqlite(c) = conn else {
        return Ok(());
    };
    #[derive(QueryableByName)]
    struct Pending {
        #[diesel(sql_type = Bool)]
        due: bool,
    }
    let pending: Pending = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM user_search_pending LIMIT 1 OFFSET ?) AS due",
    )
    .bind::<BigInt, _>(SEARCH_PENDING_MAX - 1)
    .get_result(c)?;
    if !pending.due {
        return Ok(());
    }
    // CROSS JOIN fixes the join order, from the few pending rows out: the planner could
    // rather walk every user.
    c.batch_execute(
        "DELETE FROM user_search WHERE rowid IN \
             (SELECT key FROM user_search_pending WHERE indexed = 1); \
         INSERT INTO user_search (rowid, user_name, display_name, full_name, email) \
             SELECT p.key, u.user_name_norm, u.display_name_norm, u.full_name_norm, \
                    u.primary_email \
             FROM user_search_pending p \
             CROSS JOIN user_search_keys k ON k.key = p.key \
             CROSS JOIN scim_users u ON u.id = k.user_id; \
         DELETE FROM user_search_pending;",
    )
}

/// The portal search's trigram-index condition (SQL before its one bound value, the value,
/// SQL after it), for needles of three characters or more; shorter ones are matched by the LIKE
/// conditions alone. The LIKE conditions always apply too, so results are exactly theirs: on
/// SQLite the candidates are the index's matches and the users not indexed yet (or indexed in
/// an older version), at most `SEARCH_PENDING_MAX`.
pub(super) fn trigram_prefilter(
    conn: &DbConn,
    needle: &str,
) -> Option<(&'static str, String, &'static str)> {
    if needle.chars().count() < 3 {
        return None;
    }
    Some(match conn {
        // A quoted FTS5 phrase: with the trigram tokenizer, any column containing it.
        DbConn::Sqlite(_) => (
            "scim_users.id IN (SELECT k.user_id FROM user_search_keys k WHERE k.key IN \
             (SELECT rowid FROM user_search WHERE user_search MATCH ",
            format!("\"{}\"", needle.replace('"', "\"\"")),
            " UNION ALL SELECT key FROM user_search_pending))",
        ),
        // The indexed expression of `scim_users_search`, exactly.
        DbConn::Postgres(_) => (
            "(scim_users.user_name_norm || ' ' || COALESCE(scim_users.display_name_norm, '') \
             || ' ' || COALESCE(scim_users.full_name_norm, '') || ' ' \
             || COALESCE(scim_users.primary_email, '')) LIKE (",
            crate::db::contains_pattern(needle),
            ")",
        ),
    })
}
