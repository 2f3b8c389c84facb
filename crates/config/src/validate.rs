//! The rules that need more than the type of one key: URLs, cron schedules, which settings go
//! together, what a query binds. Every rule adds a problem and goes on, so a user fixes a file in
//! one round instead of one error at a time. Warnings are for settings that work but are likely
//! to lose or repeat records.
//!
//! Validation also completes two things the runtime should not redo: a `queryFile` is read into
//! `query`, and an absent `driver` is filled from the connection URL.

use std::path::Path;
use std::str::FromStr;

use crate::document::KeyPath;
use crate::expr::StateCursor;
use crate::model::*;
use crate::path::FieldPath;
use crate::schedule::normalize_schedule;
use crate::sql;
use crate::template::Template;
use cannectors_state::MAX_NAME_LEN;

/// The filter types (docs/configuration.md, Filters) that the runtime can apply. Adding one is adding its name.
const IMPLEMENTED_FILTERS: &[&str] = &[];

/// Every filter type name a pipeline may use, implemented or not.
const KNOWN_FILTERS: &[&str] = &["set", "remove", "mapping", "condition", "drop"];

/// Whether `kind` names a filter the runtime can apply; the error says what to do otherwise.
pub(crate) fn check_filter_type(kind: &str) -> Result<(), String> {
    if IMPLEMENTED_FILTERS.contains(&kind) {
        Ok(())
    } else if KNOWN_FILTERS.contains(&kind) {
        Err(format!(
            "filter type `{kind}` is not implemented yet; remove this filter (a pipeline never \
             passes records through a filter it cannot apply){}",
            implemented_list()
        ))
    } else {
        Err(format!(
            "unknown filter type `{kind}`; the filter types are {}{}",
            KNOWN_FILTERS
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            implemented_list()
        ))
    }
}

fn implemented_list() -> String {
    if IMPLEMENTED_FILTERS.is_empty() {
        "; no filter type is implemented yet".to_owned()
    } else {
        format!("; implemented: {}", IMPLEMENTED_FILTERS.join(", "))
    }
}

/// Problems and warnings, each with the key path it is about.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) problems: Vec<(KeyPath, String)>,
    pub(crate) warnings: Vec<(KeyPath, String)>,
}

impl Findings {
    fn problem(&mut self, path: KeyPath, message: impl Into<String>) {
        self.problems.push((path, message.into()));
    }

    fn warning(&mut self, path: KeyPath, message: impl Into<String>) {
        self.warnings.push((path, message.into()));
    }
}

/// Checks `pipeline`; a `queryFile` is read relative to `base_dir`.
pub(crate) fn validate(pipeline: &mut Pipeline, base_dir: &Path) -> Findings {
    let mut findings = Findings::default();
    let root = KeyPath::root();
    check_name(&mut findings, &root.key("name"), &pipeline.name);
    let input_path = root.key("input");
    match &mut pipeline.input {
        InputConfig::HttpPolling(input) => check_http_input(&mut findings, &input_path, input),
        InputConfig::Database(input) => {
            check_database_input(&mut findings, &input_path, input, base_dir);
        }
    }
    for (i, filter) in pipeline.filters.iter().enumerate() {
        if let Err(message) = check_filter_type(&filter.kind) {
            findings.problem(root.key("filters").index(i).key("type"), message);
        }
    }
    let output_path = root.key("output");
    match &mut pipeline.output {
        OutputConfig::Stdout(_) => {}
        OutputConfig::File(output) => {
            if output.path.trim().is_empty() {
                findings.problem(
                    output_path.key("path"),
                    "the file path is empty; write where to append the records, e.g. \
                     ./out/events.jsonl",
                );
            }
        }
        OutputConfig::HttpRequest(output) => check_http_output(&mut findings, &output_path, output),
        OutputConfig::Database(output) => {
            check_database_output(&mut findings, &output_path, output)
        }
    }
    findings
}

fn check_name(findings: &mut Findings, path: &KeyPath, name: &str) {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        findings.problem(
            path.clone(),
            format!(
                "`{name}` is not a valid pipeline name: it names the state file, so use letters, \
                 digits, `.`, `_` and `-`, starting with a letter or digit (e.g. events-sync)"
            ),
        );
    } else if name.len() > MAX_NAME_LEN {
        // The limit is the state crate's; a longer name would validate, deliver its first batch
        // and then fail to commit it, sending the same batch again on every run.
        findings.problem(
            path.clone(),
            format!(
                "the pipeline name is {} characters long, but at most {MAX_NAME_LEN} are \
                 allowed: it names the state files (the longest is `<name>.json.tmp`) and a file \
                 name may have at most 255 bytes; shorten the name",
                name.len()
            ),
        );
    }
}

fn check_schedule(
    findings: &mut Findings,
    path: &KeyPath,
    schedule: Option<&str>,
    tz: Option<&str>,
) {
    if let Some(schedule) = schedule
        && let Err(error) = normalize_schedule(schedule)
    {
        findings.problem(path.key("schedule"), error.to_string());
    }
    if let Some(tz) = tz
        && chrono_tz::Tz::from_str(tz).is_err()
    {
        findings.problem(
            path.key("timezone"),
            format!("`{tz}` is not an IANA time zone name; write e.g. Europe/Paris or UTC"),
        );
    }
}

/// Which placeholders a URL or value may hold.
#[derive(Clone, Copy)]
struct Allowed {
    state: bool,
    record: bool,
}

const STATE_ONLY: Allowed = Allowed {
    state: true,
    record: false,
};
const NO_TEMPLATES: Allowed = Allowed {
    state: false,
    record: false,
};

fn check_template(
    findings: &mut Findings,
    path: &KeyPath,
    text: &str,
    allowed: Allowed,
) -> Option<Template> {
    let template = match Template::parse(text) {
        Ok(template) => template,
        Err(error) => {
            findings.problem(path.clone(), error.reason);
            return None;
        }
    };
    if template.uses_any_state() && !allowed.state {
        findings.problem(
            path.clone(),
            "{{state.*}} is filled only in an httpPolling input (endpoint, headers, queryParams, \
             body); remove it here",
        );
    }
    if template.uses_record() && !allowed.record {
        findings.problem(
            path.clone(),
            "{{record.*}} is filled only in the endpoint of an httpRequest output with \
             `requestMode: single`; remove it here or send one request a record",
        );
    }
    Some(template)
}

/// Checks an http(s) URL that may hold placeholders; returns its template.
fn check_url(
    findings: &mut Findings,
    path: &KeyPath,
    text: &str,
    allowed: Allowed,
) -> Option<Template> {
    let template = check_template(findings, path, text, allowed)?;
    let rendered = template.render_with("0");
    let hint = "write an http:// or https:// URL such as https://api.example.com/v1/items";
    match url::Url::parse(rendered.trim()) {
        Err(error) => findings.problem(
            path.clone(),
            format!("`{text}` is not a URL ({error}); {hint}"),
        ),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => findings.problem(
            path.clone(),
            format!("`{text}` uses the scheme `{}`; {hint}", url.scheme()),
        ),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            findings.problem(path.clone(), format!("`{text}` has no host; {hint}"));
        }
        Ok(_) => {}
    }
    Some(template)
}

fn check_http_input(findings: &mut Findings, path: &KeyPath, input: &HttpPollingInput) {
    check_schedule(
        findings,
        path,
        input.schedule.as_deref(),
        input.timezone.as_deref(),
    );
    let mut templates = Vec::new();
    templates.extend(check_url(
        findings,
        &path.key("endpoint"),
        &input.endpoint,
        STATE_ONLY,
    ));
    for (name, value) in &input.headers {
        templates.extend(check_template(
            findings,
            &path.key("headers").key(name),
            value,
            STATE_ONLY,
        ));
    }
    for (name, value) in &input.query_params {
        templates.extend(check_template(
            findings,
            &path.key("queryParams").key(name),
            value,
            STATE_ONLY,
        ));
    }
    if let Some(body) = &input.body {
        if input.method != SourceMethod::Post {
            findings.problem(
                path.key("body"),
                "a body is sent only with `method: POST`; set the method or remove the body",
            );
        }
        collect_body_templates(findings, &path.key("body"), body, &mut templates);
    }
    if let Some(data_field) = &input.data_field {
        check_field_path(findings, &path.key("dataField"), data_field);
    }
    check_timeout(findings, path, input.timeout_ms);
    if let Some(auth) = &input.authentication {
        check_authentication(findings, &path.key("authentication"), auth);
    }
    check_retry(findings, &path.key("retry"), &input.retry);
    if let Some(pagination) = &input.pagination {
        check_pagination(findings, &path.key("pagination"), pagination);
    }
    if let Some(state) = &input.state_persistence {
        let sent_by_template =
            |cursor: StateCursor| templates.iter().any(|template| template.uses_state(cursor));
        check_http_cursors(
            findings,
            &path.key("statePersistence"),
            state,
            &sent_by_template,
            input.pagination.as_ref(),
        );
    }
}

fn collect_body_templates(
    findings: &mut Findings,
    path: &KeyPath,
    body: &serde_json::Value,
    templates: &mut Vec<Template>,
) {
    match body {
        serde_json::Value::String(text) => {
            templates.extend(check_template(findings, path, text, STATE_ONLY));
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_body_templates(findings, &path.index(i), item, templates);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                collect_body_templates(findings, &path.key(key), item, templates);
            }
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
    }
}

/// An enabled HTTP cursor must reach the request, through its `queryParam` or a
/// `{{state.*}}` template; otherwise every run would read everything again.
fn check_http_cursors(
    findings: &mut Findings,
    path: &KeyPath,
    state: &StatePersistence,
    sent_by_template: &dyn Fn(StateCursor) -> bool,
    pagination: Option<&Pagination>,
) {
    check_storage_path(findings, path, state);
    let not_sent = |name: &str| {
        format!(
            "the {name} cursor is never sent to the API, so every run would read everything \
             again: set `queryParam`, or use {{{{state.{name}}}}} in the endpoint, headers, \
             queryParams or body"
        )
    };
    if let Some(cursor) = state.timestamp() {
        let cursor_path = path.key("timestamp");
        check_cursor_field(findings, &cursor_path, "timestamp", cursor.field.as_deref());
        check_query_param(findings, &cursor_path, cursor.query_param.as_deref());
        if cursor.query_param.is_none() && !sent_by_template(StateCursor::Timestamp) {
            findings.problem(cursor_path.key("queryParam"), not_sent("timestamp"));
        }
        if let Some(format) = &cursor.format
            && let Err(message) = TimestampFormat::parse(format)
        {
            findings.problem(cursor_path.key("format"), message);
        }
    }
    if let Some(cursor) = state.id() {
        let cursor_path = path.key("id");
        check_cursor_field(findings, &cursor_path, "id", cursor.field.as_deref());
        check_query_param(findings, &cursor_path, cursor.query_param.as_deref());
        if cursor.query_param.is_none() && !sent_by_template(StateCursor::Id) {
            findings.problem(cursor_path.key("queryParam"), not_sent("id"));
        }
    }
    if let Some(cursor) = state.offset() {
        let cursor_path = path.key("offset");
        check_query_param(findings, &cursor_path, cursor.query_param.as_deref());
        let offset_pagination = pagination.is_some_and(|p| p.kind == PaginationKind::Offset);
        if cursor.query_param.is_none()
            && !offset_pagination
            && !sent_by_template(StateCursor::Offset)
        {
            findings.problem(
                cursor_path.key("queryParam"),
                "the offset cursor is never sent to the API: use `pagination: {type: offset}`, \
                 set `queryParam`, or use {{state.offset}} in the endpoint, headers, queryParams \
                 or body",
            );
        }
    }
}

fn check_storage_path(findings: &mut Findings, path: &KeyPath, state: &StatePersistence) {
    if state
        .storage_path
        .as_deref()
        .is_some_and(|p| p.trim().is_empty())
    {
        findings.problem(
            path.key("storagePath"),
            "storagePath is empty; remove it for the default ./.cannectors-state or name a \
             directory",
        );
    }
}

fn check_cursor_field(findings: &mut Findings, path: &KeyPath, name: &str, field: Option<&str>) {
    match field {
        None => findings.problem(
            path.key("field"),
            format!(
                "an enabled {name} cursor needs `field`, the dot path of the {name} in each \
                 record (e.g. `{}`), or `enabled: false`",
                if name == "id" {
                    "event.id"
                } else {
                    "updated_at"
                }
            ),
        ),
        Some(field) => check_field_path(findings, &path.key("field"), field),
    }
}

fn check_query_param(findings: &mut Findings, path: &KeyPath, query_param: Option<&str>) {
    if query_param.is_some_and(|p| p.trim().is_empty()) {
        findings.problem(
            path.key("queryParam"),
            "queryParam is empty; name the query parameter",
        );
    }
}

fn check_field_path(findings: &mut Findings, path: &KeyPath, text: &str) {
    if let Err(error) = FieldPath::parse(text) {
        findings.problem(path.clone(), error.to_string());
    }
}

fn check_timeout(findings: &mut Findings, path: &KeyPath, timeout_ms: u64) {
    if timeout_ms == 0 {
        findings.problem(
            path.key("timeoutMs"),
            "timeoutMs must be more than 0; remove it for the default 30000",
        );
    }
}

/// Zero would mean "no bound", which lets a silent server hold a run forever.
fn check_statement_timeout(findings: &mut Findings, path: &KeyPath, timeout_ms: u64) {
    if timeout_ms == 0 {
        findings.problem(
            path.key("statementTimeoutMs"),
            "statementTimeoutMs must be more than 0; remove it for the default 300000 (5 minutes)",
        );
    }
}

/// A credential key and its value, if given.
type Credential<'a> = (&'a str, Option<&'a String>);

fn check_authentication(findings: &mut Findings, path: &KeyPath, auth: &Authentication) {
    let c = &auth.credentials;
    let given: [(&str, bool); 11] = [
        ("key", c.key.is_some()),
        ("location", c.location.is_some()),
        ("headerName", c.header_name.is_some()),
        ("paramName", c.param_name.is_some()),
        ("token", c.token.is_some()),
        ("username", c.username.is_some()),
        ("password", c.password.is_some()),
        ("tokenUrl", c.token_url.is_some()),
        ("clientId", c.client_id.is_some()),
        ("clientSecret", c.client_secret.is_some()),
        ("scopes", !c.scopes.is_empty()),
    ];
    let (kind, required, optional): (&str, &[Credential<'_>], &[&str]) = match auth.kind {
        AuthKind::ApiKey => (
            "api-key",
            &[("key", c.key.as_ref())],
            &["location", "headerName", "paramName"],
        ),
        AuthKind::Bearer => ("bearer", &[("token", c.token.as_ref())], &[]),
        AuthKind::Basic => (
            "basic",
            &[
                ("username", c.username.as_ref()),
                ("password", c.password.as_ref()),
            ],
            &[],
        ),
        AuthKind::OAuth2 => (
            "oauth2",
            &[
                ("tokenUrl", c.token_url.as_ref()),
                ("clientId", c.client_id.as_ref()),
                ("clientSecret", c.client_secret.as_ref()),
            ],
            &["scopes"],
        ),
    };
    let credentials = path.key("credentials");
    let takes = required
        .iter()
        .map(|(name, _)| *name)
        .chain(optional.iter().copied())
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    for (name, value) in required {
        match value {
            None => findings.problem(
                credentials.key(name),
                format!("{kind} authentication needs `credentials.{name}`"),
            ),
            // An empty basic password is real: some APIs take a key as the user name and no
            // password.
            Some(value) if value.trim().is_empty() && *name != "password" => findings.problem(
                credentials.key(name),
                format!(
                    "`credentials.{name}` is empty (an unset or empty variable?); {kind} \
                     authentication needs it"
                ),
            ),
            Some(_) => {}
        }
    }
    for (name, is_given) in given {
        let applies = required.iter().any(|(n, _)| *n == name) || optional.contains(&name);
        if is_given && !applies {
            findings.problem(
                credentials.key(name),
                format!("`{name}` does not apply to {kind} authentication, which takes {takes}"),
            );
        }
    }
    if auth.kind == AuthKind::ApiKey {
        let location = c.location.unwrap_or_default();
        if location == ApiKeyLocation::Header && c.param_name.is_some() {
            findings.problem(
                credentials.key("paramName"),
                "paramName applies to `location: query`; the key goes in a header here (set \
                 headerName, or `location: query`)",
            );
        }
        if location == ApiKeyLocation::Query && c.header_name.is_some() {
            findings.problem(
                credentials.key("headerName"),
                "headerName applies to `location: header`; the key goes in the query here (set \
                 paramName, or `location: header`)",
            );
        }
    }
    if let Some(token_url) = &c.token_url
        && auth.kind == AuthKind::OAuth2
        && !token_url.trim().is_empty()
    {
        check_url(
            findings,
            &credentials.key("tokenUrl"),
            token_url,
            NO_TEMPLATES,
        );
    }
}

fn check_retry(findings: &mut Findings, path: &KeyPath, retry: &RetryConfig) {
    if retry.max_attempts == 0 {
        findings.problem(
            path.key("maxAttempts"),
            "maxAttempts counts the first attempt too, so it is at least 1 (1 = no retry)",
        );
    }
    if !(retry.backoff_multiplier.is_finite() && retry.backoff_multiplier >= 1.0) {
        findings.problem(
            path.key("backoffMultiplier"),
            format!(
                "backoffMultiplier is {}, but delays must not shrink: use 1 (constant) or more",
                retry.backoff_multiplier
            ),
        );
    }
    if retry.max_delay_ms < retry.delay_ms {
        findings.problem(
            path.key("maxDelayMs"),
            format!(
                "maxDelayMs ({}) is below delayMs ({}); raise maxDelayMs",
                retry.max_delay_ms, retry.delay_ms
            ),
        );
    }
    for (i, code) in retry.retryable_status_codes.iter().enumerate() {
        if !(100..=599).contains(code) {
            findings.problem(
                path.key("retryableStatusCodes").index(i),
                format!("{code} is not an HTTP status code (100 to 599)"),
            );
        }
    }
}

fn check_pagination(findings: &mut Findings, path: &KeyPath, p: &Pagination) {
    let settings: [(&str, bool); 8] = [
        ("param", p.param.is_some()),
        ("limitParam", p.limit_param.is_some()),
        ("limit", p.limit.is_some()),
        ("totalField", p.total_field.is_some()),
        ("totalPagesField", p.total_pages_field.is_some()),
        ("nextCursorField", p.next_cursor_field.is_some()),
        ("startPage", p.start_page.is_some()),
        ("maxPages", p.max_pages.is_some()),
    ];
    let (kind, required, allowed): (&str, &[&str], &[&str]) = match p.kind {
        PaginationKind::Offset => (
            "offset",
            &[],
            &["param", "limitParam", "limit", "totalField", "maxPages"],
        ),
        PaginationKind::Page => (
            "page",
            &[],
            &[
                "param",
                "limitParam",
                "limit",
                "totalPagesField",
                "startPage",
                "maxPages",
            ],
        ),
        PaginationKind::Cursor => (
            "cursor",
            &["nextCursorField"],
            &[
                "param",
                "limitParam",
                "limit",
                "nextCursorField",
                "maxPages",
            ],
        ),
        PaginationKind::Link => ("link", &[], &["limitParam", "limit", "maxPages"]),
    };
    // `param` defaults to the kind's name (`page`, `offset`, `cursor`) and an offset advances by
    // the records a page holds, so only the cursor kind needs to be told where its token is.
    let why = |name: &str| match name {
        "nextCursorField" => "the response path of the next token",
        _ => "",
    };
    for (name, is_set) in settings {
        if required.contains(&name) && !is_set {
            findings.problem(
                path.key(name),
                format!("{kind} pagination needs `{name}`, {}", why(name)),
            );
        }
        if is_set && !allowed.contains(&name) {
            findings.problem(
                path.key(name),
                format!(
                    "`{name}` does not apply to {kind} pagination, which takes {}",
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    for (name, value) in [("param", &p.param), ("limitParam", &p.limit_param)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            findings.problem(
                path.key(name),
                format!("`{name}` is empty; name the request parameter"),
            );
        }
    }
    if p.limit_param.is_some() && p.limit.is_none() && allowed.contains(&"limit") {
        findings.problem(
            path.key("limit"),
            "limitParam needs `limit`, the page size to ask for",
        );
    }
    for (name, value) in [("limit", p.limit), ("maxPages", p.max_pages)] {
        if value == Some(0) {
            findings.problem(path.key(name), format!("`{name}` must be more than 0"));
        }
    }
    for (name, value) in [
        ("totalField", &p.total_field),
        ("totalPagesField", &p.total_pages_field),
        ("nextCursorField", &p.next_cursor_field),
    ] {
        if let Some(field) = value {
            check_field_path(findings, &path.key(name), field);
        }
    }
}

fn check_database_input(
    findings: &mut Findings,
    path: &KeyPath,
    input: &mut DatabaseInput,
    base_dir: &Path,
) {
    check_schedule(
        findings,
        path,
        input.schedule.as_deref(),
        input.timezone.as_deref(),
    );
    if let Some(driver) = check_connection(
        findings,
        path,
        input.connection_string.as_deref(),
        input.connection_string_ref.as_deref(),
        input.driver,
    ) {
        input.driver = Some(driver);
    }
    match (&input.query, &input.query_file) {
        (None, None) => findings.problem(
            path.key("query"),
            "a database input needs `query` (the SQL) or `queryFile` (a file holding it)",
        ),
        (Some(_), Some(_)) => findings.problem(
            path.key("queryFile"),
            "write only one of `query` and `queryFile`",
        ),
        (None, Some(file)) => {
            let full = base_dir.join(file);
            match std::fs::read_to_string(&full) {
                Ok(text) => input.query = Some(text),
                Err(error) => findings.problem(
                    path.key("queryFile"),
                    format!(
                        "cannot read the query file {} ({error}); a relative queryFile is read \
                         from the directory of the pipeline file",
                        full.display()
                    ),
                ),
            }
        }
        (Some(_), None) => {}
    }
    check_statement_timeout(findings, path, input.statement_timeout_ms);
    let state = input.state_persistence.clone().unwrap_or_default();
    check_database_cursors(findings, &path.key("statePersistence"), &state);
    let cursors: Vec<&str> = [
        state.timestamp().map(|_| "timestamp"),
        state.id().map(|_| "id"),
        state.offset().map(|_| "offset"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(parameters) = &input.parameters {
        for (i, parameter) in parameters.iter().enumerate() {
            if parameter.uses_record() {
                findings.problem(
                    path.key("parameters").index(i),
                    format!(
                        "`{parameter}`: an input query runs before there is a record; bind \
                         state.timestamp, state.id, state.offset or a literal"
                    ),
                );
            }
        }
    }
    let Some(query) = input.query.as_deref() else {
        return;
    };
    let query_path = if input.query_file.is_some() {
        path.key("queryFile")
    } else {
        path.key("query")
    };
    if query.trim().is_empty() {
        findings.problem(query_path.clone(), "the query is empty");
        return;
    }
    let shape = sql::scan(query);
    let bound = match &input.parameters {
        Some(parameters) => Bound::Listed(parameters.len()),
        None => Bound::Cursors(&cursors),
    };
    check_placeholders(findings, path, &query_path, &shape, &bound);
    if shape.has_limit && !shape.has_order_by {
        findings.warning(
            query_path.clone(),
            "the query has LIMIT but no ORDER BY, so which rows each batch returns is undefined \
             and rows can be skipped; order by the cursor columns (e.g. ORDER BY updated_at, id)",
        );
    }
    if shape.has_limit && state.timestamp().is_some() && state.id().is_none() {
        let column = state
            .timestamp()
            .and_then(|c| c.field.as_deref())
            .and_then(|f| f.rsplit('.').next())
            .unwrap_or("updated_at");
        findings.warning(
            query_path,
            format!(
                "the cursor is the timestamp alone and the query has LIMIT: when a batch ends \
                 inside a group of rows sharing one {column}, the rest of that group is skipped \
                 by the next query. Page by (timestamp, id) instead: enable the id cursor and \
                 write WHERE ({column}, id) > ($1, $2) ORDER BY {column}, id"
            ),
        );
    }
}

fn check_database_cursors(findings: &mut Findings, path: &KeyPath, state: &StatePersistence) {
    check_storage_path(findings, path, state);
    let not_http = "is for httpPolling inputs; a database cursor is bound to a `$n` placeholder \
                    (see `parameters`)";
    if let Some(cursor) = state.timestamp() {
        check_cursor_field(
            findings,
            &path.key("timestamp"),
            "timestamp",
            cursor.field.as_deref(),
        );
        if cursor.query_param.is_some() {
            findings.problem(
                path.key("timestamp").key("queryParam"),
                format!("queryParam {not_http}"),
            );
        }
        if cursor.format.is_some() {
            findings.problem(
                path.key("timestamp").key("format"),
                "format is for httpPolling inputs; a database timestamp is bound with its SQL \
                 type",
            );
        }
    }
    if let Some(cursor) = state.id() {
        check_cursor_field(findings, &path.key("id"), "id", cursor.field.as_deref());
        if cursor.query_param.is_some() {
            findings.problem(
                path.key("id").key("queryParam"),
                format!("queryParam {not_http}"),
            );
        }
    }
    if let Some(cursor) = state.offset()
        && cursor.query_param.is_some()
    {
        findings.problem(
            path.key("offset").key("queryParam"),
            format!("queryParam {not_http}"),
        );
    }
}

/// What fills `$1..$n`.
enum Bound<'a> {
    /// A `parameters` list of this length.
    Listed(usize),
    /// No `parameters`: the enabled cursors, in the order timestamp, id, offset.
    Cursors(&'a [&'a str]),
}

fn check_placeholders(
    findings: &mut Findings,
    block: &KeyPath,
    query_path: &KeyPath,
    shape: &sql::QueryShape,
    bound: &Bound<'_>,
) {
    let count = match bound {
        Bound::Listed(n) => *n,
        Bound::Cursors(cursors) => cursors.len(),
    };
    let highest = shape.placeholders.last().copied().unwrap_or(0);
    if let Some(gap) = (1..highest).find(|n| !shape.placeholders.contains(n)) {
        findings.problem(
            query_path.clone(),
            format!(
                "the query uses ${highest} but not ${gap}; number the placeholders $1 to \
                 ${highest} without gaps (the database cannot type an unused placeholder)"
            ),
        );
    }
    if highest == count {
        return;
    }
    let what_is_bound = match bound {
        Bound::Listed(1) => "`parameters` lists 1 value".to_owned(),
        Bound::Listed(n) => format!("`parameters` lists {n} values"),
        Bound::Cursors([]) => "nothing is bound (no `parameters` and no enabled cursor)".to_owned(),
        Bound::Cursors(cursors) => format!(
            "without `parameters` the enabled cursors are bound ({})",
            cursors
                .iter()
                .map(|c| format!("state.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let uses = match highest {
        0 => "the query has no placeholder".to_owned(),
        1 => "the query uses $1".to_owned(),
        n => format!("the query uses $1 to ${n}"),
    };
    let path = match bound {
        Bound::Listed(_) => block.key("parameters"),
        Bound::Cursors(_) => query_path.clone(),
    };
    findings.problem(
        path,
        format!("{uses} but {what_is_bound}; bind exactly one value per placeholder"),
    );
}

/// Checks the connection settings; returns the driver when it is known.
fn check_connection(
    findings: &mut Findings,
    path: &KeyPath,
    connection_string: Option<&str>,
    connection_string_ref: Option<&str>,
    driver: Option<Driver>,
) -> Option<Driver> {
    let (key, url) = match (connection_string, connection_string_ref) {
        (None, None) => {
            findings.problem(
                path.key("connectionStringRef"),
                "missing key: set `connectionStringRef` (usually ${DATABASE_URL}) or \
                 `connectionString`",
            );
            return driver;
        }
        (Some(_), Some(_)) => {
            findings.problem(
                path.key("connectionString"),
                "write only one of `connectionString` and `connectionStringRef`",
            );
            return driver;
        }
        (Some(url), None) => ("connectionString", url),
        (None, Some(url)) => ("connectionStringRef", url),
    };
    if url.trim().is_empty() {
        findings.problem(
            path.key(key),
            format!("`{key}` is empty (an empty variable?); write a postgres:// or sqlite:// URL"),
        );
        return driver;
    }
    match (Driver::from_url(url), driver) {
        (Some(inferred), Some(given)) if inferred != given => {
            findings.problem(
                path.key("driver"),
                format!(
                    "driver is {} but {key} is a {} URL; remove `driver` or fix the URL",
                    given.name(),
                    inferred.name()
                ),
            );
            Some(given)
        }
        (Some(inferred), _) => Some(inferred),
        (None, Some(given)) => Some(given),
        (None, None) => {
            findings.problem(
                path.key(key),
                format!(
                    "cannot tell the database from `{key}`: start it with postgres://, \
                     postgresql://, sqlite:// or file:, or set `driver: postgres` or `driver: \
                     sqlite`"
                ),
            );
            None
        }
    }
}

fn check_http_output(findings: &mut Findings, path: &KeyPath, output: &HttpRequestOutput) {
    let single = output.request_mode == RequestMode::Single;
    check_url(
        findings,
        &path.key("endpoint"),
        &output.endpoint,
        Allowed {
            state: false,
            record: single,
        },
    );
    match output.batch_size {
        Some(0) => findings.problem(path.key("batchSize"), "batchSize must be more than 0"),
        Some(_) if single => findings.problem(
            path.key("batchSize"),
            "batchSize applies to `requestMode: batch`; single mode sends one record a request",
        ),
        _ => {}
    }
    check_timeout(findings, path, output.timeout_ms);
    if let Some(auth) = &output.authentication {
        check_authentication(findings, &path.key("authentication"), auth);
    }
    check_retry(findings, &path.key("retry"), &output.retry);
    if let Some(success) = &output.success {
        let codes = path.key("success").key("statusCodes");
        if success.status_codes.is_empty() {
            findings.problem(
                codes.clone(),
                "statusCodes is empty, so no response would count as delivered; list codes or \
                 remove `success` (default: any 2xx)",
            );
        }
        for (i, code) in success.status_codes.iter().enumerate() {
            if !(100..=599).contains(code) {
                findings.problem(
                    codes.index(i),
                    format!("{code} is not an HTTP status code (100 to 599)"),
                );
            }
        }
    }
}

fn check_database_output(findings: &mut Findings, path: &KeyPath, output: &mut DatabaseOutput) {
    if let Some(driver) = check_connection(
        findings,
        path,
        output.connection_string.as_deref(),
        output.connection_string_ref.as_deref(),
        output.driver,
    ) {
        output.driver = Some(driver);
    }
    check_statement_timeout(findings, path, output.statement_timeout_ms);
    for (i, parameter) in output.parameters.iter().enumerate() {
        if parameter.uses_state() {
            findings.problem(
                path.key("parameters").index(i),
                format!(
                    "`{parameter}`: an output binds values of each record; use record.<path> or \
                     a literal, not state.*"
                ),
            );
        }
    }
    if output.query.trim().is_empty() {
        findings.problem(
            path.key("query"),
            "the query is empty; write the SQL run for each record",
        );
        return;
    }
    let shape = sql::scan(&output.query);
    check_placeholders(
        findings,
        path,
        &path.key("query"),
        &shape,
        &Bound::Listed(output.parameters.len()),
    );
}
