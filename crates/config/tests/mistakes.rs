//! Each class of mistake in a pipeline file gives its own message, with the file, the key path
//! and the line. Text that is not YAML or JSON is a parse error (exit code 2), reported alone;
//! everything else is a validation error (1), every problem of the file reported at once.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

use std::time::Duration;

use cannectors_config::{ApiKeyLocation, Authentication, ConfigError, LoadedPipeline, parse_str};

fn env(name: &str) -> Option<String> {
    match name {
        "SOURCE_TOKEN" => Some("tok-123456".to_owned()),
        "TRICKY_PASSWORD" => Some("p#ss: 'w\"ord".to_owned()),
        "EMPTY" => Some(String::new()),
        "INJECTING_TOKEN" => Some("t0k\r\nX-Injected: 1".to_owned()),
        "SECRET_URL" => Some("ftp://admin:hunter22@files.internal/".to_owned()),
        "DATABASE_URL" => Some("postgres://app:pw-9876@127.0.0.1:5432/app".to_owned()),
        _ => None,
    }
}

fn load(yaml: &str) -> Result<LoadedPipeline, ConfigError> {
    parse_str(yaml, "pipeline.yaml", &env)
}

/// The message of a parse error (exit code 2).
fn parse_error(yaml: &str) -> String {
    match load(yaml) {
        Err(error) if error.is_parse_error() => error.to_string(),
        Err(error) => panic!("expected a parse error, got a validation error:\n{error}"),
        Ok(_) => panic!("expected a parse error, the pipeline loaded"),
    }
}

/// The rendered problems of a validation error (exit code 1), one a line.
fn invalid(yaml: &str) -> String {
    match load(yaml) {
        Err(error @ ConfigError::Invalid { .. }) => error.to_string(),
        Err(error) => panic!("expected a validation error, got:\n{error}"),
        Ok(_) => panic!("expected a validation error, the pipeline loaded"),
    }
}

fn assert_has(text: &str, needle: &str) {
    assert!(
        text.contains(needle),
        "expected to find\n  {needle}\nin\n  {text}"
    );
}

/// An httpPolling pipeline whose input ends with `extra` (lines indented by two spaces).
fn http_input(extra: &str) -> String {
    format!(
        "name: events\ninput:\n  type: httpPolling\n  endpoint: https://api.example.com/events\n\
         {extra}output: {{type: stdout}}\n"
    )
}

/// A database-input pipeline whose input ends with `extra`.
fn database_input(extra: &str) -> String {
    format!(
        "name: rows\ninput:\n  type: database\n  connectionStringRef: ${{DATABASE_URL}}\n\
         {extra}output: {{type: stdout}}\n"
    )
}

// ---- keys and types: every problem of the file in one pass (exit code 1) -----------------

#[test]
fn a_typo_a_missing_key_a_wrong_type_and_a_bad_cron_are_reported_together() {
    let yaml = "name: events\ninput:\n  type: httpPolling\n  schedule: \"*/10 * * *\"\n  \
                endpoint: https://api.example.com/events\n  dataFeild: events\n  \
                timeoutMs: soon\noutput: {type: file}\n";
    let err = load(yaml).unwrap_err();
    assert!(!err.is_parse_error());
    assert_eq!(
        err.to_string(),
        "pipeline.yaml: 4 problems\n  \
         pipeline.yaml:4:3: input.schedule: `*/10 * * *` is not a usable cron schedule: it has 4 \
         fields; write 5 fields `minute hour day-of-month month day-of-week` (e.g. `*/10 * * * *`) \
         or 6 with seconds first (e.g. `0 */10 * * * *`)\n  \
         pipeline.yaml:6:3: input.dataFeild: unknown key `dataFeild`; did you mean `dataField`?\n  \
         pipeline.yaml:7:3: input.timeoutMs: wrong type: found string \"soon\", expected a whole \
         number of 0 or more\n  \
         pipeline.yaml:8:1: output.path: missing key `path`"
    );
    let paths: Vec<String> = err.problems().into_iter().map(|p| p.key_path).collect();
    assert_eq!(
        paths,
        [
            "input.schedule",
            "input.dataFeild",
            "input.timeoutMs",
            "output.path"
        ]
    );
}

#[test]
fn unknown_key_names_its_key_path_line_and_the_key_it_most_likely_meant() {
    let message = invalid(&http_input(
        "  statePersistence:\n    id: {enabled: true, fild: id, queryParam: after}\n",
    ));
    assert_eq!(
        message,
        "pipeline.yaml:6:25: input.statePersistence.id.fild: unknown key `fild`; did you mean \
         `field`?"
    );
}

#[test]
fn an_unknown_key_far_from_every_known_one_lists_the_keys_of_its_block() {
    let message = invalid(&http_input(
        "  statePersistence:\n    id: {enabled: true, field: id, queryParam: after, colour: red}\n",
    ));
    assert_eq!(
        message,
        "pipeline.yaml:6:55: input.statePersistence.id.colour: unknown key `colour`; expected \
         one of `enabled`, `field`, `queryParam`"
    );
}

#[test]
fn near_misses_in_another_case_or_spelling_are_suggested() {
    assert_has(
        &invalid(&http_input("  datafield: events\n")),
        "pipeline.yaml:5:3: input.datafield: unknown key `datafield`; did you mean `dataField`?",
    );
    assert_has(
        &invalid(&http_input("  timeout: 5000\n")),
        "input.timeout: unknown key `timeout`; did you mean `timeoutMs`?",
    );
    assert_has(
        &invalid(&http_input(
            "  authentication: {type: basic, credentials: {user: me, password: pw}}\n",
        )),
        "input.authentication.credentials.user: unknown key `user`; did you mean `username`?",
    );
    // Only a key of that block is suggested, and only one not written already.
    assert_has(
        &invalid(&http_input(
            "  statePersistence:\n    storagePath: a\n    storagepath: b\n",
        )),
        "input.statePersistence.storagepath: unknown key `storagepath`; did you mean `store`?",
    );
}

#[test]
fn a_near_miss_key_is_checked_as_the_key_it_meant() {
    // The value of the misspelt key is checked, and reported at the key as written; the key it
    // meant is not also reported as missing.
    let message = invalid(
        &http_input("").replace("  endpoint:", "  endpont:").replace(
            "https://api.example.com/events",
            "ftp://files.example.com/events",
        ),
    );
    assert_eq!(
        message,
        "pipeline.yaml: 2 problems\n  \
         pipeline.yaml:4:3: input.endpont: unknown key `endpont`; did you mean `endpoint`?\n  \
         pipeline.yaml:4:3: input.endpont: `ftp://files.example.com/events` uses the scheme \
         `ftp`; write an http:// or https:// URL such as https://api.example.com/v1/items"
    );
    // A misspelt block is walked too.
    let message = invalid(&http_input(
        "  retyr: {maxAtempts: 0, delayMs: 10, maxDelayMs: 5}\n",
    ));
    assert_has(
        &message,
        "pipeline.yaml:5:3: input.retyr: unknown key `retyr`; did you mean `retry`?",
    );
    assert_has(
        &message,
        "pipeline.yaml:5:11: input.retyr.maxAtempts: unknown key `maxAtempts`; did you mean \
         `maxAttempts`?",
    );
    assert_has(
        &message,
        "input.retyr.maxDelayMs: maxDelayMs (5) is below delayMs (10)",
    );
}

#[test]
fn unknown_top_level_key_is_an_error_too() {
    let message = invalid(
        "name: a\nnmae: b\ninput: {type: httpPolling, endpoint: https://a.example.com}\noutput: {type: stdout}\n",
    );
    assert_has(
        &message,
        "pipeline.yaml:2:1: nmae: unknown key `nmae`; expected one of `name`,",
    );
}

#[test]
fn wrong_type_names_the_key_and_what_was_expected() {
    let message = invalid(&http_input("  timeoutMs: soon\n"));
    assert_eq!(
        message,
        "pipeline.yaml:5:3: input.timeoutMs: wrong type: found string \"soon\", expected a whole \
         number of 0 or more"
    );
    let message = invalid(&http_input("  retry: 5\n"));
    assert_has(
        &message,
        "input.retry: wrong type: found integer `5`, expected a mapping",
    );
}

#[test]
fn every_wrong_value_is_reported_and_the_rules_still_run_on_the_rest() {
    // A refused value takes its default for the rules, and what the rules would say about
    // that default is left out.
    let yaml = http_input(
        "  timeoutMs: soon\n  retry: {maxAttempts: many, delayMs: 10, maxDelayMs: 5}\n  \
         method: POTS\n  dataField: data..items\n",
    );
    let message = invalid(&yaml);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "pipeline.yaml: 5 problems", "{message}");
    assert_has(
        lines[1],
        "pipeline.yaml:5:3: input.timeoutMs: wrong type: found string",
    );
    assert_has(
        lines[2],
        "pipeline.yaml:6:11: input.retry.maxAttempts: wrong type: found string \"many\"",
    );
    assert_has(
        lines[3],
        "pipeline.yaml:6:43: input.retry.maxDelayMs: maxDelayMs (5) is below delayMs (10)",
    );
    assert_has(
        lines[4],
        "pipeline.yaml:7:3: input.method: unknown value `POTS`; did you mean `POST`?",
    );
    assert_has(
        lines[5],
        "pipeline.yaml:8:3: input.dataField: `data..items` is not a dot path",
    );
}

#[test]
fn missing_key_is_reported_where_it_belongs() {
    let message = invalid("name: a\ninput:\n  type: httpPolling\noutput: {type: stdout}\n");
    assert_eq!(
        message,
        "pipeline.yaml:2:1: input.endpoint: missing key `endpoint`"
    );
    let message =
        invalid("name: a\ninput: {endpoint: https://a.example.com}\noutput: {type: stdout}\n");
    assert_has(
        &message,
        "input.type: missing key `type`: the input type, one of `httpPolling`, `database`",
    );
    // Everything a pipeline needs, at once.
    assert_eq!(
        invalid("description: nothing yet\n"),
        "pipeline.yaml: 3 problems\n  \
         pipeline.yaml:1:1: name: missing key `name`\n  \
         pipeline.yaml:1:1: input: missing key `input`\n  \
         pipeline.yaml:1:1: output: missing key `output`"
    );
}

#[test]
fn unknown_input_and_output_types_list_the_known_ones() {
    let message = invalid("name: a\ninput: {type: ftp}\noutput: {type: stdout}\n");
    assert_has(
        &message,
        "pipeline.yaml:2:9: input.type: unknown input type `ftp`",
    );
    let message = invalid(&http_input("").replace("{type: stdout}", "{type: kafka}"));
    assert_has(
        &message,
        "output.type: unknown output type `kafka`; expected one of `stdout`, `file`, \
         `httpRequest`, `database`",
    );
}

#[test]
fn a_near_miss_type_is_suggested_and_its_block_checked_as_that_type() {
    let message = invalid(
        &http_input("  timeoutMs: soon\n").replace("type: httpPolling", "type: httpPoling"),
    );
    assert_eq!(
        message,
        "pipeline.yaml: 2 problems\n  \
         pipeline.yaml:3:3: input.type: unknown input type `httpPoling`; did you mean \
         `httpPolling`?\n  \
         pipeline.yaml:5:3: input.timeoutMs: wrong type: found string \"soon\", expected a whole \
         number of 0 or more"
    );
}

#[test]
fn the_rules_of_a_block_still_run_when_one_of_its_keys_is_missing() {
    // A missing `endpoint` gets a placeholder the block as written reads, so validation still
    // builds the settings of the rest of the block and reports what is wrong there; what it
    // would say of the placeholder itself (not a URL) is left out.
    let yaml = "name: events\ninput:\n  type: httpPolling\n  schedule: \"*/10 * * *\"\n  \
                dataField: data..items\n  statePersistence:\n    id: {field: id}\n\
                output:\n  type: httpRequest\n  batchSize: 0\n";
    let err = load(yaml).unwrap_err();
    let found: Vec<(String, String)> = err
        .problems()
        .into_iter()
        .map(|p| (p.key_path, p.message))
        .collect();
    let paths: Vec<&str> = found.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "input.endpoint",
            "input.schedule",
            "input.dataField",
            "input.statePersistence.id.queryParam",
            "output.endpoint",
            "output.batchSize"
        ],
        "{err}"
    );
    assert_eq!(found[0].1, "missing key `endpoint`");
    assert!(
        found[1].1.contains("is not a usable cron schedule"),
        "{err}"
    );
    assert!(found[2].1.contains("is not a dot path"), "{err}");
    assert!(
        found[3]
            .1
            .starts_with("the id cursor is never sent to the API"),
        "{err}"
    );
    assert_eq!(found[4].1, "missing key `endpoint`");
    assert_eq!(found[5].1, "batchSize must be more than 0");
}

#[test]
fn a_block_of_unknown_type_is_skipped_and_the_rest_of_the_file_still_checked() {
    let message =
        invalid("name: 'bad name'\ninput: {type: ftp, host: x}\noutput: {type: file, pth: a}\n");
    assert_eq!(
        message,
        "pipeline.yaml: 3 problems\n  \
         pipeline.yaml:1:1: name: `bad name` is not a valid pipeline name: it names the state \
         file, so use letters, digits, `.`, `_` and `-`, starting with a letter or digit (e.g. \
         events-sync)\n  \
         pipeline.yaml:2:9: input.type: unknown input type `ftp`; expected one of \
         `httpPolling`, `database`\n  \
         pipeline.yaml:3:22: output.pth: unknown key `pth`; did you mean `path`?"
    );
}

#[test]
fn a_key_of_another_output_type_is_unknown() {
    let message =
        invalid(&http_input("").replace("{type: stdout}", "{type: stdout, path: x.jsonl}"));
    assert_has(
        &message,
        "output.path: unknown key `path`; expected `batchSize`",
    );
}

#[test]
fn a_wrong_name_of_a_fixed_set_says_which_names_there_are() {
    assert_has(
        &invalid(&http_input("  method: 5\n")),
        "pipeline.yaml:5:3: input.method: wrong type: found a number, expected `GET` or `POST`",
    );
    assert_has(
        &invalid(&http_input("  pagination: {type: pages}\n")),
        "input.pagination.type: unknown value `pages`; did you mean `page`?",
    );
    assert_has(
        &invalid(&http_input("  pagination: {type: scroll}\n")),
        "input.pagination.type: unknown value `scroll`; expected one of `page`, `offset`, \
         `cursor`, `link`",
    );
}

#[test]
fn names_written_in_another_case_are_suggested() {
    assert_has(
        &invalid(&http_input(
            "  authentication: {type: Bearer, credentials: {token: t}}\n",
        )),
        "input.authentication.type: unknown value `Bearer`; did you mean `bearer`?",
    );
    assert_has(
        &invalid(&database_input("  driver: Postgres\n  query: select 1\n")),
        "input.driver: unknown value `Postgres`; did you mean `postgres`?",
    );
}

#[test]
fn wrong_types_in_lists_are_reported_at_their_index() {
    let message = invalid(&http_input("").replace(
        "output: {type: stdout}",
        "filters: [set, {target: x}]\noutput: {type: httpRequest, endpoint: \"https://a.example.com\", \
         success: {statusCodes: [200, 70000]}}",
    ));
    assert_eq!(
        message,
        "pipeline.yaml: 3 problems\n  \
         pipeline.yaml:5:11: filters[0]: expected a mapping with a `type` (`set`, `remove`, \
         `mapping`, `condition`, `drop`), found text\n  \
         pipeline.yaml:5:16: filters[1].type: missing key `type`: the filter type, one of `set`, \
         `remove`, `mapping`, `condition`, `drop`\n  \
         pipeline.yaml:6:93: output.success.statusCodes[1]: wrong value: found integer `70000`, \
         expected a whole number from 0 to 65535"
    );
}

#[test]
fn a_file_with_very_many_wrong_values_is_reported_in_part_and_promptly() {
    let many = vec!["state.cursor"; 150].join(", ");
    let started = std::time::Instant::now();
    let err = load(&database_input(&format!(
        "  query: select 1\n  parameters: [{many}]\n"
    )))
    .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let problems = err.problems();
    assert_eq!(problems.len(), 101);
    assert_eq!(problems[0].key_path, "input.parameters[0]");
    assert_eq!(problems[99].key_path, "input.parameters[99]");
    assert_eq!(problems[100].key_path, "input.parameters[100]");
    assert_eq!(
        problems[100].message,
        "checking stopped here, after 100 values that do not fit; correct those and validate again"
    );
}

#[test]
fn an_empty_file_says_what_a_pipeline_needs() {
    assert_eq!(
        invalid(""),
        "pipeline.yaml:1:1: the file holds nothing (null), but a pipeline is a mapping with the \
         keys name, input and output"
    );
}

#[test]
fn a_bad_parameter_expression_is_reported_at_its_index_with_the_other_problems() {
    let message = invalid(&database_input(
        "  query: select $1\n  parameters: [state.cursor, 10]\n  statementTimeoutMs: 0\n",
    ));
    assert_has(
        &message,
        "pipeline.yaml:6:16: input.parameters[0]: cannot read `state.cursor` as a value",
    );
    assert_has(
        &message,
        "input.parameters: the query uses $1 but `parameters` lists 2 values",
    );
    assert_has(
        &message,
        "pipeline.yaml:7:3: input.statementTimeoutMs: statementTimeoutMs must be more than 0",
    );
}

// ---- parse errors: text that is not YAML or JSON (exit code 2) -----------------------------

#[test]
fn text_that_is_not_yaml_is_reported_with_its_position() {
    let message = parse_error("name: a\ninput: [\n");
    assert_eq!(
        message,
        "pipeline.yaml:3:1: not valid YAML: did not find expected node content"
    );
}

#[test]
fn common_yaml_slips_get_a_hint() {
    let message = parse_error(&http_input("  schedule: */10 * * * *\n"));
    assert_eq!(
        message,
        "pipeline.yaml:5:14: not valid YAML: did not find expected alphabetic or numeric \
         character; a value starting with `*` reads as a YAML alias; quote it, e.g. schedule: \
         \"*/10 * * * *\""
    );
    let message = parse_error(&http_input(
        "  headers: {Authorization: Bearer {{state.id}}}\n",
    ));
    assert_has(
        &message,
        "a value holding a {{...}} template must be quoted",
    );
}

const TOO_DEEP: &str = "lists and mappings are nested more than 64 levels deep here; a \
                        pipeline needs far fewer: look for a `[` or `{` that is never closed";

/// The parse error of `text` read as the file `origin`.
fn parse_error_of(text: &str, origin: &str) -> String {
    match parse_str(text, origin, &env) {
        Err(error) if error.is_parse_error() => error.to_string(),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn deep_nesting_is_refused_at_the_level_past_the_limit_without_reading_further() {
    let many = 100_000;
    // The root mapping is the first level; the column is that of the bracket that opens the
    // 65th level or the 66th (a count of brackets alone, for a text read ahead over its brackets).
    for (open, levels) in [("[", 65), ("{", 65), ("{a: ", 64), ("[a, ", 65)] {
        let text = format!("name: x\ninput: {}", open.repeat(many));
        let column = "input: ".len() + (levels - 1) * open.len() + 1;
        assert_eq!(
            parse_error_of(&text, "pipeline.yaml"),
            format!("pipeline.yaml:2:{column}: {TOO_DEEP}"),
            "{open}"
        );
    }
    for (open, levels) in [("[", 64), ("{\"a\": ", 64)] {
        let text = format!("{{\"name\": \"x\", \"input\": {}", open.repeat(many));
        let column = "{\"name\": \"x\", \"input\": ".len() + (levels - 1) * open.len() + 1;
        assert_eq!(
            parse_error_of(&text, "pipeline.json"),
            format!("pipeline.json:1:{column}: {TOO_DEEP}"),
            "{open}"
        );
    }
    // Closed brackets, block lists, and a second document (which serde_yaml reads before
    // refusing it) are measured too.
    let closed = format!("name: x\ninput: {}{}\n", "[".repeat(70), "]".repeat(70));
    assert_eq!(
        parse_error_of(&closed, "pipeline.yaml"),
        format!("pipeline.yaml:2:71: {TOO_DEEP}")
    );
    let block = format!("name: x\ninput:\n{}a\n", "- ".repeat(many));
    assert_eq!(
        parse_error_of(&block, "pipeline.yaml"),
        format!("pipeline.yaml:3:127: {TOO_DEEP}")
    );
    let second = format!("name: x\n---\n{}", "[".repeat(many));
    assert_eq!(
        parse_error_of(&second, "pipeline.yaml"),
        format!("pipeline.yaml:3:65: {TOO_DEEP}")
    );
}

#[test]
fn deep_brackets_after_a_mistake_the_event_parser_stops_at_are_not_read_further() {
    // serde_yaml takes a tab after `name:`, and would then spend minutes on the brackets.
    let text = format!("name:\tx\ninput: {}", "[".repeat(100_000));
    assert_eq!(
        parse_error_of(&text, "pipeline.yaml"),
        "pipeline.yaml:1:7: not valid YAML: ':' must be followed by a valid YAML whitespace"
    );
}

const TOO_MANY_ALIASES: &str = "the aliases (`*name`) of this file stand for more than 10000 \
                                values in all; a pipeline needs far fewer: write large blocks \
                                out once instead of repeating their aliases";

#[test]
fn aliases_standing_for_too_many_values_are_refused_before_they_are_built() {
    // Six lines that would stand for a million values.
    let mut laughs = String::from("name: x\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..=5 {
        let previous = format!("*l{}", level - 1);
        laughs.push_str(&format!(
            "l{level}: &l{level} [{}]\n",
            [previous.as_str(); 10].join(", ")
        ));
    }
    assert_eq!(
        parse_error(&laughs),
        format!("pipeline.yaml:5:45: {TOO_MANY_ALIASES}")
    );
    // A 30 kB file of 6,000 aliases of a list of 6,000 values.
    let wide = format!(
        "name: x\na: &a [{}]\nb: [{}]\n",
        "1,".repeat(6000),
        "*a,".repeat(6000)
    );
    assert_eq!(
        parse_error(&wide),
        format!("pipeline.yaml:3:8: {TOO_MANY_ALIASES}")
    );
}

#[test]
fn shared_blocks_still_load() {
    let shared = http_input(
        "  headers: &common {X-Team: data, X-Env: prod}\n  queryParams:\n    <<: *common\n    \
         since: x\n",
    );
    let loaded = load(&shared).unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
        panic!("an httpPolling input");
    };
    assert_eq!(input.query_params.len(), 3, "{:?}", input.query_params);
}

#[test]
fn ordinary_nesting_still_loads() {
    let body = format!("{}1{}", "{a: ".repeat(60), "}".repeat(60));
    let loaded = load(&http_input(&format!("  method: POST\n  body: {body}\n"))).unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
        panic!("an httpPolling input");
    };
    let Some(cannectors_config::SourceBody::Json(body)) = &input.body else {
        panic!("a JSON body");
    };
    let json = body.as_written().to_string();
    assert_eq!(json, format!("{}1{}", "{\"a\":".repeat(60), "}".repeat(60)));
}

#[test]
fn a_key_written_twice_is_reported_at_the_second_one() {
    let message = parse_error("name: a\ninput: {}\nname: b\n");
    assert_eq!(
        message,
        "pipeline.yaml:3:1: name: the key `name` is written twice in the same mapping (first at \
         line 1); keep one"
    );
}

#[test]
fn json_files_are_read_with_json_messages() {
    let json = r#"{"name": "a", "input": {"type": "httpPolling", "endpoint": "https://a.example.com"},
 "output": {"type": "stdout"}}"#;
    let loaded = parse_str(json, "pipeline.json", &env).unwrap();
    assert_eq!(loaded.pipeline.name, "a");

    let err = parse_str("{\"name\": }", "pipeline.json", &env).unwrap_err();
    assert!(err.is_parse_error());
    assert_eq!(
        err.to_string(),
        "pipeline.json:1:10: not valid JSON: expected value"
    );

    let err = parse_str(
        &json.replace("\"https://a.example.com\"", "3"),
        "pipeline.json",
        &env,
    )
    .unwrap_err();
    assert!(!err.is_parse_error());
    assert_eq!(
        err.to_string(),
        "pipeline.json:1:48: input.endpoint: wrong type: found integer `3`, expected a string"
    );
}

// ---- variables -----------------------------------------------------------------------------

#[test]
fn a_missing_variable_names_the_variable_and_the_key_path() {
    let yaml =
        http_input("  authentication: {type: bearer, credentials: {token: \"${API_TOKEN}\"}}\n");
    let message = invalid(&yaml);
    assert_eq!(
        message,
        "pipeline.yaml:5:48: input.authentication.credentials.token: the environment variable \
         `API_TOKEN` is not set; set it, or give a default with `${API_TOKEN:-default}`"
    );
    assert!(!load(&yaml).unwrap_err().is_parse_error());
}

#[test]
fn values_from_variables_are_never_read_as_yaml() {
    let loaded = load(&http_input(
        "  authentication: {type: basic, credentials: {username: me, password: \"${TRICKY_PASSWORD}\"}}\n",
    ))
    .unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
        panic!("expected an httpPolling input")
    };
    let Some(Authentication::Basic(credentials)) = &input.authentication else {
        panic!("expected basic authentication")
    };
    assert_eq!(credentials.password(), "p#ss: 'w\"ord");
}

#[test]
fn defaults_and_the_dollar_escape_work() {
    let loaded = load(&http_input(
        "  headers:\n    X-Region: ${REGION:-eu-west}\n    X-Empty: ${EMPTY:-fallback}\n    X-Literal: $${NOT_A_VAR}\n",
    ))
    .unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
        panic!("expected an httpPolling input")
    };
    assert_eq!(input.headers["X-Region"].to_string(), "eu-west");
    assert_eq!(input.headers["X-Empty"].to_string(), "fallback");
    assert_eq!(input.headers["X-Literal"].to_string(), "${NOT_A_VAR}");
    assert!(
        loaded.secrets.is_empty(),
        "defaults are written in the file, not secrets"
    );
}

#[test]
fn secrets_from_variables_are_kept_out_of_error_messages() {
    let message =
        invalid(&http_input("").replace("https://api.example.com/events", "${SECRET_URL}"));
    assert_has(
        &message,
        "input.endpoint: `${SECRET_URL}` uses the scheme `ftp`",
    );
    assert!(!message.contains("hunter22"), "{message}");
}

#[test]
fn loaded_pipelines_redact_substituted_values() {
    let loaded = load(&http_input(
        "  authentication: {type: bearer, credentials: {token: \"${SOURCE_TOKEN}\"}}\n",
    ))
    .unwrap();
    assert_eq!(
        loaded.redact("GET with tok-123456 failed"),
        "GET with ${SOURCE_TOKEN} failed"
    );
}

// ---- validation: rules across keys ---------------------------------------------------------

#[test]
fn every_validation_problem_of_a_file_is_reported_in_file_order() {
    let yaml = "name: 'bad name'\ninput:\n  type: httpPolling\n  schedule: every minute\n  \
                endpoint: ftp://x\n  statePersistence:\n    id: {enabled: true, queryParam: a}\n\
                filters: [{type: set, value: 1}, {type: explode}]\noutput: {type: stdout}\n";
    let message = invalid(yaml);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "pipeline.yaml: 6 problems");
    assert_has(
        lines[1],
        "pipeline.yaml:1:1: name: `bad name` is not a valid pipeline name",
    );
    assert_has(lines[2], "pipeline.yaml:4:3: input.schedule:");
    assert_has(lines[3], "pipeline.yaml:5:3: input.endpoint:");
    assert_has(
        lines[4],
        "pipeline.yaml:7:5: input.statePersistence.id.field:",
    );
    assert_has(lines[5], "pipeline.yaml:8:11: filters[0].target:");
    assert_has(lines[6], "pipeline.yaml:8:35: filters[1].type:");
    let err = load(yaml).unwrap_err();
    assert_eq!(err.problems().len(), 6);
    assert_eq!(
        err.problems()[3].key_path,
        "input.statePersistence.id.field"
    );
}

#[test]
fn a_whole_number_version_is_text_and_a_decimal_one_must_be_quoted() {
    let loaded = load(&http_input("").replace("name: events", "name: events\nversion: 2")).unwrap();
    assert_eq!(loaded.pipeline.version.as_deref(), Some("2"));
    let message = invalid(&http_input("").replace("name: events", "name: events\nversion: 1.10"));
    assert_has(
        &message,
        "pipeline.yaml:2:1: version: YAML reads this version as the number 1.1; quote it",
    );
}

#[test]
fn pipeline_names_are_limited_to_file_name_characters() {
    assert!(load(&http_input("").replace("events", "events.v2_b-c")).is_ok());
    assert_has(
        &invalid(&http_input("").replace("name: events", "name: ../x")),
        "`../x` is not a valid pipeline name",
    );
    assert_has(
        &invalid(&http_input("").replace("name: events", "name: -x")),
        "starting with a letter or digit",
    );
}

#[test]
fn a_pipeline_name_too_long_for_its_state_files_is_refused_with_the_limit() {
    let longest = "n".repeat(cannectors_state::MAX_NAME_LEN);
    assert_eq!(longest.len(), 246);
    let loaded = load(&http_input("").replace("name: events", &format!("name: {longest}")));
    assert_eq!(loaded.unwrap().pipeline.name, longest);
    for length in [247, 250, 1000] {
        let name = "n".repeat(length);
        let message = invalid(&http_input("").replace("name: events", &format!("name: {name}")));
        assert_eq!(
            message,
            format!(
                "pipeline.yaml:1:1: name: the pipeline name is {length} characters long, but at \
                 most 246 are allowed: it names the state files (the longest is \
                 `<name>.json.tmp`) and a file name may have at most 255 bytes; shorten the name"
            )
        );
    }
}

#[test]
fn a_bad_cron_schedule_is_rejected_with_the_accepted_forms() {
    let message = invalid(&http_input("  schedule: \"*/10 * * *\"\n"));
    assert_eq!(
        message,
        "pipeline.yaml:5:3: input.schedule: `*/10 * * *` is not a usable cron schedule: it has 4 \
         fields; write 5 fields `minute hour day-of-month month day-of-week` (e.g. `*/10 * * * *`) \
         or 6 with seconds first (e.g. `0 */10 * * * *`)"
    );
    assert_has(
        &invalid(&http_input("  schedule: \"0 0 0 1 1 * 2030\"\n")),
        "a 7th (year) field is not supported",
    );
    assert_has(
        &invalid(&http_input("  schedule: \"0 25 * * *\"\n")),
        "`0 25 * * *` is not a usable cron schedule",
    );
    assert!(load(&http_input("  schedule: \"30 */10 * * * *\"\n")).is_ok());
}

#[test]
fn a_timezone_must_be_an_iana_name() {
    assert!(
        load(&http_input(
            "  schedule: \"0 3 * * *\"\n  timezone: Europe/Paris\n"
        ))
        .is_ok()
    );
    assert_eq!(
        invalid(&http_input("  timezone: Mars/Olympus\n")),
        "pipeline.yaml:5:3: input.timezone: `Mars/Olympus` is not an IANA time zone name; write \
         e.g. Europe/Paris or UTC"
    );
    // Both keys of a database input, each at its own line, in one pass.
    assert_eq!(
        invalid(&database_input(
            "  query: SELECT 1\n  schedule: every minute\n  timezone: Europe/Atlantis\n"
        )),
        "pipeline.yaml: 2 problems\n  \
         pipeline.yaml:6:3: input.schedule: `every minute` is not a usable cron schedule: it has \
         2 fields; write 5 fields `minute hour day-of-month month day-of-week` (e.g. \
         `*/10 * * * *`) or 6 with seconds first (e.g. `0 */10 * * * *`)\n  \
         pipeline.yaml:7:3: input.timezone: `Europe/Atlantis` is not an IANA time zone name; \
         write e.g. Europe/Paris or UTC"
    );
}

#[test]
fn a_loaded_schedule_is_parsed_in_its_time_zone() {
    let loaded = load(&database_input(
        "  query: SELECT 1\n  schedule: \" 0 9 * * 1-5 \"\n  timezone: America/New_York\n",
    ))
    .unwrap();
    let schedule = loaded.pipeline.input.schedule().unwrap();
    assert_eq!(schedule.expression(), "0 9 * * 1-5");
    assert_eq!(schedule.normalized(), "0 0 9 * * 2,3,4,5,6");
    assert_eq!(schedule.zone(), chrono_tz::America::New_York);
    let utc = load(&http_input("  schedule: \"@midnight\"\n")).unwrap();
    let schedule = utc.pipeline.input.schedule().unwrap();
    assert_eq!(
        (schedule.normalized(), schedule.zone()),
        ("@daily", chrono_tz::UTC)
    );
    let once = load(&http_input("")).unwrap();
    assert!(once.pipeline.input.schedule().is_none());
}

#[test]
fn endpoints_must_be_http_urls_with_a_host() {
    let with = |url: &str| http_input("").replace("https://api.example.com/events", url);
    assert_has(
        &invalid(&with("ftp://files.example.com/x")),
        "input.endpoint: `ftp://files.example.com/x` uses the scheme `ftp`; write an http:// or https:// URL",
    );
    assert_has(
        &invalid(&with("api.example.com/events")),
        "input.endpoint: `api.example.com/events` is not a URL (relative URL without a base)",
    );
    assert_has(
        &invalid(&with("\"http://?page=1\"")),
        "is not a URL (empty host)",
    );
}

#[test]
fn state_templates_are_allowed_in_the_input_only() {
    let yaml = http_input("  statePersistence:\n    id: {field: id}\n")
        .replace("/events", "/events/after/{{state.id}}");
    assert!(
        load(&yaml).is_ok(),
        "{:?}",
        load(&yaml).err().map(|e| e.to_string())
    );
    assert_has(
        &invalid(&http_input("").replace("/events", "/events?x={{state.cursor}}")),
        "input.endpoint: `{{state.cursor}}` names no cursor",
    );
    assert_has(
        &invalid(&http_input("").replace("/events", "/events/{{record.id}}")),
        "input.endpoint: {{record.*}} is filled only in the endpoint of an httpRequest output with `requestMode: single`",
    );
}

#[test]
fn record_templates_need_single_request_mode() {
    let output = |mode: &str| {
        http_input("").replace(
            "{type: stdout}",
            &format!("{{type: httpRequest, requestMode: {mode}, endpoint: \"https://crm.example.com/c/{{{{record.customer.id}}}}\"}}"),
        )
    };
    assert!(load(&output("single")).is_ok());
    assert_has(
        &invalid(&output("batch")),
        "output.endpoint: {{record.*}} is filled only",
    );
    let state_in_output = http_input("").replace(
        "{type: stdout}",
        "{type: httpRequest, endpoint: \"https://crm.example.com/?since={{state.timestamp}}\"}",
    );
    assert_has(
        &invalid(&state_in_output),
        "output.endpoint: {{state.*}} is filled only in an httpPolling input",
    );
}

#[test]
fn an_enabled_cursor_needs_a_field() {
    // httpPolling, as in the Go tool: without `field` the timestamp is the start of the last
    // successful run.
    let loaded = load(&http_input(
        "  statePersistence:\n    timestamp: {enabled: true, queryParam: since}\n",
    ))
    .unwrap();
    assert!(
        loaded
            .pipeline
            .input
            .state_persistence()
            .unwrap()
            .timestamp_is_run_start()
    );
    let message = invalid(&database_input(
        "  query: select $1\n  statePersistence:\n    timestamp: {enabled: true}\n",
    ));
    assert_eq!(
        message,
        "pipeline.yaml:7:5: input.statePersistence.timestamp.field: an enabled timestamp cursor \
         needs `field`, the dot path of the timestamp in each record (e.g. `updated_at`), or \
         `enabled: false`"
    );
    assert!(
        load(&http_input(
            "  statePersistence:\n    timestamp: {enabled: false}\n"
        ))
        .is_ok()
    );
    assert_has(
        &invalid(&database_input(
            "  query: select 1\n  statePersistence:\n    id: {enabled: true}\n",
        )),
        "input.statePersistence.id.field: an enabled id cursor needs `field`",
    );
    assert_has(
        &invalid(&http_input(
            "  statePersistence:\n    id: {field: a..b, queryParam: x}\n",
        )),
        "input.statePersistence.id.field: `a..b` is not a dot path",
    );
}

#[test]
fn an_http_cursor_must_reach_the_request() {
    let message = invalid(&http_input("  statePersistence:\n    id: {field: id}\n"));
    assert_has(
        &message,
        "input.statePersistence.id.queryParam: the id cursor is never sent to the API, so every \
         run would read everything again: set `queryParam`, or use {{state.id}}",
    );
    let templated = http_input(
        "  method: POST\n  body: {filter: {since: \"{{state.timestamp}}\"}}\n  statePersistence:\n    timestamp: {field: ts}\n",
    );
    assert!(load(&templated).is_ok());
    let offset = http_input("  statePersistence:\n    offset: {enabled: true}\n");
    assert_has(
        &invalid(&offset),
        "the offset cursor is never sent to the API: use `pagination: {type: offset}`",
    );
    let paged = http_input(
        "  pagination: {type: offset, param: offset, limit: 100}\n  statePersistence:\n    offset: {enabled: true}\n",
    );
    assert!(load(&paged).is_ok());
}

#[test]
fn a_body_needs_post() {
    assert_has(
        &invalid(&http_input("  body: {a: 1}\n")),
        "input.body: a body is sent only with `method: POST`",
    );
}

#[test]
fn timestamp_formats_are_known_names_or_strftime_patterns() {
    let with = |format: &str| {
        http_input(&format!(
            "  statePersistence:\n    timestamp: {{field: ts, queryParam: since, format: \"{format}\"}}\n"
        ))
    };
    for good in ["rfc3339", "unix", "unix_ms", "%Y-%m-%d %H:%M:%S"] {
        assert!(load(&with(good)).is_ok(), "{good}");
    }
    assert_has(
        &invalid(&with("iso")),
        "input.statePersistence.timestamp.format: `iso` is not a timestamp format",
    );
    assert_has(
        &invalid(&with("%Y-%Q")),
        "`%Y-%Q` is not a strftime pattern chrono accepts",
    );
}

#[test]
fn pagination_settings_must_fit_their_type() {
    let with = |pagination: &str| http_input(&format!("  pagination: {pagination}\n"));
    assert!(
        load(&with(
            "{type: offset, param: offset, limit: 50, limitParam: limit, totalField: meta.total}"
        ))
        .is_ok()
    );
    assert!(
        load(&with(
            "{type: page, param: page, totalPagesField: pages, startPage: 0}"
        ))
        .is_ok()
    );
    assert!(load(&with("{type: cursor, param: after, nextCursorField: next}")).is_ok());
    assert!(load(&with("{type: link}")).is_ok());

    // `param` defaults to the kind's name, and an offset advances by the records of a page.
    assert!(load(&with("{type: offset}")).is_ok());
    assert!(load(&with("{type: page}")).is_ok());
    assert_has(
        &invalid(&with("{type: cursor, param: c}")),
        "input.pagination.nextCursorField: cursor pagination needs `nextCursorField`",
    );
    assert_has(
        &invalid(&with("{type: page, param: p, totalField: total}")),
        "input.pagination.totalField: `totalField` does not apply to page pagination, which takes `param`, `pageParam`, `limitParam`, `limit`, `totalPagesField`, `startPage`, `maxPages`",
    );
    assert_has(
        &invalid(&with("{type: link, param: p}")),
        "`param` does not apply to link pagination",
    );
    assert_has(
        &invalid(&with("{type: link, maxPages: 0}")),
        "input.pagination.maxPages: `maxPages` must be more than 0",
    );
    assert_has(
        &invalid(&with("{type: page, param: p, limitParam: size}")),
        "limitParam needs `limit`",
    );
}

#[test]
fn credentials_must_fit_the_authentication_type() {
    let with = |auth: &str| http_input(&format!("  authentication: {auth}\n"));
    assert!(
        load(&with(
            "{type: api-key, credentials: {key: k, location: query, paramName: key}}"
        ))
        .is_ok()
    );
    // Some APIs take a key as the user name and no password.
    assert!(
        load(&with(
            "{type: basic, credentials: {username: key_1, password: \"\"}}"
        ))
        .is_ok()
    );
    assert!(load(&with("{type: oauth2, credentials: {tokenUrl: \"https://auth.example.com/token\", clientId: c, clientSecret: s, scopes: [read]}}")).is_ok());

    assert_has(
        &invalid(&with("{type: bearer, credentials: {}}")),
        "input.authentication.credentials.token: bearer authentication needs `credentials.token`",
    );
    assert_has(
        &invalid(&with("{type: basic, credentials: {username: u}}")),
        "credentials.password: basic authentication needs `credentials.password`",
    );
    assert_has(
        &invalid(&with(
            "{type: bearer, credentials: {token: t, username: u}}",
        )),
        "input.authentication.credentials.username: `username` does not apply to bearer authentication, which takes `token`",
    );
    assert_has(
        &invalid(&with(
            "{type: oauth2, credentials: {tokenUrl: \"auth/token\", clientId: c, clientSecret: s}}",
        )),
        "credentials.tokenUrl: `auth/token` is not a URL",
    );
    assert_has(
        &invalid(&with("{type: bearer, credentials: {token: \"${EMPTY}\"}}")),
        "`credentials.token` is empty (an unset or empty variable?)",
    );
    assert_has(
        &invalid(&with(
            "{type: api-key, credentials: {key: k, paramName: key}}",
        )),
        "paramName applies to `location: query`",
    );
}

#[test]
fn oauth2_takes_the_go_tools_scope_string_and_a_token_auth_method() {
    let with = |credentials: &str| {
        http_input(&format!(
            "  authentication: {{type: oauth2, credentials: {{tokenUrl: \"https://auth.example.com/token\", \
             clientId: c, clientSecret: s, {credentials}}}}}\n"
        ))
    };
    let oauth2 = |credentials: &str| {
        let loaded = load(&with(credentials)).unwrap();
        let cannectors_config::InputConfig::HttpPolling(input) = loaded.pipeline.input else {
            panic!("expected an httpPolling input")
        };
        match input.authentication {
            Some(cannectors_config::Authentication::OAuth2(credentials)) => credentials,
            other => panic!("expected oauth2, got {other:?}"),
        }
    };
    let go = oauth2("scope: \"read  write\"");
    assert_eq!(go.scopes(), ["read", "write"]);
    // The Go tool sends the id and secret in the form body, and so does this one by default.
    assert_eq!(
        go.token_auth_method(),
        cannectors_config::TokenAuthMethod::ClientSecretPost
    );
    assert_eq!(
        oauth2("tokenAuthMethod: client_secret_basic").token_auth_method(),
        cannectors_config::TokenAuthMethod::ClientSecretBasic
    );
    assert_has(
        &invalid(&with("scope: read, scopes: [write]")),
        "input.authentication.credentials.scope: `scope` and `scopes` are both set; keep one",
    );
    assert_has(
        &invalid(&with("tokenAuthMethod: private_key_jwt")),
        "input.authentication.credentials.tokenAuthMethod: unknown value `private_key_jwt`; expected \
         `client_secret_post` or `client_secret_basic`",
    );
    assert_has(
        &invalid(&http_input(
            "  authentication: {type: bearer, credentials: {token: t, tokenAuthMethod: client_secret_post}}\n",
        )),
        "`tokenAuthMethod` does not apply to bearer authentication, which takes `token`",
    );
}

#[test]
fn credentials_that_cannot_be_sent_are_refused_with_their_key_and_line() {
    let with = |auth: &str| http_input(&format!("  authentication: {auth}\n"));
    assert_eq!(
        invalid(&with(
            "{type: api-key, credentials: {key: k, headerName: \"Bad Header\"}}"
        )),
        "pipeline.yaml:5:57: input.authentication.credentials.headerName: `Bad Header` is not a \
         valid HTTP header name: use letters, digits and `-`, without spaces (e.g. X-API-Key)"
    );
    assert_eq!(
        invalid(&with(
            "{type: api-key, credentials: {key: k, headerName: \"\"}}"
        )),
        "pipeline.yaml:5:57: input.authentication.credentials.headerName: headerName is empty; \
         write a header name, or remove it for the default `X-API-Key`"
    );
    assert_eq!(
        invalid(&with(
            "{type: api-key, credentials: {key: k, location: query, paramName: \" \"}}"
        )),
        "pipeline.yaml:5:74: input.authentication.credentials.paramName: paramName is empty; \
         write the name of the query parameter, or remove it for the default `api_key`"
    );
    // A secret is never quoted back: a line break in it would inject a header.
    let message = invalid(&with(
        "{type: bearer, credentials: {token: \"${INJECTING_TOKEN}\"}}",
    ));
    assert_eq!(
        message,
        "pipeline.yaml:5:48: input.authentication.credentials.token: `credentials.token` holds \
         characters that cannot be sent in an HTTP header (control characters, such as a line \
         break); check its value"
    );
    assert!(!message.contains("t0k"), "{message}");
    assert_eq!(
        invalid(&with("{type: api-key, credentials: {key: \"k\\x7f\"}}")),
        "pipeline.yaml:5:49: input.authentication.credentials.key: `credentials.key` holds \
         characters that cannot be sent in an HTTP header (control characters, such as a line \
         break); check its value"
    );
    // In the query the key is URL-encoded, so any character goes.
    assert!(
        load(&with(
            "{type: api-key, credentials: {key: \"k\\x7f\", location: query}}"
        ))
        .is_ok()
    );
    assert_eq!(
        invalid(&with(
            "{type: oauth2, credentials: {tokenUrl: \"ftp://auth.example.com/token\", \
             clientId: c, clientSecret: s}}"
        )),
        "pipeline.yaml:5:48: input.authentication.credentials.tokenUrl: \
         `ftp://auth.example.com/token` uses the scheme `ftp`; write an http:// or https:// URL \
         such as https://api.example.com/v1/items"
    );
}

#[test]
fn loaded_credentials_are_ready_to_send() {
    let with = |auth: &str| {
        let loaded = load(&http_input(&format!("  authentication: {auth}\n"))).unwrap();
        let cannectors_config::InputConfig::HttpPolling(input) = loaded.pipeline.input else {
            panic!("expected an httpPolling input")
        };
        input.authentication.unwrap()
    };
    let Authentication::ApiKey(api_key) = with("{type: api-key, credentials: {key: k-1}}") else {
        panic!("expected api-key authentication")
    };
    let ApiKeyLocation::Header(name, value) = api_key.location() else {
        panic!("expected the key in a header")
    };
    assert_eq!(
        (name.as_str(), value.to_str().unwrap()),
        ("x-api-key", "k-1")
    );
    assert!(value.is_sensitive());
    let Authentication::ApiKey(api_key) =
        with("{type: api-key, credentials: {key: k-1, location: query}}")
    else {
        panic!("expected api-key authentication")
    };
    assert_eq!(
        api_key.location(),
        &ApiKeyLocation::Query("api_key".to_owned())
    );
    let Authentication::Bearer(bearer) = with("{type: bearer, credentials: {token: t-1}}") else {
        panic!("expected bearer authentication")
    };
    assert_eq!(bearer.header_value(), "Bearer t-1");
    let Authentication::Basic(basic) =
        with("{type: basic, credentials: {username: ada, password: \"p@ss:word\"}}")
    else {
        panic!("expected basic authentication")
    };
    assert_eq!(basic.header_value(), "Basic YWRhOnBAc3M6d29yZA==");
    let Authentication::OAuth2(oauth2) = with(
        "{type: oauth2, credentials: {tokenUrl: \"https://auth.example.com/token\", \
         clientId: client one, clientSecret: s3cret, scopes: [read]}}",
    ) else {
        panic!("expected oauth2 authentication")
    };
    assert_eq!(
        oauth2.token_url().as_str(),
        "https://auth.example.com/token"
    );
    assert_eq!(oauth2.scopes(), ["read"]);
    // RFC 6749 2.3.1: the id is form-encoded before it goes into the basic credentials.
    assert_eq!(
        oauth2.client_authentication(),
        "Basic Y2xpZW50K29uZTpzM2NyZXQ="
    );
    // Secrets stay out of `Debug` output.
    let debug = format!("{basic:?} {oauth2:?}");
    assert!(
        !debug.contains("p@ss") && !debug.contains("s3cret"),
        "{debug}"
    );
}

#[test]
fn retry_values_must_be_sane() {
    let message = invalid(&http_input(
        "  retry: {maxAttempts: -1, backoffMultiplier: 0.5, retryableStatusCodes: [429, 700], delayMs: 10, maxDelayMs: 5}\n",
    ));
    assert_has(
        &message,
        "input.retry.maxAttempts: wrong value: found integer `-1`, expected a whole number from 0",
    );
    assert_has(
        &message,
        "input.retry.backoffMultiplier: backoffMultiplier is 0.5, but delays must not shrink",
    );
    assert_has(
        &message,
        "input.retry.retryableStatusCodes[1]: 700 is not an HTTP status code (100 to 599)",
    );
    assert_has(
        &message,
        "input.retry.maxDelayMs: maxDelayMs (5) is below delayMs (10)",
    );
    // `maxAttempts` counts retries, as the Go tool does: 0 (never retry) is a valid count.
    let never = load(&http_input("  retry: {maxAttempts: 0}\n")).unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &never.pipeline.input else {
        panic!("expected an httpPolling input")
    };
    assert_eq!(input.retry.max_retries(), 0);
    assert_eq!(
        invalid(&http_input("  retry: {backoffMultiplier: .nan}\n")),
        "pipeline.yaml:5:11: input.retry.backoffMultiplier: `.nan` is not a finite number; write \
         a number or quote it"
    );
    assert_eq!(
        invalid(&http_input("  retry: {backoffMultiplier: .inf}\n")),
        "pipeline.yaml:5:11: input.retry.backoffMultiplier: `.inf` is not a finite number; write \
         a number or quote it"
    );
}

#[test]
fn a_data_field_must_be_a_dot_path() {
    assert_has(
        &invalid(&http_input("  dataField: data..items\n")),
        "input.dataField: `data..items` is not a dot path",
    );
}

// ---- database input ------------------------------------------------------------------------

#[test]
fn a_database_input_needs_exactly_one_query_source() {
    assert_has(
        &invalid(&database_input("")),
        "input.query: a database input needs `query` (the SQL) or `queryFile`",
    );
    assert_has(
        &invalid(&database_input("  query: select 1\n  queryFile: q.sql\n")),
        "input.queryFile: write only one of `query` and `queryFile`",
    );
}

#[test]
fn a_missing_query_file_is_named_with_its_full_path() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("rows.yaml");
    std::fs::write(&pipeline, database_input("  queryFile: sql/missing.sql\n")).unwrap();
    let err = cannectors_config::load_with_env(&pipeline, &env).unwrap_err();
    let expected = dir.path().join("sql/missing.sql");
    assert_has(
        &err.to_string(),
        &format!(
            "input.queryFile: cannot read the query file {}",
            expected.display()
        ),
    );
    assert!(!err.is_parse_error());

    std::fs::create_dir(dir.path().join("sql")).unwrap();
    std::fs::write(&expected, "SELECT * FROM rows WHERE id > $1 ORDER BY id").unwrap();
    let loaded = cannectors_config::load_with_env(&pipeline, &env);
    // The file exists now, but no value is bound to $1.
    assert_has(
        &loaded.unwrap_err().to_string(),
        "input.queryFile: the query uses $1 but nothing is bound (no `parameters` and no enabled cursor)",
    );
}

#[test]
fn a_database_output_reads_its_query_file_relative_to_the_pipeline_file() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipelines/store.yaml");
    std::fs::create_dir_all(dir.path().join("pipelines/sql")).unwrap();
    let text = |output_keys: &str| {
        format!(
            "name: store\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/items'}}\n\
             output:\n  type: database\n  connectionString: sqlite://dest.db\n\
             {output_keys}  parameters: [record.id]\n"
        )
    };
    std::fs::write(
        &pipeline,
        text("  queryFile: sql/upsert.sql\n  onError: skip\n"),
    )
    .unwrap();
    let missing = dir.path().join("pipelines/sql/upsert.sql");
    assert_has(
        &cannectors_config::load_with_env(&pipeline, &env)
            .unwrap_err()
            .to_string(),
        &format!(
            "output.queryFile: cannot read the query file {}",
            missing.display()
        ),
    );
    std::fs::write(&missing, "INSERT INTO dest (id) VALUES ($1, $2)").unwrap();
    assert_has(
        &cannectors_config::load_with_env(&pipeline, &env)
            .unwrap_err()
            .to_string(),
        "output.parameters: the query uses $1 to $2 but `parameters` lists 1 value",
    );
    std::fs::write(&missing, "INSERT INTO dest (id) VALUES ($1)").unwrap();
    let loaded = cannectors_config::load_with_env(&pipeline, &env).unwrap();
    let cannectors_config::OutputConfig::Database(output) = &loaded.pipeline.output else {
        panic!("expected a database output")
    };
    assert_eq!(output.query, "INSERT INTO dest (id) VALUES ($1)");
    assert_eq!(output.on_error, cannectors_config::OnRefusedRow::Skip);

    std::fs::write(&pipeline, text("")).unwrap();
    assert_has(
        &cannectors_config::load_with_env(&pipeline, &env)
            .unwrap_err()
            .to_string(),
        "output.query: a database output needs `query` (the SQL run for each record) or \
         `queryFile` (a file holding it)",
    );
    std::fs::write(
        &pipeline,
        text("  query: select 1\n  queryFile: sql/upsert.sql\n"),
    )
    .unwrap();
    assert_has(
        &cannectors_config::load_with_env(&pipeline, &env)
            .unwrap_err()
            .to_string(),
        "output.queryFile: write only one of `query` and `queryFile`",
    );
    std::fs::write(
        &pipeline,
        text("  query: 'INSERT INTO dest (id) VALUES ($1)'\n  onError: ignore\n"),
    )
    .unwrap();
    assert_has(
        &cannectors_config::load_with_env(&pipeline, &env)
            .unwrap_err()
            .to_string(),
        "output.onError: unknown value `ignore`; expected one of `fail`, `skip`, `log`",
    );
}

#[test]
fn a_database_output_query_with_record_placeholders_binds_them_as_the_go_tool_does() {
    let with = |keys: &str| {
        format!(
            "name: store\ninput: {{type: httpPolling, endpoint: 'http://127.0.0.1:9/items'}}\n\
             output:\n  type: database\n  connectionString: sqlite://dest.db\n{keys}"
        )
    };
    let loaded = load(&with(
        "  query: \"insert into products (id, sku, price) values ({{record.product_id}}, \
         {{ record.sku }}, {{record.price.amount}}) on conflict (id) do nothing\"\n",
    ))
    .unwrap();
    let cannectors_config::OutputConfig::Database(output) = &loaded.pipeline.output else {
        panic!("expected a database output")
    };
    assert_eq!(
        output.query,
        "insert into products (id, sku, price) values ($1, $2, $3) on conflict (id) do nothing"
    );
    let shown: Vec<String> = output.parameters.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["record.product_id", "record.sku", "record.price.amount"]
    );

    assert_has(
        &invalid(&with(
            "  query: 'insert into t (a) values ({{record.a}})'\n  parameters: [record.a]\n",
        )),
        "output.parameters: the query binds its values with {{record.<path>}} placeholders",
    );
    assert_has(
        &invalid(&with(
            "  query: 'insert into t (a) values ({{state.id}})'\n",
        )),
        "output.query: an output query binds fields of each record: use {{record.<path>}}",
    );
    assert_has(
        &invalid(&with("  query: 'insert into t (a) values ({{record.a)'\n")),
        "output.query: a `{{` is not closed by `}}`",
    );
}

#[test]
fn pagination_takes_the_go_tools_names_of_its_parameter() {
    let param = |pagination: &str| {
        let loaded = load(&http_input(&format!("  pagination: {pagination}\n"))).unwrap();
        let cannectors_config::InputConfig::HttpPolling(input) = loaded.pipeline.input else {
            panic!("expected an httpPolling input")
        };
        match input.pagination.unwrap() {
            cannectors_config::Pagination::Page(page) => page.param,
            cannectors_config::Pagination::Offset(offset) => offset.param,
            cannectors_config::Pagination::Cursor(cursor) => cursor.param,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(param("{type: page, pageParam: p}"), "p");
    assert_eq!(param("{type: offset, offsetParam: skip}"), "skip");
    assert_eq!(
        param("{type: cursor, cursorParam: after, nextCursorField: next}"),
        "after"
    );
    assert_eq!(param("{type: page}"), "page");
    assert_has(
        &invalid(&http_input(
            "  pagination: {type: page, param: p, pageParam: q}\n",
        )),
        "input.pagination.pageParam: `param` and `pageParam` name the same parameter; keep one",
    );
    assert_has(
        &invalid(&http_input("  pagination: {type: offset, pageParam: p}\n")),
        "input.pagination.pageParam: `pageParam` does not apply to offset pagination",
    );
    assert_has(
        &invalid(&http_input("  pagination: {type: page, pageParam: ''}\n")),
        "input.pagination.pageParam: `pageParam` is empty; name the request parameter",
    );
}

#[test]
fn a_database_input_needs_exactly_one_connection_and_a_known_driver() {
    let without =
        "name: rows\ninput:\n  type: database\n  query: select 1\noutput: {type: stdout}\n";
    assert_has(
        &invalid(without),
        "input.connectionStringRef: missing key: set `connectionStringRef`",
    );
    let both = database_input("  connectionString: postgres://a@b/c\n  query: select 1\n");
    assert_has(
        &invalid(&both),
        "input.connectionString: write only one of `connectionString` and `connectionStringRef`",
    );
    let mismatch = database_input("  driver: sqlite\n  query: select 1\n");
    assert_has(
        &invalid(&mismatch),
        "input.driver: driver is sqlite but connectionStringRef is a postgres URL",
    );
    let unknown =
        database_input("  query: select 1\n").replace("${DATABASE_URL}", "mysql://db/app");
    assert_has(
        &invalid(&unknown),
        "input.connectionStringRef: cannot tell the database from `connectionStringRef`",
    );
    let sqlite =
        database_input("  query: select 1\n").replace("${DATABASE_URL}", "./data/app.sqlite");
    let loaded = load(&sqlite).unwrap();
    let cannectors_config::InputConfig::Database(input) = &loaded.pipeline.input else {
        panic!()
    };
    assert_eq!(input.connection.driver, cannectors_config::Driver::Sqlite);
}

#[test]
fn input_parameters_cannot_read_records_and_must_cover_the_placeholders() {
    assert_has(
        &invalid(&database_input(
            "  query: select $1\n  parameters: [record.id]\n",
        )),
        "input.parameters[0]: `record.id`: an input query runs before there is a record",
    );
    assert_has(
        &invalid(&database_input(
            "  query: select $1, $2\n  parameters: [state.id]\n",
        )),
        "input.parameters: the query uses $1 to $2 but `parameters` lists 1 value; bind exactly one value per placeholder",
    );
    assert_has(
        &invalid(&database_input(
            "  query: select $2\n  parameters: [state.id, 10]\n",
        )),
        "input.query: the query uses $2 but not $1",
    );
    // Without parameters, the enabled cursors are bound in order.
    let cursors = database_input(
        "  query: select * from t where (ts, id) > ($1, $2) order by ts, id\n  statePersistence:\n    timestamp: {field: ts}\n    id: {field: id}\n",
    );
    assert!(load(&cursors).is_ok());
    let one_too_many = database_input(
        "  query: select * from t where ts > $1 order by ts\n  statePersistence:\n    timestamp: {field: ts}\n    id: {field: id}\n",
    );
    assert_has(
        &invalid(&one_too_many),
        "input.query: the query uses $1 but without `parameters` the enabled cursors are bound (state.timestamp, state.id)",
    );
}

#[test]
fn database_cursors_take_no_http_settings() {
    assert_has(
        &invalid(&database_input(
            "  query: select $1\n  statePersistence:\n    id: {field: id, queryParam: x}\n",
        )),
        "input.statePersistence.id.queryParam: queryParam is for httpPolling inputs",
    );
}

#[test]
fn paging_queries_get_warnings_not_errors() {
    let unordered = load(&database_input(
        "  query: select * from t where id > $1 limit 100\n  statePersistence:\n    id: {field: id}\n",
    ))
    .unwrap();
    assert_eq!(unordered.warnings.len(), 1);
    assert_has(
        &unordered.warnings[0],
        "input.query (line 5): the query has LIMIT but no ORDER BY",
    );

    let ties = load(&database_input(
        "  query: select * from t where updated_at > $1 order by updated_at limit 100\n  statePersistence:\n    timestamp: {field: updated_at}\n",
    ))
    .unwrap();
    assert_eq!(ties.warnings.len(), 1);
    assert_has(
        &ties.warnings[0],
        "the cursor is the timestamp alone and the query has LIMIT",
    );
    assert_has(
        &ties.warnings[0],
        "WHERE (updated_at, id) > ($1, $2) ORDER BY updated_at, id",
    );

    let timestamp_only_http = load(&http_input(
        "  statePersistence:\n    timestamp: {field: updated_at, queryParam: since}\n",
    ))
    .unwrap();
    assert!(timestamp_only_http.warnings.is_empty());
}

// ---- outputs -------------------------------------------------------------------------------

#[test]
fn outputs_need_their_keys_and_sane_values() {
    let with = |output: &str| http_input("").replace("{type: stdout}", output);
    assert_has(
        &invalid(&with("{type: file, path: \" \"}")),
        "output.path: the file path is empty",
    );
    assert_has(
        &invalid(&with("{type: file}")),
        "output.path: missing key `path`",
    );
    assert_has(
        &invalid(&with("{type: httpRequest}")),
        "output.endpoint: missing key `endpoint`",
    );
    assert_has(
        &invalid(&with(
            "{type: database, connectionString: \"postgres://a@b/c\"}",
        )),
        "output.query: a database output needs `query` (the SQL run for each record) or `queryFile`",
    );
    assert_has(
        &invalid(&with(
            "{type: httpRequest, endpoint: \"https://a.example.com\", batchSize: 0}",
        )),
        "output.batchSize: batchSize must be more than 0",
    );
    assert_has(
        &invalid(&with(
            "{type: httpRequest, endpoint: \"https://a.example.com\", success: {statusCodes: [200, 99]}}",
        )),
        "output.success.statusCodes[1]: 99 is not an HTTP status code",
    );
    assert_has(
        &invalid(&with(
            "{type: database, connectionString: \"postgres://a@b/c\", query: \"insert into t values ($1)\", parameters: [state.id]}",
        )),
        "output.parameters[0]: `state.id`: an output binds values of each record",
    );
    assert_has(
        &invalid(&with(
            "{type: database, connectionString: \"postgres://a@b/c\", query: \"insert into t values ($1, $2)\", parameters: [record.id]}",
        )),
        "output.parameters: the query uses $1 to $2 but `parameters` lists 1 value",
    );
}

// ---- filters -------------------------------------------------------------------------------

#[test]
fn a_filter_without_a_required_key_names_it() {
    let message = invalid(
        &http_input("").replace("output:", "filters:\n  - type: set\n    target: a\noutput:"),
    );
    assert_eq!(
        message,
        "pipeline.yaml:6:5: filters[0].value: missing key `value`"
    );
}

#[test]
fn an_unknown_filter_type_lists_the_filter_types() {
    let message = invalid(&http_input("").replace(
        "output:",
        "filters: [{type: set}, {type: explode}]\noutput:",
    ));
    assert_has(
        &message,
        "pipeline.yaml:5:25: filters[1].type: unknown filter type `explode`; expected one of `set`, \
         `remove`, `mapping`, `condition`, `drop`",
    );
}

// ---- files ---------------------------------------------------------------------------------

#[test]
fn an_unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = cannectors_config::load(&missing).unwrap_err();
    assert!(err.is_parse_error());
    assert_has(
        &err.to_string(),
        &format!("{}: cannot read the pipeline file:", missing.display()),
    );
}

#[test]
fn errors_from_a_file_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.yaml");
    std::fs::write(&file, http_input("  timeoutMs: 0\n")).unwrap();
    let err = cannectors_config::load_with_env(&file, &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:5:3: input.timeoutMs: timeoutMs must be more than 0; remove it for the default 30000",
            file.display()
        )
    );
}

// ---- the remaining messages, one assertion each --------------------------------------------

#[test]
fn blocks_of_the_wrong_shape_say_what_they_need() {
    assert_has(
        &invalid("name: a\ninput: database\noutput: {type: stdout}\n"),
        "pipeline.yaml:2:1: input: expected a mapping with a `type` (`httpPolling`, `database`), found text",
    );
    assert_has(
        &invalid("name: a\ninput: {type: 3}\noutput: {type: stdout}\n"),
        "input.type: expected the input type as text (`httpPolling`, `database`), found a number",
    );
    assert_has(
        &invalid("- name: a\n"),
        "pipeline.yaml:1:1: the file holds a list, but a pipeline is a mapping",
    );
}

#[test]
fn yaml_features_without_a_json_meaning_are_refused() {
    assert_eq!(
        invalid(&http_input("  endpoint2: !env API_URL\n")),
        "pipeline.yaml:5:3: input.endpoint2: YAML tags such as `!env` are not supported; remove the tag",
    );
    // The value is left out, and nothing more is said about the key it stood for.
    assert_eq!(
        invalid(&http_input("").replace("https://api.example.com/events", "!env API_URL")),
        "pipeline.yaml:4:3: input.endpoint: YAML tags such as `!env` are not supported; remove the tag",
    );
    assert_has(
        &invalid(&http_input("  body: .inf\n")),
        "pipeline.yaml:5:3: input.body: `.inf` is not a finite number; write a number or quote it",
    );
    assert_has(
        &invalid(&http_input("  headers: {[a, b]: c}\n")),
        "input.headers: a mapping key must be text, not a list",
    );
    assert_has(
        &parse_error("name: a\n---\nname: b\n"),
        "a pipeline file holds one document; remove the `---` after the first",
    );
}

#[test]
fn anchors_and_merge_keys_work() {
    let yaml = "shared: &retry {maxAttempts: 5}\n";
    // An unknown top-level key even when it only holds an anchor: keys are never ignored.
    assert_has(
        &invalid(&format!("{yaml}{}", http_input(""))),
        "shared: unknown key",
    );
    let merged = http_input("  retry:\n    <<: {maxAttempts: 5}\n    delayMs: 10\n");
    let loaded = load(&merged).unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
        panic!("expected an httpPolling input")
    };
    assert_eq!(
        (input.retry.max_retries(), input.retry.delay()),
        (5, Duration::from_millis(10))
    );
}

#[test]
fn empty_names_and_paths_are_refused() {
    assert_has(
        &invalid(&http_input(
            "  statePersistence:\n    id: {field: id, queryParam: \" \"}\n    storagePath: \"\"\n",
        )),
        "input.statePersistence.id.queryParam: queryParam is empty; name the query parameter",
    );
    assert_has(
        &invalid(&http_input("  statePersistence:\n    storagePath: \"\"\n")),
        "input.statePersistence.storagePath: storagePath is empty; remove it for the default ./.cannectors-state",
    );
    assert_has(
        &invalid(&http_input("  pagination: {type: page, param: \"\"}\n")),
        "input.pagination.param: `param` is empty; name the request parameter",
    );
    assert_has(
        &invalid(&http_input(
            "  pagination: {type: offset, param: o, limit: 0}\n",
        )),
        "input.pagination.limit: `limit` must be more than 0",
    );
    assert_has(
        &invalid(&http_input(
            "  pagination: {type: cursor, param: c, nextCursorField: \"a.\"}\n",
        )),
        "input.pagination.nextCursorField: `a.` is not a dot path",
    );
}

#[test]
fn templates_must_be_closed_and_apply_in_bodies_too() {
    assert_has(
        &invalid(&http_input("").replace("/events", "/events?since={{state.timestamp")),
        "input.endpoint: a `{{` is not closed by `}}`",
    );
    assert_has(
        &invalid(&http_input(
            "  method: POST\n  body: {q: \"{{record.id}}\"}\n",
        )),
        "input.body.q: {{record.*}} is filled only in the endpoint of an httpRequest output",
    );
    assert_has(
        &invalid(&http_input("  headers: {X-Since: \"{{state.nope}}\"}\n")),
        "input.headers.X-Since: `{{state.nope}}` names no cursor",
    );
}

#[test]
fn api_key_names_must_match_the_location() {
    assert_has(
        &invalid(&http_input(
            "  authentication: {type: api-key, credentials: {key: k, location: query, headerName: X-Key}}\n",
        )),
        "input.authentication.credentials.headerName: headerName applies to `location: header`",
    );
    assert_has(
        &invalid(&http_input(
            "  authentication: {type: api-key, credentials: {key: k, location: body}}\n",
        )),
        "input.authentication.credentials.location: unknown value `body`; expected `header` or `query`",
    );
    assert_has(
        &invalid(&http_input(
            "  authentication: {type: digest, credentials: {}}\n",
        )),
        "input.authentication.type: unknown value `digest`; expected one of `api-key`, `bearer`, `basic`, `oauth2`",
    );
}

#[test]
fn http_output_settings_must_fit_the_mode() {
    let with = |output: &str| http_input("").replace("{type: stdout}", output);
    assert_has(
        &invalid(&with(
            "{type: httpRequest, endpoint: \"https://a.example.com\", success: {statusCodes: []}}",
        )),
        "output.success.statusCodes: statusCodes is empty, so no response would count as delivered",
    );
    assert_has(
        &invalid(&with(
            "{type: httpRequest, endpoint: \"https://a.example.com\", timeoutMs: 0}",
        )),
        "output.timeoutMs: timeoutMs must be more than 0",
    );
}

#[test]
fn empty_queries_and_connections_are_refused() {
    assert_has(
        &invalid(&database_input("  query: \" \"\n")),
        "input.query: the query is empty",
    );
    assert_has(
        &invalid(&database_input("  query: select 1\n").replace("${DATABASE_URL}", "${EMPTY}")),
        "input.connectionStringRef: `connectionStringRef` is empty (an empty variable?)",
    );
    let output = http_input("").replace(
        "{type: stdout}",
        "{type: database, connectionString: \"sqlite://out.db\", query: \"\"}",
    );
    assert_has(
        &invalid(&output),
        "output.query: the query is empty; write the SQL run for each record",
    );
    let unknown = http_input("").replace(
        "{type: stdout}",
        "{type: database, connectionString: \"mysql://x/y\", query: \"insert into t default values\"}",
    );
    assert_has(
        &invalid(&unknown),
        "output.connectionString: cannot tell the database from `connectionString`",
    );
}

#[test]
fn a_database_input_refuses_the_http_timestamp_format() {
    assert_has(
        &invalid(&database_input(
            "  query: select $1\n  statePersistence:\n    timestamp: {field: ts, format: unix}\n",
        )),
        "input.statePersistence.timestamp.format: format is for httpPolling inputs",
    );
}

#[test]
fn database_statement_timeouts_default_to_five_minutes_and_zero_is_refused() {
    let loaded = load(&database_input("  query: select 1\n")).unwrap();
    let cannectors_config::InputConfig::Database(input) = &loaded.pipeline.input else {
        panic!("a database input");
    };
    assert_eq!(input.statement_timeout_ms.get(), 300_000);
    let output = http_input("").replace(
        "{type: stdout}",
        "{type: database, connectionString: \"sqlite://out.db\", query: \"insert into t default values\", statementTimeoutMs: 0}",
    );
    assert_eq!(
        invalid(&database_input(
            "  query: select 1\n  statementTimeoutMs: 0\n"
        )),
        "pipeline.yaml:6:3: input.statementTimeoutMs: statementTimeoutMs must be more than 0; \
         remove it for the default 300000 (5 minutes)"
    );
    assert_has(
        &invalid(&output),
        "output.statementTimeoutMs: statementTimeoutMs must be more than 0",
    );
}

// ---- late commits and records without a cursor ------------------------------------------

#[test]
fn on_missing_cursor_without_a_timestamp_or_id_cursor_names_its_key() {
    let err = invalid(&http_input(
        "  statePersistence:\n    offset: {queryParam: offset}\n    onMissingCursor: skip\n",
    ));
    assert_has(&err, "input.statePersistence.onMissingCursor");
    assert_has(
        &err,
        "onMissingCursor applies to records that lack the timestamp or id cursor field, but \
         neither cursor is enabled; enable one, or remove onMissingCursor",
    );
}

#[test]
fn on_missing_cursor_takes_fail_skip_or_deliver() {
    let err = invalid(&http_input(
        "  statePersistence:\n    id: {field: id, queryParam: after}\n    onMissingCursor: ignore\n",
    ));
    assert_has(&err, "input.statePersistence.onMissingCursor");
    assert_has(&err, "fail");
    let loaded = load(&http_input(
        "  statePersistence:\n    id: {field: id, queryParam: after}\n    onMissingCursor: deliver\n",
    ))
    .unwrap();
    let settings = loaded.pipeline.input.state_persistence().unwrap();
    assert_eq!(
        settings.on_missing_cursor,
        cannectors_config::OnMissingCursor::Deliver
    );
}

#[test]
fn lookback_without_a_timestamp_cursor_names_its_key_path() {
    let err = invalid(&database_input(
        "  query: select * from t where id > $1\n  statePersistence:\n    id: {field: id}\n    \
         lookback: 10m\n",
    ));
    assert_has(&err, "input.statePersistence.lookback");
    assert_has(
        &err,
        "lookback reaches back before the committed timestamp, but no timestamp cursor is \
         enabled; enable statePersistence.timestamp or remove lookback",
    );
}

#[test]
fn a_lookback_that_is_no_duration_shows_the_accepted_forms() {
    let err = invalid(&http_input(
        "  statePersistence:\n    timestamp: {field: at, queryParam: since}\n    lookback: 10 min\n",
    ));
    assert_has(
        &err,
        "input.statePersistence.lookback: `10 min` is not a duration; write a whole number and a \
         unit: 500ms, 30s, 10m, 1h or 1d",
    );
}

#[test]
fn a_lookback_or_delay_past_a_hundred_years_is_refused() {
    let err = invalid(&http_input(
        "  statePersistence:\n    timestamp: {field: at, queryParam: since}\n    \
         lookback: 99999999999d\n    delay: 876001h\n",
    ));
    assert_has(
        &err,
        "input.statePersistence.lookback: `99999999999d` is longer than a hundred years (36500d); \
         write a shorter duration",
    );
    assert_has(
        &err,
        "input.statePersistence.delay: `876001h` is longer than a hundred years (36500d); write a \
         shorter duration",
    );
}

#[test]
fn identity_and_max_identities_need_lookback_and_sensible_values() {
    let err = invalid(&http_input(
        "  statePersistence:\n    timestamp: {field: at, queryParam: since}\n    \
         identity: [order.id]\n    maxIdentities: 10\n",
    ));
    assert_has(
        &err,
        "input.statePersistence.identity: identity belongs to lookback, which is not set; add \
         lookback (e.g. `lookback: 10m`) or remove identity",
    );
    assert_has(
        &err,
        "input.statePersistence.maxIdentities: maxIdentities belongs to lookback",
    );
    let err = invalid(&http_input(
        "  statePersistence:\n    timestamp: {field: at, queryParam: since}\n    lookback: 5m\n    \
         identity: []\n    maxIdentities: 0\n",
    ));
    assert_has(&err, "input.statePersistence.identity: identity is empty");
    assert_has(
        &err,
        "input.statePersistence.maxIdentities: maxIdentities must be more than 0; remove it for \
         the default 100000",
    );
}

#[test]
fn the_identity_is_the_listed_fields_else_the_id_cursor_else_the_whole_record() {
    use cannectors_config::Identity;
    let lookback = |extra: &str| {
        let loaded = load(&http_input(&format!(
            "  statePersistence:\n    timestamp: {{field: at, queryParam: since}}\n    \
             lookback: 90s\n{extra}"
        )))
        .unwrap();
        loaded
            .pipeline
            .input
            .state_persistence()
            .unwrap()
            .lookback
            .clone()
            .unwrap()
    };
    let by_text = lookback("");
    assert_eq!(by_text.window, Duration::from_secs(90));
    assert_eq!(by_text.identity, Identity::Text);
    assert_eq!(by_text.max_identities.get(), 100_000);
    assert_eq!(
        lookback("    id: {field: id, queryParam: after}\n").identity,
        Identity::Id
    );
    let fields = lookback("    id: {field: id, queryParam: after}\n    identity: [a.b, c]\n");
    assert!(matches!(fields.identity, Identity::Fields(paths) if paths.len() == 2));
}

#[test]
fn delay_needs_a_timestamp_cursor_and_until_param_is_for_http_inputs() {
    let err = invalid(&http_input(
        "  statePersistence:\n    id: {field: id, queryParam: after}\n    delay: 30s\n",
    ));
    assert_has(
        &err,
        "input.statePersistence.delay: delay holds back records by their timestamp, but no \
         timestamp cursor is enabled; enable statePersistence.timestamp or remove delay",
    );
    let err = invalid(&database_input(
        "  query: select * from t where at > $1\n  statePersistence:\n    \
         timestamp: {field: at, untilParam: until}\n    delay: soon\n",
    ));
    assert_has(
        &err,
        "input.statePersistence.timestamp.untilParam: untilParam is for httpPolling inputs; a \
         database query binds the upper bound with the parameter expression `window.end`",
    );
    assert_has(
        &err,
        "input.statePersistence.delay: `soon` is not a duration",
    );
}

#[test]
fn window_end_is_a_template_and_a_parameter_expression() {
    let loaded = load(&http_input(
        "  queryParams: {to: '{{window.end}}'}\n  statePersistence:\n    \
         timestamp: {field: at, queryParam: since}\n    delay: 1m\n",
    ))
    .unwrap();
    let settings = loaded.pipeline.input.state_persistence().unwrap();
    assert_eq!(settings.delay, Some(Duration::from_secs(60)));
    load(&database_input(
        "  query: select * from t where at > $1 and at <= $2\n  \
         parameters: [state.timestamp, window.end]\n  statePersistence:\n    \
         timestamp: {field: at}\n",
    ))
    .unwrap();
}

#[test]
fn window_start_is_a_template_and_a_parameter_expression() {
    load(&http_input(
        "  queryParams: {from: '{{window.start}}'}\n  statePersistence:\n    \
         timestamp: {field: at, queryParam: since}\n",
    ))
    .unwrap();
    load(&database_input(
        "  query: select * from t where at > $1 and at >= coalesce($2, $1)\n  \
         parameters: [state.timestamp, window.start]\n  statePersistence:\n    \
         timestamp: {field: at}\n",
    ))
    .unwrap();
}

#[test]
fn a_window_is_read_into_its_start_and_step() {
    let loaded = load(&http_input(
        "  queryParams: {from: '{{window.start}}', to: '{{window.end}}'}\n  \
         window: {start: '2026-01-01T01:00:00+01:00', step: 1d}\n",
    ))
    .unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
        panic!("an httpPolling input");
    };
    let window = input.window.unwrap();
    assert_eq!(window.start.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    assert_eq!(window.step, Duration::from_secs(86_400));
}

#[test]
fn a_bad_window_start_or_step_names_the_key_and_the_form() {
    let problems = invalid(&http_input(
        "  queryParams: {from: '{{window.start}}'}\n  window: {start: yesterday, step: 0s}\n",
    ));
    assert_has(
        &problems,
        "input.window.start: `yesterday` is not an RFC 3339 instant; write it with a date, a \
         time and an offset, such as 2026-01-01T00:00:00Z",
    );
    assert_has(
        &problems,
        "input.window.step: step is 0, so no window would ever end; write a length such as 1h \
         or 1d",
    );
    let problems = invalid(&http_input(
        "  queryParams: {from: '{{window.start}}'}\n  \
         window: {start: '2026-01-01T00:00:00Z', step: daily}\n",
    ));
    assert_has(&problems, "input.window.step: `daily` is not a duration");
}

#[test]
fn a_window_that_no_request_carries_is_refused() {
    let problems = invalid(&http_input(
        "  window: {start: '2026-01-01T00:00:00Z', step: 1h}\n",
    ));
    assert_has(
        &problems,
        "input.window: no request carries the window, so every window would read the same \
         records: use {{window.start}} and {{window.end}}",
    );
}

#[test]
fn a_window_with_lookback_a_timestamp_query_param_or_an_offset_cursor_is_refused() {
    let problems = invalid(&http_input(
        "  queryParams: {from: '{{window.start}}', to: '{{window.end}}'}\n  \
         window: {start: '2026-01-01T00:00:00Z', step: 1h}\n  statePersistence:\n    \
         timestamp: {field: at, queryParam: since}\n    offset: {queryParam: skip}\n    \
         lookback: 10m\n",
    ));
    assert_has(
        &problems,
        "input.statePersistence.lookback: lookback reaches back before the committed timestamp, \
         but with `window` each run continues from the end of the last committed window; \
         remove lookback or window",
    );
    assert_has(
        &problems,
        "input.statePersistence.timestamp.queryParam: with `window` the range goes out as \
         {{window.start}} and {{window.end}}",
    );
    assert_has(
        &problems,
        "input.statePersistence.offset: the offset cursor continues from one run to the next, \
         but each window starts at its first page",
    );
}

#[test]
fn a_window_pipeline_needs_no_timestamp_query_param() {
    load(&http_input(
        "  queryParams: {from: '{{window.start}}', to: '{{window.end}}'}\n  \
         window: {start: '2026-01-01T00:00:00Z', step: 1h}\n  statePersistence:\n    \
         timestamp: {field: at}\n    delay: 5m\n",
    ))
    .unwrap();
}

#[test]
fn every_output_takes_a_batch_size_and_refuses_zero_where_it_is_written() {
    let with = |output: &str| http_input("").replace("{type: stdout}", output);
    let outputs = [
        "{type: stdout, batchSize: N}",
        "{type: file, path: out.jsonl, batchSize: N}",
        "{type: httpRequest, endpoint: \"https://a.example.com\", batchSize: N}",
        "{type: httpRequest, endpoint: \"https://a.example.com\", requestMode: single, batchSize: N}",
        "{type: database, connectionStringRef: \"${DATABASE_URL}\", query: \"INSERT INTO t (id) VALUES ($1)\", parameters: [record.id], batchSize: N}",
    ];
    for output in outputs {
        let loaded = load(&with(&output.replace('N', "5000")))
            .unwrap_or_else(|error| panic!("{output}: {error}"));
        assert_eq!(
            loaded.pipeline.output.batch_size().map(|size| size.get()),
            Some(5000),
            "{output}"
        );
        assert_has(
            &invalid(&with(&output.replace('N', "0"))),
            "output.batchSize: batchSize must be more than 0",
        );
    }
    let plain = load(&http_input("")).unwrap();
    assert_eq!(
        plain.pipeline.output.batch_size(),
        None,
        "without batchSize: one delivery a page"
    );
}

#[test]
fn the_go_tools_defaults_block_reaches_the_modules_and_its_mistakes_are_reported_in_it() {
    let yaml = "name: events\ndefaults: {timeoutMs: 1500, onError: skip, retry: {maxAttempts: 1}}\n\
                input: {type: httpPolling, endpoint: 'https://api.example.com/events'}\n\
                filters: [{type: set, target: a, value: 1}, {type: drop, onError: fail}]\n\
                output: {type: httpRequest, endpoint: 'https://d.example.com/{{record.id}}', \
                requestMode: single, timeoutMs: 900}\n";
    let loaded = load(yaml).unwrap();
    let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
        panic!("expected an httpPolling input")
    };
    assert_eq!(input.timeout(), Duration::from_millis(1500));
    assert_eq!(input.retry.max_retries(), 1);
    let on_errors: Vec<_> = loaded
        .pipeline
        .filters
        .iter()
        .map(|f| f.on_error())
        .collect();
    assert_eq!(
        on_errors,
        [
            cannectors_config::OnError::Skip,
            cannectors_config::OnError::Fail
        ]
    );
    let cannectors_config::OutputConfig::HttpRequest(output) = &loaded.pipeline.output else {
        panic!("expected an httpRequest output")
    };
    assert_eq!(
        output.timeout(),
        Duration::from_millis(900),
        "its own key wins"
    );
    assert_eq!(output.retry.max_retries(), 1);
    assert_eq!(output.on_error, cannectors_config::OnRefusedRow::Skip);

    let bad = invalid(&yaml.replace("onError: skip", "onError: sometimes"));
    assert_has(&bad, "defaults.onError");
    assert_eq!(bad.matches("onError").count(), 1, "reported once: {bad}");
    assert!(!bad.contains("filters[0]"), "{bad}");
    let zero = invalid(&yaml.replace("timeoutMs: 1500", "timeoutMs: 0"));
    assert_has(&zero, "defaults.timeoutMs");
}
