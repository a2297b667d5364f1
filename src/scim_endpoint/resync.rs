//! Confirmations for a running resync (see `crate::reconcile`): after a request of a
//! directory whose resync runs, the users and groups its answer shows the provider knows are
//! queued on the writer like a read's log row, never waited for. Nothing is parsed, and
//! nothing queued, for a directory without a running resync.

use actix_web::http::{Method, StatusCode};
use serde_json::Value;

use super::{Incoming, Rendered, Target};
use crate::db::resyncs::{self, Named};
use crate::scim::ResourceType;
use crate::state::AppState;

/// Queues the confirmations `rendered` (the answer to `incoming`) gives, if its directory has a
/// running resync.
pub(super) fn confirm(state: &AppState, incoming: &Incoming, target: &Target, rendered: &Rendered) {
    let Some(resync_id) = incoming.resync.get() else {
        return;
    };
    let named = named(incoming, target, rendered);
    if named.is_empty() {
        return;
    }
    let (resync_id, directory_id) = (resync_id.clone(), incoming.directory_id.clone());
    state.writer.spawn("confirming a resync", move |b| {
        resyncs::confirm(b, &resync_id, &directory_id, &named)
    });
}

/// What the provider shows it knows: the resource it read, replaced or patched; what a
/// filtered list found; what it created; what its POST found existing (409).
fn named(incoming: &Incoming, target: &Target, rendered: &Rendered) -> Named {
    let ok = rendered.status.is_success() || rendered.status == StatusCode::NOT_MODIFIED;
    let method = &incoming.method;
    match target {
        Target::Resource(_, id)
            if ok && matches!(*method, Method::GET | Method::PUT | Method::PATCH) =>
        {
            Named {
                ids: vec![id.clone()],
                ..Named::default()
            }
        }
        Target::Collection(_) if *method == Method::POST && ok => Named {
            ids: rendered.created_id.iter().cloned().collect(),
            ..Named::default()
        },
        Target::Collection(kind)
            if *method == Method::POST && rendered.status == StatusCode::CONFLICT =>
        {
            conflicting(incoming, *kind)
        }
        Target::Collection(_) if *method == Method::GET && ok && filtered_query(incoming) => {
            listed(rendered)
        }
        Target::Search(Some(_)) if ok && filtered_search(incoming) => listed(rendered),
        _ => Named::default(),
    }
}

fn body(incoming: &Incoming) -> Option<Value> {
    serde_json::from_slice(incoming.body.as_deref()?).ok()
}

/// The userName or displayName a conflicting POST named.
fn conflicting(incoming: &Incoming, kind: ResourceType) -> Named {
    let Some(body) = body(incoming) else {
        return Named::default();
    };
    let attribute = match kind {
        ResourceType::User => "userName",
        ResourceType::Group => "displayName",
    };
    let name = crate::scim::filter::get_ci(&body, attribute)
        .and_then(Value::as_str)
        .map(str::to_string);
    match kind {
        ResourceType::User => Named {
            user_name: name,
            ..Named::default()
        },
        ResourceType::Group => Named {
            group_name: name,
            ..Named::default()
        },
    }
}

/// Only a filtered list confirms: a provider paging through everything names nothing.
fn filtered_query(incoming: &Incoming) -> bool {
    incoming
        .query
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("filter") && !v.trim().is_empty())
}

fn filtered_search(incoming: &Incoming) -> bool {
    body(incoming).is_some_and(|b| {
        crate::scim::filter::get_ci(&b, "filter")
            .and_then(Value::as_str)
            .is_some_and(|f| !f.trim().is_empty())
    })
}

/// The ids of a list response's resources.
fn listed(rendered: &Rendered) -> Named {
    let ids = rendered
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .and_then(|v| v.get("Resources").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    Named {
        ids,
        ..Named::default()
    }
}
