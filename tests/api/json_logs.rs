//! `--log-format json`: the real binary writes one JSON object per line on stderr, a request's
//! line carries its `X-Request-Id`, and no secret reaches any line.

use serde_json::{Value, json};

use crate::helpers::{Backend, Scim, TestDb, backend_tests};

backend_tests!(json_logs_are_one_object_per_line_with_the_request_id_and_no_secret);
async fn json_logs_are_one_object_per_line_with_the_request_id_and_no_secret(backend: Backend) {
    use roster::db;
    let test_db = TestDb::new(backend);
    let pool = db::connect(&test_db.url).unwrap();
    let mut conn = pool.get().unwrap();
    let org = db::orgs::create(&mut conn, "Acme", true).unwrap();
    let (dir, scim_token) = db::directories::create(&mut conn, &org.id, "okta", "Okta").unwrap();
    let (_, api_key) = db::api_keys::create(&mut conn, "tests").unwrap();
    drop(conn);
    let metrics_token = "json-logs-metrics-token-0123456789";
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, base) = crate::helpers::start_server_process(
        &test_db.url,
        &["--log-format", "json", "--metrics-token", metrics_token],
        "info",
        std::fs::File::create(log.path()).unwrap().into(),
    );

    let scim = Scim::new(format!("{base}/scim/v2/{}", dir.id), scim_token.clone());
    let created = scim
        .post("/Users", &json!({"userName": "logged@x.com"}))
        .await;
    assert_eq!(created.status, 201);
    let missing = scim.get("/Users/no-such-user").await;
    assert_eq!(missing.status, 404);
    let api = awc::Client::new()
        .get(format!("{base}/api/v1/organizations"))
        .insert_header(("Authorization", format!("Bearer {api_key}")))
        .send()
        .await
        .unwrap();
    let api_id = api
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let scraped = awc::Client::new()
        .get(format!("{base}/metrics"))
        .insert_header(("Authorization", format!("Bearer {metrics_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status().as_u16(), 200);
    server.kill().unwrap();
    server.wait().unwrap();

    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in ["ts", "level", "target", "msg"] {
            assert!(line[key].is_string(), "no `{key}` in {line}");
        }
    }
    let request_line = |id: &str| {
        let found: Vec<&Value> = lines.iter().filter(|l| l["request_id"] == id).collect();
        assert_eq!(found.len(), 1, "one line for request {id}:\n{text}");
        found[0].clone()
    };
    let created_line = request_line(created.header("x-request-id").unwrap());
    assert_eq!(created_line["method"], "POST");
    assert_eq!(created_line["path"], format!("/scim/v2/{}/Users", dir.id));
    assert_eq!(created_line["status"], 201);
    assert!(created_line["ms"].is_number(), "{created_line}");
    assert_eq!(created_line["level"], "INFO");
    let missing_line = request_line(missing.header("x-request-id").unwrap());
    assert_eq!(missing_line["status"], 404);
    assert_eq!(
        missing_line["path"],
        format!("/scim/v2/{}/Users/no-such-user", dir.id)
    );
    assert_eq!(request_line(&api_id)["method"], "GET");

    for secret in [scim_token.as_str(), api_key.as_str(), metrics_token] {
        assert!(!text.contains(secret), "`{secret}` is in the log:\n{text}");
    }
}
