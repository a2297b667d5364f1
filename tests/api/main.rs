//! Integration tests: the real app over HTTP, on SQLite and (with TEST_DATABASE_URL) Postgres.

mod api_v1;
mod at_rest;
mod auth_failures;
mod cli;
mod delivery;
mod discovery;
mod helpers;
mod pitfalls;
mod portal;
mod portal_admin;
mod providers;
mod receiver;
mod scim_errors;
mod scim_ops;
mod security;
mod seed_flow;
