//! The `file` output: JSON Lines appended to one file, durable before every state commit.
//!
//! The file is opened once per sink. Each batch is encoded into one reused buffer and appended
//! with a single `write_all`, then `sync_data`, and only then does `write` return `Ok`: this is
//! what makes the executor's state commit after it safe.
//!
//! Delivery is at-least-once: a batch whose write failed, or that was in flight when the process
//! died, is sent again by the next run. Two measures keep the file a clean sequence of lines:
//! a failed write is rolled back (the file is truncated to its length before the batch), and on
//! opening, a torn last line left by a process killed mid-write is removed (its batch was never
//! committed, so it comes again). Both rely on the file having one writer: the run lock of the
//! pipeline guarantees it for one pipeline, and two pipelines must not share an output file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cannectors_config::FileOutput;
use cannectors_connector::{BoxError, BoxFuture, Record, Sink};

use crate::{OutputError, RecordCount, json_lines};

/// Appends every record as one compact JSON object a line to a file, flushed and fsynced before
/// `write` returns.
///
/// ```
/// use cannectors_connector::{Record, Sink};
/// use cannectors_output::FileSink;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("out/events.jsonl");
/// let mut sink = FileSink::open_path(&path).unwrap();
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(sink.write(&[Record::from(serde_json::json!({"id": 1}))])).unwrap();
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\":1}\n");
/// ```
#[derive(Debug)]
pub struct FileSink {
    /// The path as configured, for messages.
    path: PathBuf,
    /// Shared with the blocking task of the batch in flight.
    file: Arc<File>,
    buffer: Vec<u8>,
}

impl FileSink {
    /// Opens the file of a `file` output; see [`FileSink::open_path`].
    pub fn open(config: &FileOutput) -> Result<FileSink, OutputError> {
        FileSink::open_path(&config.path)
    }

    /// Opens `path` for appending, creating the file and its parent directories if missing, and
    /// removes a torn last line left by an interrupted earlier run.
    pub fn open_path(path: &Path) -> Result<FileSink, OutputError> {
        let path = path.to_owned();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| OutputError::FileDirectory {
                path: path.clone(),
                directory: parent.to_owned(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|source| OutputError::FileOpen {
                path: path.clone(),
                source,
            })?;
        repair_torn_tail(&file, &path).map_err(|source| OutputError::FileRepair {
            path: path.clone(),
            source,
        })?;
        Ok(FileSink {
            path,
            file: Arc::new(file),
            buffer: Vec::new(),
        })
    }

    async fn write_batch(&mut self, records: &[Record]) -> Result<(), OutputError> {
        if records.is_empty() {
            return Ok(());
        }
        self.buffer.clear();
        json_lines::encode(records, &mut self.buffer);
        let state = (Arc::clone(&self.file), std::mem::take(&mut self.buffer));
        let ((_, buffer), outcome) =
            json_lines::off_thread(state, |(file, buffer)| append_durably(file, buffer)).await?;
        self.buffer = buffer;
        outcome.map_err(|failure| write_error(&self.path, records.len(), failure))
    }
}

fn write_error(path: &Path, records: usize, failure: AppendFailure) -> OutputError {
    OutputError::FileWrite {
        path: path.to_owned(),
        records: RecordCount(records),
        source: failure.error,
        rollback: match failure.rollback {
            Ok(()) => "the file was truncated back to its length before this batch".to_owned(),
            Err(error) => format!(
                "the file could not be truncated back to its length before this batch ({error}), \
                 so it may end with a partial line"
            ),
        },
    }
}

impl Sink for FileSink {
    fn write<'a>(&'a mut self, records: &'a [Record]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { self.write_batch(records).await.map_err(BoxError::from) })
    }
}

/// A failed append and how undoing it went.
struct AppendFailure {
    error: io::Error,
    rollback: io::Result<()>,
}

/// Appends `bytes` and makes them durable, or leaves the file as it was before.
fn append_durably(file: &File, bytes: &[u8]) -> Result<(), AppendFailure> {
    append_or_roll_back(file, |mut appender| {
        appender
            .write_all(bytes)
            .and_then(|()| appender.sync_data())
    })
}

/// Runs `append` and, if it fails, truncates the file to its length before it.
///
/// A failed sync may leave the appended bytes in the page cache, neither durable nor gone: the
/// batch is rolled back then too, so that the file only ever grows by whole committed batches.
fn append_or_roll_back(
    file: &File,
    append: impl FnOnce(&File) -> io::Result<()>,
) -> Result<(), AppendFailure> {
    let before = file
        .metadata()
        .map_err(|error| AppendFailure {
            error,
            rollback: Ok(()),
        })?
        .len();
    append(file).map_err(|error| AppendFailure {
        error,
        rollback: file.set_len(before).and_then(|()| file.sync_data()),
    })
}

/// Size of the chunks read backwards while looking for the start of the last line.
const TAIL_CHUNK: u64 = 64 * 1024;

/// A file whose last byte is not `\n` was cut short by a process killed mid-write (or written by
/// something else). A cut JSON document is removed: its batch was not committed and is sent
/// again. Anything else (a complete record that only lacks its newline, or text that is not
/// JSON) is kept and ended with a newline, so that the next record starts a line of its own.
fn repair_torn_tail(file: &File, path: &Path) -> io::Result<()> {
    let length = file.metadata()?.len();
    if length == 0 {
        return Ok(());
    }
    let mut reader = file;
    let mut last = [0u8; 1];
    reader.seek(SeekFrom::Start(length - 1))?;
    reader.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }

    let mut line_start = 0;
    let mut end = length;
    let mut fragment = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(TAIL_CHUNK);
        // At most TAIL_CHUNK bytes, so the conversion cannot truncate.
        let size = (end - start) as usize;
        let mut chunk = vec![0u8; size];
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&fragment);
        fragment = chunk;
        if let Some(newline) = fragment[..size].iter().rposition(|&byte| byte == b'\n') {
            fragment.drain(..=newline);
            line_start = start + newline as u64 + 1;
            break;
        }
        end = start;
    }

    match serde_json::from_slice::<serde_json::Value>(&fragment) {
        Err(error) if error.is_eof() => {
            file.set_len(line_start)?;
            file.sync_data()?;
            tracing::warn!(
                path = %path.display(),
                bytes = length - line_start,
                "removed a torn last line left by an interrupted write; its batch was not \
                 committed and is sent again"
            );
        }
        _ => {
            let mut appender = file;
            appender.write_all(b"\n")?;
            file.sync_data()?;
            tracing::warn!(
                path = %path.display(),
                "the output file did not end with a newline; added one so that new records \
                 start on a line of their own"
            );
        }
    }
    Ok(())
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
    fn appends_batches_as_json_lines_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut sink = FileSink::open_path(&path).unwrap();
        runtime().block_on(async {
            sink.write(&[
                Record::from(json!({"id": 1, "name": "é \"q\""})),
                Record::from(json!({"id": 2})),
            ])
            .await
            .unwrap();
            sink.write(&[]).await.unwrap();
            sink.write(&[Record::from(
                json!({"id": 3, "n": {"a": [1.5, null, true]}}),
            )])
            .await
            .unwrap();
        });
        assert_eq!(
            std::fs::read(&path).unwrap(),
            "{\"id\":1,\"name\":\"é \\\"q\\\"\"}\n{\"id\":2}\n{\"id\":3,\"n\":{\"a\":[1.5,null,true]}}\n"
                .as_bytes()
        );
    }

    #[test]
    fn appends_to_what_an_earlier_sink_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"id\":0}\n").unwrap();
        let runtime = runtime();
        for id in 1..=2 {
            let mut sink = FileSink::open_path(&path).unwrap();
            runtime
                .block_on(sink.write(&[Record::from(json!({ "id": id }))]))
                .unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":0}\n{\"id\":1}\n{\"id\":2}\n"
        );
    }

    #[test]
    fn creates_missing_parent_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c/events.jsonl");
        let mut sink = FileSink::open_path(&path).unwrap();
        runtime()
            .block_on(sink.write(&[Record::from(json!({"id": 1}))]))
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\":1}\n");
    }

    #[test]
    fn resolves_a_relative_path_against_the_working_directory() {
        // A directory made in the working directory (the crate directory under `cargo test`)
        // and removed on drop; only its name goes into the configured path.
        let here = tempfile::Builder::new()
            .prefix("output-test-")
            .tempdir_in(".")
            .unwrap();
        let relative = Path::new(here.path().file_name().unwrap()).join("out/events.jsonl");
        assert!(relative.is_relative());
        let mut sink = FileSink::open_path(&relative).unwrap();
        runtime()
            .block_on(sink.write(&[Record::from(json!({"id": 1}))]))
            .unwrap();
        let written = std::env::current_dir().unwrap().join(&relative);
        assert_eq!(std::fs::read_to_string(written).unwrap(), "{\"id\":1}\n");
    }

    #[test]
    fn names_the_path_when_the_parent_directory_cannot_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let path = blocker.join("events.jsonl");
        let error = FileSink::open_path(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot create the directory {} of the output file {}: File exists (os error 17); \
                 check output.path and the permissions of its directories",
                blocker.display(),
                path.display()
            )
        );
    }

    #[test]
    fn names_the_path_when_the_file_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("is-a-directory");
        std::fs::create_dir(&path).unwrap();
        let error = FileSink::open_path(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot open the output file {} for appending: Is a directory (os error 21); \
                 check output.path and that the process may write there",
                path.display()
            )
        );
    }

    #[test]
    fn removes_a_torn_last_line_left_by_an_interrupted_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"id\":1}\n{\"id\":2}\n{\"id\":3,\"na").unwrap();
        let mut sink = FileSink::open_path(&path).unwrap();
        runtime()
            .block_on(sink.write(&[Record::from(json!({"id": 3}))]))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n"
        );
    }

    #[test]
    fn removes_a_torn_line_longer_than_one_read_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let long = "x".repeat(3 * TAIL_CHUNK as usize);
        std::fs::write(&path, format!("{{\"id\":1}}\n{{\"id\":2,\"text\":\"{long}")).unwrap();
        FileSink::open_path(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\":1}\n");
    }

    #[test]
    fn removes_a_torn_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"id\":1,").unwrap();
        FileSink::open_path(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn keeps_a_complete_last_line_that_only_lacks_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"id\":1}\n{\"id\":2}").unwrap();
        let mut sink = FileSink::open_path(&path).unwrap();
        runtime()
            .block_on(sink.write(&[Record::from(json!({"id": 3}))]))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n"
        );
    }

    #[test]
    fn keeps_a_last_line_that_is_not_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "written by hand").unwrap();
        let mut sink = FileSink::open_path(&path).unwrap();
        runtime()
            .block_on(sink.write(&[Record::from(json!({"id": 1}))]))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "written by hand\n{\"id\":1}\n"
        );
    }

    #[test]
    fn syncs_each_batch_to_disk_before_returning() {
        // The data must be readable through a separate handle right after `write` returned; the
        // sync itself is exercised on every write (a failing sync is rolled back, see below).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut sink = FileSink::open_path(&path).unwrap();
        let runtime = runtime();
        for id in 0..50 {
            runtime
                .block_on(sink.write(&[Record::from(json!({ "id": id }))]))
                .unwrap();
            let content = std::fs::read_to_string(&path).unwrap();
            assert_eq!(content.lines().count(), id + 1);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn rolls_back_a_batch_that_did_not_fit_and_names_the_file() {
        // /dev/full accepts opening for append and fails every write with ENOSPC, like a full
        // disk; it cannot be truncated, which the message then says.
        let path = Path::new("/dev/full");
        if !path.exists() {
            return;
        }
        let mut sink = FileSink::open_path(path).unwrap();
        let error = runtime()
            .block_on(sink.write(&[
                Record::from(json!({"id": 1})),
                Record::from(json!({"id": 2})),
            ]))
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(
                "cannot append 2 records to the output file /dev/full: No space left on device (os error 28); \
                 the file could not be truncated back to its length before this batch ("
            ),
            "{message}"
        );
        assert!(
            message.ends_with(
                "so it may end with a partial line; the batch is not committed and is sent again by the next run"
            ),
            "{message}"
        );
    }

    #[test]
    fn rolls_back_an_append_that_failed_part_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"id\":1}\n").unwrap();
        let file = OpenOptions::new().append(true).open(&path).unwrap();
        // The fault is injected after half a record really reached the file, as a full disk
        // or a failed sync would leave it.
        let failure = append_or_roll_back(&file, |mut appender| {
            appender.write_all(b"{\"id\":2,\"na")?;
            Err(io::Error::from(io::ErrorKind::StorageFull))
        })
        .unwrap_err();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\":1}\n");
        assert_eq!(
            write_error(&path, 1, failure).to_string(),
            format!(
                "cannot append 1 record to the output file {}: no storage space; the file was \
                 truncated back to its length before this batch; the batch is not committed and \
                 is sent again by the next run",
                path.display()
            )
        );
    }
}
