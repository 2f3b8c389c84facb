//! JSON Lines encoding shared by the stdout and file sinks, and the hand-off of their blocking
//! writes to tokio's blocking pool.
//!
//! A batch is copied into one reused buffer and written with one `write_all`: records are
//! already JSON text without line breaks, so the cost per record is one copy into memory, with
//! no allocation and no syscall per record.

use cannectors_connector::Record;

use crate::OutputError;

/// Appends every record as it is, followed by `\n`.
pub(crate) fn encode(records: &[Record], buffer: &mut Vec<u8>) {
    buffer.reserve(records.iter().map(|record| record.json().len() + 1).sum());
    for record in records {
        buffer.extend_from_slice(record.json().as_bytes());
        buffer.push(b'\n');
    }
}

/// Runs a blocking write on tokio's blocking pool with `state` moved in and handed back, so
/// that a slow disk or a slow reader of standard output never stalls the async workers that
/// fetch the next page meanwhile.
pub(crate) async fn off_thread<T, R>(
    state: T,
    work: impl FnOnce(&mut T) -> R + Send + 'static,
) -> Result<(T, R), OutputError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let mut state = state;
    tokio::task::spawn_blocking(move || {
        let outcome = work(&mut state);
        (state, outcome)
    })
    .await
    .map_err(|join| OutputError::WriterTask {
        reason: join.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_one_object_a_line_in_order() {
        let mut buffer = b"kept ".to_vec();
        encode(
            &[
                Record::from(json!({"id": 1, "name": "a b"})),
                Record::from(json!({"id": 2, "nested": {"x": [1, 2]}})),
            ],
            &mut buffer,
        );
        assert_eq!(
            String::from_utf8(buffer).unwrap(),
            "kept {\"id\":1,\"name\":\"a b\"}\n{\"id\":2,\"nested\":{\"x\":[1,2]}}\n"
        );
    }

    #[test]
    fn writes_the_record_as_the_source_sent_it() {
        let record =
            Record::parse("{\"z\": 1,\n \"a\": 2.50, \"m\": 12345678901234567890123}").unwrap();
        let mut buffer = Vec::new();
        encode(&[record], &mut buffer);
        assert_eq!(
            String::from_utf8(buffer).unwrap(),
            "{\"z\": 1, \"a\": 2.50, \"m\": 12345678901234567890123}\n"
        );
    }
}
