//! Integration tests: the real app over HTTP, on SQLite and (with TEST_DATABASE_URL) Postgres.
//!
//! Each test that holds on every backend is written once, as `async fn name(backend: Backend)`
//! under `backend_tests!(name);`, and runs as `name::sqlite` and `name::postgres` (see
//! `helpers`): `cargo test --test api name::postgres` reruns one backend's failure. Without
//! TEST_DATABASE_URL the Postgres tests pass saying they skipped, or fail when
//! ROSTER_REQUIRE_POSTGRES=1.

mod alerts;
mod api_v1;
mod at_rest;
mod attributes;
mod auth_failures;
mod brake;
mod branding;
mod cli;
mod delivery;
mod discovery;
mod embed;
mod helpers;
mod json_logs;
mod member_steps;
mod metrics;
mod owner_list;
mod pitfalls;
mod portal;
mod portal_admin;
mod portal_attributes;
mod providers;
mod realtime;
mod receiver;
mod reconcile;
mod roles;
mod roles_pages;
mod scale_out;
mod scim_errors;
mod scim_ops;
mod security;
mod seed_flow;
