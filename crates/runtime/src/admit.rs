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
use cannectors_state::{
    CursorError, CursorFields, CursorKey, Entry, Identities, OnMissingCursor, Position,
};
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
    /// found, if it did, and `found` the cursor key of each record, if it found them (`known`
    /// is then the position of the first record with the greatest key); `delivered` the
    /// identities of the records delivered before; records with a timestamp after `until` are
    /// held back.
    pub(crate) fn admit(
        &self,
        records: Vec<Record>,
        (known, found): (Option<Position>, Option<Vec<Option<CursorKey>>>),
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
        // Each record's key, and where the position of an admitted record comes from: the
        // source's greatest, or the positions read here.
        let (keys, mut positions) = match found {
            Some(keys) if keys.len() == records.len() && !self.fields.is_empty() => (keys, None),
            _ => {
                let positions = self
                    .fields
                    .positions_in_json(records.iter().map(Record::json))?;
                let keys = positions
                    .iter()
                    .map(|position| position.as_ref().map(CursorKey::of))
                    .collect();
                (keys, Some(positions))
            }
        };
        // Where the source's greatest is: the first record with its key.
        let known_at = known
            .as_ref()
            .map(CursorKey::of)
            .and_then(|greatest| keys.iter().position(|key| key.as_ref() == Some(&greatest)));
        let mut admitted = Admitted {
            records: Vec::with_capacity(records.len()),
            position: None,
            skipped: 0,
            without_cursor: 0,
            repeated: 0,
            held: 0,
            identities: Vec::with_capacity(if self.lookback.is_some() {
                records.len()
            } else {
                0
            }),
        };
        // The first admitted record with the greatest key: its index in the batch, its index
        // among the admitted records, and its key.
        let mut best: Option<(usize, usize, CursorKey)> = None;
        for (index, (record, key)) in records.into_iter().zip(keys).enumerate() {
            match key {
                None if self.fields.missing_mode() == OnMissingCursor::Skip => {
                    admitted.skipped += 1;
                }
                None => {
                    admitted.without_cursor += 1;
                    admitted.records.push(record);
                }
                Some(key) => {
                    if let (Some(until), Some(instant)) = (until, key.instant)
                        && instant > until
                    {
                        // Not read yet: a later run delivers it, and the cursor stays before it.
                        admitted.held += 1;
                        continue;
                    }
                    if let Some(lookback) = &self.lookback
                        && let Some(instant) = key.instant
                    {
                        let identity = lookback.identity.of_id(record.json(), key.id.as_ref());
                        let entry = Entry::of(instant, identity);
                        if delivered.contains_entry(entry) {
                            admitted.repeated += 1;
                            continue;
                        }
                        admitted.identities.push(entry);
                    }
                    if best.as_ref().is_none_or(|(_, _, best)| key > *best) {
                        best = Some((index, admitted.records.len(), key));
                    }
                    admitted.records.push(record);
                }
            }
        }
        admitted.position = match best {
            None => None,
            Some((index, _, _)) if let Some(positions) = &mut positions => {
                positions.get_mut(index).and_then(Option::take)
            }
            // The source built the position of its greatest record: when that one is the
            // greatest admitted, there is nothing to read.
            Some((index, _, _)) if known_at == Some(index) => known,
            // Held back or delivered before: the greatest admitted record is another one,
            // whose position is read from its text (once a batch).
            Some((_, at, _)) => self
                .fields
                .positions_in_json(admitted.records.get(at).map(Record::json))?
                .pop()
                .flatten(),
        };
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
        let (keys, greatest) = fields
            .keys_of_found([[None, Some("7")], [None, None]])
            .unwrap();
        // The records' own text says otherwise: what the source found is what counts.
        let records = vec![
            Record::from(json!({"id": 1})),
            Record::from(json!({"id": 2})),
        ];
        let admitted = admission(OnMissingCursor::Skip)
            .admit(
                records.clone(),
                (greatest.clone(), Some(keys.clone())),
                &none(),
                None,
            )
            .unwrap();
        assert_eq!(admitted.records, records[..1]);
        assert_eq!(admitted.skipped, 1);
        assert_eq!(admitted.position.unwrap().id.unwrap().to_string(), "7");
        // Keys that do not match the records are not trusted: the records are read.
        let admitted = admission(OnMissingCursor::Skip)
            .admit(
                records.clone(),
                (greatest, Some(keys[..1].to_vec())),
                &none(),
                None,
            )
            .unwrap();
        assert_eq!(admitted.records, records);
        assert_eq!(admitted.position.unwrap().id.unwrap().to_string(), "2");
    }

    #[test]
    fn when_the_sources_greatest_is_held_back_the_position_is_read_from_the_greatest_admitted() {
        let fields = CursorFields::new(
            Some(FieldPath::parse("ts").unwrap()),
            Some(FieldPath::parse("id").unwrap()),
        );
        let texts = [
            [Some("\"2026-01-01T00:00:02Z\""), Some("3")],
            [Some("\"2026-01-01T01:00:01+01:00\""), Some("2")],
            [Some("\"2026-01-01T00:00:00Z\""), Some("1")],
        ];
        let records: Vec<Record> = texts
            .iter()
            .map(|[ts, id]| {
                Record::parse(&format!(r#"{{"ts":{},"id":{}}}"#, ts.unwrap(), id.unwrap())).unwrap()
            })
            .collect();
        let (keys, greatest) = fields.keys_of_found(texts).unwrap();
        assert_eq!(
            greatest.as_ref().unwrap().id.as_ref().unwrap().to_string(),
            "3"
        );
        let until = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:01.5Z")
            .unwrap()
            .to_utc();
        let admitted = Admission::new(fields, None)
            .admit(
                records.clone(),
                (greatest, Some(keys)),
                &none(),
                Some(until),
            )
            .unwrap();
        assert_eq!(admitted.records, records[1..]);
        assert_eq!(admitted.held, 1);
        let position = admitted.position.unwrap();
        assert_eq!(position.id.unwrap().to_string(), "2");
        // Read from the record, in the form it was written.
        assert_eq!(
            position.timestamp.unwrap().as_json(),
            &json!("2026-01-01T01:00:01+01:00")
        );
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
