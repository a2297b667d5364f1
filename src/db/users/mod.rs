//! A directory's users. This module holds the stored row (`UserRow`, and `ListedUser`, what a
//! listing renders); the functions are grouped by who uses them:
//! - `scim`: the SCIM endpoint's reads (a user, a lookup, a filtered page);
//! - `write`: SCIM changes: `NewUser` and `insert` (the writer inserts a batch's new users
//!   together), `record_created`, `update`, `delete`;
//! - `views`: the portal's org-wide views and the directory API;
//! - `pages`: bookmarks for paging a directory's users in id order;
//! - `search_index`: SQLite's trigram index behind the portal's search.
//!
//! Memberships (a user's groups, a group's members) are in `db::memberships`.

pub mod pages;
mod scim;
pub mod search_index;
mod views;
mod write;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::scim_users;

pub use scim::{SortColumn, UserFilter, chunk_after, get, get_many, id_by_user_name, search};
pub use views::{
    ApiFilter, ViewQuery, ViewSort, api_get, api_list, labels, org_get, org_get_deleted, org_page,
};
pub use write::{
    NewUser, delete, insert, record_created, record_created_with, record_created_with_roles,
    undelete, update,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = scim_users)]
pub struct UserRow {
    pub id: String,
    pub directory_id: String,
    pub user_name: String,
    pub user_name_norm: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub display_name: Option<String>,
    pub display_name_norm: Option<String>,
    pub full_name: Option<String>,
    pub full_name_norm: Option<String>,
    pub primary_email: Option<String>,
    pub resource: String,
    pub version: i64,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

/// What a SCIM listing renders of a user: its stored document and meta. A page of 100
/// decodes these five columns instead of UserRow's sixteen (decoding and allocating those was
/// most of a page's query time).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scim_users)]
pub struct ListedUser {
    pub id: String,
    pub resource: String,
    pub version: i64,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = super::DbTimestamp)]
    pub updated_at: NaiveDateTime,
}

impl From<UserRow> for ListedUser {
    fn from(row: UserRow) -> Self {
        ListedUser {
            id: row.id,
            resource: row.resource,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl UserRow {
    /// The best human name: displayName, else given + family name, else userName.
    pub fn label(&self) -> String {
        [self.display_name.as_deref(), self.full_name.as_deref()]
            .into_iter()
            .flatten()
            .find(|d| !d.trim().is_empty())
            .unwrap_or(&self.user_name)
            .to_string()
    }
}
