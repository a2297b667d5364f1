//! Roles from groups, beyond storage (`db::roles`): applying changes that reach many users
//! (`changes`), what a mapping change would do before it is applied (`preview`), and why a
//! user has each of their roles (`why`).

pub mod changes;
pub mod preview;
pub mod why;
