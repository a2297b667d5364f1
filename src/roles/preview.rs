//! What a change of a directory's group → role mappings would do, computed before it is
//! applied: how many users gain and lose each role ("gives 240 users the role Admin and
//! removes Billing from 12"), and a few of them by name. Nothing is written.

use std::collections::{BTreeMap, BTreeSet};

use diesel::QueryResult;

use crate::db::{DbConn, roles};

/// How many users a change gives a role to, and takes it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleShift {
    pub slug: String,
    pub name: String,
    pub gains: usize,
    pub losses: usize,
}

/// One user's effective roles before and after, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserShift {
    pub user_id: String,
    pub label: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// A change's effect on a directory's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Users whose effective roles would move.
    pub users: usize,
    /// Per role that moves, in slug order.
    pub shifts: Vec<RoleShift>,
    /// The first users (by id) whose roles would move, at most `SAMPLE`.
    pub sample: Vec<UserShift>,
}

/// Users named in a preview.
pub const SAMPLE: usize = 5;

impl Preview {
    /// "gives 240 users the role Admin and removes Billing from 12 users", or that it changes
    /// nobody's roles.
    pub fn sentence(&self) -> String {
        let users = |n: usize| format!("{n} user{}", if n == 1 { "" } else { "s" });
        let mut parts = Vec::new();
        for s in self.shifts.iter().filter(|s| s.gains > 0) {
            parts.push(format!("gives {} the role {}", users(s.gains), s.name));
        }
        for s in self.shifts.iter().filter(|s| s.losses > 0) {
            parts.push(format!("removes {} from {}", s.name, users(s.losses)));
        }
        match parts.split_last() {
            None => "This change moves no user's roles.".to_string(),
            Some((last, [])) => format!("This change {last}."),
            Some((last, rest)) => format!("This change {} and {last}.", rest.join(", ")),
        }
    }
}

/// Roles each group gives, by slug.
type GroupRoles = BTreeMap<String, BTreeSet<String>>;

/// The effect of moving from `before` to `after` mappings on the users of `memberships`
/// (user, group): only users in a group whose roles change can move.
pub fn compute(
    memberships: &[(String, String)],
    before: &GroupRoles,
    after: &GroupRoles,
    default: Option<&str>,
) -> Vec<(String, Vec<String>, Vec<String>)> {
    let changed: BTreeSet<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|g| before.get(*g) != after.get(*g))
        .collect();
    let mut groups_of: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (user, group) in memberships {
        groups_of.entry(user).or_default().push(group);
    }
    let effective = |mapping: &GroupRoles, groups: &[&String]| -> Vec<String> {
        let given: BTreeSet<&String> = groups
            .iter()
            .filter_map(|g| mapping.get(*g))
            .flatten()
            .collect();
        match (given.is_empty(), default) {
            (true, Some(d)) => vec![d.to_string()],
            _ => given.into_iter().cloned().collect(),
        }
    };
    groups_of
        .into_iter()
        .filter(|(_, groups)| groups.iter().any(|g| changed.contains(g)))
        .filter_map(|(user, groups)| {
            let (was, is) = (effective(before, &groups), effective(after, &groups));
            (was != is).then(|| (user.clone(), was, is))
        })
        .collect()
}

/// Per role, the users who gain and lose it, in slug order (roles that move only).
pub fn shifts(
    moved: &[(String, Vec<String>, Vec<String>)],
    names: &BTreeMap<String, String>,
) -> Vec<RoleShift> {
    let mut counts: BTreeMap<&String, (usize, usize)> = BTreeMap::new();
    for (_, before, after) in moved {
        for slug in after.iter().filter(|s| !before.contains(s)) {
            counts.entry(slug).or_default().0 += 1;
        }
        for slug in before.iter().filter(|s| !after.contains(s)) {
            counts.entry(slug).or_default().1 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(slug, (gains, losses))| RoleShift {
            name: names.get(slug).cloned().unwrap_or_else(|| slug.clone()),
            slug: slug.clone(),
            gains,
            losses,
        })
        .collect()
}

/// What replacing the directory's mappings with `wanted` (group id, role id) would do.
pub fn preview(
    conn: &mut DbConn,
    org_id: &str,
    directory_id: &str,
    wanted: &BTreeSet<(String, String)>,
) -> QueryResult<Preview> {
    let all = roles::list(conn, org_id)?;
    let slug_of: BTreeMap<&String, &String> = all.iter().map(|r| (&r.id, &r.slug)).collect();
    let names: BTreeMap<String, String> = all
        .iter()
        .map(|r| (r.slug.clone(), r.name.clone()))
        .collect();
    let default = all.iter().find(|r| r.is_default).map(|r| r.slug.as_str());
    let mut before = GroupRoles::new();
    for (group, slug) in roles::mappings(conn, directory_id)? {
        before.entry(group).or_default().insert(slug);
    }
    let mut after = GroupRoles::new();
    for (group, role_id) in wanted {
        if let Some(slug) = slug_of.get(role_id) {
            after
                .entry(group.clone())
                .or_default()
                .insert((*slug).clone());
        }
    }
    let groups: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let groups: Vec<&String> = groups.into_iter().collect();
    let memberships = roles::memberships_in(conn, directory_id, &groups)?;
    let moved = compute(&memberships, &before, &after, default);
    let sample_ids: Vec<String> = moved.iter().take(SAMPLE).map(|m| m.0.clone()).collect();
    let labels = crate::db::users::labels(conn, directory_id, &sample_ids)?;
    Ok(Preview {
        users: moved.len(),
        shifts: shifts(&moved, &names),
        sample: moved
            .iter()
            .take(SAMPLE)
            .map(|(id, was, is)| {
                let named = |slugs: &[String]| -> Vec<String> {
                    slugs
                        .iter()
                        .map(|s| names.get(s).cloned().unwrap_or_else(|| s.clone()))
                        .collect()
                };
                UserShift {
                    label: labels.get(id).cloned().unwrap_or_else(|| id.clone()),
                    user_id: id.clone(),
                    before: named(was),
                    after: named(is),
                }
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(pairs: &[(&str, &str)]) -> GroupRoles {
        let mut m = GroupRoles::new();
        for (g, r) in pairs {
            m.entry(g.to_string()).or_default().insert(r.to_string());
        }
        m
    }

    fn members(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(u, g)| (u.to_string(), g.to_string()))
            .collect()
    }

    #[test]
    fn only_users_of_changed_groups_move_and_the_default_fills_an_empty_set() {
        let m = members(&[
            ("ann", "admins"),
            ("bob", "admins"),
            ("bob", "billing"),
            ("cid", "billing"),
        ]);
        let before = mapping(&[("billing", "billing")]);
        let after = mapping(&[("billing", "billing"), ("admins", "admin")]);
        let moved = compute(&m, &before, &after, Some("viewer"));
        assert_eq!(
            moved,
            vec![
                ("ann".into(), vec!["viewer".into()], vec!["admin".into()]),
                (
                    "bob".into(),
                    vec!["billing".into()],
                    vec!["admin".into(), "billing".into()]
                ),
            ]
        );
        let names = BTreeMap::from([("admin".to_string(), "Admin".to_string())]);
        let shifts = shifts(&moved, &names);
        assert_eq!(
            shifts,
            vec![
                RoleShift {
                    slug: "admin".into(),
                    name: "Admin".into(),
                    gains: 2,
                    losses: 0
                },
                RoleShift {
                    slug: "viewer".into(),
                    name: "viewer".into(),
                    gains: 0,
                    losses: 1
                },
            ]
        );
    }

    #[test]
    fn a_user_whose_other_group_gives_the_same_role_does_not_move() {
        let m = members(&[("ann", "admins"), ("ann", "owners")]);
        let before = mapping(&[("admins", "admin"), ("owners", "admin")]);
        let after = mapping(&[("owners", "admin")]);
        assert!(compute(&m, &before, &after, None).is_empty());
    }

    #[test]
    fn the_sentence_names_gains_then_losses() {
        let p = Preview {
            users: 252,
            shifts: vec![
                RoleShift {
                    slug: "admin".into(),
                    name: "Admin".into(),
                    gains: 240,
                    losses: 0,
                },
                RoleShift {
                    slug: "billing".into(),
                    name: "Billing".into(),
                    gains: 0,
                    losses: 12,
                },
            ],
            sample: vec![],
        };
        assert_eq!(
            p.sentence(),
            "This change gives 240 users the role Admin and removes Billing from 12 users."
        );
        let one = Preview {
            users: 1,
            shifts: vec![RoleShift {
                slug: "a".into(),
                name: "A".into(),
                gains: 1,
                losses: 0,
            }],
            sample: vec![],
        };
        assert_eq!(one.sentence(), "This change gives 1 user the role A.");
        let none = Preview {
            users: 0,
            shifts: vec![],
            sample: vec![],
        };
        assert_eq!(none.sentence(), "This change moves no user's roles.");
    }
}
