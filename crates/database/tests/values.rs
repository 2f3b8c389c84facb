//! Each PostgreSQL type as a record holds it, byte for byte, read from the real PostgreSQL
//! that `cargo xtask pg` starts (`CANNECTORS_TEST_POSTGRES_URL`). Values are written from their
//! binary form straight into the record's text; these texts are what records held when each
//! value went through a `serde_json::Value`, except where a test says otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use cannectors_config::Driver;
use cannectors_database::{Access, ConnectionSettings, Database};
use cannectors_test_support::postgres::url as postgres_url;

/// Checks that each SQL expression (cast as it must be) becomes the JSON after it, as the
/// value of the one field `v` of a record.
async fn assert_values(cases: &[(&str, &str)]) {
    let url = postgres_url();
    let database = Database::connect(ConnectionSettings {
        key: "input",
        url: &url,
        driver: Driver::Postgres,
        access: Access::Read,
        statement_timeout: Duration::from_secs(30),
    })
    .await
    .unwrap();
    for (expr, want) in cases {
        let statement = database
            .prepare(&format!("SELECT {expr} AS v"))
            .await
            .unwrap();
        let decoded = database.fetch(&statement, &[], &[], None, 0).await.unwrap();
        let got: Vec<&str> = decoded.records.iter().map(|r| r.json()).collect();
        assert_eq!(got, [format!("{{\"v\":{want}}}")], "{expr}");
    }
}

#[tokio::test]
async fn jsonb_is_its_text_without_whitespace() {
    assert_values(&[
        (
            r#"'{"b": 1, "aa": [1, 2.50, null, true, false], "s": "é \" \\ \n \u001f /", "n": {}}'::jsonb"#,
            r#"{"b":1,"n":{},"s":"é \" \\ \n \u001f /","aa":[1,2.5,null,true,false]}"#,
        ),
        (
            r#"'{"deep": [[{"x": [{"y": -0.001}]}]], "e": [], "big": 9223372036854775807}'::jsonb"#,
            r#"{"e":[],"big":9223372036854775807,"deep":[[{"x":[{"y":-0.001}]}]]}"#,
        ),
        (
            r#"'[1.0, 100, 1e3, 0.000001, 123.456, -7]'::jsonb"#,
            r#"[1.0,100,1000,1e-6,123.456,-7]"#,
        ),
        (r#"'"x"'::jsonb"#, r#""x""#),
        ("'null'::jsonb", "null"),
        ("'12.50'::jsonb", "12.5"),
        ("NULL::jsonb", "null"),
    ])
    .await;
}

/// A change: through a `serde_json::Value`, a number beyond what a double carries lost its
/// digits (`1.2345678901234568e22`) and one beyond its range failed the whole record.
#[tokio::test]
async fn a_json_number_beyond_a_double_keeps_every_digit() {
    assert_values(&[
        (
            "'[12345678901234567890123, 0.12345678901234567890]'::jsonb",
            "[12345678901234567890123,0.12345678901234567890]",
        ),
        ("'{\"n\": 1e400}'::json", r#"{"n":1e400}"#),
    ])
    .await;
}

/// A change: through a `serde_json::Value`, a `json` document lost its escapes (`\u00e9`
/// became `é`) and its repeated keys but the last; the text is now kept as the database holds
/// it, as PostgreSQL's own `row_to_json` writes it.
#[tokio::test]
async fn json_is_its_text_without_whitespace_escapes_and_keys_as_written() {
    assert_values(&[
        (
            r#"'{ "x" : [ 1 , 2 ] , "y" : { } }'::json"#,
            r#"{"x":[1,2],"y":{}}"#,
        ),
        (
            r#"'{"a": 1, "a": 2, "e": "\u00e9\/"}'::json"#,
            r#"{"a":1,"a":2,"e":"\u00e9\/"}"#,
        ),
    ])
    .await;
}

#[tokio::test]
async fn numeric_is_a_number_when_exact_and_a_string_otherwise() {
    assert_values(&[
        ("10.50::numeric", "10.5"),
        ("0::numeric", "0"),
        ("-0.5::numeric(5,2)", "-0.5"),
        ("79.19::numeric(12,2)", "79.19"),
        ("1000000::numeric", "1000000"),
        ("0.0000000001::numeric", r#""0.0000000001""#),
        ("9223372036854775808::numeric", "9223372036854775808"),
        ("-9223372036854775809::numeric", r#""-9223372036854775809""#),
        (
            "123456789012345678901234.5678::numeric",
            r#""123456789012345678901234.5678""#,
        ),
        ("'NaN'::numeric", r#""NaN""#),
        ("'Infinity'::numeric", r#""Infinity""#),
        ("'-Infinity'::numeric", r#""-Infinity""#),
    ])
    .await;
}

#[tokio::test]
async fn floats_are_numbers_and_their_special_values_strings() {
    assert_values(&[
        ("1.1::float4", "1.1"),
        ("3.4e38::float4", "3.4e+38"),
        ("1e-7::float4", "1e-7"),
        ("'NaN'::float4", r#""NaN""#),
        ("'-Infinity'::float4", r#""-Infinity""#),
        ("0.1::float8", "0.1"),
        ("1e300::float8", "1e+300"),
        ("'-0'::float8", "-0.0"),
        ("2::float8", "2.0"),
        ("'Infinity'::float8", r#""Infinity""#),
    ])
    .await;
}

#[tokio::test]
async fn uuid_dates_and_times_are_strings() {
    assert_values(&[
        (
            "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid",
            r#""a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11""#,
        ),
        ("'2026-01-02'::date", r#""2026-01-02""#),
        ("'0001-01-01'::date", r#""0001-01-01""#),
        ("'0044-03-15 BC'::date", r#""-0043-03-15""#),
        ("'infinity'::date", r#""infinity""#),
        ("'-infinity'::date", r#""-infinity""#),
        ("'13:14:15.5'::time", r#""13:14:15.500""#),
        ("'00:00:00'::time", r#""00:00:00""#),
        ("'23:59:59.000001'::time", r#""23:59:59.000001""#),
        ("'24:00:00'::time", r#""24:00:00""#),
        (
            "'2026-01-02 03:04:05.123456+02'::timestamptz",
            r#""2026-01-02T01:04:05.123456Z""#,
        ),
        ("'infinity'::timestamp", r#""infinity""#),
    ])
    .await;
}

#[tokio::test]
async fn bytea_oid_and_char_are_written_as_before() {
    assert_values(&[
        ("'\\x00ff10'::bytea", r#""AP8Q""#),
        ("'\\x'::bytea", r#""""#),
        ("'\\x0102030405'::bytea", r#""AQIDBAU=""#),
        ("4294967295::oid", "4294967295"),
        ("'a'::\"char\"", r#""a""#),
        ("'\"'::\"char\"", r#""\"""#),
    ])
    .await;
}

#[tokio::test]
async fn arrays_of_the_common_types_are_json_arrays() {
    assert_values(&[
        ("'{1, NULL, 3}'::int4[]", "[1,null,3]"),
        ("'{}'::int4[]", "[]"),
        ("'{{1,2},{3,4}}'::int8[]", "[[1,2],[3,4]]"),
        (
            r#"'{"x", "y z", "q\"", NULL}'::text[]"#,
            r#"["x","y z","q\"",null]"#,
        ),
        ("'{true,false}'::bool[]", "[true,false]"),
        (
            "'{1.50, NaN, 123456789012345678901234}'::numeric[]",
            r#"[1.5,"NaN","123456789012345678901234"]"#,
        ),
        ("'{0.5, NaN}'::float8[]", r#"[0.5,"NaN"]"#),
        (
            "'{2026-01-02 03:04:05+00}'::timestamptz[]",
            r#"["2026-01-02T03:04:05Z"]"#,
        ),
        (
            "'{2026-01-02, infinity}'::date[]",
            r#"["2026-01-02","infinity"]"#,
        ),
        (
            "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'::uuid[]",
            r#"["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]"#,
        ),
        (
            r#"ARRAY['{"a": [1, 2]}'::jsonb, 'null'::jsonb, NULL]"#,
            r#"[{"a":[1,2]},null,null]"#,
        ),
    ])
    .await;
}
