//! Which records of a batch are delivered, and the cursor position they reach.
//!
//! A plain pipeline delivers every record, and the greatest position of the batch is found
//! once (by the source, or here); that path stays as it was. `onMissingCursor` other than
//! `fail` needs to know which records lack a cursor, and `lookback` which records were
//! delivered already, so the batch is then read record by record: the cursors of each record
//! are read once, and its identity comes from its id cursor when it has one, so that a record
//! is parsed again only for `identity` fields.

use cannectors_config::Lookback;
use cannectors_connector::Record;
use cannectors_state::{CursorError, CursorFields, Entry, Identities, OnMissingCursor, Position};
use chrono::{DateTime, Utc};

/// What the executor keeps of one batch.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The records to deliver, in source order.
    pub(crate) records: Vec<Record>,
    /// The greatest position of the records that move the cursor.
    pub(crate) position: Option<Position>,
    /// Records left out because a cursor field is missing or null (`onMissingCursor: skip`).
    pub(crate) skipped: u64,
    /// Records delivered without moving the cursor, for the same reason
    /// (`onMissingCursor: deliver`).
    pub(crate) without_cursor: u64,
    /// Records left out because they were delivered before (`lookback`).
    pub(crate) repeated: u64,
    /// Records held back because they are newer than the run's upper bound (`delay`).
    pub(crate) held: u64,
    /// The identities of the delivered records, to remember once the sink accepted them.
    pub(crate) identities: Vec<Entry>,
}

/// Decides, batch by batch, which records are delivered.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admission {
    fields: CursorFields,
    lookback: Option<Lookback>,
}

impl Admission {
    pub(crate) fn new(fields: CursorFields, lookback: Option<Lookback>) -> Admission {
        Admission { fields, lookback }
    }

    /// Whether every record is delivered and only the greatest position matters: the path
    /// that does not look at records one by one.
    fn plain(&self, until: Option<DateTime<Utc>>) -> bool {
        self.lookback.is_none()
            && until.is_none()
            && (self.fields.missing_mode() == OnMissingCursor::Fail || self.fields.is_empty())
    }

    /// The records of a batch to deliver; `known` is the greatest position the source already
    /// found, if it did, and `found` the position of each record, if it found them;
    /// `delivered` the identities of the records delivered before; records with a timestamp
    /// after `until` are held back.
    pub(crate) fn admit(
        &self,
        records: Vec<Record>,
        (known, found): (Option<Position>, Option<Vec<Option<Position>>>),
        delivered: &Identities,
        until: Option<DateTime<Utc>>,
    ) -> Result<Admitted, CursorError> {
        if self.plain(until) {
            let position = match known {
                Some(known) => Some(known),
                None => self
                    .fields
                    .greatest_position_in_json(records.iter().map(Record::json))?,
            };
            return Ok(Admitted {
                records,
                position,
                skipped: 0,
                without_cursor: 0,
                repeated: 0,
                held: 0,
                identities: Vec::new(),
            });
        }
        let positions = match found {
            Some(found) if found.len() == records.len() && !self.fields.is_empty() => found,
            _ => self
                .fields
                .positions_in_json(records.iter().map(Record::json))?,
        };
        let mut admitted = Admitted {
            records: Vec::with_capacity(records.len()),
            position: None,
            skipped: 0,
            without_cursor: 0,
            repeated: 0,
            held: 0,
            identities: Vec::new(),
        };
        for (record, position) in records.into_iter().zip(positions) {
            match position {
                None if self.fields.missing_mode() == OnMissingCursor::Skip => {
                    admitted.skipped += 1;
                }
                None => {
                    admitted.without_cursor += 1;
                    admitted.records.push(record);
                }
                Some(position) => {
                    if let (Some(until), Some(timestamp)) = (until, &position.timestamp)
                        && timestamp.instant() > until
                    {
                        // Not read yet: a later run delivers it, and the cursor stays before it.
                        admitted.held += 1;
                        continue;
                    }
                    if let Some(lookback) = &self.lookback
                        && let Some(timestamp) = &position.timestamp
                    {
                        let instant = timestamp.instant();
                        let identity = lookback.identity.of(record.json(), &position);
                        let entry = Entry::of(instant, identity);
                        if delivered.contains_entry(entry) {
                            admitted.repeated += 1;
                            continue;
                        }
                        admitted.identities.push(entry);
                    }
                    if admitted
                        .position
                        .as_ref()
                        .is_none_or(|best| position > *best)
                    {
                        admitted.position = Some(position);
                    }
                    admitted.records.push(record);
                }
            }
        }
        Ok(admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cannectors_state::FieldPath;
    use serde_json::json;

    fn admission(mode: OnMissingCursor) -> Admission {
        Admission::new(
            CursorFields::new(None, Some(FieldPath::parse("id").unwrap())).on_missing(mode),
            None,
        )
    }

    fn none() -> Identities {
        Identities::default()
    }

    fn batch() -> Vec<Record> {
        vec![
            Record::from(json!({"id": 3})),
            Record::from(json!({"id": null})),
            Record::from(json!({"name": "no id"})),
            Record::from(json!({"id": 2})),
        ]
    }

    #[test]
    fn positions_the_source_found_are_taken_instead_of_reading_the_records() {
        let fields = CursorFields::new(None, Some(FieldPath::parse("id").unwrap()))
            .on_missing(OnMissingCursor::Skip);
        let found = fields
            .positions_of_found([[None, Some("7")], [None, None]])
            .unwrap();
        // The records' own text says otherwise: what the source found is what counts.
        let records = vec![
            Record::from(json!({"id": 1})),
            Record::from(json!({"id": 2})),
        ];
        let admitted = admission(OnMissingCursor::Skip)
            .admit(records.clone(), (None, Some(found.clone())), &none(), None)
            .unwrap();
        assert_eq!(admitted.records, records[..1]);
        assert_eq!(admitted.skipped, 1);
        assert_eq!(admitted.position.unwrap().id.unwrap().to_string(), "7");
        // Positions that do not match the records are not trusted: the records are read.
        let admitted = admission(OnMissingCursor::Skip)
            .admit(
                records.clone(),
                (None, Some(found[..1].to_vec())),
                &none(),
                None,
            )
            .unwrap();
        assert_eq!(admitted.records, records);
        assert_eq!(admitted.position.unwrap().id.unwrap().to_string(), "2");
    }

    #[test]
    fn skip_leaves_out_the_records_without_a_cursor_and_counts_them() {
        let admitted = admission(OnMissingCursor::Skip)
            .admit(batch(), (None, None), &none(), None)
            .unwrap();
        assert_eq!(admitted.records.len(), 2);
        assert_eq!(admitted.skipped, 2);
        assert_eq!(admitted.position.unwrap().id.unwrap().to_string(), "3");
    }

    #[test]
    fn deliver_keeps_every_record_and_the_cursor_comes_from_the_others() {
        let admitted = admission(OnMissingCursor::Deliver)
            .admit(batch(), (None, None), &none(), None)
            .unwrap();
        assert_eq!(admitted.records, batch());
        assert_eq!(admitted.without_cursor, 2);
        assert_eq!(admitted.position.unwrap().id.unwrap().to_string(), "3");
    }

    #[test]
    fn fail_reports_the_first_record_without_a_cursor() {
        let error = admission(OnMissingCursor::Fail)
            .admit(batch(), (None, None), &none(), None)
            .unwrap_err();
        assert!(
            matches!(error, CursorError::Null { index: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn an_unreadable_cursor_fails_whatever_the_mode() {
        let records = vec![Record::from(json!({"id": [1]}))];
        for mode in [OnMissingCursor::Skip, OnMissingCursor::Deliver] {
            let error = admission(mode)
                .admit(records.clone(), (None, None), &none(), None)
                .unwrap_err();
            assert!(
                matches!(error, CursorError::NotAnId { index: 0, .. }),
                "{error}"
            );
        }
    }
}

#[cfg(test)]
mod late_tests {
    use super::*;
    use cannectors_state::FieldPath;
    use serde_json::json;

    #[test]
    fn records_after_the_upper_bound_are_held_back_and_the_cursor_stays_before_them() {
        let admission = Admission::new(
            CursorFields::new(Some(FieldPath::parse("at").unwrap()), None),
            None,
        );
        let records = vec![
            Record::from(json!({"at": "2026-01-01T10:00:00Z"})),
            Record::from(json!({"at": "2026-01-01T10:00:31Z"})),
            Record::from(json!({"at": "2026-01-01T10:00:30Z"})),
        ];
        let until = DateTime::parse_from_rfc3339("2026-01-01T10:00:30Z")
            .unwrap()
            .to_utc();
        let admitted = admission
            .admit(records, (None, None), &Identities::default(), Some(until))
            .unwrap();
        assert_eq!(admitted.records.len(), 2);
        assert_eq!(admitted.held, 1);
        assert_eq!(
            admitted.position.unwrap().timestamp.unwrap().to_string(),
            "2026-01-01T10:00:30Z"
        );
    }
}
