//! Laws of the cursor order and of the state file encoding, checked on generated values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cmp::Ordering;

use cannectors_state::{
    CursorFields, CursorId, CursorKey, FieldPath, OnMissingCursor, Position, Run, State, Timestamp,
};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Instants from 1900 to 2200, with a precision of whole seconds down to nanoseconds.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let seconds = -2_208_988_800_i64..7_258_118_400_i64;
    let nanos = prop_oneof![
        Just(0_u32),
        (0_u32..1000).prop_map(|ms| ms * 1_000_000),
        (0_u32..1_000_000).prop_map(|us| us * 1000),
        0_u32..1_000_000_000,
    ];
    (seconds, nanos).prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
}

/// Every way a source or a user may write `instant` that denotes it exactly.
fn written_forms(instant: DateTime<Utc>, offset_minutes: i32) -> Vec<Value> {
    let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
    let local = instant.with_timezone(&offset);
    let mut forms = vec![
        json!(local.to_rfc3339_opts(SecondsFormat::Nanos, false)),
        json!(local.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
        json!(instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        json!(
            instant
                .naive_utc()
                .format("%Y-%m-%d %H:%M:%S%.f")
                .to_string()
        ),
        json!(
            instant
                .naive_utc()
                .format("%Y-%m-%dT%H:%M:%S%.9f")
                .to_string()
        ),
    ];
    let (seconds, nanos) = (instant.timestamp(), instant.timestamp_subsec_nanos());
    if nanos == 0 {
        forms.push(json!(seconds));
    }
    let millis = instant.timestamp_millis();
    if nanos % 1_000_000 == 0 && millis.unsigned_abs() >= 100_000_000_000 {
        forms.push(json!(millis));
    }
    forms
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (
        instant(),
        -14 * 60..=14 * 60_i32,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(instant, offset, pick)| {
            let forms = written_forms(instant, offset);
            Timestamp::from_json(pick.get(&forms)).unwrap()
        })
}

fn cursor_id() -> impl Strategy<Value = CursorId> {
    prop_oneof![
        any::<i64>().prop_map(CursorId::Integer),
        (-5_i64..5).prop_map(CursorId::Integer),
        "[0-9a-z-]{0,6}".prop_map(CursorId::Text),
        any::<String>().prop_map(CursorId::Text),
    ]
}

/// A cursor field as a record may hold it: missing, null, a good value, or anything else.
fn found_value(good: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => good.prop_map(Some),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => json_value().prop_map(Some),
        1 => prop_oneof![Just(json!(-0.0)), Just(json!(1.5)), Just(json!(-7)), Just(json!(u64::MAX))]
            .prop_map(Some),
    ]
}

/// A value as JSON text, its strings written with every character as a `\u` escape when
/// `escaped`.
fn json_text(value: &Value, escaped: bool) -> String {
    match value {
        Value::String(text) if escaped => {
            let mut written = String::from("\"");
            for unit in text.encode_utf16() {
                written.push_str(&format!("\\u{unit:04x}"));
            }
            written.push('"');
            written
        }
        other => other.to_string(),
    }
}

fn position() -> impl Strategy<Value = Position> {
    (prop::option::of(timestamp()), prop::option::of(cursor_id()))
        .prop_map(|(timestamp, id)| Position { timestamp, id })
}

fn keyset_position() -> impl Strategy<Value = Position> {
    (timestamp(), any::<i64>()).prop_map(|(timestamp, id)| Position {
        timestamp: Some(timestamp),
        id: Some(id.into()),
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn run() -> impl Strategy<Value = Run> {
    (
        instant(),
        any::<u64>(),
        prop::option::of(any::<u64>()),
        position(),
        json_value(),
    )
        .prop_map(|(started_at, batches, offset, seen, resume)| {
            // A run section is made by a run or read from a file, never built by hand.
            let mut section = json!({
                "startedAt": started_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                "batches": batches,
                "resume": resume,
            });
            if let Some(offset) = offset {
                section["offset"] = json!(offset);
            }
            if !seen.is_empty() {
                let mut position = json!({});
                if let Some(timestamp) = &seen.timestamp {
                    position["timestamp"] = timestamp.as_json().clone();
                }
                if let Some(id) = &seen.id {
                    position["id"] = id.to_json();
                }
                section["seen"] = position;
            }
            let run = State::from_json(&json!({ "run": section }))
                .unwrap()
                .run
                .unwrap();
            assert_eq!(
                (
                    run.started_at(),
                    run.batches(),
                    run.offset(),
                    run.seen(),
                    run.resume()
                ),
                (started_at, batches, offset, &seen, &resume)
            );
            run
        })
}

fn state() -> impl Strategy<Value = State> {
    (
        prop::option::of(timestamp()),
        prop::option::of(cursor_id()),
        prop::option::of(any::<u64>()),
        prop::option::of(run()),
        prop::option::of("[A-Za-z0-9][A-Za-z0-9._-]{0,20}"),
        prop::option::of(any::<String>().prop_map(std::path::PathBuf::from)),
        prop::option::of(instant()),
        prop::collection::vec((instant(), any::<u64>()), 0..20),
    )
        .prop_map(
            |(timestamp, id, offset, run, pipeline, pipeline_file, updated_at, delivered)| {
                let mut state = State::default();
                state.timestamp = timestamp;
                state.id = id;
                state.offset = offset;
                state.run = run;
                state.pipeline = pipeline;
                state.pipeline_file = pipeline_file;
                state.updated_at = updated_at;
                for (instant, identity) in delivered {
                    state.identities.insert(instant, identity);
                }
                state
            },
        )
}

fn assert_order_laws<T: Ord + std::fmt::Debug>(a: &T, b: &T, c: &T) {
    assert_eq!(
        a.cmp(b),
        b.cmp(a).reverse(),
        "antisymmetry of {a:?} and {b:?}"
    );
    assert_eq!(a.cmp(a), Ordering::Equal);
    if a <= b && b <= c {
        assert!(a <= c, "transitivity of {a:?} <= {b:?} <= {c:?}");
    }
    assert_eq!(
        a == b,
        a.cmp(b) == Ordering::Equal,
        "eq agrees with cmp for {a:?}, {b:?}"
    );
}

proptest! {
    #[test]
    fn every_written_form_of_an_instant_is_the_same_cursor(
        instant in instant(),
        offset in -14 * 60..=14 * 60_i32,
    ) {
        let forms = written_forms(instant, offset);
        for form in &forms {
            let timestamp = Timestamp::from_json(form).unwrap();
            prop_assert_eq!(timestamp.instant(), instant, "{}", form);
            prop_assert_eq!(timestamp.as_json(), form);
        }
    }

    #[test]
    fn timestamps_order_as_their_instants_whatever_the_form(a in timestamp(), b in timestamp()) {
        prop_assert_eq!(a.cmp(&b), a.instant().cmp(&b.instant()));
    }

    #[test]
    fn timestamp_order_is_a_total_order(a in timestamp(), b in timestamp(), c in timestamp()) {
        assert_order_laws(&a, &b, &c);
    }

    #[test]
    fn id_order_is_a_total_order(a in cursor_id(), b in cursor_id(), c in cursor_id()) {
        assert_order_laws(&a, &b, &c);
    }

    #[test]
    fn integer_ids_order_as_integers_and_text_ids_as_strings(
        x in any::<i64>(), y in any::<i64>(), s in any::<String>(), t in any::<String>(),
    ) {
        prop_assert_eq!(CursorId::Integer(x).cmp(&CursorId::Integer(y)), x.cmp(&y));
        prop_assert_eq!(CursorId::Text(s.clone()).cmp(&CursorId::Text(t.clone())), s.cmp(&t));
    }

    #[test]
    fn position_order_is_a_total_order(a in position(), b in position(), c in position()) {
        assert_order_laws(&a, &b, &c);
    }

    #[test]
    fn positions_order_by_timestamp_then_id(
        ta in timestamp(), tb in timestamp(), ia in cursor_id(), ib in cursor_id(),
    ) {
        let a = Position { timestamp: Some(ta.clone()), id: Some(ia.clone()) };
        let b = Position { timestamp: Some(tb.clone()), id: Some(ib.clone()) };
        prop_assert_eq!(a.cmp(&b), ta.cmp(&tb).then(ia.cmp(&ib)));
    }

    #[test]
    fn a_state_reads_back_exactly_as_it_was_written(state in state()) {
        let text = state.to_json_pretty();
        let read = State::from_json_str(&text).unwrap();
        prop_assert_eq!(&read, &state);
        // Equality of timestamps looks at instants only; the written forms must survive too.
        prop_assert_eq!(read.to_json(), state.to_json());
        prop_assert_eq!(&read.to_json_pretty(), &text);
        // The file's text is written without building its JSON value; it must be what
        // serde_json writes for that value.
        prop_assert_eq!(text, format!("{:#}\n", state.to_json()));
    }

    #[test]
    fn advancing_keeps_the_greatest_position_delivered(
        start in keyset_position(),
        steps in prop::collection::vec(keyset_position(), 0..8),
    ) {
        let mut state = State::default();
        state.timestamp = start.timestamp;
        state.id = start.id;
        for step in &steps {
            let before = state.committed();
            let moved = state.advance(step);
            prop_assert_eq!(moved, *step > before);
            prop_assert_eq!(state.committed(), before.max(step.clone()));
        }
    }

    #[test]
    fn cursor_values_given_as_text_give_the_position_of_records_parsed(
        records in prop::collection::vec(
            (
                found_value(timestamp().prop_map(|ts| ts.as_json().clone())),
                found_value(cursor_id().prop_map(|id| id.to_json())),
                any::<bool>(),
            ),
            0..12,
        ),
        mode in prop::sample::select(&[
            OnMissingCursor::Fail,
            OnMissingCursor::Skip,
            OnMissingCursor::Deliver,
        ]),
        enabled in prop::sample::select(&[(true, true), (true, false), (false, true)]),
    ) {
        let fields = CursorFields::new(
            enabled.0.then(|| FieldPath::parse("ts").unwrap()),
            enabled.1.then(|| FieldPath::parse("id").unwrap()),
        )
        .on_missing(mode);
        let mut values = Vec::new();
        let mut texts = Vec::new();
        for (ts, id, escaped) in &records {
            let mut record = serde_json::Map::new();
            let mut found = [None, None];
            for (i, (key, value)) in [("ts", ts), ("id", id)].into_iter().enumerate() {
                if let Some(value) = value {
                    record.insert(key.to_owned(), value.clone());
                    found[i] = Some(json_text(value, *escaped));
                }
            }
            values.push(Value::Object(record));
            texts.push(found);
        }
        let found = texts.iter().map(|[ts, id]| [ts.as_deref(), id.as_deref()]);
        prop_assert_eq!(
            fields.greatest_position_of_found(found.clone()),
            fields.greatest_position(&values)
        );
        let records: Vec<String> = values.iter().map(Value::to_string).collect();
        let positions = fields.positions_in_json(records.iter().map(String::as_str));
        prop_assert_eq!(fields.positions_of_found(found.clone()), positions.clone());
        // The keys are those of the positions, and the greatest is the same record's.
        let written = |position: Position| {
            (position.timestamp.map(|ts| ts.as_json().clone()), position.id)
        };
        let keyed = fields
            .keys_of_found(found)
            .map(|(keys, greatest)| (keys, greatest.map(written)));
        let expected = positions.map(|positions| {
            let keys: Vec<Option<CursorKey>> =
                positions.iter().map(|p| p.as_ref().map(CursorKey::of)).collect();
            let greatest = fields
                .greatest_position(&values)
                .ok()
                .flatten()
                .map(written);
            (keys, greatest)
        });
        prop_assert_eq!(keyed, expected);
    }

    #[test]
    fn records_read_as_text_give_the_position_of_records_parsed(
        records in prop::collection::vec(
            (timestamp(), cursor_id(), json_value(), any::<bool>()), 0..12
        ),
    ) {
        let records: Vec<Value> = records
            .into_iter()
            .map(|(ts, id, noise, first)| {
                let event = json!({"ts": ts.as_json(), "id": id.to_json()});
                if first {
                    json!({"event": event, "noise": noise})
                } else {
                    json!({"noise": noise, "list": [noise, event], "event": event})
                }
            })
            .collect();
        let texts: Vec<String> = records.iter().map(Value::to_string).collect();
        let fields = CursorFields::new(
            Some(FieldPath::parse("event.ts").unwrap()),
            Some(FieldPath::parse("event.id").unwrap()),
        );
        prop_assert_eq!(
            fields.greatest_position_in_json(texts.iter().map(String::as_str)),
            fields.greatest_position(&records)
        );
        let through_array = CursorFields::new(None, Some(FieldPath::parse("list.1.id").unwrap()));
        prop_assert_eq!(
            through_array.greatest_position_in_json(texts.iter().map(String::as_str)),
            through_array.greatest_position(&records)
        );
    }
}

/// A step of a lookback window's life: a record remembered or looked up, the window pruned, or
/// the state written and read back.
#[derive(Debug, Clone)]
enum WindowStep {
    Insert(DateTime<Utc>, u64),
    Contains(DateTime<Utc>, u64),
    Prune(DateTime<Utc>, usize),
    ReadBack,
}

/// Instants in a few seconds, many of them equal, so that ties, records older than the newest
/// and records in seconds read back from a file all occur.
fn window_instant() -> impl Strategy<Value = DateTime<Utc>> {
    (
        0_i64..4,
        prop_oneof![Just(0_u32), Just(500_000_000), 0_u32..1000],
    )
        .prop_map(|(s, n)| DateTime::from_timestamp(1_767_225_600 + s, n).unwrap())
}

fn window_step() -> impl Strategy<Value = WindowStep> {
    prop_oneof![
        4 => (window_instant(), 0_u64..6).prop_map(|(at, id)| WindowStep::Insert(at, id)),
        3 => (window_instant(), 0_u64..6).prop_map(|(at, id)| WindowStep::Contains(at, id)),
        1 => (window_instant(), 0_usize..30).prop_map(|(at, max)| WindowStep::Prune(at, max)),
        1 => Just(WindowStep::ReadBack),
    ]
}

proptest! {
    /// A window answers as the set of the (instant, identity) it was given, whatever the order
    /// they came in, minus what pruning forgot (the oldest seconds first, and within a second
    /// those given first); writing it and reading it back changes nothing.
    #[test]
    fn a_window_answers_as_the_set_of_what_it_was_given(
        steps in prop::collection::vec(window_step(), 1..80)
    ) {
        let mut state = State::default();
        // The model: the entries kept, in the order given.
        let mut model: Vec<(DateTime<Utc>, u64)> = Vec::new();
        for step in steps {
            match step {
                WindowStep::Insert(at, id) => {
                    let new = !model.contains(&(at, id));
                    prop_assert_eq!(state.identities.insert(at, id), new);
                    if new {
                        model.push((at, id));
                    }
                }
                WindowStep::Contains(at, id) => {
                    prop_assert_eq!(state.identities.contains(at, id), model.contains(&(at, id)));
                }
                WindowStep::Prune(start, max) => {
                    let second = start.timestamp();
                    model.retain(|(at, _)| at.timestamp() >= second);
                    let mut dropped = 0;
                    while model.len() > max {
                        let oldest = model.iter().map(|(at, _)| at.timestamp()).min().unwrap();
                        let first = model.iter().position(|(at, _)| at.timestamp() == oldest).unwrap();
                        model.remove(first);
                        dropped += 1;
                    }
                    prop_assert_eq!(state.identities.prune(start, max), dropped);
                }
                WindowStep::ReadBack => {
                    state = State::from_json_str(&state.to_json_pretty()).unwrap();
                }
            }
            prop_assert_eq!(state.identities.len(), model.len());
        }
        for (at, id) in &model {
            prop_assert!(state.identities.contains(*at, *id));
        }
    }
}
