//! Which delivery guarantee a pipeline gets, decided once from its configuration: the
//! executor takes the exactly-once path when, and only when, this says so, and `cannectors
//! validate` prints the same decision.

use std::fmt;

use cannectors_config::{Driver, OutputConfig, Pipeline, StoreKind};
use cannectors_state_postgres::DatabaseTarget;

/// What a crash (a kill, a lost node) can do to a pipeline's deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryGuarantee {
    /// Each batch's rows and its state commit are one transaction in the store's database: a
    /// crash at any point loses nothing and repeats nothing.
    ExactlyOnce {
        /// The database both are written to, without credentials.
        database: String,
    },
    /// The state is committed after the output accepted the batch: a crash between the two
    /// sends that one batch again, never loses one.
    AtLeastOnce {
        /// Why the exactly-once path does not apply, naming the setting that decides it.
        reason: String,
    },
}

impl DeliveryGuarantee {
    /// Whether batches and their state are committed together.
    pub fn is_exactly_once(&self) -> bool {
        matches!(self, DeliveryGuarantee::ExactlyOnce { .. })
    }
}

impl fmt::Display for DeliveryGuarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryGuarantee::ExactlyOnce { database } => write!(
                f,
                "exactly once: the database output writes into the state store's database \
                 ({database}), and each batch's rows and its state commit are one transaction"
            ),
            DeliveryGuarantee::AtLeastOnce { reason } => write!(
                f,
                "at least once (a crash re-sends at most the one batch in flight): {reason}"
            ),
        }
    }
}

/// The delivery guarantee of `pipeline`: exactly once for a `database` output with
/// `transaction: true` into the PostgreSQL database that holds its state store
/// (`statePersistence.store: postgres`): the same servers and ports, database, user and
/// `options`, whatever the spelling of the two connection strings (see [`DatabaseTarget`]);
/// at least once otherwise.
///
/// ```
/// let yaml = "name: orders\n\
///     input: {type: httpPolling, endpoint: 'http://127.0.0.1:9/x', statePersistence: \
///       {id: {field: id, queryParam: after}, store: postgres, connectionString: 'postgres://app:a@db/sync'}}\n\
///     output: {type: database, driver: postgres, \
///       connectionString: 'host=db user=app dbname=sync password=a', \
///       query: 'INSERT INTO orders (id) VALUES ($1)', parameters: [record.id]}\n";
/// let pipeline = cannectors_config::parse_str(yaml, "orders.yaml", &|_| None).unwrap().pipeline;
/// assert!(cannectors_runtime::delivery_guarantee(&pipeline).is_exactly_once());
/// ```
pub fn delivery_guarantee(pipeline: &Pipeline) -> DeliveryGuarantee {
    let at_least_once = |reason: String| DeliveryGuarantee::AtLeastOnce { reason };
    let output = match &pipeline.output {
        OutputConfig::Database(output) => output,
        other => {
            return at_least_once(format!(
                "the output is `{}`, which cannot take part in a transaction of the state store \
                 (only a `database` output into the store's own PostgreSQL database can)",
                output_type(other)
            ));
        }
    };
    let store = match pipeline.input.state_persistence().map(|s| &s.store) {
        Some(StoreKind::Postgres(store)) => store,
        _ => {
            return at_least_once(
                "the state is kept in a file; with `statePersistence.store: postgres` on the \
                 output's database, each batch and its state would be one transaction"
                    .to_owned(),
            );
        }
    };
    if output.connection.driver != Driver::Postgres {
        return at_least_once(format!(
            "the output writes into {}, and the state is in PostgreSQL: two databases cannot \
             share a transaction",
            output.connection.driver.name()
        ));
    }
    if !output.transaction {
        return at_least_once(
            "output.transaction is false: each row is committed on its own, not with the \
             state; remove it (true is the default) for exactly once"
                .to_owned(),
        );
    }
    // Both strings were read by loading as PostgreSQL URLs; one the driver refuses fails the
    // run anyway, and is no shared database.
    let targets = (
        DatabaseTarget::parse(&output.connection.url),
        DatabaseTarget::parse(&store.connection.url),
    );
    match targets {
        (Ok(output_target), Ok(store_target)) => match output_target.difference(&store_target) {
            None => DeliveryGuarantee::ExactlyOnce {
                database: output_target.to_string(),
            },
            Some(difference) => at_least_once(format!(
                "the output's database is not the state store's: their connection strings \
                 differ in {difference}; write the output into the store's database (same \
                 host, port, database, user and options) for exactly once"
            )),
        },
        (Err(reason), _) | (_, Err(reason)) => at_least_once(reason),
    }
}

/// The `type` of an output block, as written in the pipeline file.
fn output_type(output: &OutputConfig) -> &'static str {
    match output {
        OutputConfig::Stdout(_) => "stdout",
        OutputConfig::File(_) => "file",
        OutputConfig::HttpRequest(_) => "httpRequest",
        OutputConfig::Database(_) => "database",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(store: &str, output: &str) -> Pipeline {
        let yaml = format!(
            "name: orders\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/x', \
             statePersistence: {{id: {{field: id, queryParam: after}}{store}}}}}\noutput: {output}\n"
        );
        cannectors_config::parse_str(&yaml, "orders.yaml", &|_| None)
            .unwrap()
            .pipeline
    }

    const STORE: &str = ", store: postgres, connectionString: 'postgres://app:pw@db:5432/sync'";

    fn database(url: &str, extra: &str) -> String {
        format!(
            "{{type: database, connectionString: '{url}', query: 'INSERT INTO o (id) VALUES \
             ($1)', parameters: [record.id]{extra}}}"
        )
    }

    #[test]
    fn a_database_output_into_the_stores_database_is_exactly_once() {
        let guarantee = delivery_guarantee(&pipeline(
            STORE,
            &database("postgresql://app:other@DB/sync?sslmode=require", ""),
        ));
        assert!(guarantee.is_exactly_once(), "{guarantee}");
        assert!(
            guarantee.to_string().starts_with(
                "exactly once: the database output writes into the state store's database \
                 (postgres://app@db:5432/sync)"
            ),
            "{guarantee}"
        );
    }

    #[test]
    fn every_other_pipeline_is_at_least_once_and_says_why() {
        for (store, output, why) in [
            (STORE, "{type: stdout}", "the output is `stdout`"),
            (
                "",
                &database("postgres://app@db/sync", ""),
                "the state is kept in a file",
            ),
            (
                STORE,
                &database("sqlite://./out.db", ""),
                "the output writes into sqlite",
            ),
            (
                STORE,
                &database("postgres://app@db/sync", ", transaction: false"),
                "output.transaction is false",
            ),
            (
                STORE,
                &database("postgres://app@db/reports", ""),
                "their connection strings differ in the database name",
            ),
            (
                STORE,
                &database("postgres://app@127.0.0.1/sync", ""),
                "differ in the server (host and port)",
            ),
        ] {
            let guarantee = delivery_guarantee(&pipeline(store, output));
            let text = guarantee.to_string();
            assert!(!guarantee.is_exactly_once(), "{output}: {text}");
            assert!(
                text.starts_with(
                    "at least once (a crash re-sends at most the one batch in flight): "
                ),
                "{text}"
            );
            assert!(text.contains(why), "{output}: {text}");
        }
    }
}
