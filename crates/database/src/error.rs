//! What can go wrong between cannectors and a database, said for the person at the terminal.
//!
//! `key` fields name the pipeline block the setting came from (`input` or `output`) so that a
//! message points at the line to change; `target` is the database as a URL without its password.

/// Why a database could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The connection string is not one the driver can use.
    #[error("{key}.connectionString: {reason}")]
    BadConnectionString {
        /// `input` or `output`.
        key: &'static str,
        /// What is wrong, without the password.
        reason: String,
    },
    /// The server or file could not be reached.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// The database, without its password.
        target: String,
        /// The driver's reason.
        reason: String,
    },
    /// The database rejected the query before running it.
    #[error("{key}.query does not prepare on {target}: {reason}")]
    Prepare {
        /// `input` or `output`.
        key: &'static str,
        /// The database, without its password.
        target: String,
        /// The database's message.
        reason: String,
    },
    /// The query's placeholders and the bound values do not match.
    #[error(
        "{key}.parameters: the query has {placeholders} placeholder(s) but {given} value(s) are \
         bound ({bound}); make {key}.parameters list one value for each of $1..${placeholders}"
    )]
    ParameterCount {
        /// `input` or `output`.
        key: &'static str,
        /// Placeholders in the query.
        placeholders: usize,
        /// Values bound.
        given: usize,
        /// What is bound, e.g. `state.timestamp, state.id`.
        bound: String,
    },
    /// A value cannot be converted to the type of its placeholder.
    #[error("{key}.parameters: cannot bind {value} ({expr}) to ${placeholder} as {ty}: {reason}")]
    Bind {
        /// `input` or `output`.
        key: &'static str,
        /// The placeholder number, from 1.
        placeholder: usize,
        /// The expression that produced the value.
        expr: String,
        /// The value, as JSON.
        value: String,
        /// The database type of the placeholder.
        ty: String,
        /// Why it does not convert.
        reason: String,
    },
    /// A placeholder has a type no value converts to.
    #[error(
        "{key}.query: ${placeholder} has the type {ty}, which cannectors cannot bind; cast the \
         placeholder in the query to a supported type, e.g. ${placeholder}::text"
    )]
    UnsupportedParameterType {
        /// `input` or `output`.
        key: &'static str,
        /// The placeholder number, from 1.
        placeholder: usize,
        /// The database type.
        ty: String,
    },
    /// A result column has a type that has no JSON form here.
    #[error(
        "{key}.query: column `{column}` has the type {ty}, which cannectors cannot read; cast it \
         in the query, e.g. {column}::text"
    )]
    UnsupportedColumn {
        /// `input` or `output`.
        key: &'static str,
        /// The column name.
        column: String,
        /// The database type.
        ty: String,
    },
    /// The query failed while running.
    #[error("{key}.query failed on {target}: {reason}")]
    Query {
        /// `input` or `output`.
        key: &'static str,
        /// The database, without its password.
        target: String,
        /// The database's message.
        reason: String,
    },
    /// The database did not finish a statement within the statement timeout; it was asked
    /// to stop it.
    #[error(
        "{action} did not finish on {target} within {key}.statementTimeoutMs \
         ({timeout_ms} ms), so it was cancelled; if the database is up and the statement is \
         only slow, raise {key}.statementTimeoutMs, otherwise check that the server is \
         answering and that no other session holds a lock the statement waits for"
    )]
    StatementTimeout {
        /// `input` or `output`.
        key: &'static str,
        /// The database, without its password.
        target: String,
        /// What was running, e.g. `input.query` or `writing records 0 to 255 of the batch`.
        action: String,
        /// The statement timeout, in milliseconds.
        timeout_ms: u64,
    },
    /// A value of a result row could not be decoded.
    #[error("{key}.query: cannot read column `{column}` ({ty}) of row {row}: {reason}")]
    Decode {
        /// `input` or `output`.
        key: &'static str,
        /// The column name.
        column: String,
        /// The database type.
        ty: String,
        /// The row position in the result, from 0.
        row: usize,
        /// What is wrong with the value.
        reason: String,
    },
    /// A record of a batch could not be written; the batch was rolled back when in a
    /// transaction.
    #[error(
        "record {position} of the batch could not be written to {target}{rolled_back}: {reason}",
        rolled_back = if *.rolled_back {
            " (the whole batch was rolled back; nothing of it is committed)"
        } else {
            " (transaction: false, so the records before it stay written)"
        }
    )]
    Write {
        /// The record's position in the batch, from 0.
        position: usize,
        /// The database, without its password.
        target: String,
        /// Whether the batch was rolled back.
        rolled_back: bool,
        /// The database's message (SQLSTATE, message, detail).
        reason: String,
    },
    /// A transaction could not be started or committed.
    #[error("cannot {action} the transaction on {target}: {reason}")]
    Transaction {
        /// `begin`, `commit` or `roll back`.
        action: &'static str,
        /// The database, without its password.
        target: String,
        /// The database's message.
        reason: String,
    },
    /// The pipeline's state could not be committed in the batch's transaction (the store
    /// fenced this process, or refused the statement): the batch was rolled back with it.
    #[error("{source}; the batch's rows were rolled back with the state")]
    StateCommit {
        /// What the state store reported.
        source: cannectors_state::StateError,
    },
    /// A batch and the pipeline's state can be written in one transaction only in PostgreSQL.
    #[error(
        "the batch and the pipeline's state can be written in one transaction only into \
         PostgreSQL, not into {target}"
    )]
    NotTransactional {
        /// The database, without its password.
        target: String,
    },
    /// A blocking SQLite task did not finish.
    #[error("the database task for {target} stopped before finishing: {reason}")]
    Task {
        /// The database.
        target: String,
        /// Why the task stopped.
        reason: String,
    },
    /// The rows of a result do not hold the cursor fields as configured.
    #[error("input: {0}")]
    CursorValues(cannectors_state::CursorError),
    /// The input cannot go on: it failed earlier in the run, a query was cancelled half-way,
    /// or the query run ahead in the background stopped without an answer.
    #[error("input: {0}")]
    Prefetch(#[from] cannectors_connector::PrefetchError),
}
