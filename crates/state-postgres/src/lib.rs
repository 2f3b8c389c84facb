//! The state of cannectors pipelines in PostgreSQL, shared by several processes.
//!
//! [`PgStore`] is the [`StateStore`](cannectors_state::StateStore) of one pipeline in the table
//! `cannectors_state`: the same state the file store keeps (encoded by the state crate, in a
//! `jsonb` column), and, instead of the file store's OS lock, a lease with a fencing epoch.
//! Several processes running the same pipelines compete for each pipeline's lease; the one that
//! holds it runs the pipeline and renews the lease in the background; when it dies, another
//! takes the lease once it expired, with the next epoch, and a commit still made under the old
//! epoch is refused ([`StateError::Fenced`](cannectors_state::StateError::Fenced)).
//!
//! A database output writing into the store's own database commits a batch and its state in
//! one transaction: [`PgLease::commit_in`] writes the state inside a transaction of the
//! caller's, with the same epoch check, and [`DatabaseTarget`] tells whether two connection
//! strings reach the same database.
//!
//! The program creates the tables itself, and upgrades them when a newer version changes them
//! (the version is in `cannectors_schema_version`). Time is the database's: leases expire by
//! `now()` on the server, so the processes' clocks need not agree.
//!
//! ```no_run
//! use cannectors_state::{StateError, StateStore};
//! use cannectors_state_postgres::PgStore;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::new("events-sync", "postgres://app:secret@127.0.0.1:5432/app")?;
//! match store.lock().await {
//!     Ok(mut lock) => {
//!         let state = store.load().await?.unwrap_or_default();
//!         // ... deliver a batch, advance `state` ...
//!         lock.commit(&state).await?; // refused once another process took the lease over
//!         lock.release().await?; // another process may take it at once
//!     }
//!     Err(StateError::Held { owner, until, .. }) => println!("held by {owner} until {until}"),
//!     Err(other) => return Err(other.into()),
//! }
//! # Ok(())
//! # }
//! ```

mod connection;
mod schema;
mod store;
mod target;
pub mod tls;

pub use connection::describe;
pub use store::{DEFAULT_LEASE_TTL, MIN_WAIT, PgLease, PgStore};
pub use target::DatabaseTarget;
