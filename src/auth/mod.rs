//! Secrets and sessions: bearer tokens and links, owner passwords, portal/owner sessions, CSRF.

pub mod csrf;
pub mod live_session;
pub mod password;
pub mod session;
pub mod throttle;
pub mod tokens;
