//! JSON Lines encoding shared by the stdout and file sinks, and the hand-off of their blocking
//! writes to tokio's blocking pool.
//!
//! A batch is serialised into one reused buffer and written with one `write_all`, so that the
//! cost per record is one `serde_json::to_writer` into memory: no allocation and no syscall per
//! record.

use cannectors_connector::Record;

use crate::OutputError;

/// Appends every record as one compact JSON object followed by `\n`.
pub(crate) fn encode(records: &[Record], buffer: &mut Vec<u8>) -> Result<(), OutputError> {
    for (position, record) in records.iter().enumerate() {
        serde_json::to_writer(&mut *buffer, record)
            .map_err(|source| OutputError::Encode { position, source })?;
        buffer.push(b'\n');
    }
    Ok(())
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
    fn encodes_one_compact_object_a_line_in_order() {
        let mut buffer = b"kept ".to_vec();
        encode(
            &[
                json!({"id": 1, "name": "a b"}),
                json!({"id": 2, "nested": {"x": [1, 2]}}),
            ],
            &mut buffer,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(buffer).unwrap(),
            "kept {\"id\":1,\"name\":\"a b\"}\n{\"id\":2,\"nested\":{\"x\":[1,2]}}\n"
        );
    }

    #[test]
    fn keeps_the_key_order_of_the_record() {
        let record: Record = serde_json::from_str(r#"{"z": 1, "a": 2, "m": 3}"#).unwrap();
        let mut buffer = Vec::new();
        encode(&[record], &mut buffer).unwrap();
        assert_eq!(buffer, b"{\"z\":1,\"a\":2,\"m\":3}\n");
    }
}
