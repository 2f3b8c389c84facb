//! The `stdout` output: JSON Lines to standard output.
//!
//! A batch is encoded into one buffer and handed to standard output in one `write_all`, then
//! flushed, so that a batch is never interleaved with log lines and `write` returns only once the
//! bytes left the process. A reader that went away (a closed pipe, `| head`) is reported as an
//! error that ends the run; the Rust runtime ignores `SIGPIPE`, so it never kills the process.

use std::io::{self, Write};

use cannectors_config::StdoutOutput;
use cannectors_connector::{BoxError, BoxFuture, Record, Sink};

use crate::{OutputError, RecordCount, json_lines};

/// Writes every record as one compact JSON object a line to standard output (or, for tests and
/// embedding, to any [`Write`]).
///
/// ```
/// use cannectors_connector::{Record, Sink};
/// use cannectors_output::StdoutSink;
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let mut sink = StdoutSink::with_writer(Vec::new());
/// runtime.block_on(sink.write(&[Record::from(serde_json::json!({"id": 1}))])).unwrap();
/// assert_eq!(sink.into_writer().unwrap(), b"{\"id\":1}\n");
/// ```
#[derive(Debug)]
pub struct StdoutSink<W = io::Stdout> {
    /// `None` only if a write task was lost (a panic in the blocking pool).
    writer: Option<W>,
    buffer: Vec<u8>,
}

impl StdoutSink<io::Stdout> {
    /// A sink writing to the standard output of the process.
    pub fn new(_config: &StdoutOutput) -> StdoutSink<io::Stdout> {
        StdoutSink::with_writer(io::stdout())
    }
}

impl<W: Write + Send + 'static> StdoutSink<W> {
    /// A sink writing JSON Lines to `writer` instead of standard output.
    pub fn with_writer(writer: W) -> StdoutSink<W> {
        StdoutSink {
            writer: Some(writer),
            buffer: Vec::new(),
        }
    }

    /// The writer, once no write is in flight; `None` if an earlier write task was lost.
    pub fn into_writer(self) -> Option<W> {
        self.writer
    }

    async fn write_batch(&mut self, records: &[Record]) -> Result<(), OutputError> {
        if records.is_empty() {
            return Ok(());
        }
        let writer = self
            .writer
            .take()
            .ok_or(OutputError::WriterLost { output: "stdout" })?;
        self.buffer.clear();
        json_lines::encode(records, &mut self.buffer);
        let buffer = std::mem::take(&mut self.buffer);
        let ((writer, buffer), outcome) =
            json_lines::off_thread((writer, buffer), |(writer, buffer)| {
                writer.write_all(buffer).and_then(|()| writer.flush())
            })
            .await?;
        self.writer = Some(writer);
        self.buffer = buffer;
        outcome.map_err(|source| match source.kind() {
            io::ErrorKind::BrokenPipe => OutputError::StdoutClosed {
                records: RecordCount(records.len()),
            },
            _ => OutputError::StdoutWrite {
                records: RecordCount(records.len()),
                source,
            },
        })
    }
}

impl<W: Write + Send + 'static> Sink for StdoutSink<W> {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { self.write_batch(records).await.map_err(BoxError::from) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn writes_each_batch_as_json_lines_in_order() {
        let mut sink = StdoutSink::with_writer(Vec::new());
        runtime().block_on(async {
            sink.write(&[
                Record::from(json!({"id": 1})),
                Record::from(json!({"id": 2, "tags": ["a"]})),
            ])
            .await
            .unwrap();
            sink.write(&[]).await.unwrap();
            sink.write(&[Record::from(json!({"id": 3, "text": "line\nbreak"}))])
                .await
                .unwrap();
        });
        assert_eq!(
            String::from_utf8(sink.into_writer().unwrap()).unwrap(),
            "{\"id\":1}\n{\"id\":2,\"tags\":[\"a\"]}\n{\"id\":3,\"text\":\"line\\nbreak\"}\n"
        );
    }

    #[test]
    fn reports_a_closed_pipe_as_a_clear_error() {
        let (reader, writer) = io::pipe().unwrap();
        drop(reader);
        let mut sink = StdoutSink::with_writer(writer);
        let error = runtime()
            .block_on(sink.write(&[
                Record::from(json!({"id": 1})),
                Record::from(json!({"id": 2})),
            ]))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "standard output was closed by its reader (broken pipe) while writing 2 records; \
             the batch is not committed and is sent again by the next run: keep the reader of \
             the pipeline's output running until the run ends"
        );
    }

    #[test]
    fn reports_other_write_failures_with_their_cause() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::StorageFull))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = StdoutSink::with_writer(Full);
        let error = runtime()
            .block_on(sink.write(&[Record::from(json!({"id": 1}))]))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot write 1 record to standard output: no storage space; \
             the batch is not committed and is sent again by the next run"
        );
    }
}
