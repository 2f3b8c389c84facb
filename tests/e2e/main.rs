//! End-to-end tests: the real `cannectors` binary against real files, HTTP servers on 127.0.0.1
//! and a real PostgreSQL. One test binary, one module per area.

mod database;
mod http_run;
mod schedule;
mod scheduler;
mod state;
mod support;
mod validate;
