//! Roster: self-hosted SCIM 2.0 onboarding for B2B SaaS vendors.
//!
//! - `scim`: the protocol core (pure); `db`: storage on SQLite or PostgreSQL;
//! - `scim_endpoint`: the SCIM HTTP surface; `owner` and `portal`: the HTML surfaces;
//! - `auth`: secrets, sessions, CSRF; `app`: wiring; `cli`: the command line.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod app;
pub mod assets;
pub mod at_rest;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod events;
pub mod loggable;
pub mod nul_guard;
pub mod owner;
pub mod pages;
pub mod portal;
pub mod scim;
pub mod scim_endpoint;
