//! What the tests of several cannectors crates share, so that each helper is written once:
//!
//! - [`http`]: a small HTTP/1.1 server on a loopback address that records every request and
//!   answers through a closure (plain threads: a test needs no async runtime), used by the
//!   end-to-end tests of the binary and the HTTP benchmark;
//! - [`silent`]: a TCP listener that accepts connections and never answers, as a stopped
//!   PostgreSQL does;
//! - [`credentials`]: which credentials a request received carries;
//! - [`postgres`]: the throwaway PostgreSQL that `cargo xtask pg` starts (the names of the
//!   variables it is handed over in; with the feature `postgres`, its URL and a fresh schema for
//!   each test);
//! - `tls` (feature `tls`): an HTTPS server whose certificate is self-signed, for the tests of
//!   certificate failures;
//! - `reporting` (feature `wiremock`): a wiremock responder that reports each request it
//!   answers, so that a test waits for a request instead of sleeping.
//!
//! Not published; a dev-dependency only. A helper that fails fails the test that called it,
//! with a message saying what was missing.
//!
//! ```
//! use cannectors_test_support::http::{Response, Server};
//! use std::io::{Read, Write};
//! use std::time::Duration;
//!
//! let server = Server::start(|request| match request.param("page") {
//!     Some("2") => Response::json_text("[]"),
//!     _ => Response::status(404, "no such page"),
//! });
//! let url = server.url("/items?page=2");
//! let address = url.trim_start_matches("http://").split('/').next().unwrap();
//! let mut stream = std::net::TcpStream::connect(address).unwrap();
//! write!(stream, "GET /items?page=2 HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n").unwrap();
//! assert!(server.wait_for_requests(1, Duration::from_secs(5)));
//! assert_eq!(server.requests()[0].path, "/items");
//! ```

// Helpers for tests: a failure here is the failure of the test that called it.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod credentials;
pub mod http;
pub mod postgres;
#[cfg(feature = "wiremock")]
pub mod reporting;
mod signal;
pub mod silent;
#[cfg(feature = "tls")]
pub mod tls;
