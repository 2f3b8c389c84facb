//! The store's tables, created and upgraded by the program itself.
//!
//! `cannectors_schema_version` holds one row per component (`state` here) with the version of
//! its tables; [`MIGRATIONS`] brings them from one version to the next. Every process that
//! connects runs the missing steps in one transaction under a transaction-level advisory lock,
//! so that processes starting together wait for each other instead of creating the same table
//! twice; the lock ends with the transaction, nothing stays on the connection.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::connection::Failure;

/// The table of pipeline states and leases.
pub(crate) const STATE_TABLE: &str = "cannectors_state";

/// The row of `cannectors_schema_version` this crate owns.
const COMPONENT: &str = "state";

/// The key of the advisory lock that serializes migrations (any constant, the same in every
/// version of the program: "cannectors" in ASCII, truncated to 8 bytes).
const MIGRATION_LOCK: i64 = 0x6361_6e6e_6563_746f;

/// Step `n` brings the tables from version `n` to version `n + 1`.
///
/// `state` is the state exactly as the state crate encodes it (`NULL` until a first commit);
/// `owner`, `lease_until` and `epoch` are the lease, `lease_until` `NULL` once released;
/// `last_tick` is the latest schedule tick a lease was taken for (`NULL` when none was), so
/// that the processes sharing a schedule run each tick once.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE cannectors_state (
        pipeline text PRIMARY KEY,
        state jsonb,
        owner text,
        lease_until timestamptz,
        epoch bigint NOT NULL DEFAULT 0,
        updated_at timestamptz
    )",
    "ALTER TABLE cannectors_state ADD COLUMN last_tick timestamptz",
];

/// The version of the tables this program writes.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Creates the tables, or upgrades them to [`VERSION`]; refuses tables of a newer version.
/// The server's notices ("already exists, skipping") are silenced for the transaction only.
pub(crate) async fn migrate(client: &Client) -> Result<(), Failure> {
    let outcome = migrate_in_transaction(client).await;
    let end = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    // A rollback that fails leaves nothing behind: the connection is dropped with the error.
    let ended = client.batch_execute(end).await;
    outcome?;
    ended.map_err(Failure::from)
}

async fn migrate_in_transaction(client: &Client) -> Result<(), Failure> {
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL client_min_messages TO warning; \
             SELECT pg_advisory_xact_lock({MIGRATION_LOCK}); \
             CREATE TABLE IF NOT EXISTS cannectors_schema_version (
                component text PRIMARY KEY,
                version bigint NOT NULL,
                migrated_at timestamptz NOT NULL DEFAULT now()
             )"
        ))
        .await?;
    let found: i64 = client
        .query_typed(
            "SELECT version FROM cannectors_schema_version WHERE component = $1",
            &[(&COMPONENT, Type::TEXT)],
        )
        .await?
        .first()
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or(0);
    if found > VERSION {
        return Err(Failure::SchemaTooNew { found });
    }
    if found == VERSION {
        return Ok(());
    }
    let pending = usize::try_from(found).unwrap_or(0);
    for step in &MIGRATIONS[pending..] {
        client.batch_execute(step).await?;
    }
    client
        .query_typed(
            "INSERT INTO cannectors_schema_version (component, version) VALUES ($1, $2) \
             ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, migrated_at = now()",
            &[(&COMPONENT, Type::TEXT), (&VERSION, Type::INT8)],
        )
        .await?;
    tracing::info!("created the state tables (schema version {VERSION})");
    Ok(())
}
