//! Why a user has each of their roles: the groups that give it, since when the user is in
//! each and since when the group gives it, and the SCIM request that added the membership;
//! or that it is the organization's default role because their groups give none.

use chrono::NaiveDateTime;
use diesel::QueryResult;

use crate::db::{self, DbConn, requests::Request};

/// One group that gives a role.
#[derive(Debug, Clone)]
pub struct Via {
    pub group_id: String,
    pub group_name: String,
    pub member_since: NaiveDateTime,
    pub mapped_since: NaiveDateTime,
    /// The request that added the membership, while the request log still holds it.
    pub request: Option<Request>,
}

/// One of the user's effective roles, and what gives it.
#[derive(Debug, Clone)]
pub struct Reason {
    pub slug: String,
    pub name: String,
    /// Given because the user's groups give no role.
    pub by_default: bool,
    pub via: Vec<Via>,
}

/// The reasons for each of a live user's effective roles, by slug.
pub fn reasons(
    conn: &mut DbConn,
    org_id: &str,
    directory_id: &str,
    user_id: &str,
) -> QueryResult<Vec<Reason>> {
    let roles = db::roles::list(conn, org_id)?;
    let given = db::roles::given_by(conn, directory_id, user_id)?;
    let mut out: Vec<Reason> = Vec::new();
    for g in given {
        let request =
            db::requests::first_write_since(conn, directory_id, &g.group_id, g.member_since)?;
        let via = Via {
            group_id: g.group_id,
            group_name: g.group_name,
            member_since: g.member_since,
            mapped_since: g.mapped_since,
            request,
        };
        match out.last_mut().filter(|r| r.slug == g.role) {
            Some(reason) => reason.via.push(via),
            None => out.push(Reason {
                name: name_of(&roles, &g.role),
                slug: g.role,
                by_default: false,
                via: vec![via],
            }),
        }
    }
    if out.is_empty()
        && let Some(default) = roles.iter().find(|r| r.is_default)
    {
        out.push(Reason {
            slug: default.slug.clone(),
            name: default.name.clone(),
            by_default: true,
            via: Vec::new(),
        });
    }
    Ok(out)
}

fn name_of(roles: &[db::roles::Role], slug: &str) -> String {
    roles
        .iter()
        .find(|r| r.slug == slug)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| slug.to_string())
}

/// A reason as a page shows it (times formatted by the page).
pub struct ReasonLine {
    pub name: String,
    pub slug: String,
    pub by_default: bool,
    pub via: Vec<ViaLine>,
}

pub struct ViaLine {
    pub group_id: String,
    pub group_name: String,
    pub member_since: String,
    pub mapped_since: String,
    pub request: Option<RequestLine>,
}

/// The request that added a membership: its log id (for the inspector), what it was, when.
pub struct RequestLine {
    pub id: i64,
    pub method: String,
    pub path: String,
    pub at: String,
    pub summary: Option<String>,
}

impl Reason {
    pub fn line(self, when: impl Fn(&NaiveDateTime) -> String) -> ReasonLine {
        ReasonLine {
            name: self.name,
            slug: self.slug,
            by_default: self.by_default,
            via: self
                .via
                .into_iter()
                .map(|v| ViaLine {
                    member_since: when(&v.member_since),
                    mapped_since: when(&v.mapped_since),
                    request: v.request.map(|r| RequestLine {
                        at: when(&r.at),
                        id: r.id,
                        method: r.method,
                        path: r.path,
                        summary: r.change_summary,
                    }),
                    group_id: v.group_id,
                    group_name: v.group_name,
                })
                .collect(),
        }
    }
}
