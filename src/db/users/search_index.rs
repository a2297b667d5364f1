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

/// Below this many indexed users every phrase is cheap to look up, and the needle is looked up
/// whole; above it, by its selective part (`selective_part`).
const SELECTIVE_FROM_USERS: i64 = 10_000;

/// A trigram in at least this share of the indexed users is common: a phrase naming it reads
/// its whole doclist, however few users the phrase finds.
const COMMON_TRIGRAM_SHARE: f64 = 0.01;

/// Users a trigram's first matches are read for, to estimate how many it has in all.
const TRIGRAM_SAMPLE: i64 = 256;

/// At most this many of a needle's trigrams are estimated: any part of the needle finds every
/// user the whole does, so a long needle is looked up by the best part of its start.
const TRIGRAMS_ESTIMATED: usize = 16;

/// A search whose phrase is in at most this many indexed users reads the index once and
/// hands its matches to both its statements (the count and the page); beyond it, each
/// statement reads the index itself.
const MATCHES_HANDED_ON: i64 = 1000;

/// The portal search's trigram-index condition (SQL before its one bound value, the value,
/// SQL after it), for needles of three characters or more; shorter ones are matched by the LIKE
/// conditions alone. The LIKE conditions always apply too, so results are exactly theirs: on
/// SQLite the candidates are the index's matches and the users not indexed yet (or indexed in
/// an older version), at most `SEARCH_PENDING_MAX`.
///
/// On SQLite the index is read here, once, as the view runs two statements, and for the
/// needle's selective part: a phrase with common trigrams costs milliseconds however few users
/// it finds (`"given9876"` among a million users named `given…`: 4–6 ms, reading the doclists
/// of `giv`, `ive` and `ven`; `"n9876"`, the same users: 0.2 ms).
pub(super) fn trigram_prefilter(
    conn: &mut DbConn,
    needle: &str,
) -> QueryResult<Option<(&'static str, String, &'static str)>> {
    use diesel::sql_types::{BigInt, Text};
    if needle.chars().count() < 3 {
        return Ok(None);
    }
    Ok(Some(match conn {
        DbConn::Sqlite(c) => {
            let phrase = fts_phrase(&selective_part(c, needle)?);
            #[derive(QueryableByName)]
            struct Match {
                #[diesel(sql_type = BigInt)]
                key: i64,
            }
            let matches: Vec<Match> = diesel::sql_query(
                "SELECT rowid AS key FROM user_search WHERE user_search MATCH ? LIMIT ?",
            )
            .bind::<Text, _>(&phrase)
            .bind::<BigInt, _>(MATCHES_HANDED_ON + 1)
            .load(c)?;
            if matches.len() as i64 > MATCHES_HANDED_ON {
                (
                    "scim_users.id IN (SELECT k.user_id FROM user_search_keys k WHERE k.key IN \
                     (SELECT rowid FROM user_search WHERE user_search MATCH ",
                    phrase,
                    " UNION ALL SELECT key FROM user_search_pending))",
                )
            } else {
                let keys: Vec<String> = matches.iter().map(|m| m.key.to_string()).collect();
                (
                    "scim_users.id IN (SELECT k.user_id FROM user_search_keys k WHERE k.key IN \
                     (SELECT value FROM json_each(",
                    format!("[{}]", keys.join(",")),
                    ") UNION ALL SELECT key FROM user_search_pending))",
                )
            }
        }
        // The indexed expression of `scim_users_search`, exactly.
        DbConn::Postgres(_) => (
            "(scim_users.user_name_norm || ' ' || COALESCE(scim_users.display_name_norm, '') \
             || ' ' || COALESCE(scim_users.full_name_norm, '') || ' ' \
             || COALESCE(scim_users.primary_email, '')) LIKE (",
            crate::db::contains_pattern(needle),
            ")",
        ),
    }))
}

/// A quoted FTS5 phrase: with the trigram tokenizer, any column containing `text`.
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The part of `needle` (three characters or more) to look the users up by: in a large index,
/// the longest run of its trigrams that are not common (two at least, or one found in fewer
/// than `TRIGRAM_SAMPLE` users); otherwise the whole needle. Any part finds every user the
/// needle does (the LIKE conditions then keep the exact results), so an estimate that is off
/// only costs time.
fn selective_part(c: &mut diesel::SqliteConnection, needle: &str) -> QueryResult<String> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    use search_tables::user_search_keys as keys;
    #[derive(QueryableByName)]
    struct Sample {
        #[diesel(sql_type = BigInt)]
        found: i64,
        #[diesel(sql_type = Nullable<BigInt>)]
        first: Option<i64>,
        #[diesel(sql_type = Nullable<BigInt>)]
        last: Option<i64>,
    }
    // Keys are handed out in order and never reused: the largest is the index's size, nearly.
    let indexed: i64 = keys::table
        .select(diesel::dsl::max(keys::key))
        .first::<Option<i64>>(c)?
        .unwrap_or(0);
    let chars: Vec<char> = needle.chars().collect();
    if indexed < SELECTIVE_FROM_USERS || chars.len() < 4 {
        return Ok(needle.to_string());
    }
    let common = (indexed as f64 * COMMON_TRIGRAM_SHARE).max(TRIGRAM_SAMPLE as f64);
    let mut estimates = Vec::new();
    for window in chars.windows(3).take(TRIGRAMS_ESTIMATED) {
        let trigram: String = window.iter().collect();
        let sample: Sample = diesel::sql_query(
            "SELECT count(*) AS found, min(rowid) AS first, max(rowid) AS last FROM \
             (SELECT rowid FROM user_search WHERE user_search MATCH ? LIMIT ?)",
        )
        .bind::<Text, _>(fts_phrase(&trigram))
        .bind::<BigInt, _>(TRIGRAM_SAMPLE)
        .get_result(c)?;
        let keys = sample.first.zip(sample.last);
        estimates.push(estimated_users(sample.found, keys, indexed));
    }
    let rare: Vec<bool> = estimates.iter().map(|&e| e < common).collect();
    Ok(match longest_run(&rare) {
        Some((first, last)) if last > first || estimates[first] < TRIGRAM_SAMPLE as f64 => {
            chars[first..last + 3].iter().collect()
        }
        _ => needle.to_string(),
    })
}

/// How many users hold a trigram, from its first `found` matches (at most `TRIGRAM_SAMPLE`, in
/// key order, the first and last of them `keys`) among `indexed` keys: exact when it has fewer
/// than the sample; else the sample's density spread over every key.
fn estimated_users(found: i64, keys: Option<(i64, i64)>, indexed: i64) -> f64 {
    match keys {
        Some((first, last)) if found >= TRIGRAM_SAMPLE => {
            found as f64 * indexed as f64 / (last - first + 1).max(1) as f64
        }
        _ => found as f64,
    }
}

/// The first and last index of the longest run of `true` (the first such run on a tie).
fn longest_run(flags: &[bool]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = None;
    for (i, &flag) in flags.iter().enumerate() {
        start = match (flag, start) {
            (true, None) => Some(i),
            (true, s) => s,
            (false, _) => None,
        };
        if let Some(s) = start
            && best.is_none_or(|(bs, be)| i - s > be - bs)
        {
            best = Some((s, i));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::{
        MATCHES_HANDED_ON, TRIGRAM_SAMPLE, estimated_users, longest_run, selective_part,
        trigram_prefilter,
    };
    use diesel::connection::SimpleConnection;

    fn sqlite() -> (tempfile::TempDir, crate::db::Pool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let pool = crate::db::connect(&url).unwrap();
        (dir, pool)
    }

    #[test]
    fn a_phrase_with_few_matches_reads_the_index_once() {
        let (_dir, pool) = sqlite();
        let mut conn = pool.get().unwrap();
        let crate::db::DbConn::Sqlite(c) = &mut *conn else {
            unreachable!()
        };
        c.batch_execute(&format!(
            "INSERT INTO user_search (rowid, user_name) VALUES (7, 'jdoe@acme.test'); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i <= {MATCHES_HANDED_ON}) \
             INSERT INTO user_search (rowid, user_name) SELECT 100 + i, 'filler' || i FROM n;"
        ))
        .unwrap();
        // Found in one user: its key goes to both statements.
        let (before, keys, _) = trigram_prefilter(&mut conn, "jdoe@").unwrap().unwrap();
        assert!(before.contains("json_each"), "{before}");
        assert_eq!(keys, "[7]");
        let (_, none, _) = trigram_prefilter(&mut conn, "nobody").unwrap().unwrap();
        assert_eq!(none, "[]");
        // In more users than are handed on: each statement reads the index.
        let (before, phrase, _) = trigram_prefilter(&mut conn, "fill").unwrap().unwrap();
        assert!(before.contains("MATCH"), "{before}");
        assert_eq!(phrase, "\"fill\"");
        assert!(trigram_prefilter(&mut conn, "jd").unwrap().is_none());
    }

    #[test]
    fn a_large_index_is_asked_for_the_needles_rare_part() {
        let (_dir, pool) = sqlite();
        let mut conn = pool.get().unwrap();
        let crate::db::DbConn::Sqlite(c) = &mut *conn else {
            unreachable!()
        };
        // 20 000 users named `given<n>`, as keys and index rows.
        c.batch_execute(
            "CREATE TEMP TABLE n AS WITH RECURSIVE n(i) AS \
                 (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT i FROM n; \
             INSERT INTO user_search (rowid, user_name) SELECT i, 'given' || i FROM n;",
        )
        .unwrap();
        // Keys stand for users; the foreign key is not checked against a user here.
        c.batch_execute(
            "PRAGMA foreign_keys = OFF; \
             INSERT INTO user_search_keys (key, user_id) SELECT i, 'u' || i FROM n; \
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        // `giv`, `ive`, `ven` are in every user, `en1` and `n19` in over a thousand; `198` …
        // `876` in few.
        assert_eq!(selective_part(c, "given19876").unwrap(), "19876");
        // Every trigram common, or too short a rare part: the whole needle.
        assert_eq!(selective_part(c, "given").unwrap(), "given");
        assert_eq!(selective_part(c, "given1").unwrap(), "given1");
        // A single trigram, when it is that rare.
        assert_eq!(selective_part(c, "givenx").unwrap(), "enx");
        let (_, keys, _) = trigram_prefilter(&mut conn, "given19876").unwrap().unwrap();
        assert_eq!(keys, "[19876]");
    }

    #[test]
    fn a_trigrams_users_are_estimated_from_its_first_matches() {
        assert_eq!(estimated_users(3, Some((10, 900)), 1_000_000), 3.0);
        assert_eq!(estimated_users(0, None, 1_000_000), 0.0);
        // A full sample over a tenth of the keys: ten times the sample.
        let tenth = estimated_users(TRIGRAM_SAMPLE, Some((1, 100_000)), 1_000_000);
        assert_eq!(tenth, TRIGRAM_SAMPLE as f64 * 10.0);
    }

    #[test]
    fn the_longest_run_of_rare_trigrams_is_searched() {
        assert_eq!(longest_run(&[]), None);
        assert_eq!(longest_run(&[false, false]), None);
        assert_eq!(longest_run(&[true]), Some((0, 0)));
        // `given9876`: giv, ive, ven common; en9 … 876 rare.
        assert_eq!(
            longest_run(&[false, false, false, true, true, true, true]),
            Some((3, 6))
        );
        assert_eq!(
            longest_run(&[true, true, false, true, true, true, false, true]),
            Some((3, 5))
        );
        // A tie keeps the first run.
        assert_eq!(longest_run(&[true, false, true]), Some((0, 0)));
    }
}
