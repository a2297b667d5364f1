//! The directory's health checklist counts requests refused for their token in the last hour,
//! explains the newest, and calls a spike one when there are far more than a provider
//! retrying an old token would send.

use crate::helpers::{Backend, Scim, TestApp, backend_tests, element_text};

backend_tests!(the_checklist_counts_refused_tokens_and_flags_a_spike);
async fn the_checklist_counts_refused_tokens_and_flags_a_spike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.org("Acme", true);
    let scim = app.directory(&org, "okta");
    let dir_id = scim.base.rsplit('/').next().unwrap().to_string();
    let mut admin = app.portal(&org).await;
    let status_path = format!("/portal/scim/directories/{dir_id}/status");

    let status = admin.hx_get(&status_path).await;
    assert!(
        !status.body.contains("id=\"refused-auth\""),
        "{backend:?}: nothing refused yet"
    );

    let wrong = Scim::new(scim.base.clone(), "roster_scim_wrong".into());
    for _ in 0..3 {
        assert_eq!(wrong.get("/Users").await.status, 401, "{backend:?}");
    }
    app.flush_request_log().await;
    let status = admin.hx_get(&status_path).await;
    let count = element_text(&status.body, "refused-count").unwrap_or_default();
    assert_eq!(count, "3 in the last hour", "{backend:?}");
    let why = element_text(&status.body, "refused-why").unwrap_or_default();
    assert!(why.contains("401"), "{backend:?}: {why}");
    assert!(
        element_text(&status.body, "refused-spike").is_none(),
        "{backend:?}: three refusals are a provider retrying, not a spike"
    );

    // A burst of wrong tokens (below the per-address limit, so each is looked at).
    for _ in 0..30 {
        assert_eq!(wrong.get("/Users").await.status, 401, "{backend:?}");
    }
    app.flush_request_log().await;
    let status = admin.hx_get(&status_path).await;
    let count = element_text(&status.body, "refused-count").unwrap_or_default();
    assert_eq!(count, "33 in the last hour", "{backend:?}");
    assert!(
        element_text(&status.body, "refused-spike").is_some(),
        "{backend:?}: {}",
        status.body
    );
}
