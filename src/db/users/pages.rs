//! Paging a directory's live users in id order (a provider's `GET /Users?startIndex=…`)
//! without counting the directory and skipping `startIndex` rows on every page.
//!
//! For each directory this process remembers the number of live users and the id at every
//! `STEP`th position, tagged with the directory's `event_seq`. A page then seeks to the
//! nearest bookmark and skips fewer than `STEP` rows, and the count is not taken again.
//!
//! The tag is what keeps this correct: a user is only ever created or deleted in a transaction
//! that also emits an event (the outbox's rule), which raises `event_seq`. Bookmarks taken at
//! the sequence a request read describe the directory that request sees; after a change they
//! are rebuilt. Instances sharing a Postgres database each keep their own.
//!
//! Counts, tagged the same way, are also kept in `directory_user_counts` (`keep_new_counts`),
//! so that a restarted process, or another instance, reads them instead of counting again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use diesel::prelude::*;

use super::{ListedUser, search};
use crate::db::DbConn;
use crate::db::schema::{directories, directory_user_counts, scim_users};
use crate::db::writer::Writer;

/// Positions between two bookmarks: the most rows a page skips.
const STEP: i64 = 100;
/// Directories remembered per process (a few KB each at 100 000 users).
const CAPACITY: usize = 256;
/// Directories whose count alone is remembered (a few dozen bytes each): every directory of
/// an instance, so that the owner console's list, which shows every organization's users,
/// counts none of them again while they do not change. Bounded by the bookmarks' capacity,
/// a thousand customers' list recounted three quarters of them at every view.
const COUNT_CAPACITY: usize = 16_384;

struct Marks {
    event_seq: i64,
    total: i64,
    /// The id at positions 0, STEP, 2·STEP, … of the directory's live users in id order;
    /// taken at the second page of a version, so a directory that changes between every
    /// two pages (a sync in progress) costs no more than paging without bookmarks.
    ids: Option<Vec<String>>,
}

/// The per-process bookmark store (in `AppState`).
#[derive(Default)]
pub struct Bookmarks {
    by_directory: Mutex<HashMap<String, Arc<Marks>>>,
    /// Each directory's live users as of an `event_seq`.
    counts: Mutex<HashMap<String, Count>>,
}

/// A directory's number of live users as of one version.
struct Count {
    event_seq: i64,
    total: i64,
    /// Whether `directory_user_counts` holds it (read from there, or queued to be written).
    kept: bool,
}

impl Bookmarks {
    fn current(&self, directory_id: &str, event_seq: i64) -> Option<Arc<Marks>> {
        let map = self
            .by_directory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(directory_id)
            .filter(|m| m.event_seq == event_seq)
            .cloned()
    }

    fn remember(&self, directory_id: &str, marks: Marks) {
        let mut map = self
            .by_directory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CAPACITY && !map.contains_key(directory_id) {
            // Forget any one: rebuilding costs a page or two.
            if let Some(any) = map.keys().next().cloned() {
                map.remove(&any);
            }
        }
        map.insert(directory_id.to_string(), Arc::new(marks));
    }

    /// How many live users the directory has as of `event_seq` (the directory's sequence the
    /// caller read): counted once per version. The portal's Users view shows it on every
    /// refresh, and counting 100 000 users took Postgres 20–35 ms.
    pub fn live_users(
        &self,
        conn: &mut DbConn,
        directory_id: &str,
        event_seq: i64,
    ) -> QueryResult<i64> {
        Ok(self.live_users_of(conn, &[(directory_id, event_seq)])?[0])
    }

    /// `live_users` for each `(directory, event_seq)`, in their order: from this process's
    /// memory, else from `directory_user_counts` (one query for all of them), else counted.
    /// Counts this process took are kept in the database by `keep_new_counts`.
    pub fn live_users_of(
        &self,
        conn: &mut DbConn,
        versions: &[(&str, i64)],
    ) -> QueryResult<Vec<i64>> {
        let mut totals: Vec<Option<i64>> = {
            let counts = self.lock_counts();
            versions
                .iter()
                .map(|(id, seq)| {
                    let count = counts.get(*id).filter(|c| c.event_seq == *seq);
                    count.map(|c| c.total)
                })
                .collect()
        };
        let missing: Vec<&str> = versions
            .iter()
            .zip(&totals)
            .filter(|(_, total)| total.is_none())
            .map(|((id, _), _)| *id)
            .collect();
        if missing.is_empty() {
            return Ok(totals.into_iter().flatten().collect());
        }
        let kept = kept_counts(conn, &missing)?;
        for ((id, seq), total) in versions.iter().zip(totals.iter_mut()) {
            if total.is_some() {
                continue;
            }
            let from_database = kept.get(*id).filter(|(kept_seq, _)| kept_seq == seq);
            let (counted, kept) = match from_database {
                Some((_, n)) => (*n, true),
                None => match self.current(id, *seq) {
                    Some(marks) => (marks.total, false),
                    None => (search(conn, id, None, None, 0, 0)?.0, false),
                },
            };
            self.remember_live_users(id, *seq, counted, kept);
            *total = Some(counted);
        }
        Ok(totals.into_iter().flatten().collect())
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Count>> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remember_live_users(&self, directory_id: &str, event_seq: i64, total: i64, kept: bool) {
        let mut counts = self.lock_counts();
        if counts.len() >= COUNT_CAPACITY
            && !counts.contains_key(directory_id)
            && let Some(any) = counts.keys().next().cloned()
        {
            counts.remove(&any);
        }
        let count = Count {
            event_seq,
            total,
            kept,
        };
        counts.insert(directory_id.to_string(), count);
    }

    /// Queues, on `writer`, the keeping of the counts this process took and has not kept yet,
    /// so that no later view, here or after a restart, counts those versions again.
    pub fn keep_new_counts(&self, writer: &Writer) {
        let new: Vec<(String, i64, i64)> = self
            .lock_counts()
            .iter_mut()
            .filter(|(_, c)| !c.kept)
            .map(|(id, c)| {
                c.kept = true;
                (id.clone(), c.event_seq, c.total)
            })
            .collect();
        if !new.is_empty() {
            writer.spawn("keeping directories' user counts", move |batch| {
                keep_counts(batch.conn(), &new)
            });
        }
    }

    /// Remembers the directory's number of live users as of `event_seq`; its bookmarks are
    /// taken at the next page of that version.
    fn remember_count(&self, directory_id: &str, event_seq: i64, total: i64) {
        self.remember(
            directory_id,
            Marks {
                event_seq,
                total,
                ids: None,
            },
        );
    }

    /// The directory's live users at positions `offset..offset + limit` in id order, and how
    /// many there are, as of `event_seq` (the directory's sequence this request read).
    pub fn page(
        &self,
        conn: &mut DbConn,
        directory_id: &str,
        event_seq: i64,
        offset: i64,
        limit: i64,
    ) -> QueryResult<(i64, Vec<ListedUser>)> {
        let offset = offset.max(0);
        let marks = match self.current(directory_id, event_seq) {
            Some(marks) => marks,
            None => {
                // First page of this version: count and skip as usual, remember the count.
                let (total, rows) = search(conn, directory_id, None, None, offset, limit)?;
                self.remember_count(directory_id, event_seq, total);
                return Ok((total, rows));
            }
        };
        if limit <= 0 || offset >= marks.total {
            return Ok((marks.total, Vec::new()));
        }
        let ids = match &marks.ids {
            Some(ids) => ids,
            None => {
                let ids = every_step(conn, directory_id)?;
                self.remember(
                    directory_id,
                    Marks {
                        event_seq,
                        total: marks.total,
                        ids: Some(ids),
                    },
                );
                return self.page(conn, directory_id, event_seq, offset, limit);
            }
        };
        let Some(anchor) = usize::try_from(offset / STEP).ok().and_then(|i| ids.get(i)) else {
            return Ok((marks.total, Vec::new()));
        };
        // On the backend's own connection: through `DbConn` this query was prepared anew
        // for every page (a seventh of a page's time).
        let rows = crate::on_backend!(conn, |c| scim_users::table
            .filter(scim_users::directory_id.eq(directory_id))
            .filter(scim_users::deleted_at.is_null())
            .filter(scim_users::id.ge(anchor))
            .select(ListedUser::as_select())
            .order(scim_users::id.asc())
            .offset(offset % STEP)
            .limit(limit)
            .load(c))?;
        Ok((marks.total, rows))
    }
}

/// Every `STEP`th id of the directory's live users in id order, read from the live-user index.
fn every_step(conn: &mut DbConn, directory_id: &str) -> QueryResult<Vec<String>> {
    let ids = scim_users::table
        .filter(scim_users::directory_id.eq(directory_id))
        .filter(scim_users::deleted_at.is_null())
        .select(scim_users::id)
        .order(scim_users::id.asc())
        .load_iter::<String, diesel::connection::DefaultLoadingMode>(conn)?;
    let mut marks = Vec::new();
    for (position, id) in ids.enumerate() {
        let id = id?;
        if position % STEP as usize == 0 {
            marks.push(id);
        }
    }
    Ok(marks)
}

/// The counts `directory_user_counts` keeps for `directory_ids`: `(event_seq, live users)`.
fn kept_counts(
    conn: &mut DbConn,
    directory_ids: &[&str],
) -> QueryResult<HashMap<String, (i64, i64)>> {
    let mut kept = HashMap::new();
    // In chunks, well under either backend's limit on bound parameters.
    for ids in directory_ids.chunks(500) {
        let rows = directory_user_counts::table
            .filter(directory_user_counts::directory_id.eq_any(ids))
            .select((
                directory_user_counts::directory_id,
                directory_user_counts::event_seq,
                directory_user_counts::live_users,
            ))
            .load::<(String, i64, i64)>(conn)?;
        kept.extend(rows.into_iter().map(|(id, seq, n)| (id, (seq, n))));
    }
    Ok(kept)
}

/// Writes `(directory, event_seq, live users)` counts into `directory_user_counts`, replacing
/// a directory's older one; a directory deleted since it was counted is skipped.
fn keep_counts(conn: &mut DbConn, counts: &[(String, i64, i64)]) -> QueryResult<()> {
    use diesel::upsert::excluded;
    let ids: Vec<&str> = counts.iter().map(|(id, ..)| id.as_str()).collect();
    let present: std::collections::HashSet<String> = directories::table
        .filter(directories::id.eq_any(&ids))
        .select(directories::id)
        .load(conn)?
        .into_iter()
        .collect();
    for (id, seq, total) in counts.iter().filter(|(id, ..)| present.contains(id)) {
        let row = (
            directory_user_counts::directory_id.eq(id),
            directory_user_counts::event_seq.eq(seq),
            directory_user_counts::live_users.eq(total),
        );
        crate::on_backend!(conn, |c| diesel::insert_into(directory_user_counts::table)
            .values(row)
            .on_conflict(directory_user_counts::directory_id)
            .do_update()
            .set((
                directory_user_counts::event_seq.eq(excluded(directory_user_counts::event_seq)),
                directory_user_counts::live_users.eq(excluded(directory_user_counts::live_users)),
            ))
            .execute(c))?;
    }
    Ok(())
}
