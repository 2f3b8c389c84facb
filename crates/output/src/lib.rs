//! The sinks of cannectors: where a pipeline delivers its records.
//!
//! Each `output` block of a pipeline file (docs/outputs.md) has a runtime object here that
//! implements [`cannectors_connector::Sink`]: [`StdoutSink`] and [`FileSink`] write JSON Lines,
//! [`HttpRequestSink`] sends records to an HTTP API, [`DatabaseSink`] runs a statement a record
//! in PostgreSQL or SQLite. [`build`] turns the configured block into the sink the executor
//! drives. A sink's `write` returns `Ok` only once the batch is durable at the destination
//! (flushed, fsynced, acknowledged, committed), because the executor commits the cursor right
//! after it. This crate never touches state, but in one place: on the exactly-once path,
//! [`DatabaseSink::write_committing`] writes a batch and commits the state the executor hands
//! it, through the PostgreSQL store's lease, in one transaction.
//!
//! ```
//! use cannectors_connector::Record;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("events.jsonl");
//! let yaml = format!(
//!     "name: events\ninput: {{type: httpPolling, endpoint: \"https://source.example.com\"}}\n\
//!      output: {{type: file, path: {:?}}}\n",
//!     path.display().to_string()
//! );
//! let pipeline = cannectors_config::parse_str(&yaml, "events.yaml", &|_| None).unwrap().pipeline;
//! let mut sink = cannectors_output::build(&pipeline.output).unwrap();
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! // Records are written as the source sent them, one a line.
//! let records = [r#"{"id": 1}"#, r#"{"id":2}"#].map(|text| Record::parse(text).unwrap());
//! runtime.block_on(sink.write(&records)).unwrap();
//! assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\": 1}\n{\"id\":2}\n");
//! ```

mod database;
mod file;
mod http_request;
mod json_lines;
mod stdout;

use std::fmt;
use std::path::PathBuf;

use cannectors_config::OutputConfig;
use cannectors_connector::Sink;
use cannectors_connector::http::HttpError;
use tokio::sync::watch;

pub use database::DatabaseSink;
pub use file::FileSink;
pub use http_request::HttpRequestSink;
pub use stdout::StdoutSink;

/// Builds the sink of a loaded `output` block. Its settings were checked when the pipeline was
/// loaded; what can fail here is what only the machine can tell (opening the output file,
/// setting up an HTTP client).
pub fn build(config: &OutputConfig) -> Result<Box<dyn Sink>, OutputError> {
    match config {
        OutputConfig::Stdout(stdout) => Ok(Box::new(StdoutSink::new(stdout))),
        OutputConfig::File(file) => Ok(Box::new(FileSink::open(file)?)),
        OutputConfig::HttpRequest(http) => Ok(Box::new(HttpRequestSink::new(http)?)),
        OutputConfig::Database(database) => Ok(Box::new(DatabaseSink::new(database))),
    }
}

/// Builds the sink of an `output` block for a run that `stop` may ask to stop: a sink that
/// waits before retrying (`httpRequest`) gives the wait up when it turns `true`. The other
/// sinks finish the batch they are writing, which never waits on a server's say-so.
pub fn build_stopping_on(
    config: &OutputConfig,
    stop: watch::Receiver<bool>,
) -> Result<Box<dyn Sink>, OutputError> {
    match config {
        OutputConfig::HttpRequest(http) => Ok(Box::new(HttpRequestSink::new(http)?.stop_on(stop))),
        other => build(other),
    }
}

/// Why a sink could not be built or could not deliver a batch.
///
/// Every message names what failed and on which input, and says what happens to the batch: a
/// failed `write` leaves the batch uncommitted, so the next run sends it again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A record's fields could not be read (serde_json refuses to build values nested more
    /// than 128 levels deep).
    #[error(
        "cannot read the fields of the record at position {position} of the batch (counting \
         from 0): {source}; nothing of this batch was sent, the batch is not committed"
    )]
    Fields {
        /// Position of the record in the batch.
        position: usize,
        /// What serde_json reported.
        source: serde_json::Error,
    },
    /// The blocking task that writes a batch did not finish.
    #[error(
        "the task writing the batch did not finish ({reason}); the batch is not committed and \
         is sent again by the next run"
    )]
    WriterTask {
        /// Why the task ended.
        reason: String,
    },
    /// An earlier write task was lost, and with it the writer.
    #[error("the {output} output cannot write after an earlier failed write; start the run again")]
    WriterLost {
        /// The output type.
        output: &'static str,
    },
    /// The reader of standard output went away.
    #[error(
        "standard output was closed by its reader (broken pipe) while writing {records}; \
         the batch is not committed and is sent again by the next run: keep the reader of the \
         pipeline's output running until the run ends"
    )]
    StdoutClosed {
        /// How many records the batch held.
        records: RecordCount,
    },
    /// Writing to standard output failed.
    #[error(
        "cannot write {records} to standard output: {source}; the batch is not committed and \
         is sent again by the next run"
    )]
    StdoutWrite {
        /// How many records the batch held.
        records: RecordCount,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The directory of the output file could not be created.
    #[error(
        "cannot create the directory {directory} of the output file {path}: {source}; \
         check output.path and the permissions of its directories"
    )]
    FileDirectory {
        /// The output file, as configured.
        path: PathBuf,
        /// The directory that could not be created.
        directory: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output file could not be opened.
    #[error(
        "cannot open the output file {path} for appending: {source}; check output.path and \
         that the process may write there"
    )]
    FileOpen {
        /// The output file, as configured.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The end of the output file could not be checked for a torn last line.
    #[error(
        "cannot check the end of the output file {path} for a line cut short by an interrupted \
         write: {source}; check that the process may read and write the file"
    )]
    FileRepair {
        /// The output file, as configured.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A batch could not be appended and synced.
    #[error(
        "cannot append {records} to the output file {path}: {source}; {rollback}; the batch is \
         not committed and is sent again by the next run"
    )]
    FileWrite {
        /// The output file, as configured.
        path: PathBuf,
        /// How many records the batch held.
        records: RecordCount,
        /// The I/O error of the write or the sync.
        source: std::io::Error,
        /// What became of the bytes already written, in words.
        rollback: String,
    },
    /// The database refused the connection, the statement or a record; nothing of the batch is
    /// committed when `transaction` is true.
    #[error("{source}; the batch is not committed and is sent again by the next run")]
    Database {
        /// What the database said.
        source: cannectors_database::DatabaseError,
    },
    /// The HTTP client of the `httpRequest` output could not be set up (authentication, TLS).
    #[error("output: {source}")]
    HttpClient {
        /// What the HTTP client found wrong.
        source: HttpError,
    },
    /// A templated endpoint could not be filled in from a record.
    #[error(
        "cannot fill in `{{{{record.{path}}}}}` of output.endpoint for the record at position \
         {position} (counting from 0): {problem}; nothing of this batch of {total} was sent and \
         it is not committed: make sure every record has `{path}`, for example with a filter"
    )]
    Template {
        /// Position of the record in the batch.
        position: usize,
        /// The dot path of the template.
        path: String,
        /// What is wrong with the field.
        problem: &'static str,
        /// How many records the batch held.
        total: RecordCount,
    },
    /// A request finally failed (after the client's retries); the records it carried and those
    /// after it did not reach the destination.
    #[error(
        "cannot deliver {failed} of a batch of {total} (positions count from 0): {source}; \
         not delivered: {undelivered}{partial}; the batch is not committed and is sent again by \
         the next run",
        partial = delivered_before(*delivered)
    )]
    NotDelivered {
        /// Why the request failed: method, URL without secrets, status and a body excerpt, or
        /// the network error, and the attempts made.
        source: HttpError,
        /// The records of the request that failed.
        failed: Positions,
        /// Every record that did not reach the destination.
        undelivered: Positions,
        /// How many records, from position 0, were accepted before the failure.
        delivered: usize,
        /// How many records the batch held.
        total: RecordCount,
    },
    /// A response had an accepted status but `success.expression` did not hold for it; the
    /// records of that request and those after it did not count as delivered.
    #[error(
        "cannot deliver {failed} of a batch of {total} (positions count from 0): {reason}; \
         not delivered: {undelivered}{partial}; the batch is not committed and is sent again by \
         the next run",
        partial = delivered_before(*delivered)
    )]
    Unconfirmed {
        /// The request, the status, the expression and a body excerpt.
        reason: String,
        /// The records of the request whose response was refused.
        failed: Positions,
        /// Every record that did not count as delivered.
        undelivered: Positions,
        /// How many records, from position 0, were accepted before.
        delivered: usize,
        /// How many records the batch held.
        total: RecordCount,
    },
}

fn delivered_before(delivered: usize) -> String {
    match delivered {
        0 => String::new(),
        n => format!(
            "; delivered before the failure, and so sent twice: {}",
            Positions(0..n)
        ),
    }
}

/// Positions of records in a batch, counting from 0, written as "record 3" or "records 3 to 9".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positions(pub std::ops::Range<usize>);

impl fmt::Display for Positions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let std::ops::Range { start, end } = self.0;
        if end <= start + 1 {
            write!(f, "record {start}")
        } else {
            write!(f, "records {start} to {}", end - 1)
        }
    }
}

/// A number of records, written as "1 record" or "2 records".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCount(pub usize);

impl fmt::Display for RecordCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 record"),
            n => write!(f, "{n} records"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_counts_read_as_words() {
        assert_eq!(Positions(3..4).to_string(), "record 3");
        assert_eq!(Positions(0..500).to_string(), "records 0 to 499");
        assert_eq!(RecordCount(1).to_string(), "1 record");
        assert_eq!(RecordCount(0).to_string(), "0 records");
    }

    fn output(block: &str) -> OutputConfig {
        let yaml = format!(
            "name: sinks\ninput: {{type: httpPolling, endpoint: \"https://source.example.com\"}}\n\
             output: {block}\n"
        );
        cannectors_config::parse_str(&yaml, "sinks.yaml", &|_| None)
            .unwrap()
            .pipeline
            .output
    }

    #[test]
    fn builds_a_stdout_sink() {
        assert!(build(&output("{type: stdout}")).is_ok());
    }

    #[test]
    fn builds_a_database_sink_without_connecting() {
        let config = output(
            "{type: database, connectionStringRef: \"postgres://localhost/dest\", \
             query: \"INSERT INTO dest (id) VALUES ($1)\", parameters: [record.id]}",
        );
        assert!(build(&config).is_ok());
    }
}
