//! Secrets at rest: webhook signing secrets and the session key are stored sealed under the
//! operator's key file, so a dump of the database alone holds neither; a key file that cannot
//! open them stops the start; rotating the key re-seals them.

use std::path::Path;

use roster::at_rest::{Purpose, SecretKeys, new_key_line, sealed_with};
use roster::db::{self, DbConn};

use crate::helpers::{Backend, TestDb, backend_tests};

/// Every stored webhook secret and the session key, as the database holds them.
fn stored_secrets(conn: &mut DbConn) -> Vec<(Purpose, String)> {
    let mut out: Vec<(Purpose, String)> = db::webhooks::stored_secrets(conn)
        .unwrap()
        .into_iter()
        .map(|(id, v)| (Purpose::webhook_secret(&id), v))
        .collect();
    if let Some(v) = db::settings::get(conn, "session_key").unwrap() {
        out.push((Purpose::session_key(), v));
    }
    out
}

fn key_file(dir: &Path, name: &str, lines: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// The bytes a dump of the database would hold: the SQLite file and its WAL, or every row of
/// the Postgres tables that hold secrets.
fn dump(db: &TestDb, backend: Backend, conn: &mut DbConn) -> Vec<u8> {
    match backend {
        Backend::Sqlite => {
            let file = db::sqlite_path(&db.url).unwrap();
            let mut bytes = std::fs::read(file).unwrap();
            bytes.extend(std::fs::read(format!("{file}-wal")).unwrap_or_default());
            bytes
        }
        Backend::Postgres => stored_secrets(conn)
            .into_iter()
            .flat_map(|(_, v)| v.into_bytes())
            .collect(),
    }
}

backend_tests!(a_database_dump_holds_no_webhook_secret_and_no_session_key);
async fn a_database_dump_holds_no_webhook_secret_and_no_session_key(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.key");
    let pool = db::connect(&db.url).unwrap();
    let mut conn = pool.get().unwrap();
    // The first start creates the key file, readable by its owner only.
    let (keys, _) = db::sealing::open_keys(&mut conn, &path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{backend:?}");
    }
    let session_key = db::sealing::session_key(&mut conn, &keys).unwrap();
    let (endpoint, secret) =
        db::webhooks::create(&mut conn, &keys, "https://hooks.example.com/r", None, "*").unwrap();
    let stored = stored_secrets(&mut conn);
    assert_eq!(stored.len(), 2, "{backend:?}");
    for (purpose, value) in &stored {
        assert_eq!(sealed_with(value), Some(keys.ids()[0]), "{backend:?}");
        assert!(keys.open(value, purpose).is_ok(), "{backend:?}");
    }
    let bytes = dump(&db, backend, &mut conn);
    let needle = secret.trim_start_matches("whsec_");
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
        "{backend:?}: the webhook secret is in the dump"
    );
    let master = session_key.master();
    assert!(
        !bytes.windows(16).any(|w| w == &master[..16]),
        "{backend:?}: the session key is in the dump"
    );
    // What the dump holds opens with the key, and only for its own row.
    let sealed = db::webhooks::stored_secrets(&mut conn).unwrap()[0]
        .1
        .clone();
    assert_eq!(
        keys.open(&sealed, &Purpose::webhook_secret(&endpoint.id))
            .unwrap(),
        secret
    );
    assert!(
        keys.open(&sealed, &Purpose::webhook_secret("another"))
            .is_err()
    );
}

backend_tests!(secrets_stored_before_sealing_are_sealed_at_the_next_start);
async fn secrets_stored_before_sealing_are_sealed_at_the_next_start(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let pool = db::connect(&db.url).unwrap();
    let mut conn = pool.get().unwrap();
    let keys = SecretKeys::parse(&new_key_line(), Path::new("k")).unwrap();
    let (endpoint, secret) =
        db::webhooks::create(&mut conn, &keys, "https://hooks.example.com/r", None, "*").unwrap();
    // As an older Roster stored them: in clear.
    db::webhooks::store_secret(&mut conn, &endpoint.id, &secret).unwrap();
    db::settings::set(&mut conn, "session_key", &"a".repeat(88)).unwrap();
    let path = dir.path().join("roster.key");
    let (keys, resealed) = db::sealing::open_keys(&mut conn, &path).unwrap();
    assert_eq!(resealed, 2, "{backend:?}");
    for (purpose, value) in stored_secrets(&mut conn) {
        assert_eq!(sealed_with(&value), Some(keys.ids()[0]), "{backend:?}");
        keys.open(&value, &purpose).unwrap();
    }
    let sealed = &db::webhooks::stored_secrets(&mut conn).unwrap()[0].1;
    assert_eq!(
        keys.open(sealed, &Purpose::webhook_secret(&endpoint.id))
            .unwrap(),
        secret
    );
}

backend_tests!(rotating_the_key_reseals_every_secret_under_the_new_one);
async fn rotating_the_key_reseals_every_secret_under_the_new_one(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (new_key_line(), new_key_line());
    let pool = db::connect(&db.url).unwrap();
    let mut conn = pool.get().unwrap();
    let (keys, _) = db::sealing::open_keys(&mut conn, &key_file(dir.path(), "a", &[&old])).unwrap();
    let session_key = db::sealing::session_key(&mut conn, &keys).unwrap();
    let (endpoint, secret) =
        db::webhooks::create(&mut conn, &keys, "https://hooks.example.com/r", None, "*").unwrap();
    // Step 1: the new key is added last — nothing changes, both open.
    let (keys, resealed) =
        db::sealing::open_keys(&mut conn, &key_file(dir.path(), "b", &[&old, &new])).unwrap();
    assert_eq!(resealed, 0, "{backend:?}");
    // Step 2: the new key first — every secret is sealed again under it.
    let (keys_new_first, resealed) =
        db::sealing::open_keys(&mut conn, &key_file(dir.path(), "c", &[&new, &old])).unwrap();
    assert_eq!(resealed, 2, "{backend:?}");
    assert_ne!(keys.ids()[0], keys_new_first.ids()[0]);
    // Step 3: the old key is dropped — everything still opens, to the same values.
    let (only_new, resealed) =
        db::sealing::open_keys(&mut conn, &key_file(dir.path(), "d", &[&new])).unwrap();
    assert_eq!(resealed, 0, "{backend:?}");
    let sealed = &db::webhooks::stored_secrets(&mut conn).unwrap()[0].1;
    assert_eq!(
        only_new
            .open(sealed, &Purpose::webhook_secret(&endpoint.id))
            .unwrap(),
        secret
    );
    assert_eq!(
        db::sealing::session_key(&mut conn, &only_new)
            .unwrap()
            .master(),
        session_key.master()
    );
}

/// Runs `roster serve` expecting it to refuse: its output once it exits. One that starts
/// serving instead is stopped after a minute and the test fails.
fn serve(db_url: &str, key_file: &Path) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["--database-url", db_url, "--bind", "127.0.0.1:0"])
        .arg("--secret-key-file")
        .arg(key_file)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("ROSTER_SECRET_KEY_FILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("roster serve started with a key file that cannot open the database's secrets");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

backend_tests!(an_instance_without_the_databases_key_refuses_to_start);
/// A second instance given another key (or none) would sign with secrets it cannot open: it
/// refuses to start, with exit 2 and what to do.
async fn an_instance_without_the_databases_key_refuses_to_start(backend: Backend) {
    let db = TestDb::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let pool = db::connect(&db.url).unwrap();
    let (keys, _) = db::sealing::open_keys(
        &mut pool.get().unwrap(),
        &key_file(dir.path(), "first", &[&new_key_line()]),
    )
    .unwrap();
    db::sealing::session_key(&mut pool.get().unwrap(), &keys).unwrap();
    let other = key_file(dir.path(), "other", &[&new_key_line()]);
    for (file, says) in [
        (other.as_path(), keys.ids()[0].to_string()),
        (&dir.path().join("missing.key"), "does not exist".into()),
    ] {
        let out = serve(&db.url, file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{backend:?}: {err}");
        assert!(
            err.contains(&says) && err.contains("--secret-key-file"),
            "{backend:?}: {err}"
        );
    }
    assert!(!dir.path().join("missing.key").exists());
    let bad = key_file(dir.path(), "bad", &["not a key"]);
    let out = serve(&db.url, &bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{backend:?}: {err}");
    assert!(err.contains("line 1"), "{backend:?}: {err}");
}
