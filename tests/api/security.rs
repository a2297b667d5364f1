//! Attacks from outside and a careless operator: what must not leak, drain or stall.

use futures_util::future::join_all;

use crate::helpers::{Backend, Browser, TestApp, backend_tests};

backend_tests!(concurrent_wrong_passwords_check_at_most_the_free_attempts);
/// A burst of concurrent wrong passwords: each attempt is counted before its password is
/// checked, so at most the free attempts reach argon2 and the rest are refused as locked.
async fn concurrent_wrong_passwords_check_at_most_the_free_attempts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner().await;
    let mut attackers = Vec::new();
    for _ in 0..60 {
        let mut b = Browser::new(&app.base);
        let page = b.get("/owner/login").await.body;
        attackers.push((b, page));
    }
    let statuses: Vec<u16> = join_all(attackers.iter_mut().map(|(b, page)| async move {
        b.post_form("/owner/login", page, &[("password", "guess guess guess")])
            .await
            .status
    }))
    .await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        checked + refused,
        statuses.len(),
        "{backend:?}: {statuses:?}"
    );
    assert!(
        checked <= roster::db::owners::FREE_ATTEMPTS as usize,
        "{backend:?}: {checked} passwords were checked: {statuses:?}"
    );
    assert!(checked >= 1, "{backend:?}: {statuses:?}");
}

backend_tests!(a_new_portal_link_is_not_cached);
/// The owner's "new portal link" page shows a live link: no cache may keep it.
async fn a_new_portal_link_is_not_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let mut owner = app.owner().await;
    let page = owner.get(&format!("/owner/orgs/{org}")).await.body;
    for htmx in [false, true] {
        let r = if htmx {
            let token = crate::helpers::csrf_token(&page);
            owner
                .send(
                    "POST",
                    &format!("/owner/orgs/{org}/portal-links"),
                    Some(&[("csrf_token", token.as_str()), ("ttl_days", "7")]),
                    &[("HX-Request", "true")],
                )
                .await
        } else {
            owner
                .post_form(
                    &format!("/owner/orgs/{org}/portal-links"),
                    &page,
                    &[("ttl_days", "7")],
                )
                .await
        };
        assert_eq!(r.status, 200, "{backend:?}: {}", r.body);
        assert!(r.body.contains("/portal/link/roster_portal_"), "{}", r.body);
        assert_eq!(
            r.header("cache-control"),
            Some("no-store"),
            "{backend:?} htmx={htmx}"
        );
    }
}

backend_tests!(a_flood_of_unauthenticated_requests_does_not_evict_authenticated_history);
/// Requests refused for their credentials are kept apart and bounded on their own: a flood of
/// them (more than the log keeps) leaves every authenticated row in place.
async fn a_flood_of_unauthenticated_requests_does_not_evict_authenticated_history(
    backend: Backend,
) {
    use roster::db::requests::{
        self, KEEP_PER_DIRECTORY, KEEP_UNAUTHENTICATED_PER_DIRECTORY, NewRequest,
    };
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let dir = scim.base.rsplit('/').next().unwrap().to_string();
    let created = scim
        .post("/Users", &serde_json::json!({"userName": "kept@x.com"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    // The attack, over HTTP: wrong tokens are answered 401 and logged as such.
    let wrong = crate::helpers::Scim::new(scim.base.clone(), "roster_scim_wrong".into());
    for _ in 0..20 {
        assert_eq!(
            wrong
                .post("/Users", &serde_json::json!({"userName": "x"}))
                .await
                .status,
            401
        );
    }
    app.flush_request_log().await;
    // The rest of the flood, as the writer records such rows (faster than HTTP).
    let flood = KEEP_PER_DIRECTORY as usize + 2_500;
    let mut conn = app.conn();
    for start in (0..flood).step_by(500) {
        let rows = (start..start + 500).map(|i| NewRequest {
            directory_id: dir.clone(),
            at: roster::db::now(),
            method: "POST".into(),
            path: format!("/Users?flood={i}"),
            status: 401,
            error_kind: Some("unauthorized".into()),
            ..NewRequest::default()
        });
        requests::insert_many(&mut conn, rows.collect()).unwrap();
    }
    let kept = requests::recent(&mut conn, &dir, 3 * KEEP_PER_DIRECTORY).unwrap();
    assert!(
        kept.iter().any(|r| r.status == 201 && r.path == "/Users"),
        "{backend:?}: the authenticated create was evicted"
    );
    let refused = kept.iter().filter(|r| r.status == 401).count();
    assert!(
        refused >= 1,
        "{backend:?}: a sample of refused requests stays"
    );
    assert!(
        refused <= KEEP_UNAUTHENTICATED_PER_DIRECTORY as usize + 2_000,
        "{backend:?}: {refused} refused rows kept"
    );
}

/// Sends `head` on a fresh connection, then nothing more, and returns what the server answers
/// within `secs` (bounded): the status line, or "" when it answered nothing.
fn answer_without_body(base: &str, head: &str, secs: u64) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(secs)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut got = [0u8; 512];
    let n = stream.read(&mut got).unwrap_or(0);
    String::from_utf8_lossy(&got[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

backend_tests!(a_body_is_not_read_before_the_token_is_checked);
/// A request with a body is authenticated from its headers first: a wrong token is refused
/// before any of its (announced 8 MiB) body arrives, so it costs the server no memory.
async fn a_body_is_not_read_before_the_token_is_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let path = scim
        .base
        .split_once("//")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1
        .to_string();
    let head = format!(
        "POST /{path}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer roster_scim_wrong\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 8000000\r\n\r\n"
    );
    let base = app.base.clone();
    let status = actix_web::rt::task::spawn_blocking(move || answer_without_body(&base, &head, 10))
        .await
        .unwrap();
    assert!(status.contains(" 401 "), "{backend:?}: answered {status:?}");
    // A declared body over the cap is refused at once, once the token is good.
    let base = app.base.clone();
    let token = scim.token.clone();
    let status = actix_web::rt::task::spawn_blocking(move || {
        let head = format!(
            "POST /{path}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: 9000000\r\n\r\n"
        );
        answer_without_body(&base, &head, 10)
    })
    .await
    .unwrap();
    assert!(status.contains(" 413 "), "{backend:?}: answered {status:?}");
}

backend_tests!(oversized_multi_valued_attributes_are_refused);
/// One multi-valued attribute carrying far more values than any provider sends is refused
/// (400 tooMany, naming it) instead of being written by the shared writer.
async fn oversized_multi_valued_attributes_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let emails: Vec<_> = (0..5_000)
        .map(|i| serde_json::json!({"value": format!("a{i}@x.com")}))
        .collect();
    let r = scim
        .post(
            "/Users",
            &serde_json::json!({"userName": "many@x.com", "emails": emails}),
        )
        .await;
    assert_eq!(r.status, 400, "{backend:?}: {}", r.body);
    assert_eq!(r.json()["scimType"], "tooMany", "{}", r.body);
    assert!(r.json()["detail"].as_str().unwrap().contains("emails"));
    let spc = scim.get("/ServiceProviderConfig").await.json();
    let limits = &spc[roster::scim::discovery::LIMITS_SCHEMA];
    assert_eq!(
        limits["maxMultiValuedValues"],
        roster::scim::limits::MAX_MULTI_VALUED
    );
    let fine = scim
        .post(
            "/Users",
            &serde_json::json!({"userName": "few@x.com", "emails": [{"value": "few@x.com"}]}),
        )
        .await;
    assert_eq!(fine.status, 201, "{}", fine.body);
}

backend_tests!(sessions_end_on_the_server_when_signed_out_or_revoked);
/// Sign-out and a password change end the owner's session on the server: a copied cookie
/// signs nobody in afterwards. Revoking a portal link can end the sessions it opened.
async fn sessions_end_on_the_server_when_signed_out_or_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);

    // Sign-out.
    let mut owner = app.owner().await;
    let mut copy = owner.clone();
    assert_eq!(copy.get("/owner").await.status, 200, "{backend:?}");
    let page = owner.get("/owner").await.body;
    let out = owner.post_form("/owner/logout", &page, &[]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let after = copy.get("/owner").await;
    assert_eq!(
        after.status, 303,
        "{backend:?}: a copied cookie outlived sign-out"
    );
    assert_eq!(after.header("location"), Some("/owner/login"));

    // A password change (a setup link used) ends the sessions the old password opened.
    let mut before_reset = app.owner().await;
    assert_eq!(before_reset.get("/owner").await.status, 200);
    let mut after_reset = app.owner().await;
    assert_eq!(after_reset.get("/owner").await.status, 200);
    assert_eq!(
        before_reset.get("/owner").await.status,
        303,
        "{backend:?}: a session outlived a password change"
    );

    // Portal sessions opened by a revoked link end when the owner asks for it.
    let mut admin = app.portal(&org).await;
    let mut admin_copy = admin.clone();
    assert_eq!(admin.get("/portal/users").await.status, 200);
    let link_id = roster::db::orgs::portal_links(&mut app.conn(), &org).unwrap()[0]
        .id
        .clone();
    let org_page = after_reset.get(&format!("/owner/orgs/{org}")).await.body;
    let revoked = after_reset
        .post_form(
            &format!("/owner/orgs/{org}/portal-links/{link_id}/revoke"),
            &org_page,
            &[("end_sessions", "on")],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(
        admin_copy.get("/portal/users").await.status,
        401,
        "{backend:?}: a portal session outlived its revoked link"
    );
}

/// Starts the real binary with `RUST_LOG=level`, its log going to `log`; returns it and its
/// base URL.
fn start_logging_server(
    db_url: &str,
    level: &str,
    log: &std::path::Path,
) -> (std::process::Child, String) {
    crate::helpers::start_server_process(
        db_url,
        &["--webhook-retry-schedule", "0.1"],
        level,
        std::fs::File::create(log).unwrap().into(),
    )
}

backend_tests!(no_secret_reaches_the_server_log_or_the_request_log);
/// Every route that carries a secret (setup and portal links in paths, bearer tokens and API
/// keys in headers, a token pasted in a query or a path, passwords in PATCH bodies, webhook
/// signing secrets) is exercised against the real binary at `info` and `debug`; none of the
/// secrets may appear in its log, and no password in the request log.
async fn no_secret_reaches_the_server_log_or_the_request_log(backend: Backend) {
    use roster::db;
    for level in ["info", "debug"] {
        let test_db = crate::helpers::TestDb::new(backend);
        let pool = db::connect(&test_db.url).unwrap();
        let mut conn = pool.get().unwrap();
        let org = db::orgs::create(&mut conn, "Acme", true).unwrap();
        let (dir, scim_token) =
            db::directories::create(&mut conn, &org.id, "okta", "Okta").unwrap();
        let setup = db::owners::create_setup_link(&mut conn).unwrap();
        let (portal, _) =
            db::orgs::create_portal_link(&mut conn, &org.id, chrono::Duration::days(1)).unwrap();
        let (_, api_key) = db::api_keys::create(&mut conn, "tests").unwrap();
        drop(conn);
        let log = tempfile::NamedTempFile::new().unwrap();
        let (mut server, base) = start_logging_server(&test_db.url, level, log.path());
        let mut rx = crate::receiver::start(None, 0, None);

        // Links in paths: opened, and posted to without a session (refused by CSRF).
        let mut b = Browser::new(&base);
        for path in [
            format!("/owner/setup/{setup}"),
            format!("/portal/link/{portal}"),
        ] {
            b.send("POST", &path, Some(&[("password", "x")]), &[]).await;
            Browser::new(&base)
                .send("POST", &path, None, &[("Origin", "https://evil.example")])
                .await;
        }
        let form = b.get(&format!("/owner/setup/{setup}")).await;
        assert_eq!(
            form.status, 200,
            "{backend:?} {level}: the refused posts did not use the link"
        );
        Browser::new(&base)
            .get(&format!("/portal/link/{portal}"))
            .await;

        // Tokens in headers, queries and paths; a password in PATCH bodies and non-JSON.
        let scim =
            crate::helpers::Scim::new(format!("{base}/scim/v2/{}", dir.id), scim_token.clone());
        let user = scim
            .post(
                "/Users",
                &serde_json::json!({"userName": "a@x.com", "password": "hunter2-post"}),
            )
            .await;
        let id = user.json()["id"].as_str().unwrap().to_string();
        for op in ["replace", "add", "Replace"] {
            scim.patch(&format!("/Users/{id}"), &serde_json::json!({"Operations": [{"op": op, "path": "password", "value": "hunter2-patch"}]})).await;
        }
        let broken = r#"{"Operations":[{"op":"replace","path":"password","value":"hunter2-broken""#;
        scim.raw(
            "PATCH",
            &format!("/Users/{id}"),
            Some(broken.to_string()),
            Some(&scim_token),
        )
        .await;
        scim.get(&format!("/Users?access_token={scim_token}")).await;
        crate::helpers::Scim::new(format!("{base}/scim/v2/{scim_token}"), scim_token.clone())
            .get("/Users")
            .await;
        crate::helpers::Scim::new(
            format!("{base}/scim/v2/{}", dir.id),
            format!("{scim_token}x"),
        )
        .get("/Users")
        .await;

        // API key in a header; a webhook secret in a response and in signatures.
        let created = awc::Client::new()
            .post(format!("{base}/api/v1/webhooks"))
            .insert_header(("Authorization", format!("Bearer {api_key}")))
            .send_json(&serde_json::json!({"url": rx.url}))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        let whsec = created["secret"].as_str().unwrap_or_default().to_string();
        assert!(whsec.starts_with("whsec_"), "{created}");
        scim.post("/Users", &serde_json::json!({"userName": "b@x.com"}))
            .await;
        rx.next(15).await;

        server.kill().unwrap();
        server.wait().unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert!(
            text.contains("CSRF check refused"),
            "{backend:?} {level}: the refusals were not logged:\n{text}"
        );
        let secrets = [
            setup.as_str(),
            portal.as_str(),
            scim_token.as_str(),
            api_key.as_str(),
            whsec.as_str(),
            whsec.trim_start_matches("whsec_"),
            "hunter2",
        ];
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{backend:?} {level}: `{secret}` is in the server's log:\n{}",
                text.lines()
                    .filter(|l| l.contains(secret))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        let mut conn = pool.get().unwrap();
        for row in db::requests::recent(&mut conn, &dir.id, 1000).unwrap() {
            let stored = format!(
                "{} {:?} {:?}",
                row.path, row.request_body, row.response_excerpt
            );
            for secret in secrets {
                assert!(
                    !stored.contains(secret),
                    "{backend:?}: `{secret}` is in the request log: {stored}"
                );
            }
        }
    }
}

/// A new SQLite database (and its WAL) is readable by its owner only, whatever the umask.
#[cfg(unix)]
#[test]
fn a_new_sqlite_database_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/roster.db");
    let pool = roster::db::connect(&format!("sqlite://{}", path.display())).unwrap();
    roster::db::orgs::create(&mut pool.get().unwrap(), "Acme", true).unwrap();
    for file in ["roster.db", "roster.db-wal"] {
        let mode = std::fs::metadata(dir.path().join("sub").join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is open to others: {mode:o}");
    }
}

backend_tests!(nothing_acknowledged_is_lost_to_a_kill_under_load);
/// `kill -9` under a steady load of creates: every create acknowledged with a 201 before the
/// kill is there after a restart, with its `user.created` event and its request-log row.
async fn nothing_acknowledged_is_lost_to_a_kill_under_load(backend: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let test_db = crate::helpers::TestDb::new(backend);
    let pool = roster::db::connect(&test_db.url).unwrap();
    let org = roster::db::orgs::create(&mut pool.get().unwrap(), "Acme", true).unwrap();
    let (dir, token) =
        roster::db::directories::create(&mut pool.get().unwrap(), &org.id, "okta", "Okta").unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, base) = start_logging_server(&test_db.url, "warn", log.path());
    let scim = Arc::new(crate::helpers::Scim::new(
        format!("{base}/scim/v2/{}", dir.id),
        token,
    ));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    // Eight clients, each creating users until the server goes away (bounded).
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (scim, acknowledged, stop, sent) = (
                scim.clone(),
                acknowledged.clone(),
                stop.clone(),
                sent.clone(),
            );
            actix_web::rt::spawn(async move {
                for i in 0..400 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("u{c}-{i}@x.com");
                    let r = awc::Client::new()
                        .post(format!("{}/Users", scim.base))
                        .insert_header(("Authorization", format!("Bearer {}", scim.token)))
                        .insert_header(("Content-Type", "application/scim+json"))
                        .send_body(format!(r#"{{"userName":"{name}"}}"#))
                        .await;
                    sent.fetch_add(1, Ordering::SeqCst);
                    match r {
                        Ok(resp) if resp.status() == 201 => acknowledged.lock().unwrap().push(name),
                        _ => {}
                    }
                }
            })
        })
        .collect();
    // Kill once the load is well under way (a count, not a clock).
    for _ in 0..6000 {
        if sent.load(Ordering::SeqCst) >= 300 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL, in the middle of the load
    server.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 50,
        "{backend:?}: only {} creates went through",
        acknowledged.len()
    );

    let (mut restarted, base) = start_logging_server(&test_db.url, "warn", log.path());
    let scim = crate::helpers::Scim::new(format!("{base}/scim/v2/{}", dir.id), scim.token.clone());
    let mut conn = pool.get().unwrap();
    let scope = roster::db::events::FeedScope {
        org_id: None,
        directory_id: Some(dir.id.clone()),
    };
    let events = roster::db::events::feed(&mut conn, &scope, 0, 100_000).unwrap();
    let logged = roster::db::requests::recent(&mut conn, &dir.id, 100_000).unwrap();
    let created_ids: std::collections::HashSet<String> = logged
        .iter()
        .filter(|r| r.status == 201)
        .filter_map(|r| r.resource_id.clone())
        .collect();
    for name in &acknowledged {
        let found = scim
            .get(&format!("/Users?filter=userName%20eq%20%22{name}%22"))
            .await
            .json();
        assert_eq!(
            found["totalResults"], 1,
            "{backend:?}: acknowledged {name} is gone"
        );
        let id = found["Resources"][0]["id"].as_str().unwrap().to_string();
        assert!(
            events
                .iter()
                .any(|e| e.event_type == "user.created" && e.payload.contains(&id)),
            "{backend:?}: {name}'s event is gone"
        );
        assert!(
            created_ids.contains(&id),
            "{backend:?}: {name}'s log row is gone"
        );
    }
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

backend_tests!(bodies_have_a_deadline_and_a_shared_budget);
/// A body that trickles in is cut off at the deadline (408), and bodies being received at once
/// share a bounded budget (503, retry) instead of taking the server's memory.
async fn bodies_have_a_deadline_and_a_shared_budget(backend: Backend) {
    let app = TestApp::spawn_configured(backend, crate::helpers::TestDb::new(backend), |c| {
        c.limits.body_deadline = std::time::Duration::from_secs(1);
        c.limits.in_flight_body_bytes = 1_000;
    })
    .await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let path = scim
        .base
        .split_once("//")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1
        .to_string();
    let head = |len: usize| {
        format!(
            "POST /{path}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: {len}\r\n\r\n",
            scim.token
        )
    };
    // Ten bytes of a hundred, then nothing.
    let (base, slow) = (app.base.clone(), format!("{}{{\"userName", head(100)));
    let status = actix_web::rt::task::spawn_blocking(move || answer_without_body(&base, &slow, 20))
        .await
        .unwrap();
    assert!(status.contains(" 408 "), "{backend:?}: answered {status:?}");
    // More than the whole budget arriving at once.
    let (base, big) = (
        app.base.clone(),
        format!("{}{}", head(5_000), " ".repeat(2_000)),
    );
    let status = actix_web::rt::task::spawn_blocking(move || answer_without_body(&base, &big, 20))
        .await
        .unwrap();
    assert!(status.contains(" 503 "), "{backend:?}: answered {status:?}");
    // The budget is given back: a small create goes through.
    let ok = scim
        .post("/Users", &serde_json::json!({"userName": "small@x.com"}))
        .await;
    assert_eq!(ok.status, 201, "{backend:?}: {}", ok.body);
}

backend_tests!(look_alike_user_names_are_one_user);
/// Unicode look-alikes of a userName (decomposed accents, fullwidth letters, zero-width
/// characters) are the same user: a create is a 409 and a filter finds the first.
async fn look_alike_user_names_are_one_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let first = scim
        .post(
            "/Users",
            &serde_json::json!({"userName": "Jos\u{e9}@acme.com"}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    for look_alike in [
        "Jose\u{301}@acme.com",
        "\u{FF2A}os\u{e9}@acme.com",
        "Jo\u{200B}s\u{e9}@acme.com",
    ] {
        let r = scim
            .post("/Users", &serde_json::json!({"userName": look_alike}))
            .await;
        assert_eq!(
            r.status, 409,
            "{backend:?}: {look_alike:?} became a second user: {}",
            r.body
        );
        let filter = format!("userName eq \"{look_alike}\"");
        let found = scim
            .get(&format!(
                "/Users?filter={}",
                url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
            ))
            .await
            .json();
        assert_eq!(found["totalResults"], 1, "{backend:?}: {look_alike:?}");
    }
}

backend_tests!(old_comparison_forms_are_brought_up_to_date_at_start);
/// A database whose comparison forms were made before look-alikes were folded is brought up
/// to date at start; two users the old forms kept apart stay apart.
async fn old_comparison_forms_are_brought_up_to_date_at_start(backend: Backend) {
    use diesel::prelude::*;
    use roster::db::schema::scim_users;
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let id_of = |r: crate::helpers::Resp| r.json()["id"].as_str().unwrap().to_string();
    let a = id_of(
        scim.post(
            "/Users",
            &serde_json::json!({"userName": "Jos\u{e9}@acme.com"}),
        )
        .await,
    );
    let b = id_of(
        scim.post("/Users", &serde_json::json!({"userName": "zoe@acme.com"}))
            .await,
    );
    // As an older Roster stored them: a decomposed name lowercased only, and a second user
    // that the old form told apart from `a` but the new one does not.
    let mut conn = app.conn();
    diesel::update(scim_users::table.find(&a))
        .set((
            scim_users::user_name.eq("Jose\u{301}@acme.com"),
            scim_users::user_name_norm.eq("jose\u{301}@acme.com"),
        ))
        .execute(&mut *conn)
        .unwrap();
    diesel::update(scim_users::table.find(&b))
        .set((
            scim_users::user_name.eq("\u{FF2A}os\u{e9}@acme.com"),
            scim_users::user_name_norm.eq("\u{FF4A}os\u{e9}@acme.com"),
        ))
        .execute(&mut *conn)
        .unwrap();
    roster::db::settings::set(&mut conn, "normalization_version", "old").unwrap();
    let done = roster::db::renormalize::run(&mut conn).unwrap();
    assert_eq!(
        (done.rows, done.kept_apart),
        (1, 1),
        "{backend:?}: {done:?}"
    );
    let norm: String = scim_users::table
        .find(&a)
        .select(scim_users::user_name_norm)
        .first(&mut *conn)
        .unwrap();
    assert_eq!(norm, "jos\u{e9}@acme.com");
    // Done once: a second start changes nothing.
    assert_eq!(
        roster::db::renormalize::run(&mut conn).unwrap(),
        Default::default()
    );
}

backend_tests!(an_organization_scoped_api_key_reaches_its_organization_only);
/// An API key scoped to one organization reaches that organization only, on every endpoint.
async fn an_organization_scoped_api_key_reaches_its_organization_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mine, theirs) = (app.org("Mine", true), app.org("Theirs", true));
    let (my_dir, their_dir) = (app.directory(&mine, "okta"), app.directory(&theirs, "okta"));
    let dir_id = |s: &crate::helpers::Scim| s.base.rsplit('/').next().unwrap().to_string();
    let (my_dir_id, their_dir_id) = (dir_id(&my_dir), dir_id(&their_dir));
    let id_of = |r: crate::helpers::Resp| r.json()["id"].as_str().unwrap().to_string();
    let my_user = id_of(
        my_dir
            .post("/Users", &serde_json::json!({"userName": "me@x.com"}))
            .await,
    );
    let their_user = id_of(
        their_dir
            .post("/Users", &serde_json::json!({"userName": "them@x.com"}))
            .await,
    );
    let their_group = id_of(
        their_dir
            .post("/Groups", &serde_json::json!({"displayName": "G"}))
            .await,
    );
    let (_, key) =
        roster::db::api_keys::create_scoped(&mut app.conn(), "mine", Some(&mine)).unwrap();
    let api = |method: &str, path: String, body: Option<serde_json::Value>| {
        let (base, key, method) = (app.base.clone(), key.clone(), method.to_string());
        async move {
            let req = awc::Client::new()
                .request(method.parse().unwrap(), format!("{base}/api/v1{path}"))
                .insert_header(("Authorization", format!("Bearer {key}")));
            let mut resp = match body {
                Some(b) => req.send_json(&b).await.unwrap(),
                None => req.send().await.unwrap(),
            };
            let status = resp.status().as_u16();
            let body = resp.body().await.unwrap();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default(),
            )
        }
    };
    // Its own organization, as a vendor-wide key would see it.
    let (s, orgs) = api("GET", "/organizations".into(), None).await;
    assert_eq!(
        (s, orgs["data"].as_array().unwrap().len()),
        (200, 1),
        "{backend:?}: {orgs}"
    );
    assert_eq!(orgs["data"][0]["id"], mine.as_str());
    assert_eq!(api("GET", format!("/users/{my_user}"), None).await.0, 200);
    let (_, users) = api("GET", "/users".into(), None).await;
    let ids: Vec<&str> = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![my_user.as_str()], "{backend:?}");
    assert_eq!(
        api("GET", format!("/directories/{my_dir_id}"), None)
            .await
            .0,
        200
    );
    // Nothing of the other organization: 404 for what it names, 403 for asking.
    for path in [
        format!("/organizations/{theirs}"),
        format!("/directories/{their_dir_id}"),
        format!("/users/{their_user}"),
        format!("/groups/{their_group}"),
        format!("/groups/{their_group}/members"),
    ] {
        assert_eq!(
            api("GET", path.clone(), None).await.0,
            404,
            "{backend:?}: {path}"
        );
    }
    for path in [
        format!("/users?organization_id={theirs}"),
        format!("/groups?organization_id={theirs}"),
        format!("/directories?organization_id={theirs}"),
        format!("/events?organization_id={theirs}"),
    ] {
        assert_eq!(
            api("GET", path.clone(), None).await.0,
            403,
            "{backend:?}: {path}"
        );
    }
    let (s, events) = api("GET", "/events".into(), None).await;
    assert_eq!(s, 200);
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["org_id"] == mine.as_str()),
        "{backend:?}: {events}"
    );
    assert_eq!(
        api(
            "PATCH",
            format!("/organizations/{theirs}"),
            Some(serde_json::json!({"name": "x"}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api(
            "POST",
            format!("/organizations/{theirs}/portal-links"),
            Some(serde_json::json!({}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api(
            "POST",
            "/organizations".into(),
            Some(serde_json::json!({"name": "New"}))
        )
        .await
        .0,
        403
    );
    // Its webhook endpoints are its organization's.
    let (s, hook) = api(
        "POST",
        "/webhooks".into(),
        Some(serde_json::json!({"url": "http://127.0.0.1:9/x"})),
    )
    .await;
    assert_eq!(
        (s, hook["organization_id"].as_str()),
        (201, Some(mine.as_str())),
        "{hook}"
    );
    let theirs_hook = app.webhook("http://127.0.0.1:9/y", Some(&theirs), "*");
    let (_, hooks) = api("GET", "/webhooks".into(), None).await;
    assert_eq!(
        hooks["data"].as_array().unwrap().len(),
        1,
        "{backend:?}: {hooks}"
    );
    assert_eq!(
        api("DELETE", format!("/webhooks/{}", theirs_hook.id), None)
            .await
            .0,
        404
    );
    assert_eq!(
        api(
            "GET",
            format!("/webhooks/{}/deliveries", theirs_hook.id),
            None
        )
        .await
        .0,
        404
    );
}

backend_tests!(failed_authentications_are_rate_limited_per_client_address);
/// Failed authentications are rate-limited per client address: past the allowance the
/// address is refused (429, Retry-After) before its token is looked at, even a right one;
/// other addresses (told apart by a trusted proxy's X-Forwarded-For) are not affected.
async fn failed_authentications_are_rate_limited_per_client_address(backend: Backend) {
    let app = TestApp::spawn_configured(backend, crate::helpers::TestDb::new(backend), |c| {
        c.limits.failed_auth_per_minute = std::num::NonZeroU32::new(3).unwrap();
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let send = |from: &'static str, token: String| {
        let url = format!("{}/Users", scim.base);
        async move {
            awc::Client::new()
                .get(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("X-Forwarded-For", from))
                .send()
                .await
                .unwrap()
        }
    };
    let wrong = || "roster_scim_wrong".to_string();
    for _ in 0..3 {
        assert_eq!(
            send("203.0.113.7", wrong()).await.status(),
            401,
            "{backend:?}"
        );
    }
    assert_eq!(
        send("203.0.113.7", wrong()).await.status(),
        401,
        "{backend:?}: the fourth is counted"
    );
    let refused = send("203.0.113.7", scim.token.clone()).await;
    assert_eq!(
        refused.status(),
        429,
        "{backend:?}: the guesser's address is held back"
    );
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(
        send("198.51.100.9", scim.token.clone()).await.status(),
        200,
        "{backend:?}: another address"
    );
    assert_eq!(send("198.51.100.9", wrong()).await.status(), 401);
}
