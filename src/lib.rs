//! Roster: self-hosted SCIM 2.0 onboarding for B2B SaaS vendors.
//!
//! - `scim`: the protocol core (pure); `db`: storage on SQLite or PostgreSQL; `domain`: typed
//!   values stored as text;
//! - `providers`, `explain`, `events`: what the surfaces share (provider guides, the request
//!   inspector's explanations, webhook payloads and delivery);
//! - `scim_endpoint`: the SCIM HTTP surface; `api`: the JSON API; `owner` and `portal`: the
//!   HTML surfaces, with `pages` their common parts;
//! - `auth`: secrets, sessions, CSRF; `state`: what handlers share; `router`: the routes;
//!   `app`: the server and its middleware (`request_log`: one line per request; `log_format`:
//!   text or JSON lines); `metrics`: Prometheus metrics and `/metrics`;
//!   `cli`: the command line; `alerts`: freshness and drift alerts about directories.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod alerts;
pub mod api;
pub mod app;
pub mod assets;
pub mod at_rest;
pub mod auth;
pub mod brake;
pub mod branding;
pub mod cli;
pub mod config;
pub mod custom_attributes;
pub mod db;
pub mod domain;
pub mod embed;
pub mod events;
pub mod explain;
pub mod log_format;
pub mod loggable;
pub mod metrics;
pub mod nul_guard;
pub mod owner;
pub mod pages;
pub mod portal;
pub mod providers;
pub mod reconcile;
pub mod request_log;
pub mod roles;
pub mod router;
pub mod scim;
pub mod scim_endpoint;
pub mod state;
