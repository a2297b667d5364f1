//! One read transaction for a request's several reads.
//!
//! On SQLite each statement outside a transaction is a transaction of its own: it takes the
//! file's shared lock and a WAL read mark (`fcntl` calls), checks whether another connection
//! committed, and lets go again. A SCIM read (the token, the directory's resync, the resource,
//! its groups) did that four times; in one transaction it does it once, and its reads see
//! one state of the database (a user and its groups never straddle another commit).

use super::DbConn;
use diesel::Connection;

/// Runs `f`'s reads in one read transaction on SQLite (rolled back if `f` fails: it wrote
/// nothing). On Postgres `f` runs as it is: a `BEGIN` and a `COMMIT` would be two more round
/// trips, and its reads that must agree are single statements already.
pub fn read_snapshot<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Sqlite(_) => conn.transaction(f),
        DbConn::Postgres(_) => f(conn),
    }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::read_snapshot;
    use crate::db::schema::organizations;
    use crate::db::{self, DbConn};

    fn org_count(conn: &mut DbConn) -> i64 {
        organizations::table.count().get_result(conn).unwrap()
    }

    /// A commit by another connection between two reads of the snapshot is not seen by the
    /// second: the reads of one request agree.
    #[test]
    fn reads_in_a_snapshot_see_one_state_of_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("roster.db").display());
        let pool = db::connect(&url).unwrap();
        let mut reader = pool.get().unwrap();
        let mut other = pool.get().unwrap();
        let (before, during) = read_snapshot(&mut reader, |c| {
            let before = org_count(c);
            db::orgs::create(&mut other, "Committed meanwhile", true)?;
            Ok::<_, diesel::result::Error>((before, org_count(c)))
        })
        .unwrap();
        assert_eq!(during, before, "the second read saw the other commit");
        assert_eq!(
            org_count(&mut reader),
            before + 1,
            "seen once the snapshot ends"
        );
    }
}
