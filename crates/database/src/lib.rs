//! Database access for cannectors, shared by the `database` input and the `database` output so
//! that both ends of a pipeline connect, bind and convert values the same way.
//!
//! [`Database`] connects to PostgreSQL (tokio-postgres, TLS through rustls when the URL asks for
//! it) or SQLite (bundled, its calls on the blocking pool), prepares statements, binds JSON
//! values as the types the database expects for each placeholder, decodes rows straight from
//! PostgreSQL's binary values into JSON records, and writes batches in a transaction.
//! Every wait is bounded: connecting by the connection string's `connect_timeout` (default 30 s)
//! over TCP, TLS and login together, every statement by
//! [`ConnectionSettings::statement_timeout`], past which the statement is also cancelled at the
//! database. docs/databases.md has the type mapping and the timeouts.
//!
//! ```
//! use cannectors_database::{Access, ConnectionSettings, Database};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let database = Database::connect(ConnectionSettings {
//!     key: "input",
//!     url: "sqlite::memory:",
//!     driver: cannectors_config::Driver::Sqlite,
//!     access: Access::Read,
//!     statement_timeout: std::time::Duration::from_secs(30),
//! })
//! .await?;
//! let statement = database.prepare("SELECT 1 AS id").await?;
//! assert_eq!(statement.placeholders(), 0);
//! # Ok(())
//! # }
//! ```

mod database;
mod error;
mod postgres;
mod sqlite;

pub use database::{
    Access, ConnectionSettings, Database, Decoded, Refusals, RefusedRow, Statement,
};
pub use error::DatabaseError;
pub use postgres::decode::CursorColumns;
