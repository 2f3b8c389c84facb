//! Each filter on records, through pipelines loaded as a user writes them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cannectors_connector::Record;
use cannectors_filter::{Filtered, Filters};
use serde_json::{Value, json};

fn filters(yaml: &str) -> Filters {
    let text = format!(
        "name: t\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:1/'}}\nfilters:\n{yaml}\n\
         output: {{type: stdout}}\n"
    );
    let loaded = cannectors_config::parse_str(&text, "t.yaml", &|_| None)
        .unwrap_or_else(|error| panic!("{error}"));
    Filters::new(&loaded.pipeline.filters)
}

fn apply(yaml: &str, records: Vec<Value>) -> Result<Filtered, String> {
    filters(yaml)
        .apply(records.iter().map(Record::from).collect())
        .map_err(|error| error.to_string())
}

fn values(filtered: &Filtered) -> Vec<Value> {
    filtered
        .records
        .iter()
        .map(|record| record.to_value().unwrap())
        .collect()
}

fn one(yaml: &str, record: Value) -> Value {
    let filtered = apply(yaml, vec![record]).unwrap();
    assert_eq!(filtered.records.len(), 1, "{filtered:?}");
    values(&filtered).remove(0)
}

#[test]
fn no_filters_is_empty() {
    assert!(filters("  []").is_empty());
    assert!(!filters("  - {type: drop}").is_empty());
}

#[test]
fn set_writes_any_value_at_nested_targets() {
    let record = one(
        "  - {type: set, target: meta.source, value: crm}\n\
         \x20 - {type: set, target: meta.tags, value: [a, 1]}\n\
         \x20 - {type: set, target: status, value: null}",
        json!({"id": 1, "status": "x"}),
    );
    assert_eq!(
        record,
        json!({"id": 1, "status": null, "meta": {"source": "crm", "tags": ["a", 1]}})
    );
}

#[test]
fn remove_deletes_one_path_or_a_list_and_ignores_absent_ones() {
    let record = one(
        "  - {type: remove, target: internalId}\n\
         \x20 - {type: remove, target: [meta.secret, nothing.here]}\n\
         \x20 - {type: remove, targets: [card.cvv]}",
        json!({"id": 1, "internalId": 9, "meta": {"secret": "s", "keep": 1}, "card": {"cvv": 1, "last4": "1234"}}),
    );
    assert_eq!(
        record,
        json!({"id": 1, "meta": {"keep": 1}, "card": {"last4": "1234"}})
    );
}

#[test]
fn mapping_copies_in_place_and_in_order_and_an_entry_without_source_deletes() {
    let record = one(
        "  - type: mapping\n\
         \x20   mappings:\n\
         \x20     - {source: email, target: contact.email, transforms: [{op: trim}, {op: lowercase}]}\n\
         \x20     - {source: contact.email, target: login}\n\
         \x20     - {target: email}\n\
         \x20     - {source: amount, target: amount, transforms: [{op: toInt}]}",
        json!({"id": 1, "email": " Ann@Example.COM ", "amount": "42"}),
    );
    assert_eq!(
        record,
        json!({"id": 1, "amount": 42, "contact": {"email": "ann@example.com"}, "login": "ann@example.com"})
    );
}

#[test]
fn on_missing_modes_for_absent_and_null_sources() {
    let yaml = "  - type: mapping\n\
                \x20   mappings:\n\
                \x20     - {source: a, target: null_a}\n\
                \x20     - {source: b, target: kept_b, onMissing: skipField}\n\
                \x20     - {source: c, target: default_c, onMissing: useDefault, defaultValue: ' X ', transforms: [{op: trim}]}\n\
                \x20     - {source: d, target: null_d, transforms: [{op: toInt}]}";
    for record in [
        json!({"kept_b": "old"}),
        json!({"a": null, "b": null, "c": null, "d": null, "kept_b": "old"}),
    ] {
        let out = one(yaml, record);
        assert_eq!(out["null_a"], json!(null));
        assert_eq!(out["kept_b"], json!("old"));
        assert_eq!(out["default_c"], json!("X"));
        assert_eq!(out["null_d"], json!(null), "a null reaches no transform");
    }
}

#[test]
fn on_missing_fail_fails_the_batch_with_the_filter_and_record() {
    let error = apply(
        "  - {type: set, target: x, value: 1}\n\
         \x20 - type: mapping\n\
         \x20   mappings:\n\
         \x20     - {source: email, target: contact.email, onMissing: fail}",
        vec![json!({"email": "a@b"}), json!({"name": "no email"})],
    )
    .unwrap_err();
    assert_eq!(
        error,
        "filters[1] (mapping) failed on record 2 of the batch: mappings[0]: the source `email` \
         is absent or null (onMissing: fail); give it a default with `onMissing: useDefault` and \
         `defaultValue`, or leave the target alone with `onMissing: skipField`; set `onError: \
         skip` on this filter to leave such records out, or `onError: log` to let them through \
         unchanged"
    );
}

#[test]
fn a_transform_error_names_the_transform_and_the_value() {
    let error = apply(
        "  - type: mapping\n\
         \x20   mappings:\n\
         \x20     - {source: amount, target: amount, transforms: [{op: trim}, {op: toInt}]}",
        vec![json!({"amount": "12.5"})],
    )
    .unwrap_err();
    assert!(
        error.starts_with(
            "filters[0] (mapping) failed on record 1 of the batch: mappings[0]: transforms[1] of \
             `amount`: `\"12.5\"` (a string) is not a whole number;"
        ),
        "{error}"
    );
}

#[test]
fn on_error_skip_leaves_the_record_out_and_counts_it() {
    let filtered = apply(
        "  - type: mapping\n\
         \x20   onError: skip\n\
         \x20   mappings:\n\
         \x20     - {source: amount, target: amount, transforms: [{op: toInt}]}",
        vec![
            json!({"id": 1, "amount": "3"}),
            json!({"id": 2, "amount": "x"}),
            json!({"id": 3, "amount": 4}),
        ],
    )
    .unwrap();
    assert_eq!(filtered.skipped, 1);
    assert_eq!(filtered.dropped, 0);
    assert_eq!(
        values(&filtered),
        [json!({"id": 1, "amount": 3}), json!({"id": 3, "amount": 4})]
    );
}

#[test]
fn on_error_log_lets_the_record_go_on_as_it_was_before_the_filter() {
    let filtered = apply(
        "  - type: mapping\n\
         \x20   onError: log\n\
         \x20   mappings:\n\
         \x20     - {source: name, target: name, transforms: [{op: uppercase}]}\n\
         \x20     - {source: amount, target: amount, transforms: [{op: toInt}]}\n\
         \x20 - {type: set, target: seen, value: true}",
        vec![
            json!({"name": "ann", "amount": "x"}),
            json!({"name": "bob", "amount": "2"}),
        ],
    )
    .unwrap();
    assert_eq!(filtered.skipped, 0);
    assert_eq!(
        values(&filtered),
        [
            json!({"name": "ann", "amount": "x", "seen": true}),
            json!({"name": "BOB", "amount": 2, "seen": true})
        ]
    );
}

#[test]
fn condition_runs_then_or_else_and_an_absent_branch_keeps_the_record() {
    let yaml = "  - type: condition\n\
                \x20   expression: \"status == 'active' && amount > 100\"\n\
                \x20   then: [{type: set, target: bucket, value: hot}]\n\
                \x20   else: [{type: set, target: bucket, value: cold}]\n\
                \x20 - type: condition\n\
                \x20   expression: vip\n\
                \x20   then: [{type: set, target: vip_seen, value: true}]";
    let filtered = apply(
        yaml,
        vec![
            json!({"status": "active", "amount": 150, "vip": true}),
            json!({"status": "active", "amount": 50}),
        ],
    )
    .unwrap();
    assert_eq!(
        values(&filtered),
        [
            json!({"status": "active", "amount": 150, "vip": true, "bucket": "hot", "vip_seen": true}),
            json!({"status": "active", "amount": 50, "bucket": "cold"})
        ]
    );
}

#[test]
fn drop_removes_records_and_counts_them_and_stops_the_chain() {
    let filtered = apply(
        "  - type: condition\n\
         \x20   expression: amount < 10\n\
         \x20   then: [{type: drop}, {type: set, target: never, value: 1}]\n\
         \x20 - {type: set, target: kept, value: true}",
        vec![
            json!({"amount": 5}),
            json!({"amount": 50}),
            json!({"amount": 1}),
        ],
    )
    .unwrap();
    assert_eq!(filtered.dropped, 2);
    assert_eq!(values(&filtered), [json!({"amount": 50, "kept": true})]);
}

#[test]
fn nested_conditions_and_mappings_in_branches() {
    let yaml = "  - type: condition\n\
                \x20   expression: type == 'order'\n\
                \x20   then:\n\
                \x20     - type: condition\n\
                \x20       expression: total >= 1000\n\
                \x20       then: [{type: set, target: tier, value: large}]\n\
                \x20       else:\n\
                \x20         - type: mapping\n\
                \x20           mappings: [{source: total, target: small_total, transforms: [{op: toString}]}]\n\
                \x20   else: [{type: drop}]";
    let filtered = apply(
        yaml,
        vec![
            json!({"type": "order", "total": 5000}),
            json!({"type": "order", "total": 10}),
            json!({"type": "refund", "total": 10}),
        ],
    )
    .unwrap();
    assert_eq!(filtered.dropped, 1);
    assert_eq!(
        values(&filtered),
        [
            json!({"type": "order", "total": 5000, "tier": "large"}),
            json!({"type": "order", "total": 10, "small_total": "10"})
        ]
    );
}

#[test]
fn a_failure_in_a_branch_is_a_failure_of_the_condition() {
    let branch = "    then:\n\
                  \x20     - type: mapping\n\
                  \x20       mappings: [{source: n, target: n, transforms: [{op: toInt}]}]";
    let error = apply(
        &format!("  - type: condition\n    expression: 'true'\n{branch}"),
        vec![json!({"n": "x"})],
    )
    .unwrap_err();
    assert!(
        error.starts_with("filters[0].then[0] (mapping) failed on record 1 of the batch"),
        "{error}"
    );
    let skipped = apply(
        &format!("  - type: condition\n    onError: skip\n    expression: 'true'\n{branch}"),
        vec![json!({"n": "x"}), json!({"n": "2"})],
    )
    .unwrap();
    assert_eq!(skipped.skipped, 1);
    assert_eq!(values(&skipped), [json!({"n": 2})]);
    let logged = apply(
        &format!(
            "  - type: condition\n    onError: log\n    expression: 'true'\n{branch}\n\
             \x20     - {{type: set, target: after, value: 1}}"
        ),
        vec![json!({"n": "x"})],
    )
    .unwrap();
    assert_eq!(
        values(&logged),
        [json!({"n": "x"})],
        "unchanged by the condition"
    );
}

#[test]
fn an_expression_that_cannot_be_evaluated_follows_on_error() {
    let yaml = |on_error: &str| {
        format!(
            "  - type: condition\n    onError: {on_error}\n    expression: amount > 10\n    \
             then: [{{type: set, target: big, value: true}}]"
        )
    };
    let records = || vec![json!({"amount": "many"}), json!({"amount": 20})];
    let error = apply(&yaml("fail"), records()).unwrap_err();
    assert!(
        error.starts_with(
            "filters[0] (condition) failed on record 1 of the batch: cannot evaluate `amount > \
             10`: Invalid operands for operator >;"
        ),
        "{error}"
    );
    let skipped = apply(&yaml("skip"), records()).unwrap();
    assert_eq!(
        (skipped.skipped, values(&skipped)),
        (1, vec![json!({"amount": 20, "big": true})])
    );
    let logged = apply(&yaml("log"), records()).unwrap();
    assert_eq!(
        values(&logged),
        [
            json!({"amount": "many"}),
            json!({"amount": 20, "big": true})
        ]
    );
}

#[test]
fn expressions_see_strings_numbers_nulls_and_missing_fields() {
    let yaml = "  - type: condition\n\
                \x20   expression: \"deleted_at == nil && name startsWith 'A' && score * 2 >= 3.0 && tier in ['gold', 'silver']\"\n\
                \x20   else: [{type: drop}]";
    let filtered = apply(
        yaml,
        vec![
            json!({"name": "Ann", "score": 1.5, "tier": "gold"}),
            json!({"name": "Ann", "score": 1.5, "tier": "gold", "deleted_at": null}),
            json!({"name": "Ann", "score": 1.5, "tier": "gold", "deleted_at": "2026-01-01"}),
            json!({"name": "Bob", "score": 9, "tier": "gold"}),
            json!({"name": "Ann", "score": 1, "tier": "gold"}),
            json!({"name": "Ann", "score": 2, "tier": "bronze"}),
        ],
    )
    .unwrap();
    assert_eq!(filtered.records.len(), 2);
    assert_eq!(filtered.dropped, 4);
}

#[test]
fn key_order_survives_and_only_fields_a_filter_changed_are_written_again() {
    let filtered = filters(
        "  - {type: set, target: z, value: 1}
  - type: mapping
    mappings:
      - {source: e, target: copy.e}
      - {source: huge, target: copy.huge}
      - {source: big, target: n.big}
      - {source: a, target: a2}",
    )
    .apply(vec![
        Record::parse(
            r#"{"b": 1, "a": 2.50, "big": 12345678901234567, "e": 1e3, "huge": 12345678901234567890123, "n": {"x": [1, 2]}, "list": [1, 2]}"#,
        )
        .unwrap(),
    ])
    .unwrap();
    // As docs/filters.md says: fields no filter changed keep their text, and so does a copy
    // between top-level fields; other values a filter wrote, and a field changed inside (`n`),
    // are written by value, an integer beyond 64 bits as an approximate decimal.
    assert_eq!(
        filtered.records[0].json(),
        concat!(
            r#"{"b":1,"a":2.50,"big":12345678901234567,"e":1e3,"huge":12345678901234567890123,"#,
            r#""n":{"x":[1,2],"big":12345678901234567},"list":[1, 2],"z":1,"#,
            r#""copy":{"e":1000.0,"huge":1.2345678901234568e+22},"a2":2.50}"#
        )
    );
}

#[test]
fn disabled_filters_are_left_out() {
    let record = one(
        "  - {type: drop, enabled: false}\n  - {type: set, target: a, value: 1, enabled: true}",
        json!({}),
    );
    assert_eq!(record, json!({"a": 1}));
}

/// The example pipelines of `examples/` that use filters do what their comments say.
fn example(name: &str) -> Filters {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let loaded = cannectors_config::load_with_env(&path, &|_| Some("stand-in".to_owned())).unwrap();
    Filters::new(&loaded.pipeline.filters)
}

#[test]
fn the_contacts_example_shapes_contacts_and_leaves_test_accounts_out() {
    let records = [
        json!({"id": 1, "email": " Ann@Example.COM ", "phone": "+33 (6) 12-34", "created_at": "2026-03-04T10:00:00Z",
               "tags_csv": "vip, eu", "internal_notes": "x", "owner": {"name": "Zoe", "password_hash": "h"}}),
        json!({"id": 2, "email": "bot@test.example.com", "created_at": "2026-03-04"}),
        json!({"id": 3, "email": "cy@example.com", "created_at": "2026-03-04", "tags_csv": "test"}),
        json!({"id": 4, "email": "dee@example.com", "created_at": "2026-03-05"}),
    ];
    let filtered = example("contacts-shaped.yaml")
        .apply(records.iter().map(Record::from).collect())
        .unwrap();
    assert_eq!(filtered.dropped, 2);
    assert_eq!(
        values(&filtered),
        [
            json!({"id": 1, "email": "ann@example.com", "phone": "+3361234", "created_at": "2026-03-04T10:00:00Z",
                   "owner": {"name": "Zoe"}, "signup_date": "2026-03-04", "tags": ["vip", "eu"], "meta": {"source": "crm"}}),
            json!({"id": 4, "email": "dee@example.com", "created_at": "2026-03-05", "signup_date": "2026-03-05",
                   "tags": [""], "meta": {"source": "crm"}}),
        ]
    );
}

#[test]
fn the_payments_example_routes_as_the_go_tool_does() {
    let records = [
        json!({"id": 1, "status": "paid", "amount": "12.5", "card": {"number": "4242", "cvv": "1"}}),
        json!({"id": 2, "status": "failed", "amount": 3, "card": {"number": "4242", "cvv": "1", "brand": "visa"}}),
        json!({"id": 3, "status": "paid", "amount": "n/a"}),
    ];
    let filtered = example("payments-routing.yaml")
        .apply(records.iter().map(Record::from).collect())
        .unwrap();
    assert_eq!(
        values(&filtered),
        [
            json!({"id": 1, "status": "paid", "amount": 12.5, "card": {"number": "4242", "cvv": "1"},
                   "routing": {"bucket": "billable"}, "payment": {"id": 1, "amount": 12.5}}),
            json!({"id": 2, "status": "failed", "amount": 3.0, "card": {"brand": "visa"}, "routing": {"bucket": "review"}}),
            json!({"id": 3, "status": "paid", "amount": "n/a"}),
        ]
    );
}
