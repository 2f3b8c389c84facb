//! From a pipeline's `statePersistence` settings to the record fields its cursors are read from
//! (the state crate's [`CursorFields`]).
//!
//! The glue lives here rather than in the state crate, which depends on no other crate of the
//! workspace. Validation already parsed each enabled cursor's `field` into a [`FieldPath`], so
//! nothing can fail on the way.

use cannectors_state::CursorFields;

use crate::state_persistence::StatePersistence;

impl StatePersistence {
    /// The record fields of the enabled timestamp and id cursors, with what becomes of a record
    /// that lacks one (`onMissingCursor`).
    ///
    /// ```
    /// let yaml = "name: p\ninput: {type: httpPolling, endpoint: 'https://x.example/a', \
    ///             statePersistence: {id: {field: event.id, queryParam: after}}}\n\
    ///             output: {type: stdout}\n";
    /// let loaded = cannectors_config::parse_str(yaml, "p.yaml", &|_| None).unwrap();
    /// let settings = loaded.pipeline.input.state_persistence().unwrap();
    /// let fields = settings.cursor_fields();
    /// assert_eq!(fields.id().map(|path| path.as_str()), Some("event.id"));
    /// assert_eq!(fields.timestamp(), None);
    /// ```
    pub fn cursor_fields(&self) -> CursorFields {
        CursorFields::new(
            self.timestamp().and_then(|cursor| cursor.field.clone()),
            self.id().map(|cursor| cursor.field.clone()),
        )
        .on_missing(self.on_missing_cursor)
    }
}

#[cfg(test)]
mod tests {
    use crate::FieldPath;

    #[test]
    fn fields_come_from_the_enabled_cursors_of_the_pipeline() {
        let yaml = "name: p\ninput:\n  type: database\n  connectionString: sqlite://a.db\n  \
                    query: select $1\n  statePersistence:\n    timestamp: {field: updated_at}\n    \
                    id: {field: id, enabled: false}\noutput: {type: stdout}\n";
        let loaded = crate::parse_str(yaml, "p.yaml", &|_| None).unwrap();
        let settings = loaded.pipeline.input.state_persistence().unwrap();
        let fields = settings.cursor_fields();
        assert_eq!(
            fields.timestamp().map(FieldPath::as_str),
            Some("updated_at")
        );
        assert_eq!(fields.id(), None);
    }
}
