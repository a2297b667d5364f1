//! `--scenario thousand`: one instance holding a thousand customers. 1 000 organizations with
//! a directory each and 1 000 000 users (five directories of 100 000, the others 100–905), one
//! group per 50 users with each user in 1–3 of them, 31 days of events (a day more than
//! retention keeps, so that pruning has work) and each directory's request log at its cap.
//! `--thousand-scale F` loads F of every directory's users and request rows, for quick runs.
//!
//! The rows are bulk-inserted, not sent through HTTP (a million creates, and history that is
//! weeks old, would need days or backdating anyway): every row is a copy of one Roster itself
//! wrote in this run, in a template directory, through SCIM (a user created, one created and
//! updated, a group and a membership, the requests that did it), with the ids, names, times
//! and sequence numbers of the copy put in. Then the scenario restarts the server on the loaded
//! database and measures its startup, memory, the owner console, the portal at the largest
//! directory, SCIM throughput on a small directory against an empty database's, and what
//! retention prunes.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use roster::db::{DbConn, now};
use serde_json::{Value, json};

use crate::{Opts, agent, all_users, cli, okta_directory, send, start, wrk};

/// Organizations (one directory each).
const CUSTOMERS: usize = 1_000;
/// Directories of `LARGE_USERS` users; the others hold 100–905.
const LARGE: usize = 5;
const LARGE_USERS: usize = 100_000;
/// Users per group, about.
const USERS_PER_GROUP: usize = 50;
/// The request log's cap per directory (`db::requests::KEEP_PER_DIRECTORY`).
const REQUESTS_PER_DIRECTORY: usize = roster::db::requests::KEEP_PER_DIRECTORY as usize;
/// Days of events loaded: one more than retention keeps.
const EVENT_DAYS: i64 = 31;
/// Timed requests per page figure.
const SAMPLES: usize = 50;

/// Goals: owner console, portal pages (server time, read as wall time over loopback), SCIM
/// throughput with a thousand customers over an empty database's, SQLite RSS.
const OWNER_GOAL_MS: f64 = 50.0;
const PORTAL_GOAL_MS: f64 = 20.0;
const SCIM_GOAL_RATIO: f64 = 0.8;
const RSS_GOAL_MB: f64 = 200.0;

const ORG_WORDS: [&str; 20] = [
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Adatum",
    "Proseware",
    "Wingtip",
    "Woodgrove",
    "Lucerne",
    "Humongous",
    "Alpine",
    "Coho",
    "Fourth",
    "Graphic",
    "Margie",
    "Trey",
    "Wide World",
    "Blue Yonder",
    "Relecloud",
];

fn org_name(d: usize) -> String {
    format!("{} {d:04}", ORG_WORDS[d % ORG_WORDS.len()])
}

/// Users of directory `d` at full scale (the first `LARGE` are the large ones).
fn users_of(d: usize) -> usize {
    if d < LARGE {
        LARGE_USERS
    } else {
        100 + (d * 7919 + 13) % 806
    }
}

fn scaled(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(1)
}

/// A row of a table as SQL literals, one per column, read back from the database.
type Literals = Vec<String>;

/// What the template directory's SCIM traffic left in the database.
struct Template {
    dir: String,
    org: String,
    /// User "a" was created then updated, user "b" only created; "g" is b's group.
    a: String,
    b: String,
    g: String,
    user_a: Literals,
    user_b: Literals,
    email_b: Literals,
    group: Literals,
    member: Literals,
    created: Literals,
    updated: Literals,
    added: Literals,
    /// Requests: create, update, read, read of an unknown id, group change.
    post_user: Literals,
    patch_user: Literals,
    get_user: Literals,
    get_missing: Literals,
    patch_group: Literals,
}

const USER_COLUMNS: &[&str] = &[
    "id",
    "directory_id",
    "user_name",
    "user_name_norm",
    "external_id",
    "active",
    "display_name",
    "display_name_norm",
    "full_name",
    "full_name_norm",
    "primary_email",
    "resource",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
];
const EMAIL_COLUMNS: &[&str] = &[
    "user_id",
    "position",
    "directory_id",
    "value_norm",
    "type_norm",
    "is_primary",
];
const GROUP_COLUMNS: &[&str] = &[
    "id",
    "directory_id",
    "display_name",
    "display_name_norm",
    "external_id",
    "resource",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
];
const MEMBER_COLUMNS: &[&str] = &["group_id", "user_id", "created_at"];
/// `seq` is left to the table: events go in in time order.
const EVENT_COLUMNS: &[&str] = &[
    "id",
    "org_id",
    "directory_id",
    "directory_seq",
    "event_type",
    "payload",
    "created_at",
];
/// `id` is left to the table: rows go in in time order.
const REQUEST_COLUMNS: &[&str] = &[
    "directory_id",
    "at",
    "method",
    "path",
    "status",
    "duration_us",
    "request_body",
    "response_excerpt",
    "error_kind",
    "resource_type",
    "resource_id",
    "change_summary",
    "request_id",
];

/// Rows of `table` matching `condition`, each as SQL literals of `columns`, in insertion order.
fn literals(
    c: &mut DbConn,
    table: &str,
    columns: &[&str],
    condition: &str,
    order: &str,
) -> Vec<Literals> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let quoted: Vec<String> = columns
        .iter()
        .map(|col| match c {
            DbConn::Sqlite(_) => format!("quote({col})"),
            DbConn::Postgres(_) => format!("quote_nullable({col})"),
        })
        .collect();
    let sep = match c {
        DbConn::Sqlite(_) => " || char(31) || ",
        DbConn::Postgres(_) => " || chr(31) || ",
    };
    let sql = format!(
        "SELECT {} AS v FROM {table} WHERE {condition} ORDER BY {order}",
        quoted.join(sep)
    );
    diesel::sql_query(&sql)
        .load::<Line>(c)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|l| l.v.split('\u{1f}').map(str::to_string).collect())
        .collect()
}

fn one(rows: Vec<Literals>, what: &str) -> Literals {
    rows.into_iter()
        .next()
        .unwrap_or_else(|| panic!("the template has {what}"))
}

/// SCIM requests in a template directory, then their rows read back.
fn make_template(db: &str, base: &str) -> Template {
    let org: Value = serde_json::from_str(&cli(
        db,
        base,
        &["org", "create", "Template", "--scim-enabled", "--json"],
    ))
    .unwrap_or(Value::Null);
    let org = org["id"].as_str().unwrap_or_default().to_string();
    let (scim, token) = okta_directory(db, base, &org);
    let dir = scim.rsplit('/').next().unwrap_or_default().to_string();
    let a = agent();
    let user = |tag: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("tpl{tag}user@tplexample.org"), "externalId": format!("tpl{tag}ext"),
            "name": {"givenName": format!("Tpl{tag}given"), "familyName": format!("Tpl{tag}family")},
            "emails": [{"value": format!("tpl{tag}user@tplexample.org"), "type": "work", "primary": true}],
            "active": true})
    };
    let id_of = |(status, body): (u16, String)| {
        assert!(status < 300, "template request: {status} {body}");
        serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let create = |collection: &str, body: Value| {
        id_of(send(
            &a,
            "POST",
            &format!("{scim}/{collection}"),
            &token,
            Some(&body),
        ))
    };
    let ua = create("Users", user("a"));
    let ub = create("Users", user("b"));
    let g = create("Groups", json!({"displayName": "Tplgroup"}));
    let patch = |path: &str, value: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": path, "value": value}]});
    send(
        &a,
        "PATCH",
        &format!("{scim}/Groups/{g}"),
        &token,
        Some(&patch("members", json!([{"value": ub}]))),
    );
    send(
        &a,
        "PATCH",
        &format!("{scim}/Users/{ua}"),
        &token,
        Some(&patch("title", json!("Engineer"))),
    );
    send(&a, "GET", &format!("{scim}/Users/{ub}"), &token, None);
    let missing = "0190a000-0000-7000-8000-000000000000";
    send(&a, "GET", &format!("{scim}/Users/{missing}"), &token, None);
    // The writer logs requests in batches: wait for the last one's row.
    let pool = roster::db::connect_single(db).expect("the database opens");
    let mut c = pool.get().expect("a connection");
    let of_dir = format!("directory_id = '{dir}'");
    let deadline = Instant::now() + Duration::from_secs(10);
    let requests = loop {
        let rows = literals(&mut c, "scim_requests", REQUEST_COLUMNS, &of_dir, "id");
        if rows.len() >= 7 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let request = |method: &str, path_end: &str| {
        requests
            .iter()
            .find(|r| r[2].contains(method) && r[3].ends_with(&format!("{path_end}'")))
            .cloned()
            .unwrap_or_else(|| panic!("the template logged {method} …{path_end}: {requests:?}"))
    };
    let mut user_row = |id: &str| {
        one(
            literals(
                &mut c,
                "scim_users",
                USER_COLUMNS,
                &format!("id = '{id}'"),
                "id",
            ),
            "its users",
        )
    };
    let (user_a, user_b) = (user_row(&ua), user_row(&ub));
    let email_b = one(
        literals(
            &mut c,
            "user_emails",
            EMAIL_COLUMNS,
            &format!("user_id = '{ub}'"),
            "position",
        ),
        "an email",
    );
    let group = one(
        literals(&mut c, "scim_groups", GROUP_COLUMNS, &of_dir, "id"),
        "a group",
    );
    let member = one(
        literals(
            &mut c,
            "group_members",
            MEMBER_COLUMNS,
            &format!("group_id = '{g}'"),
            "user_id",
        ),
        "a membership",
    );
    let events = literals(&mut c, "events", EVENT_COLUMNS, &of_dir, "seq");
    let event = |kind: &str, about: &str| {
        events
            .iter()
            .find(|e| e[4] == format!("'{kind}'") && e[5].contains(about))
            .cloned()
            .unwrap_or_else(|| panic!("the template emitted {kind}"))
    };
    Template {
        created: event("user.created", &ub),
        updated: event("user.updated", &ua),
        added: event("group.user_added", &ub),
        post_user: request("POST", "/Users"),
        patch_user: request("PATCH", &format!("/Users/{ua}")),
        get_user: request("GET", &format!("/Users/{ub}")),
        get_missing: request("GET", &format!("/Users/{missing}")),
        patch_group: request("PATCH", &format!("/Groups/{g}")),
        dir,
        org,
        a: ua,
        b: ub,
        g,
        user_a,
        user_b,
        email_b,
        group,
        member,
    }
}

/// A timestamp as Roster stores it (`%F %T%.f`), as a SQL literal.
fn ts(t: NaiveDateTime) -> String {
    format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"))
}

/// `t` as the JSON documents carry it.
fn rfc(t: NaiveDateTime) -> String {
    roster::scim::resource::rfc3339(t)
}

/// A copy of a template row: `subs` replaced everywhere, the timestamp columns set to `at` and
/// every RFC 3339 time of the template's day in its JSON to `at` too, except `lastModified`
/// (to `modified`).
fn copy(
    row: &[String],
    columns: &[&str],
    subs: &[(&str, &str)],
    set: &[(&str, String)],
    (day, at, modified): (&str, NaiveDateTime, NaiveDateTime),
    out: &mut String,
) {
    out.push('(');
    for (i, (col, v)) in columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(',');
        }
        if let Some((_, value)) = set.iter().find(|(c, _)| c == col) {
            out.push_str(value);
            continue;
        }
        if v == "NULL" {
            out.push_str(v);
            continue;
        }
        let mut v = v.clone();
        for (from, to) in subs {
            if v.contains(from) {
                v = v.replace(from, to);
            }
        }
        if v.contains(day) {
            v = retime(&v, day, &rfc(at), &rfc(modified));
        }
        out.push_str(&v);
    }
    out.push(')');
}

/// `s` with each RFC 3339 time of the day `day` (`YYYY-MM-DDT`, 24 characters with millis and
/// `Z`) replaced: by `modified` after a `lastModified` key, else by `at`.
fn retime(s: &str, day: &str, at: &str, modified: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(day) {
        let (before, from) = rest.split_at(i);
        out.push_str(before);
        let len = from
            .char_indices()
            .find(|(_, c)| *c == 'Z')
            .map_or(from.len(), |(j, _)| j + 1);
        if out.ends_with("\"lastModified\":\"") {
            out.push_str(modified);
        } else {
            out.push_str(at);
        }
        rest = &from[len..];
    }
    out.push_str(rest);
    out
}

/// Multi-row INSERTs of one table, flushed as they fill.
struct Inserts {
    head: String,
    rows: usize,
    sql: String,
}

impl Inserts {
    const ROWS: usize = 500;

    fn new(table: &str, columns: &[&str]) -> Inserts {
        Inserts {
            head: format!("INSERT INTO {table} ({}) VALUES ", columns.join(",")),
            rows: 0,
            sql: String::new(),
        }
    }

    /// Starts a row: the caller writes its `(…)` into the returned text.
    fn row(&mut self) -> &mut String {
        if self.rows.is_multiple_of(Self::ROWS) {
            if self.rows > 0 {
                self.sql.push_str(";\n");
            }
            self.sql.push_str(&self.head);
        } else {
            self.sql.push(',');
        }
        self.rows += 1;
        &mut self.sql
    }

    fn take(&mut self) -> String {
        let mut sql = std::mem::take(&mut self.sql);
        if self.rows > 0 {
            sql.push_str(";\n");
        }
        self.rows = 0;
        sql
    }
}

/// A small deterministic hash, for spreading times and choices.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// What the load made, for the measurements.
struct Loaded {
    users: usize,
    rows: usize,
    /// The largest directory and its organization; a small directory and its organization.
    large: (String, String),
    small: (String, String),
    /// A user of the largest directory.
    large_user: String,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn exec(c: &mut DbConn, sql: &str) {
    if !sql.is_empty() {
        c.batch_execute(sql)
            .unwrap_or_else(|e| panic!("load: {e}: {}", &sql[..sql.len().min(300)]));
    }
}

/// Loads the thousand customers: organizations and directories through `db::orgs` and
/// `db::directories`, everything else as copies of the template's rows.
fn load(c: &mut DbConn, t: &Template, scale: f64) -> Loaded {
    let start = now();
    let day = {
        let created = &t.created[6];
        format!("{}T", &created[1..11])
    };
    let sqlite = matches!(c, DbConn::Sqlite(_));
    let mut loaded = Loaded {
        users: 0,
        rows: 0,
        large: Default::default(),
        small: Default::default(),
        large_user: String::new(),
    };
    let window = chrono::Duration::days(EVENT_DAYS);
    let minutes = |m: u64| chrono::Duration::minutes((m % window.num_minutes() as u64) as i64);
    let email_domain = "tplexample.org";
    for d in 0..CUSTOMERS {
        let org = roster::db::orgs::create(c, &org_name(d), true).expect("an organization");
        let (dir, _) =
            roster::db::directories::create(c, &org.id, "okta", "Okta").expect("a directory");
        let n = scaled(users_of(d), scale);
        let groups = n.div_ceil(USERS_PER_GROUP);
        let domain = format!("customer{d}.example");
        let base_subs = [
            (t.dir.as_str(), dir.id.as_str()),
            (t.org.as_str(), org.id.as_str()),
            (email_domain, domain.as_str()),
        ];
        let mut users = Inserts::new("scim_users", USER_COLUMNS);
        let mut emails = Inserts::new("user_emails", EMAIL_COLUMNS);
        let mut group_rows = Inserts::new("scim_groups", GROUP_COLUMNS);
        let mut members = Inserts::new("group_members", MEMBER_COLUMNS);
        let mut events: Vec<(NaiveDateTime, String)> = Vec::new();
        let group_ids: Vec<String> = (0..groups).map(|_| roster::db::new_id()).collect();
        // Groups: made before the window, like the users that are not new.
        let long_ago = start - chrono::Duration::days(400);
        for (g, gid) in group_ids.iter().enumerate() {
            let name = format!("Group {g}");
            let norm = name.to_lowercase();
            let subs = [
                (t.g.as_str(), gid.as_str()),
                ("Tplgroup", name.as_str()),
                ("tplgroup", norm.as_str()),
            ];
            let all: Vec<(&str, &str)> = base_subs.iter().chain(&subs).copied().collect();
            copy(
                &t.group,
                GROUP_COLUMNS,
                &all,
                &[("created_at", ts(long_ago)), ("updated_at", ts(long_ago))],
                (&day, long_ago, long_ago),
                group_rows.row(),
            );
        }
        let mut ids = Vec::with_capacity(n);
        for u in 0..n {
            let h = mix((d as u64) << 32 | u as u64);
            let id = roster::db::new_id();
            let f = (h % 997) as usize;
            let (given, family) = (format!("Given{u}"), format!("Family{f}"));
            let (given_n, family_n) = (given.to_lowercase(), family.to_lowercase());
            let ext = format!("ext-{d}-{u}");
            // One in 20 users is new within the window; of the others, four in five were
            // updated within it.
            let new = u % 20 == 0;
            let updated = !new && u % 5 != 0;
            let created = if new {
                start - window + minutes(h >> 8)
            } else {
                start - window - chrono::Duration::minutes(((h >> 8) % (360 * 24 * 60)) as i64)
            };
            let modified = if updated {
                start - window + minutes(h >> 20)
            } else {
                created
            };
            let (tpl, tag) = if updated {
                (&t.user_a, "a")
            } else {
                (&t.user_b, "b")
            };
            let tpl_id = if updated { &t.a } else { &t.b };
            let tokens = [
                format!("tpl{tag}user@"),
                format!("Tpl{tag}given"),
                format!("tpl{tag}given"),
                format!("Tpl{tag}family"),
                format!("tpl{tag}family"),
                format!("tpl{tag}ext"),
            ];
            let user_part = format!("{given_n}.{family_n}@");
            let subs: Vec<(&str, &str)> = base_subs
                .iter()
                .copied()
                .chain([
                    (tpl_id.as_str(), id.as_str()),
                    (tokens[0].as_str(), user_part.as_str()),
                    (tokens[1].as_str(), given.as_str()),
                    (tokens[2].as_str(), given_n.as_str()),
                    (tokens[3].as_str(), family.as_str()),
                    (tokens[4].as_str(), family_n.as_str()),
                    (tokens[5].as_str(), ext.as_str()),
                ])
                .collect();
            copy(
                tpl,
                USER_COLUMNS,
                &subs,
                &[("created_at", ts(created)), ("updated_at", ts(modified))],
                (&day, created, modified),
                users.row(),
            );
            // Both templates' emails have the same shape; b's is the one read back.
            let email_subs: Vec<(&str, &str)> = base_subs
                .iter()
                .copied()
                .chain([
                    (t.b.as_str(), id.as_str()),
                    ("tplbuser@", user_part.as_str()),
                ])
                .collect();
            copy(
                &t.email_b,
                EMAIL_COLUMNS,
                &email_subs,
                &[],
                (&day, created, created),
                emails.row(),
            );
            let mut mine = vec![u % groups];
            if u % 3 >= 1 {
                mine.push((u * 7 + 1) % groups);
            }
            if u % 3 == 2 {
                mine.push((u * 13 + 2) % groups);
            }
            mine.sort_unstable();
            mine.dedup();
            for &g in &mine {
                let gid = group_ids[g].as_str();
                let name = format!("Group {g}");
                let subs: Vec<(&str, &str)> = base_subs
                    .iter()
                    .copied()
                    .chain([
                        (t.b.as_str(), id.as_str()),
                        (t.g.as_str(), gid),
                        ("Tplgroup", name.as_str()),
                        ("tplbuser@", user_part.as_str()),
                        ("Tplbgiven", given.as_str()),
                        ("tplbgiven", given_n.as_str()),
                        ("Tplbfamily", family.as_str()),
                        ("tplbfamily", family_n.as_str()),
                        ("tplbext", ext.as_str()),
                    ])
                    .collect();
                copy(
                    &t.member,
                    MEMBER_COLUMNS,
                    &subs,
                    &[("created_at", ts(created))],
                    (&day, created, created),
                    members.row(),
                );
                if new {
                    events.push((created, event_row(&t.added, &subs, &day, created)));
                }
            }
            if new {
                events.push((created, event_row(&t.created, &subs, &day, created)));
            }
            if updated {
                events.push((modified, event_row(&t.updated, &subs, &day, modified)));
            }
            ids.push(id);
        }
        // Events in time order, numbered in the directory.
        events.sort_by_key(|e| e.0);
        let mut event_rows = Inserts::new("events", EVENT_COLUMNS);
        for (seq, (_, row)) in events.iter().enumerate() {
            let sql = event_rows.row();
            sql.push_str(&row.replace("\u{1}SEQ\u{1}", &(seq + 1).to_string()));
        }
        // The request log at its cap, over the last 30 days.
        let requests = scaled(REQUESTS_PER_DIRECTORY, scale);
        let mut request_rows = Inserts::new("scim_requests", REQUEST_COLUMNS);
        let span = chrono::Duration::days(roster::db::requests::KEEP_DAYS).num_seconds() - 3600;
        for r in 0..requests {
            let h = mix(((d as u64) << 40) ^ (r as u64) ^ 0x5eed);
            let at = start - chrono::Duration::seconds(span)
                + chrono::Duration::seconds(span * r as i64 / requests as i64);
            let user = &ids[(h % n as u64) as usize];
            let group = &group_ids[((h >> 16) % groups as u64) as usize];
            let (tpl, tpl_user) = match r % 20 {
                0 => (&t.get_missing, &t.b),
                1..=11 => (&t.get_user, &t.b),
                12..=16 => (&t.patch_user, &t.a),
                17 => (&t.post_user, &t.b),
                _ => (&t.patch_group, &t.b),
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            let subs: Vec<(&str, &str)> = base_subs
                .iter()
                .copied()
                .chain([
                    (tpl_user.as_str(), user.as_str()),
                    (t.g.as_str(), group.as_str()),
                ])
                .collect();
            copy(
                tpl,
                REQUEST_COLUMNS,
                &subs,
                &[("at", ts(at)), ("request_id", quote(&request_id))],
                (&day, at, at),
                request_rows.row(),
            );
        }
        let rows = users.rows + emails.rows + group_rows.rows + members.rows;
        loaded.rows += rows + event_rows.rows + request_rows.rows;
        let last = events.len();
        let mut sql = String::from("BEGIN;\n");
        for part in [&mut users, &mut emails, &mut group_rows, &mut members] {
            sql.push_str(&part.take());
            if sql.len() > 16 << 20 {
                exec(c, &sql);
                sql.clear();
            }
        }
        if sqlite {
            // The search index, as the migration that made it filled it.
            sql.push_str(&format!(
                "INSERT INTO user_search_keys (user_id) SELECT id FROM scim_users WHERE directory_id = '{0}';\n\
                 INSERT INTO user_search (rowid, user_name, display_name, full_name, email) \
                 SELECT k.key, u.user_name_norm, u.display_name_norm, u.full_name_norm, u.primary_email \
                 FROM scim_users u JOIN user_search_keys k ON k.user_id = u.id WHERE u.directory_id = '{0}';\n",
                dir.id
            ));
        }
        sql.push_str(&event_rows.take());
        exec(c, &sql);
        exec(c, &request_rows.take());
        exec(
            c,
            &format!(
                "UPDATE directories SET event_seq = {last}, first_request_at = {}, \
                 last_request_at = {} WHERE id = '{}';\nCOMMIT;",
                ts(start - chrono::Duration::seconds(span)),
                ts(start),
                dir.id
            ),
        );
        loaded.users += n;
        if d == 0 {
            loaded.large = (dir.id.clone(), org.id.clone());
            loaded.large_user = ids[n / 2].clone();
        } else if d == LARGE {
            loaded.small = (dir.id.clone(), org.id.clone());
        }
        if d % 100 == 99 {
            println!(
                "  loaded {} customers, {} users, {} rows, {:.0} s",
                d + 1,
                loaded.users,
                loaded.rows,
                (now() - start).as_seconds_f64()
            );
        }
    }
    loaded
}

/// An event row copied from `tpl` (its sequence left as a marker, numbered once the
/// directory's events are in time order).
fn event_row(tpl: &[String], subs: &[(&str, &str)], day: &str, at: NaiveDateTime) -> String {
    let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
    let tpl_id = tpl[0].trim_matches('\'');
    let sequence = format!("\"sequence\":{}", tpl[3].trim_matches('\''));
    let mut all: Vec<(&str, &str)> = subs.to_vec();
    all.push((tpl_id, id.as_str()));
    all.push((sequence.as_str(), "\"sequence\":\u{1}SEQ\u{1}"));
    let mut out = String::new();
    copy(
        tpl,
        EVENT_COLUMNS,
        &all,
        &[
            ("created_at", ts(at)),
            ("directory_seq", "\u{1}SEQ\u{1}".to_string()),
        ],
        (day, at, at),
        &mut out,
    );
    out
}

/// The directories `load` measures, in a database it loaded in an earlier run: the largest,
/// and a small one picked anew each run (earlier runs added users to theirs).
fn find_loaded(c: &mut DbConn) -> Loaded {
    let dir_of = |c: &mut DbConn, d: usize| {
        let org = text(
            c,
            &format!(
                "SELECT id AS v FROM organizations WHERE name = {}",
                quote(&org_name(d))
            ),
        );
        let dir = text(
            c,
            &format!("SELECT id AS v FROM directories WHERE org_id = '{org}'"),
        );
        (dir, org)
    };
    let large = dir_of(c, 0);
    let small = dir_of(c, LARGE + std::process::id() as usize % (CUSTOMERS - LARGE));
    let large_user = text(
        c,
        &format!(
            "SELECT id AS v FROM scim_users WHERE directory_id = '{}' ORDER BY id LIMIT 1 OFFSET 500",
            large.0
        ),
    );
    Loaded {
        users: count(c, "SELECT count(*) AS n FROM scim_users") as usize,
        rows: 0,
        large,
        small,
        large_user,
    }
}

/// A new token of the directory; its older ones are revoked first (an earlier run over the
/// same database may have made the most a directory may have).
fn fresh_token(c: &mut DbConn, directory_id: &str) -> String {
    use roster::db::directories::{create_token, revoke_token, tokens};
    for t in tokens(c, directory_id).unwrap_or_default() {
        let _ = revoke_token(c, directory_id, &t.id);
    }
    create_token(c, directory_id)
        .ok()
        .flatten()
        .expect("a token for the directory")
}

fn text(c: &mut DbConn, sql: &str) -> String {
    #[derive(QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    diesel::sql_query(sql)
        .get_result::<V>(c)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .v
}

/// Resident and peak memory of a process, in MB.
fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A browser session: cookies kept by hand (the session cookie changes as it is written).
struct Browser {
    agent: ureq::Agent,
    base: String,
    cookie: String,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .new_agent(),
            base: base.to_string(),
            cookie: String::new(),
        }
    }

    fn keep_cookie(&mut self, r: &ureq::http::Response<ureq::Body>) {
        if let Some(c) = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
        {
            self.cookie = c.to_string();
        }
    }

    fn get(&mut self, path: &str) -> (u16, String) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        match self.agent.get(&url).header("cookie", &self.cookie).call() {
            Ok(mut r) => {
                self.keep_cookie(&r);
                let status = r.status().as_u16();
                (status, r.body_mut().read_to_string().unwrap_or_default())
            }
            Err(_) => (0, String::new()),
        }
    }

    fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> u16 {
        let body = serde_urlencoded::to_string(fields).unwrap_or_default();
        match self
            .agent
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body.as_str())
        {
            Ok(r) => {
                self.keep_cookie(&r);
                r.status().as_u16()
            }
            Err(_) => 0,
        }
    }

    /// Mean and p99 of `SAMPLES` GETs of `path` (ms, client wall time), and the last body.
    fn time(&mut self, path: &str) -> (f64, f64, u16, String) {
        let mut ms = Vec::with_capacity(SAMPLES);
        let mut last = (0, String::new());
        for _ in 0..SAMPLES {
            let t = Instant::now();
            last = self.get(path);
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(|a, b| a.total_cmp(b));
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        let p99 = ms[((ms.len() as f64 * 0.99) as usize).min(ms.len() - 1)];
        (mean, p99, last.0, last.1)
    }
}

fn csrf_token(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    page.find(marker)
        .map(|i| &page[i + marker.len()..])
        .and_then(|rest| rest.find('"').map(|j| rest[..j].to_string()))
        .unwrap_or_default()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// Prints a page figure against its goal.
fn report_page(name: &str, (mean, p99, status, body): &(f64, f64, u16, String), goal: f64) {
    println!(
        "{name:<44} mean {mean:>7.1} ms  p99 {p99:>7.1} ms  (goal ≤ {goal:.0} ms; {status}, {} KB) {}",
        body.len() / 1024,
        verdict(*p99 <= goal)
    );
}

/// Database size in bytes.
fn database_bytes(c: &mut DbConn, db: &str) -> u64 {
    match c {
        DbConn::Sqlite(_) => {
            let path = roster::db::sqlite_path(db).unwrap_or_default();
            ["", "-wal", "-shm"]
                .iter()
                .filter_map(|s| std::fs::metadata(format!("{path}{s}")).ok())
                .map(|m| m.len())
                .sum()
        }
        DbConn::Postgres(_) => {
            #[derive(QueryableByName)]
            struct Size {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            diesel::sql_query("SELECT pg_database_size(current_database()) AS n")
                .get_result::<Size>(c)
                .map_or(0, |s| s.n as u64)
        }
    }
}

fn count(c: &mut DbConn, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<N>(c)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// wrk POST /Users then GET /Users/{id} on a directory; returns both rates.
fn scim_rates(o: &Opts, base: &str, scim: &str, token: &str, tag: &str) -> (f64, f64) {
    let path = scim.trim_start_matches(base).to_string();
    let post = wrk(
        &format!("POST /Users ({tag})"),
        base,
        &[format!("{path}/Users")],
        token,
        Some(&format!("{tag}-")),
        o.seconds,
        o.concurrency,
    );
    let ids: Vec<String> = all_users(scim, token, None)
        .into_iter()
        .map(|(id, _)| format!("{path}/Users/{id}"))
        .collect();
    let get = wrk(
        &format!("GET /Users/{{id}} ({tag})"),
        base,
        &ids,
        token,
        None,
        o.seconds,
        o.concurrency,
    );
    for f in [&post, &get] {
        println!(
            "  {:<40} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            f.name,
            f.rate(),
            f.p50_ms,
            f.p99_ms,
            f.errors
        );
    }
    (post.rate(), get.rate())
}

pub fn run_scenario(o: &Opts, db: &str) {
    let scale = o.thousand_scale;
    let server = start(db);
    let base = server.base.clone();
    println!(
        "thousand: backend {}, scale {scale}, database {db}",
        o.backend
    );
    let template = make_template(db, &base);

    // SCIM on the empty database (the template aside): a new small directory.
    let (org_e, _) = {
        let v: Value = serde_json::from_str(&cli(
            db,
            &base,
            &["org", "create", "Empty", "--scim-enabled", "--json"],
        ))
        .unwrap_or(Value::Null);
        (v["id"].as_str().unwrap_or_default().to_string(), ())
    };
    let (scim_e, token_e) = okta_directory(db, &base, &org_e);
    println!("SCIM on the empty database:");
    let empty = scim_rates(o, &base, &scim_e, &token_e, "empty");
    drop(server);

    let db = o.thousand_db.as_deref().unwrap_or(db);
    let pool = roster::db::connect_single(db).expect("the database opens");
    let mut c = pool.get().expect("a connection");
    let load_started = Instant::now();
    let (loaded, analyzed) = if o.thousand_db.is_some() {
        (find_loaded(&mut c), 0.0)
    } else {
        let loaded = load(&mut c, &template, scale);
        // What the writer's statistics keep up as directories fill (see `Statistics`), once.
        let analyze_started = Instant::now();
        let statistics = match &*c {
            DbConn::Sqlite(_) => {
                "PRAGMA analysis_limit = 1000; ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);"
            }
            DbConn::Postgres(_) => "VACUUM ANALYZE",
        };
        exec(&mut c, statistics);
        (loaded, analyze_started.elapsed().as_secs_f64())
    };
    let inserted = load_started.elapsed().as_secs_f64() - analyzed;
    let bytes = database_bytes(&mut c, db);
    println!(
        "\nloaded {} customers, {} users, {} rows in {inserted:.0} s (+ {analyzed:.0} s of ANALYZE): \
         database {:.2} GB, {:.0} bytes per user",
        CUSTOMERS,
        loaded.users,
        loaded.rows,
        bytes as f64 / 1e9,
        bytes as f64 / loaded.users as f64
    );
    let events_total = count(&mut c, "SELECT count(*) AS n FROM events");
    let cutoff = ts(now() - chrono::Duration::days(30));
    let old_events = count(
        &mut c,
        &format!("SELECT count(*) AS n FROM events WHERE created_at < {cutoff}"),
    );
    let requests_total = count(&mut c, "SELECT count(*) AS n FROM scim_requests");
    drop(c);
    drop(pool);

    // Startup on the loaded database, to a ready /healthz.
    let started = Instant::now();
    let server = start(db);
    let base = server.base.clone();
    let a = agent();
    while send(&a, "GET", &format!("{base}/healthz"), "", None).0 != 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let startup = started.elapsed().as_secs_f64() * 1000.0;
    let pid = server.child.id();
    let (rss_start, hwm_start) = memory_mb(pid);
    println!(
        "startup to a ready /healthz: {startup:.0} ms; RSS {rss_start:.1} MB (peak {hwm_start:.1} MB)"
    );

    // Sanity: SCIM GET of a loaded user, through a token made for the largest directory.
    let pool = roster::db::connect_single(db).expect("the database opens");
    let mut c = pool.get().expect("a connection");
    let token_l = fresh_token(&mut c, &loaded.large.0);
    let token_s = fresh_token(&mut c, &loaded.small.0);
    let scim_l = format!("{base}/scim/v2/{}", loaded.large.0);
    let scim_s = format!("{base}/scim/v2/{}", loaded.small.0);
    let some_user = &loaded.large_user;
    let (status, body) = send(
        &a,
        "GET",
        &format!("{scim_l}/Users/{some_user}"),
        &token_l,
        None,
    );
    let user: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    println!(
        "sanity: SCIM GET of a loaded user: {status}, userName {}",
        user["userName"]
    );
    assert_eq!(status, 200, "a loaded user reads back over SCIM: {body}");

    // Owner console.
    let mut owner = Browser::new(&base);
    let setup = cli(db, &base, &["owner", "setup-link"]);
    let (_, form) = owner.get(&setup);
    let path = setup.trim_start_matches(&base).to_string();
    let signed = owner.post_form(
        &path,
        &[
            ("csrf_token", &csrf_token(&form)),
            ("password", "correct horse battery staple"),
            ("confirm", "correct horse battery staple"),
        ],
    );
    assert_eq!(signed, 303, "the owner account is set up");
    let org_list = owner.time("/owner");
    let org_search = owner.time("/owner?q=northwind");
    let listed = org_list.3.matches("/owner/orgs/").count();

    // The portal of the largest directory's organization.
    let mut portal = Browser::new(&base);
    let link = cli(db, &base, &["portal-link", &loaded.large.1]);
    let (status, _) = portal.get(&link);
    assert_eq!(status, 303, "the portal link opens a session");
    let scim_tab = portal.time("/portal/scim");
    let users_view = portal.time("/portal/users");
    let users_search = portal.time("/portal/users?q=given9876");
    let inspector = portal.time(&format!(
        "/portal/scim/directories/{}/activity",
        loaded.large.0
    ));
    let directory_page = portal.time(&format!("/portal/scim/directories/{}", loaded.large.0));
    let shown = users_view.3.matches("family").count();

    let small_users = count(
        &mut c,
        &format!(
            "SELECT count(*) AS n FROM scim_users WHERE directory_id = '{}'",
            loaded.small.0
        ),
    );
    println!("\nSCIM on a small directory ({small_users} users) of the loaded database:");
    let full = scim_rates(o, &base, &scim_s, &token_s, "loaded");
    let (rss_end, hwm_end) = memory_mb(pid);

    // Retention: the request log of the directory that was just written to, and the events'
    // pruning (the delivery worker runs it every 10 minutes; here, once, directly).
    let small_rows = count(
        &mut c,
        &format!(
            "SELECT count(*) AS n FROM scim_requests WHERE directory_id = '{}'",
            loaded.small.0
        ),
    );
    let largest_log = count(
        &mut c,
        "SELECT coalesce(max(n), 0) AS n FROM (SELECT count(*) AS n FROM scim_requests GROUP BY directory_id) x",
    );
    let prune_started = Instant::now();
    let pruned = roster::db::events::prune(&mut c, 30).unwrap_or(0);
    let prune_ms = prune_started.elapsed().as_secs_f64() * 1000.0;
    let events_after = count(&mut c, "SELECT count(*) AS n FROM events");
    // The alert evaluator's pass over every connected directory (the server runs one at start
    // and every minute, beside the requests measured above).
    let alerts_started = Instant::now();
    let alerts = roster::alerts::evaluate_all(&mut c, now());
    let alerts_ms = alerts_started.elapsed().as_secs_f64() * 1000.0;
    drop(server);

    println!("\n== thousand customers, {} ==", o.backend);
    println!(
        "database: {:.0} bytes per user ({:.2} GB for {} users, {events_total} events, {requests_total} logged requests); load {inserted:.0} s",
        bytes as f64 / loaded.users as f64,
        bytes as f64 / 1e9,
        loaded.users
    );
    println!("startup to a ready /healthz: {startup:.0} ms");
    let rss_goal = if o.backend == "sqlite" {
        format!(
            "(goal ≤ {RSS_GOAL_MB:.0} MB) {}",
            verdict(hwm_end <= RSS_GOAL_MB)
        )
    } else {
        String::new()
    };
    println!(
        "RSS after startup {rss_start:.1} MB (peak {hwm_start:.1}); after the measurements {rss_end:.1} MB (peak {hwm_end:.1}) {rss_goal}"
    );
    println!("(client wall time over loopback, {SAMPLES} requests each)");
    report_page(
        &format!("owner: organization list ({listed} links)"),
        &org_list,
        OWNER_GOAL_MS,
    );
    report_page("owner: organization search", &org_search, OWNER_GOAL_MS);
    report_page(
        "portal: SCIM tab (largest directory)",
        &scim_tab,
        PORTAL_GOAL_MS,
    );
    report_page(
        &format!("portal: Users view ({shown} names)"),
        &users_view,
        PORTAL_GOAL_MS,
    );
    report_page("portal: Users search", &users_search, PORTAL_GOAL_MS);
    report_page("portal: request inspector", &inspector, PORTAL_GOAL_MS);
    report_page("portal: directory page", &directory_page, PORTAL_GOAL_MS);
    for (name, e, l) in [
        ("POST /Users", empty.0, full.0),
        ("GET /Users/{id}", empty.1, full.1),
    ] {
        println!(
            "SCIM {name:<16} empty database {e:>7.0} req/s, with a thousand customers {l:>7.0} req/s: {:.2}× (goal ≥ {SCIM_GOAL_RATIO}) {}",
            l / e,
            verdict(l / e >= SCIM_GOAL_RATIO)
        );
    }
    println!(
        "alert evaluation, one pass over {CUSTOMERS} connected directories: {alerts_ms:.0} ms ({})",
        if alerts.is_ok() { "done" } else { "failed" }
    );
    println!(
        "retention: request log ≤ {} rows per directory loaded (largest now {largest_log}); the small directory after its POSTs: {small_rows} rows",
        scaled(REQUESTS_PER_DIRECTORY, scale)
    );
    println!(
        "retention: events older than 30 days: {old_events} of {events_total} as loaded; pruned {pruned} in {prune_ms:.0} ms ({events_after} events left, with the run's own)"
    );
}
