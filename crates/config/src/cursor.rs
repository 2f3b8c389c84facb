//! From a pipeline's `statePersistence` settings to the record fields its cursors are read from
//! (the state crate's [`CursorFields`]), parsed once per pipeline.

use cannectors_state::{CursorFields, FieldPath, FieldPathError};

use crate::model::StatePersistence;

/// Why the cursor settings of a pipeline cannot be used to read cursors from records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorFieldError {
    /// An enabled cursor has no `field`.
    #[error(
        "statePersistence.{cursor} is enabled but has no `field`: name the record field that \
         holds it, such as `field: updated_at` or `field: event.id`, or set `enabled: false`"
    )]
    NoField {
        /// `timestamp` or `id`.
        cursor: &'static str,
    },
    /// The `field` of a cursor is not a dot path.
    #[error("statePersistence.{cursor}.field: {source}")]
    BadField {
        /// `timestamp` or `id`.
        cursor: &'static str,
        /// What is wrong with the path.
        source: FieldPathError,
    },
}

impl StatePersistence {
    /// The record fields of the enabled timestamp and id cursors.
    ///
    /// ```
    /// let yaml = "name: p\ninput: {type: httpPolling, endpoint: 'https://x.example/a', \
    ///             statePersistence: {id: {field: event.id, queryParam: after}}}\n\
    ///             output: {type: stdout}\n";
    /// let loaded = cannectors_config::parse_str(yaml, "p.yaml", &|_| None).unwrap();
    /// let settings = loaded.pipeline.input.state_persistence().unwrap();
    /// let fields = settings.cursor_fields().unwrap();
    /// assert_eq!(fields.id().map(|path| path.as_str()), Some("event.id"));
    /// assert_eq!(fields.timestamp(), None);
    /// ```
    pub fn cursor_fields(&self) -> Result<CursorFields, CursorFieldError> {
        let path = |cursor: &'static str, field: Option<&String>| match field {
            None => Err(CursorFieldError::NoField { cursor }),
            Some(field) => FieldPath::parse(field)
                .map_err(|source| CursorFieldError::BadField { cursor, source }),
        };
        Ok(CursorFields::new(
            self.timestamp()
                .map(|cursor| path("timestamp", cursor.field.as_ref()))
                .transpose()?,
            self.id()
                .map(|cursor| path("id", cursor.field.as_ref()))
                .transpose()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IdCursor, TimestampCursor};

    #[test]
    fn fields_come_from_the_enabled_cursors_of_the_pipeline() {
        let settings = StatePersistence {
            timestamp: Some(TimestampCursor {
                enabled: true,
                field: Some("updated_at".into()),
                query_param: None,
                format: None,
            }),
            id: Some(IdCursor {
                enabled: false,
                field: Some("id".into()),
                query_param: None,
            }),
            ..StatePersistence::default()
        };
        let fields = settings.cursor_fields().unwrap();
        assert_eq!(
            fields.timestamp().map(FieldPath::as_str),
            Some("updated_at")
        );
        assert_eq!(fields.id(), None);
    }

    #[test]
    fn an_enabled_cursor_without_field_is_a_configuration_error() {
        let settings = StatePersistence {
            id: Some(IdCursor {
                enabled: true,
                field: None,
                query_param: None,
            }),
            ..StatePersistence::default()
        };
        assert_eq!(
            settings.cursor_fields().unwrap_err().to_string(),
            "statePersistence.id is enabled but has no `field`: name the record field that holds \
             it, such as `field: updated_at` or `field: event.id`, or set `enabled: false`"
        );
        let settings = StatePersistence {
            id: Some(IdCursor {
                enabled: true,
                field: Some("a..b".into()),
                query_param: None,
            }),
            ..StatePersistence::default()
        };
        assert!(
            settings
                .cursor_fields()
                .unwrap_err()
                .to_string()
                .starts_with("statePersistence.id.field: `a..b` is not a dot path")
        );
    }
}
