//! The operator CLI, run as a real process against both backends.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{Backend, Scim, TestApp, TestDb, backend_tests};

fn roster(db: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args([
            "--database-url",
            db,
            "--public-url",
            "https://roster.example.com/",
        ])
        .args(args)
        .env_remove("DATABASE_URL")
        .env("ROSTER_SECRET_KEY_FILE", crate::helpers::test_key_file())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_out(db: &str, args: &[&str]) -> Value {
    let (code, out, err) = roster(db, args);
    assert_eq!(code, 0, "roster {args:?}: {err}");
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

backend_tests!(cli_creates_orgs_links_and_directories_that_work);
async fn cli_creates_orgs_links_and_directories_that_work(backend: Backend) {
    let db = TestDb::new(backend);
    let (code, out, err) = roster(&db.url, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("migrations applied"));

    let org = json_out(
        &db.url,
        &["org", "create", "Acme Corp", "--scim-enabled", "--json"],
    );
    assert_eq!(org["name"], "Acme Corp");
    assert_eq!(org["scim_enabled"], true);
    let org_id = org["id"].as_str().unwrap();

    let link = json_out(&db.url, &["portal-link", org_id, "--ttl", "2h", "--json"]);
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .starts_with("https://roster.example.com/portal/link/roster_portal_")
    );
    let (code, out, _) = roster(&db.url, &["portal-link", "Acme Corp"]);
    assert_eq!(code, 0, "orgs can be named");
    assert!(out.trim().starts_with("https://"));

    let dir = json_out(
        &db.url,
        &[
            "directory",
            "create",
            org_id,
            "--provider",
            "pingidentity",
            "--json",
        ],
    );
    let endpoint = dir["endpoint_url"].as_str().unwrap();
    assert_eq!(
        endpoint,
        format!(
            "https://roster.example.com/scim/v2/{}",
            dir["id"].as_str().unwrap()
        )
    );
    let token = dir["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("roster_scim_"));

    let (code, _, _) = roster(&db.url, &["org", "scim", "Acme Corp", "off"]);
    assert_eq!(code, 0);
    let (code, out, _) = roster(&db.url, &["owner", "setup-link"]);
    assert_eq!(code, 0);
    assert!(
        out.trim()
            .starts_with("https://roster.example.com/owner/setup/roster_setup_")
    );

    // Errors are clear and have meaningful exit codes.
    let (code, _, err) = roster(&db.url, &["portal-link", "No Such Org"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no organization"));
    let (code, _, err) = roster(
        &db.url,
        &["directory", "create", org_id, "--provider", "myspace"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown provider"));
    let (code, _, err) = roster("mysql://nope", &["migrate"]);
    assert_ne!(code, 0);
    assert!(err.contains("unsupported database URL"));

    // The token the CLI printed works against a server on the same database (once SCIM is on).
    let (code, _, _) = roster(&db.url, &["org", "scim", org_id, "on"]);
    assert_eq!(code, 0);
    let app = TestApp::spawn_on(backend, db).await;
    let scim = Scim::new(
        format!("{}/scim/v2/{}", app.base, dir["id"].as_str().unwrap()),
        token,
    );
    let r = scim
        .post("/Users", &json!({"userName": "cli@acme.com"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Every flag an operator can get wrong is refused before anything runs: exit 2 with a message
/// naming the flag, never a panic (the webhook worker's settings used to panic inside its
/// thread, stopping delivery silently).
#[test]
fn out_of_range_flags_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let cases: &[(&[&str], &str)] = &[
        (
            &["portal-link", "Acme", "--ttl", "99999999999999999d"],
            "--ttl",
        ),
        (
            &["portal-link", "Acme", "--ttl", "9223372036854775807m"],
            "--ttl",
        ),
        (
            &["--webhook-retry-schedule", "1e20", "migrate"],
            "--webhook-retry-schedule",
        ),
        (
            &["--webhook-retry-schedule", "5,NaN", "migrate"],
            "--webhook-retry-schedule",
        ),
        (
            &["--webhook-retry-schedule", "5,-1", "migrate"],
            "--webhook-retry-schedule",
        ),
        (
            &["--webhook-timeout", "18446744073709551615", "migrate"],
            "--webhook-timeout",
        ),
        (&["--webhook-timeout", "0", "migrate"], "--webhook-timeout"),
        (
            &["--event-retention-days", "9223372036854775807", "migrate"],
            "--event-retention-days",
        ),
        (
            &["--event-retention-days", "0", "migrate"],
            "--event-retention-days",
        ),
        (&["--public-url", "ftp://x", "migrate"], "public URL"),
        (
            &["--trusted-proxy", "10.0.0.1,proxy.local", "migrate"],
            "--trusted-proxy",
        ),
        (
            &[
                "--frame-ancestors",
                "https://ok.example,http://vendor.example",
                "migrate",
            ],
            "--frame-ancestors",
        ),
        (&["--metrics-token", "short", "migrate"], "--metrics-token"),
        (
            &["--metrics-token", "has a space in it somewhere", "migrate"],
            "--metrics-token",
        ),
        (&["--log-format", "xml", "migrate"], "--log-format"),
    ];
    for (args, flag) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["--database-url", &db])
            .args(*args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(flag) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
