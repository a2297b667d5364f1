//! Scale-out on PostgreSQL: two Roster instances on one database, concurrent SCIM writers
//! spread over both, both instances' delivery workers running. Every event the feed holds is
//! delivered once to each endpoint that takes it, per endpoint and directory in the
//! directory's sequence order, and the feed pages without gaps or repeats, even while it
//! grows.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::delivery::eventually;
use crate::helpers::{Backend, Scim, TestApp, TestDb, postgres_enabled};
use crate::receiver::{self, Received, Receiver, signature_valid};

/// Writers working at once in each directory, each on users and a group of its own.
const WRITERS_PER_DIRECTORY: usize = 3;
/// Users each writer creates.
const USERS_PER_WRITER: usize = 5;
/// Feed pages are this small, so that paging crosses many page boundaries.
const PAGE: usize = 7;

/// A directory as both instances serve it.
struct Directory {
    id: String,
    org: String,
    /// Its SCIM client on the first instance and on the second.
    via: [Scim; 2],
}

/// What a writer's requests did, as their replies acknowledged it.
#[derive(Default)]
struct Acknowledged {
    users_created: BTreeSet<String>,
    users_deactivated: BTreeSet<String>,
    users_deleted: BTreeSet<String>,
    groups_created: BTreeSet<String>,
    groups_deleted: BTreeSet<String>,
}

impl Acknowledged {
    fn merge(&mut self, other: Acknowledged) {
        self.users_created.extend(other.users_created);
        self.users_deactivated.extend(other.users_deactivated);
        self.users_deleted.extend(other.users_deleted);
        self.groups_created.extend(other.groups_created);
        self.groups_deleted.extend(other.groups_deleted);
    }
}

/// Sends each request to the other instance than the one before.
struct Alternating<'a> {
    via: &'a [Scim; 2],
    turn: Cell<usize>,
}

impl Alternating<'_> {
    fn next(&self) -> &Scim {
        let turn = self.turn.get();
        self.turn.set(turn + 1);
        &self.via[turn % 2]
    }
}

fn id_of(reply: &crate::helpers::Resp) -> String {
    reply.json()["id"].as_str().unwrap().to_string()
}

fn assert_status(reply: &crate::helpers::Resp, allowed: &[u16], what: &str) {
    assert!(
        allowed.contains(&reply.status),
        "{what}: status {}: {}",
        reply.status,
        reply.body
    );
}

/// One writer's changes in its directory: creates, updates, a group with membership changes,
/// a deactivation, deletions; each request to the other instance than the one before.
async fn write(directory: &Directory, writer: usize) -> Acknowledged {
    let scim = Alternating {
        via: &directory.via,
        turn: Cell::new(writer),
    };
    let mut done = Acknowledged::default();
    let mut users = Vec::new();
    for i in 0..USERS_PER_WRITER {
        let name = format!("u{i}.w{writer}@{}.example", directory.id);
        let reply = scim
            .next()
            .post(
                "/Users",
                &json!({"userName": name, "name": {"givenName": "U", "familyName": format!("W{writer}")}}),
            )
            .await;
        assert_status(&reply, &[201], "create");
        users.push(id_of(&reply));
    }
    done.users_created.extend(users.iter().cloned());
    for (i, user) in users.iter().enumerate() {
        let reply = scim
            .next()
            .patch(
                &format!("/Users/{user}"),
                &json!({"Operations": [{"op": "replace", "path": "title", "value": format!("T{i}")}]}),
            )
            .await;
        assert_status(&reply, &[200], "update");
    }
    let reply = scim
        .next()
        .post(
            "/Groups",
            &json!({"displayName": format!("Team {writer}"),
                    "members": [{"value": users[0]}, {"value": users[1]}]}),
        )
        .await;
    assert_status(&reply, &[201], "group create");
    let group = id_of(&reply);
    done.groups_created.insert(group.clone());
    let reply = scim
        .next()
        .patch(
            &format!("/Groups/{group}"),
            &json!({"Operations": [
                {"op": "add", "path": "members", "value": [{"value": users[2]}, {"value": users[3]}]},
                {"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])},
            ]}),
        )
        .await;
    assert_status(&reply, &[200, 204], "membership change");
    let reply = scim
        .next()
        .patch(
            &format!("/Users/{}", users[4]),
            &json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
        )
        .await;
    assert_status(&reply, &[200], "deactivation");
    done.users_deactivated.insert(users[4].clone());
    let reply = scim.next().delete(&format!("/Users/{}", users[3])).await;
    assert_status(&reply, &[204], "user delete");
    done.users_deleted.insert(users[3].clone());
    let reply = scim
        .next()
        .patch(
            &format!("/Groups/{group}"),
            &json!({"Operations": [{"op": "replace", "path": "displayName", "value": format!("Team {writer} renamed")}]}),
        )
        .await;
    assert_status(&reply, &[200, 204], "group rename");
    if writer == 0 {
        let reply = scim.next().delete(&format!("/Groups/{group}")).await;
        assert_status(&reply, &[204], "group delete");
        done.groups_deleted.insert(group);
    }
    done
}

/// One page of the events feed after `cursor`: the events and the next cursor.
async fn feed_page(app: &TestApp, key: &str, cursor: &str, limit: usize) -> (Vec<Value>, String) {
    let mut r = awc::Client::new()
        .get(format!(
            "{}/api/v1/events?after={cursor}&limit={limit}",
            app.base
        ))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page: Value = serde_json::from_slice(&r.body().await.unwrap()).unwrap();
    (
        page["data"].as_array().unwrap().clone(),
        page["next_cursor"].as_str().unwrap().to_string(),
    )
}

/// Pages the feed from `cursor` on, alternating between the instances, until a page comes
/// back empty; returns the events and moves `cursor` past them.
async fn page_to_end(apps: [&TestApp; 2], key: &str, cursor: &mut String) -> Vec<Value> {
    let mut events = Vec::new();
    for turn in 0.. {
        let (page, next) = feed_page(apps[turn % 2], key, cursor, PAGE).await;
        if page.is_empty() {
            assert_eq!(&next, cursor, "an empty page keeps the cursor");
            break;
        }
        assert!(
            next.parse::<i64>().unwrap() > cursor.parse::<i64>().unwrap(),
            "the cursor moves forward"
        );
        *cursor = next;
        events.extend(page);
    }
    events
}

fn event_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// The ids of the users (or groups: `resource`) that the directory's events of `event_type`
/// are about.
fn about(events: &[&Value], event_type: &str, resource: &str) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e["type"] == event_type)
        .map(|e| e["data"][resource]["id"].as_str().unwrap().to_string())
        .collect()
}

/// Takes `count` webhooks from the receiver (each bounded in time) and then whatever else it
/// already holds.
async fn receive(rx: &mut Receiver, count: usize) -> Vec<Received> {
    let mut got = Vec::new();
    while got.len() < count {
        got.push(rx.next(30).await);
    }
    while let Ok(extra) = rx.rx.try_recv() {
        got.push(extra);
    }
    got
}

/// Per directory, the event ids in the order they arrived.
fn arrival_order(got: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in got {
        order
            .entry(r.json["directory_id"].as_str().unwrap().to_string())
            .or_default()
            .push(r.id.clone());
    }
    order
}

/// Per directory, the ids of `events` in feed order.
fn feed_order<'a>(events: impl Iterator<Item = &'a Value>) -> BTreeMap<String, Vec<String>> {
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        order
            .entry(e["directory_id"].as_str().unwrap().to_string())
            .or_default()
            .push(e["id"].as_str().unwrap().to_string());
    }
    order
}

/// Waits (bounded) until every delivery of the endpoint is recorded delivered, then checks
/// that each took exactly one attempt.
async fn all_delivered_once(app: &TestApp, endpoint: &str, count: usize) {
    eventually("every delivery is recorded delivered", || {
        let rows = roster::db::webhooks::deliveries(&mut app.conn(), endpoint, 100_000).unwrap();
        rows.len() == count
            && rows
                .iter()
                .all(|d| d.status == roster::domain::DeliveryState::Delivered)
    })
    .await;
    let rows = roster::db::webhooks::deliveries(&mut app.conn(), endpoint, 100_000).unwrap();
    assert!(
        rows.iter().all(|d| d.attempts == 1),
        "one attempt per delivery"
    );
    let attempts = roster::db::webhooks::attempts(&mut app.conn(), endpoint, 100_000).unwrap();
    assert_eq!(attempts.len(), count, "one attempt logged per delivery");
}

#[actix_web::test]
async fn two_instances_under_concurrent_writes_deliver_each_event_once_in_directory_order() {
    if !postgres_enabled(
        "two_instances_under_concurrent_writes_deliver_each_event_once_in_directory_order",
    ) {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let url = db.url.clone();
    let first = TestApp::spawn_on(Backend::Postgres, db)
        .await
        .with_worker(&[0.05]);
    let second = TestApp::spawn_on(Backend::Postgres, TestDb { url, _dir: None })
        .await
        .with_worker(&[0.05]);
    let apps = [&first, &second];
    let key = first.api_key();

    let acme = first.org("Acme", true);
    let globex = first.org("Globex", true);
    // Every event goes to one endpoint; Globex's user events also to an endpoint of its own.
    let mut all_rx = receiver::start(None, 0, None);
    let all = first.webhook(&all_rx.url, None, "*");
    let mut globex_rx = receiver::start(None, 0, None);
    let globex_users = first.webhook(&globex_rx.url, Some(&globex), "user.*");
    let directories: Vec<Directory> = [
        (&acme, "okta"),
        (&acme, "entra"),
        (&globex, "onelogin"),
        (&globex, "generic"),
    ]
    .into_iter()
    .map(|(org, provider)| {
        let scim = first.directory(org, provider);
        let other = Scim::new(
            scim.base.replace(&first.base, &second.base),
            scim.token.clone(),
        );
        Directory {
            id: scim.base.rsplit('/').next().unwrap().to_string(),
            org: org.clone(),
            via: [scim, other],
        }
    })
    .collect();

    // All writers at once, over both instances, while a reader pages the growing feed.
    let writing = Cell::new(true);
    let mut live_cursor = "0".to_string();
    let writers = async {
        let done = futures_util::future::join_all(directories.iter().flat_map(|d| {
            (0..WRITERS_PER_DIRECTORY)
                .map(move |w| async move { (d.id.clone(), write(d, w).await) })
        }))
        .await;
        writing.set(false);
        done
    };
    let reader = async {
        let mut seen = Vec::new();
        while writing.get() {
            seen.extend(page_to_end(apps, &key, &mut live_cursor).await);
        }
        seen
    };
    let (written, mut live) = futures_util::future::join(writers, reader).await;
    let mut acknowledged: BTreeMap<String, Acknowledged> = BTreeMap::new();
    for (directory, done) in written {
        acknowledged.entry(directory).or_default().merge(done);
    }
    for app in apps {
        app.flush_request_log().await;
    }
    live.extend(page_to_end(apps, &key, &mut live_cursor).await);

    // The feed, read at rest in one go and in small pages, holds each event once.
    let (feed, _) = feed_page(&first, &key, "0", 1000).await;
    assert!(feed.len() < 1000, "the whole feed fits one page");
    let ids = event_ids(&feed);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "no event twice in the feed"
    );
    assert_eq!(
        event_ids(&page_to_end(apps, &key, &mut "0".to_string()).await),
        ids,
        "paging gives the same events"
    );
    assert_eq!(
        event_ids(&live),
        ids,
        "paging while the feed grew skipped nothing and repeated nothing"
    );

    // Per directory: numbered 1, 2, 3… in feed order, with an event for each acknowledged change.
    for directory in &directories {
        let events: Vec<&Value> = feed
            .iter()
            .filter(|e| e["directory_id"] == directory.id.as_str())
            .collect();
        let sequences: Vec<i64> = events
            .iter()
            .map(|e| e["sequence"].as_i64().unwrap())
            .collect();
        assert_eq!(
            sequences,
            (1..=events.len() as i64).collect::<Vec<_>>(),
            "the directory's events are numbered without gaps, in feed order"
        );
        assert!(events.iter().all(|e| e["org_id"] == directory.org.as_str()));
        let done = &acknowledged[&directory.id];
        assert_eq!(
            events
                .iter()
                .filter(|e| e["type"] == "directory.connected")
                .count(),
            1,
            "connected once, though both instances took its first requests"
        );
        assert_eq!(about(&events, "user.created", "user"), done.users_created);
        assert_eq!(
            events
                .iter()
                .filter(|e| e["type"] == "user.created")
                .count(),
            WRITERS_PER_DIRECTORY * USERS_PER_WRITER
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| e["type"] == "user.updated")
                .count(),
            WRITERS_PER_DIRECTORY * USERS_PER_WRITER,
            "one update per title change"
        );
        assert_eq!(
            about(&events, "user.deactivated", "user"),
            done.users_deactivated
        );
        assert_eq!(about(&events, "user.deleted", "user"), done.users_deleted);
        assert_eq!(
            about(&events, "group.created", "group"),
            done.groups_created
        );
        assert_eq!(
            about(&events, "group.deleted", "group"),
            done.groups_deleted
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| e["type"] == "group.user_added")
                .count(),
            WRITERS_PER_DIRECTORY * 4,
            "two members at the group's creation, two added"
        );
    }

    // Each endpoint gets each event it takes once, signed, and per directory in sequence order:
    // an event is sent only after the one before it in its directory was delivered, whichever
    // instance delivers either. Nothing is promised across directories.
    let wanted_by_globex = |e: &&Value| {
        e["org_id"] == globex.as_str() && e["type"].as_str().unwrap().starts_with("user.")
    };
    let globex_feed: Vec<&Value> = feed.iter().filter(wanted_by_globex).collect();
    let got_all = receive(&mut all_rx, feed.len()).await;
    let got_globex = receive(&mut globex_rx, globex_feed.len()).await;
    all_delivered_once(&first, &all.id, feed.len()).await;
    all_delivered_once(&first, &globex_users.id, globex_feed.len()).await;
    // Every attempt was answered before it was recorded, so a repeat would be here by now.
    let got_all = [got_all, receive(&mut all_rx, 0).await].concat();
    let got_globex = [got_globex, receive(&mut globex_rx, 0).await].concat();
    assert!(got_all.iter().all(|r| signature_valid(&all.secret, r)));
    assert!(
        got_globex
            .iter()
            .all(|r| signature_valid(&globex_users.secret, r))
    );
    assert_eq!(
        arrival_order(&got_all),
        feed_order(feed.iter()),
        "every event once, per directory in sequence order"
    );
    assert_eq!(
        arrival_order(&got_globex),
        feed_order(globex_feed.into_iter()),
        "Globex's user events once, per directory in sequence order"
    );

    // The two instances' workers made one attempt per delivery between them.
    let delivered = apps.map(|app| {
        app.state()
            .worker_health
            .delivered(roster::metrics::DeliveryOutcome::Delivered)
    });
    println!(
        "deliveries made by the first instance: {}, by the second: {}",
        delivered[0], delivered[1]
    );
    assert_eq!(
        delivered.iter().sum::<u64>() as usize,
        got_all.len() + got_globex.len()
    );
    for app in apps {
        let health = &app.state().worker_health;
        assert!(health.running());
        assert_eq!(
            health.delivered(roster::metrics::DeliveryOutcome::Failed)
                + health.delivered(roster::metrics::DeliveryOutcome::Dead),
            0
        );
    }
}
