//! The owner console's organization list: each organization's health, read for all listed
//! organizations at once.

use serde_json::json;

use crate::helpers::{Backend, TestApp, TestDb, backend_tests};

/// The text of the health pill on the row of the organization named `name`.
fn health_of(page: &str, name: &str) -> String {
    let row_start = page.find(name).expect("the organization is listed");
    let row = &page[row_start
        ..page[row_start..]
            .find("</tr>")
            .map_or(page.len(), |end| row_start + end)];
    ["failing", "connected", "waiting", "no directory"]
        .into_iter()
        .find(|h| row.contains(&format!(">{h}<")))
        .unwrap_or("none")
        .to_string()
}

backend_tests!(
    organization_list_says_failing_only_while_a_directory_has_no_success_since_its_last_error
);
async fn organization_list_says_failing_only_while_a_directory_has_no_success_since_its_last_error(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let recovered = app.org("Recovered Co", true);
    let failing = app.org("Failing Co", true);
    let quiet = app.org("Quiet Co", true);
    app.org("Empty Co", true);
    let recovered = app.directory(&recovered, "okta");
    let failing = app.directory(&failing, "okta");
    app.directory(&quiet, "okta");

    assert_eq!(recovered.get("/Users/unknown-id").await.status, 404);
    assert_eq!(recovered.get("/Users").await.status, 200);
    assert_eq!(failing.get("/Users").await.status, 200);
    assert_eq!(failing.get("/Users/unknown-id").await.status, 404);
    app.flush_request_log().await;

    let page = owner.get("/owner").await;
    assert_eq!(page.status, 200);
    assert_eq!(health_of(&page.body, "Recovered Co"), "connected");
    assert_eq!(health_of(&page.body, "Failing Co"), "failing");
    assert_eq!(health_of(&page.body, "Quiet Co"), "waiting");
    assert_eq!(health_of(&page.body, "Empty Co"), "no directory");

    // A search lists only the matching organizations, with the same health.
    let found = owner.get("/owner?q=failing").await;
    assert_eq!(health_of(&found.body, "Failing Co"), "failing");
    assert!(!found.body.contains("Recovered Co"));
}

/// The number in the Users column of the organization named `name`.
#[track_caller]
fn users_of(page: &str, name: &str) -> i64 {
    let Some(row_start) = page.find(name) else {
        panic!("{name} is not listed: {page:?}");
    };
    let row = &page[row_start..];
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    // Name, SCIM Provisioning, Directories, Users: the fourth cell.
    let cell = row.split("<td>").nth(3).expect("a Users cell");
    cell[..cell.find("</td>").unwrap()].trim().parse().unwrap()
}

backend_tests!(a_directorys_user_count_is_kept_for_the_next_process);
/// Counting every directory's users made the list's first view after a restart slow at a
/// thousand customers, so a count is kept in the database, tagged with the directory's event
/// sequence: another process reads it instead of counting, until the directory changes.
async fn a_directorys_user_count_is_kept_for_the_next_process(backend: Backend) {
    use diesel::prelude::*;
    use roster::db::schema::{directories, directory_user_counts};

    let app = TestApp::spawn(backend).await;
    let mut owner = app.owner().await;
    let org = app.org("Counted Co", true);
    let scim = app.directory(&org, "okta");
    for name in ["a@x.com", "b@x.com"] {
        assert_eq!(
            scim.post("/Users", &json!({"userName": name})).await.status,
            201
        );
    }
    let dir: String = directories::table
        .filter(directories::org_id.eq(&org))
        .select(directories::id)
        .first(&mut app.conn())
        .unwrap();
    let kept = |app: &TestApp| -> Option<(i64, i64)> {
        directory_user_counts::table
            .find(&dir)
            .select((
                directory_user_counts::event_seq,
                directory_user_counts::live_users,
            ))
            .first(&mut app.conn())
            .optional()
            .unwrap()
    };
    let event_seq = |app: &TestApp| -> i64 {
        directories::table
            .find(&dir)
            .select(directories::event_seq)
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(kept(&app), None, "nothing is kept before a view");

    assert_eq!(users_of(&owner.get("/owner").await.body, "Counted Co"), 2);
    app.commit_queued().await;
    assert_eq!(kept(&app), Some((event_seq(&app), 2)));

    // Another process on the same database reads the kept count rather than counting: a
    // count changed behind both shows there.
    diesel::update(directory_user_counts::table.find(&dir))
        .set(directory_user_counts::live_users.eq(7))
        .execute(&mut app.conn())
        .unwrap();
    let db = TestDb {
        url: app.state().config.database_url.clone(),
        _dir: None,
    };
    let restarted = TestApp::spawn_on(backend, db).await;
    let mut owner_again = restarted.owner().await;
    assert_eq!(
        users_of(&owner_again.get("/owner").await.body, "Counted Co"),
        7
    );

    // Once the directory changes, the kept count no longer holds: both count again, and the
    // new count replaces the old one.
    assert_eq!(
        scim.post("/Users", &json!({"userName": "c@x.com"}))
            .await
            .status,
        201
    );
    assert_eq!(
        users_of(&owner_again.get("/owner").await.body, "Counted Co"),
        3
    );
    restarted.commit_queued().await;
    assert_eq!(kept(&app), Some((event_seq(&app), 3)));
    // (Signing the owner in there ended the first session.)
    let mut owner = app.owner().await;
    assert_eq!(users_of(&owner.get("/owner").await.body, "Counted Co"), 3);
}
