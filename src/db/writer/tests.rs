use diesel::connection::SimpleConnection;
use futures_util::FutureExt;

use super::checkpoint::Checkpointer;
use super::connection::WriterConn;
use super::statistics::{Statistics, analyze_grown_tables, sqlite_analyzed_rows};
use super::*;
use crate::db::{DbConn, write_tx};
use crate::events::wake::DeliveryWake;

fn row() -> NewRequest {
    NewRequest {
        directory_id: "no-such-directory".into(),
        at: crate::db::now(),
        method: "GET".into(),
        path: "/Users".into(),
        status: 200,
        ..NewRequest::default()
    }
}

/// A fresh SQLite database, `w.db` in the returned directory (alive as long as it is).
fn sqlite_database() -> (tempfile::TempDir, crate::db::Pool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    (dir, crate::db::connect(&url).unwrap())
}

/// A fresh SQLite database (alive while the returned directory is) with one directory.
fn database_with_directory() -> (
    tempfile::TempDir,
    crate::db::Pool,
    crate::db::directories::Directory,
) {
    let (dir, pool) = sqlite_database();
    let org = crate::db::orgs::create(&mut pool.get().unwrap(), "Acme", true).unwrap();
    let (directory, _) =
        crate::db::directories::create(&mut pool.get().unwrap(), &org.id, "okta", "okta").unwrap();
    (dir, pool, directory)
}

/// Keeps the writer inside a job until the returned sender is used.
fn hold(writer: &Writer) -> mpsc::Sender<()> {
    let (started, started_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    writer.spawn("holding the writer", move |_| {
        let _ = started.send(());
        let _ = release_rx.recv();
        Ok(())
    });
    started_rx.recv().unwrap();
    release
}

/// Reads can queue log rows faster than they are written: past `MAX_PENDING_LOGS` the
/// next row waits for room instead of growing the queue.
#[actix_rt::test]
async fn log_rows_wait_for_room_when_the_queue_is_full() {
    let (_dir, pool) = sqlite_database();
    let writer = Writer::start(pool, DeliveryWake::default());
    let release = hold(&writer);
    for _ in 0..MAX_PENDING_LOGS {
        writer.log(row()).await;
    }
    // A fresh task budget, so that only a full queue can keep the next row pending.
    actix_rt::task::yield_now().await;
    assert!(
        writer.log(row()).now_or_never().is_none(),
        "a full queue makes the next row wait"
    );
    // Once the writer moves on, the queue drains and the row gets its place.
    release.send(()).unwrap();
    writer.log(row()).await;
}

/// On SQLite a batch runs without savepoints: a job that fails after it changed rows makes
/// the writer roll the batch back and run it again with a savepoint per job. The jobs that
/// stand keep their rows, the failed one keeps none, and each caller gets its own result.
#[actix_rt::test]
async fn a_job_failing_after_its_writes_is_undone_alone() {
    use std::sync::atomic::AtomicUsize;
    let (_dir, pool) = sqlite_database();
    let writer = Writer::start(pool.clone(), DeliveryWake::default());
    writer
        .run(|c| c.batch_execute("CREATE TABLE t (v TEXT NOT NULL UNIQUE)"))
        .await
        .unwrap()
        .unwrap();
    // The next jobs queue up meanwhile and share one batch.
    let release = hold(&writer);
    let insert = |v: &'static str| {
        move |c: &mut Batch<'_>| c.batch_execute(&format!("INSERT INTO t VALUES ('{v}')"))
    };
    let failing_runs = Arc::new(AtomicUsize::new(0));
    let runs = failing_runs.clone();
    let failing = move |c: &mut Batch<'_>| {
        runs.fetch_add(1, Ordering::SeqCst);
        c.batch_execute("INSERT INTO t VALUES ('b')")?;
        Err::<(), _>(diesel::result::Error::NotFound)
    };
    let duplicate = insert("a");
    let jobs = futures_util::future::join4(
        writer.run(insert("a")),
        writer.run(failing),
        // Fails in its only statement, which SQLite undoes by itself.
        writer.run(duplicate),
        writer.run(insert("c")),
    );
    let released = async {
        // Every job is queued (each is sent when its future is first polled).
        actix_rt::task::yield_now().await;
        release.send(()).unwrap();
    };
    let ((a, b, dup, c), ()) = futures_util::future::join(jobs, released).await;
    assert!(a.unwrap().is_ok());
    assert!(matches!(b.unwrap(), Err(diesel::result::Error::NotFound)));
    assert!(dup.unwrap().is_err(), "a duplicate value is refused");
    assert!(c.unwrap().is_ok());
    assert_eq!(
        failing_runs.load(Ordering::SeqCst),
        2,
        "the batch was replayed with savepoints"
    );
    let mut conn = pool.get().unwrap();
    let DbConn::Sqlite(c) = &mut *conn else {
        unreachable!()
    };
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    use diesel::RunQueryDsl;
    let rows: Vec<Row> = diesel::sql_query("SELECT v FROM t ORDER BY v")
        .load(c)
        .unwrap();
    let values: Vec<String> = rows.into_iter().map(|r| r.v).collect();
    assert_eq!(values, ["a", "c"]);
}

/// A job that holds the writer long commits in a batch of its own, after the light jobs
/// queued with it: here two such jobs and two light ones, queued alternately while the writer
/// is busy. Each job notes how many of the others a second connection sees committed when it
/// runs: the light ones none (they share the first batch), the first lone job both light
/// ones, the second lone job three.
#[actix_rt::test]
async fn jobs_that_commit_alone_let_the_light_jobs_queued_with_them_go_first() {
    use std::sync::Mutex;
    let (_dir, pool) = sqlite_database();
    let writer = Writer::start(pool.clone(), DeliveryWake::default());
    writer
        .run(|c| c.batch_execute("CREATE TABLE done (name TEXT NOT NULL)"))
        .await
        .unwrap()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let job = |name: &'static str| {
        let (seen, pool) = (seen.clone(), pool.clone());
        move |c: &mut Batch<'_>| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let mut other = pool.get().unwrap();
            let DbConn::Sqlite(o) = &mut *other else {
                unreachable!()
            };
            let committed = diesel::sql_query("SELECT count(*) AS n FROM done")
                .get_result::<Count>(o)
                .unwrap()
                .n;
            seen.lock().unwrap().push((name, committed));
            c.batch_execute(&format!("INSERT INTO done VALUES ('{name}')"))
        }
    };
    let release = hold(&writer);
    let jobs = futures_util::future::join4(
        writer.run_alone(job("alone 1")),
        writer.run(job("light 1")),
        writer.run_alone(job("alone 2")),
        writer.run(job("light 2")),
    );
    let released = async {
        actix_rt::task::yield_now().await;
        release.send(()).unwrap();
    };
    let ((a1, l1, a2, l2), ()) = futures_util::future::join(jobs, released).await;
    for result in [a1, l1, a2, l2] {
        assert!(result.unwrap().is_ok());
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("light 1", 0),
            ("light 2", 0),
            ("alone 1", 2),
            ("alone 2", 3)
        ]
    );
}

/// A batch inserts its creates before its other jobs, and a replay (here caused by a job
/// failing after its writes) inserts them again from scratch: each create still hears
/// whether its user went in (one of two with one userName), and each user is stored once,
/// with one `user.created` event and one log row.
#[actix_rt::test]
async fn creates_in_a_replayed_batch_go_in_once() {
    use diesel::RunQueryDsl;
    let (_dir, pool, directory) = database_with_directory();
    let new_user = |name: &str| {
        let input =
            crate::scim::resource::user_from_json(&serde_json::json!({"userName": name})).unwrap();
        NewUser::new(&directory.id, &input, |_| {
            serde_json::value::RawValue::from_string("{}".into())
        })
        .unwrap()
    };
    // What a create stores after its insert: its event and its log row.
    let store = || {
        let directory_id = directory.id.clone();
        move |batch: &mut Batch<'_>, user: &NewUser, _: Option<bool>| {
            crate::db::users::record_created(batch, user)?;
            batch.log(NewRequest {
                directory_id: directory_id.clone(),
                method: "POST".into(),
                ..row()
            });
            Ok::<_, diesel::result::Error>(())
        }
    };
    let writer = Writer::start(pool.clone(), DeliveryWake::default());
    let release = hold(&writer);
    let failing = |c: &mut Batch<'_>| {
        c.batch_execute("UPDATE directories SET name = name")?;
        Err::<(), _>(diesel::result::Error::NotFound)
    };
    let jobs = futures_util::future::join4(
        writer.run_create(new_user("a@x.com"), true, store()),
        writer.run(failing),
        writer.run_create(new_user("A@X.com"), true, store()),
        writer.run_create(new_user("b@x.com"), true, store()),
    );
    let released = async {
        actix_rt::task::yield_now().await;
        release.send(()).unwrap();
    };
    let ((a, failed, a_again, b), ()) = futures_util::future::join(jobs, released).await;
    assert!(
        a.unwrap().is_some_and(|r| r.is_ok()),
        "the first of two creates of one userName goes in"
    );
    assert!(failed.unwrap().is_err());
    assert!(
        a_again.unwrap().is_none(),
        "the second is told its userName is taken"
    );
    assert!(b.unwrap().is_some_and(|r| r.is_ok()));
    let mut conn = pool.get().unwrap();
    let count = |sql: &str, conn: &mut DbConn| {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let DbConn::Sqlite(c) = conn else {
            unreachable!()
        };
        diesel::sql_query(sql).get_result::<N>(c).unwrap().n
    };
    assert_eq!(count("SELECT count(*) AS n FROM scim_users", &mut conn), 2);
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM events WHERE event_type = 'user.created'",
            &mut conn
        ),
        2
    );
    assert_eq!(
        count("SELECT count(*) AS n FROM scim_requests", &mut conn),
        2
    );
}

/// The first 4 bytes after the WAL header's magic, format and page size: the checkpoint
/// sequence number, which SQLite raises each time the WAL starts over.
fn wal_generation(wal: &std::path::Path) -> u32 {
    let bytes = std::fs::read(wal).unwrap();
    u32::from_be_bytes(bytes[12..16].try_into().unwrap())
}

/// A busy writer's WAL never starts over by itself (a checkpoint beside it rarely copies
/// everything): once the checkpoint thread has reported `WAL_FRAMES` frames, the writer's
/// next `after` copies what is left and starts it over. The report is set by hand here,
/// so nothing depends on when the thread runs.
#[test]
fn the_writer_starts_the_wal_over_once_the_thread_reports_wal_frames() {
    let (dir, pool) = sqlite_database();
    let wal = dir.path().join("w.db-wal");
    let mut checkpoints = Checkpointer::start(&pool).unwrap();
    let mut conn = WriterConn::new(pool.get().unwrap());
    let write = |conn: &mut WriterConn| {
        write_tx(conn, |c| {
            c.batch_execute("INSERT INTO t VALUES (zeroblob(4000))")
        })
        .unwrap()
    };
    conn.batch_execute("CREATE TABLE t (v BLOB NOT NULL)")
        .unwrap();
    for _ in 0..50 {
        write(&mut conn);
    }
    let before = wal_generation(&wal);
    // Below the mark, `after` leaves the WAL alone: writes go on appending to it.
    checkpoints.wal_frames.store(100, Ordering::SeqCst);
    checkpoints.after(&mut conn, 0);
    write(&mut conn);
    assert_eq!(wal_generation(&wal), before);
    // At the mark it starts the WAL over; the next write begins it anew.
    checkpoints
        .wal_frames
        .store(WriterConn::WAL_FRAMES as usize, Ordering::SeqCst);
    checkpoints.after(&mut conn, 0);
    assert_eq!(checkpoints.wal_frames.load(Ordering::SeqCst), 0);
    write(&mut conn);
    assert_eq!(wal_generation(&wal), before + 1);
}

/// Checkpoints are the checkpoint thread's and the writer's. A commit on another pooled
/// connection (a portal or console change) while the WAL is long must not copy the WAL into
/// the database itself, as SQLite's default (at 1 000 frames) would: an fsync of several ms
/// each time, in that change's way.
#[test]
fn pooled_commits_leave_a_long_wal_to_the_checkpoint_thread() {
    let (dir, pool) = sqlite_database();
    let database = dir.path().join("w.db");
    let mut conn = pool.get().unwrap();
    conn.batch_execute("CREATE TABLE t (v BLOB NOT NULL)")
        .unwrap();
    let before = std::fs::metadata(&database).unwrap().len();
    // One page each, one commit each: 1 500 frames, past SQLite's default mark.
    for _ in 0..1500 {
        conn.batch_execute("INSERT INTO t VALUES (zeroblob(4000))")
            .unwrap();
    }
    let after = std::fs::metadata(&database).unwrap().len();
    // A checkpoint would have copied ~1 000 pages (4 MB) into the database file.
    assert!(
        after < before + 1_000_000,
        "the database file grew from {before} to {after} bytes: a pooled commit checkpointed"
    );
}

/// The writer acts on the checkpoint thread's report: after the batch that finds
/// `WAL_FRAMES` reported, the WAL starts over. The report is set by hand and the writes are
/// too few to nudge the thread, so nothing depends on when a thread runs: a batch's `after`
/// runs before the writer takes the next batch.
#[actix_rt::test]
async fn the_writer_starts_the_wal_over_after_a_batch_once_wal_frames_are_reported() {
    let (dir, pool) = sqlite_database();
    let wal = dir.path().join("w.db-wal");
    let checkpoints = Checkpointer::start(&pool).unwrap();
    let report = checkpoints.wal_frames.clone();
    let writer = Writer::start_with(
        pool,
        DeliveryWake::default(),
        move |_| Some(checkpoints),
        None,
    );
    let write = |sql: &'static str| writer.run(move |c| c.batch_execute(sql));
    write("CREATE TABLE t (v BLOB NOT NULL)")
        .await
        .unwrap()
        .unwrap();
    for _ in 0..20 {
        write("INSERT INTO t VALUES (zeroblob(4000))")
            .await
            .unwrap()
            .unwrap();
    }
    let before = wal_generation(&wal);
    report.store(WriterConn::WAL_FRAMES as usize, Ordering::SeqCst);
    // This batch commits, then its `after` finds the report and starts the WAL over…
    write("INSERT INTO t VALUES (zeroblob(4000))")
        .await
        .unwrap()
        .unwrap();
    // …before this one begins it anew.
    write("INSERT INTO t VALUES (zeroblob(4000))")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wal_generation(&wal), before + 1);
    assert_eq!(report.load(Ordering::SeqCst), 0, "the report is consumed");
}

/// Log rows wait beside the queue, woken for by the first: a closing writer still commits
/// every row waiting, and `flush` waits for all of them.
#[actix_rt::test]
async fn waiting_log_rows_are_committed_by_flush_and_at_close() {
    let (_dir, pool, directory) = database_with_directory();
    let logged = |n: usize| {
        let rows = crate::db::requests::recent(
            &mut pool.get().unwrap(),
            &directory.id,
            2 * LOG_COMPANY as i64,
        )
        .unwrap();
        assert_eq!(rows.len(), n);
    };
    let row = || NewRequest {
        directory_id: directory.id.clone(),
        ..row()
    };
    let writer = Writer::start(pool.clone(), DeliveryWake::default());
    for _ in 0..3 {
        writer.log(row()).await;
    }
    writer.flush().await;
    logged(3);
    for _ in 0..(LOG_COMPANY + 5) {
        writer.log(row()).await;
    }
    drop(writer);
    logged(LOG_COMPANY + 8);
}

/// A read's log row needs no flush and no change to carry it: the writer commits it on its
/// own once it has waited `LOG_DELAY`, which keeps what a crash can lose of reads' rows
/// under a second.
#[actix_rt::test]
async fn a_lone_log_row_is_committed_without_a_flush() {
    const { assert!(LOG_DELAY.as_millis() <= 500) };
    let (_dir, pool, directory) = database_with_directory();
    let writer = Writer::start(pool.clone(), DeliveryWake::default());
    writer
        .log(NewRequest {
            directory_id: directory.id.clone(),
            ..row()
        })
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows =
            crate::db::requests::recent(&mut pool.get().unwrap(), &directory.id, 10).unwrap();
        if rows.len() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the row was never committed"
        );
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(writer);
}

/// A schema of its own on the test Postgres server (`TEST_DATABASE_URL`), with a pool and
/// one directory; dropped with it. `None` when there is no test server.
struct PgSchema {
    admin: diesel::PgConnection,
    schema: String,
    pool: Option<Pool>,
    directory_id: String,
}

impl PgSchema {
    fn new() -> Option<PgSchema> {
        use diesel::Connection;
        let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
            assert!(
                std::env::var("ROSTER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ROSTER_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set"
            );
            return None;
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(&base).unwrap();
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        // Without TLS, as the HTTP tests (libpq's TLS teardown at exit can race open
        // connections).
        let tls = if base.contains("sslmode=") {
            ""
        } else {
            "sslmode=disable&"
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        let pool = crate::db::connect(&format!("{base}{sep}{tls}options=-csearch_path%3D{schema}"))
            .unwrap();
        let org = crate::db::orgs::create(&mut pool.get().unwrap(), "Acme", true).unwrap();
        let (directory, _) =
            crate::db::directories::create(&mut pool.get().unwrap(), &org.id, "okta", "okta")
                .unwrap();
        Some(PgSchema {
            admin,
            schema,
            pool: Some(pool),
            directory_id: directory.id,
        })
    }

    fn pool(&self) -> &Pool {
        self.pool
            .as_ref()
            .expect("the pool lives as long as the schema")
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Every connection closes before the schema goes.
        self.pool = None;
        let _ = self
            .admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
    }
}

/// Adds users `u{from}`…`u{to}` to the directory, straight into the table.
fn add_users(pg: &mut diesel::PgConnection, directory_id: &str, from: i32, to: i32) {
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "INSERT INTO scim_users (id, directory_id, user_name, user_name_norm, resource, \
         created_at, updated_at) SELECT 'u' || i, $1, 'u' || i, 'u' || i, '{}', now(), \
         now() FROM generate_series($2, $3) AS i",
    )
    .bind::<diesel::sql_types::Text, _>(directory_id)
    .bind::<diesel::sql_types::Integer, _>(from)
    .bind::<diesel::sql_types::Integer, _>(to)
    .execute(pg)
    .unwrap();
}

/// A Postgres table is analyzed when it has doubled since it was last analyzed, and only
/// then: one that filled after being analyzed empty (the memberships of a PingOne sync)
/// is caught, whatever the other tables did meanwhile. Needs `TEST_DATABASE_URL`.
#[test]
fn postgres_tables_are_analyzed_when_they_double() {
    use diesel::RunQueryDsl;
    let Some(db) = PgSchema::new() else {
        return;
    };
    let mut conn = db.pool().get().unwrap();
    let DbConn::Postgres(pg) = &mut *conn else {
        panic!("a Postgres connection")
    };
    let add_users = |pg: &mut diesel::PgConnection, from: i32, to: i32| {
        add_users(pg, &db.directory_id, from, to)
    };
    #[derive(diesel::QueryableByName)]
    struct Estimate {
        #[diesel(sql_type = diesel::sql_types::Float)]
        reltuples: f32,
    }
    let estimate = |pg: &mut diesel::PgConnection, table: &str| {
        diesel::sql_query(
            "SELECT reltuples FROM pg_class \
             WHERE relnamespace = current_schema()::regnamespace AND relname = $1",
        )
        .bind::<diesel::sql_types::Text, _>(table)
        .get_result::<Estimate>(pg)
        .unwrap()
        .reltuples
    };
    // Autovacuum must not analyze in the test's stead.
    pg.batch_execute(
        "ALTER TABLE scim_users SET (autovacuum_enabled = false); \
         ALTER TABLE scim_groups SET (autovacuum_enabled = false)",
    )
    .unwrap();
    let groups_before = estimate(pg, "scim_groups");

    add_users(pg, 1, 1000);
    analyze_grown_tables(pg).unwrap();
    assert_eq!(estimate(pg, "scim_users"), 1000.0);
    // Unchanged tables are left alone.
    assert_eq!(estimate(pg, "scim_groups"), groups_before);

    add_users(pg, 1001, 1100);
    analyze_grown_tables(pg).unwrap();
    assert_eq!(estimate(pg, "scim_users"), 1000.0, "10 % more is not twice");

    add_users(pg, 1101, 2500);
    analyze_grown_tables(pg).unwrap();
    assert_eq!(estimate(pg, "scim_users"), 2500.0);
}

/// On Postgres the writer's statements are planned once per connection, not at every run:
/// Postgres would plan a one-member add anew each time (its generic plan, made for ten
/// members, looks dearer), and that planning took longer than the add itself.
#[test]
fn the_writers_postgres_statements_are_planned_once() {
    use diesel::RunQueryDsl;
    let Some(db) = PgSchema::new() else {
        return;
    };
    let mut conn = WriterConn::new(db.pool().get().unwrap());
    let DbConn::Postgres(pg) = &mut *conn else {
        panic!("a Postgres connection")
    };
    add_users(pg, &db.directory_id, 1, 10);
    let group = crate::db::groups::insert(
        &mut conn,
        &db.directory_id,
        &crate::scim::resource::GroupInput {
            display_name: "Team".into(),
            external_id: None,
            members: None,
            document: serde_json::json!({"displayName": "Team"}),
        },
    )
    .unwrap();
    for i in 1..=10 {
        let user = std::collections::BTreeSet::from([format!("u{i}")]);
        let (_, added) = crate::db::memberships::add_known_members(
            &mut conn,
            &db.directory_id,
            &group.id,
            &user,
            true,
        )
        .unwrap();
        assert_eq!(added.len(), 1);
    }
    #[derive(diesel::QueryableByName)]
    struct Plans {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        generic_plans: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        custom_plans: i64,
    }
    let DbConn::Postgres(pg) = &mut *conn else {
        unreachable!()
    };
    let plans: Plans = diesel::sql_query(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement LIKE '%INSERT INTO group_members%'",
    )
    .get_result(pg)
    .unwrap();
    assert_eq!((plans.generic_plans, plans.custom_plans), (10, 0));
    // The group moved once per add.
    let version = crate::db::groups::get(&mut conn, &db.directory_id, &group.id)
        .unwrap()
        .unwrap()
        .version;
    assert_eq!(version, 11);
    // Pooled readers plan as Postgres chooses.
    drop(conn);
    let mut reader = db.pool().get().unwrap();
    let DbConn::Postgres(pg) = &mut *reader else {
        unreachable!()
    };
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        plan_cache_mode: String,
    }
    let mode: Mode = diesel::sql_query("SHOW plan_cache_mode")
        .get_result(pg)
        .unwrap();
    assert_eq!(mode.plan_cache_mode, "auto");
}

/// Adds users `u{from}`…`u{to}` to the directory, straight into the table (SQLite).
fn add_sqlite_users(c: &mut diesel::SqliteConnection, directory_id: &str, from: i32, to: i32) {
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
         INSERT INTO scim_users (id, directory_id, user_name, user_name_norm, resource, \
         created_at, updated_at) SELECT 'u' || i, ?, 'u' || i, 'u' || i, '{}', \
         CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM n",
    )
    .bind::<diesel::sql_types::Integer, _>(from)
    .bind::<diesel::sql_types::Integer, _>(to)
    .bind::<diesel::sql_types::Text, _>(directory_id)
    .execute(c)
    .unwrap();
}

/// SQLite is analyzed once the changes since its last `ANALYZE` could have doubled the SCIM
/// tables, counted from what `sqlite_stat1` recorded, also after a restart; only the SCIM
/// tables are analyzed, and the other tables' statistics an earlier bare `ANALYZE` left are
/// forgotten.
#[test]
fn sqlite_is_analyzed_when_the_scim_tables_may_have_doubled() {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows = sqlite_analyzed_rows;
    let add = |conn: &mut DbConn, directory_id: &str, from: i32, to: i32| match conn {
        DbConn::Sqlite(c) => add_sqlite_users(c, directory_id, from, to),
        DbConn::Postgres(_) => unreachable!(),
    };
    let other_tables = |conn: &mut DbConn| {
        diesel::sql_query(
            "SELECT count(*) AS n FROM sqlite_stat1 \
             WHERE tbl NOT IN ('scim_users', 'user_emails', 'scim_groups', 'group_members')",
        )
        .get_result::<Count>(conn)
        .unwrap()
        .n
    };

    // A new database is analyzed after 500 changes, its SCIM tables only.
    let (_dir, pool, directory) = database_with_directory();
    let mut conn = pool.get().unwrap();
    add(&mut conn, &directory.id, 1, 700);
    let mut statistics = Statistics::default();
    statistics.after(&mut conn, 499);
    assert_eq!(rows(&mut conn), 0, "not analyzed before 500 changes");
    statistics.after(&mut conn, 1);
    assert_eq!(rows(&mut conn), 700);
    assert_eq!(
        other_tables(&mut conn),
        0,
        "only the SCIM tables are analyzed"
    );

    // A database an earlier version analyzed whole, restarted: the step is the 3 000 rows
    // last analyzed, not 500 changes, and the other tables' statistics are forgotten.
    let (_dir, pool, directory) = database_with_directory();
    let mut conn = pool.get().unwrap();
    add(&mut conn, &directory.id, 1, 3000);
    conn.batch_execute("ANALYZE").unwrap();
    assert!(other_tables(&mut conn) > 0);
    add(&mut conn, &directory.id, 3001, 7000);
    let mut statistics = Statistics::default();
    statistics.after(&mut conn, 2999);
    assert_eq!(
        rows(&mut conn),
        3000,
        "3 000 rows analyzed cannot have doubled in 2 999 changes"
    );
    assert_eq!(
        other_tables(&mut conn),
        0,
        "the other tables' statistics are forgotten"
    );
    statistics.after(&mut conn, 1);
    assert_eq!(rows(&mut conn), 7000);
    assert_eq!(other_tables(&mut conn), 0);
}
