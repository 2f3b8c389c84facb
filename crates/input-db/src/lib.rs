//! The `database` input of cannectors.
//!
//! [`DatabaseSource`] runs a pipeline's query against PostgreSQL (tokio-postgres, TLS through
//! rustls when the URL asks for it) or SQLite (bundled), binds the committed cursors to
//! `$1..$n` as the types the database expects, and yields the rows as JSON records, one batch
//! per execution, until the query returns nothing new. The connections, parameter binding and
//! row decoding are `cannectors-database`'s, shared with the `database` output.
//! docs/databases.md has the type mapping and the keyset pattern.
//!
//! ```
//! use cannectors_connector::Source;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let yaml = r#"
//! name: people
//! input:
//!   type: database
//!   connectionString: "sqlite::memory:"
//!   query: SELECT 1 AS id, 'first' AS name
//! output: {type: stdout}
//! "#;
//! let pipeline = cannectors_config::parse_str(yaml, "people.yaml", &|_| None)?.pipeline;
//! let cannectors_config::InputConfig::Database(input) = &pipeline.input else { unreachable!() };
//! // No state and no cursor: a full read, delivered as one batch.
//! let mut source = cannectors_input_db::DatabaseSource::connect(input, None).await?;
//! let batch = source.next_batch().await?.expect("one batch");
//! assert_eq!(batch.records[0].json(), r#"{"id":1,"name":"first"}"#);
//! assert_eq!(batch.records.len(), 1);
//! assert!(source.next_batch().await?.is_none());
//! # Ok(())
//! # }
//! ```

mod source;

pub use cannectors_database::DatabaseError;
pub use source::DatabaseSource;
