//! Roster: self-hosted SCIM 2.0 onboarding for B2B SaaS vendors.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::await_holding_lock)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod auth;
pub mod db;
pub mod scim;
