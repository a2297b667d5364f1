//! The owner console's organization list: each organization's health, read for all listed
//! organizations at once.

use crate::helpers::{Backend, TestApp, backend_tests};

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
