//! End-to-end tests: the real `cannectors` binary against real files, HTTP servers on 127.0.0.1
//! and a real PostgreSQL. One test binary, one module per area.

// Test harness code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod credentials;
mod database;
mod exactly_once;
mod filters;
mod go_files;
mod http_run;
mod late_commits;
mod pagination;
mod replicas;
mod schedule;
mod scheduler;
mod state;
mod state_files;
mod state_postgres;
mod support;
mod validate;
mod windows;
