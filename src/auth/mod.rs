//! Secrets and sessions: bearer tokens and links, owner passwords, portal/owner sessions, CSRF.

pub mod password;
pub mod tokens;
