//! The pipeline model of cannectors and everything needed to read it from a file.
//!
//! A pipeline file (YAML, or JSON) says where records come from (`input`), how they are
//! reshaped (`filters`) and where they go (`output`). This crate parses it into [`Pipeline`],
//! replaces `${VAR}` / `${VAR:-default}` from the environment, and checks it, with errors that
//! name the file, the key path and the line. It does no I/O beyond reading the pipeline file and
//! the `queryFile` it names. The full reference of the file is `docs/configuration.md`.
//!
//! ```
//! let yaml = r#"
//! name: events-sync
//! input:
//!   type: httpPolling
//!   endpoint: https://source.example.com/api/events
//!   dataField: events
//!   authentication: {type: bearer, credentials: {token: "${SOURCE_TOKEN}"}}
//! output: {type: stdout}
//! "#;
//! let env = |name: &str| (name == "SOURCE_TOKEN").then(|| "t0ken-from-env".to_owned());
//! let loaded = cannectors_config::parse_str(yaml, "events.yaml", &env).unwrap();
//! assert_eq!(loaded.pipeline.name, "events-sync");
//! assert_eq!(loaded.redact("sent t0ken-from-env"), "sent ${SOURCE_TOKEN}");
//!
//! // Every mistake of a file comes back at once, each with the line, column and key path.
//! let typos = "name: x\ninput: {type: httpPolling, endpiont: https://a.example.com}\n";
//! let err = cannectors_config::parse_str(typos, "x.yaml", &env).unwrap_err();
//! assert!(!err.is_parse_error());
//! assert_eq!(
//!     err.to_string(),
//!     "x.yaml: 2 problems\n  \
//!      x.yaml:1:1: output: missing key `output`\n  \
//!      x.yaml:2:28: input.endpiont: unknown key `endpiont`; did you mean `endpoint`?"
//! );
//! ```

mod authentication;
mod cursor;
mod database;
mod decode;
mod defaults;
mod document;
mod duration;
mod expr;
mod expression;
mod filter;
mod http;
mod input;
mod model;
mod output;
mod path;
mod scalar;
mod schedule;
mod schema;
mod sql;
mod state_persistence;
mod template;
mod validate;
mod variables;

use std::fmt;
use std::path::{Path, PathBuf};

pub use authentication::{
    ApiKey, ApiKeyLocation, Authentication, BasicCredentials, BearerToken, OAuth2Credentials,
    TokenAuthMethod,
};
pub use database::{Connection, Driver};
pub use duration::{DurationError, parse_duration};
pub use expr::{Expr, ExprError, Reference, StateCursor};
pub use expression::{EvaluationError, Expression, ExpressionError, Fields};
pub use filter::{
    ConditionFilter, DateFormat, DropFilter, FieldMapping, FilterConfig, MappingFilter, OnError,
    OnMissing, Pattern, RemoveFilter, SetFilter, Transform,
};
pub use http::{Endpoint, RetryConfig, SinkMethod, SourceMethod};
pub use input::InputConfig;
pub use input::database::{DatabaseInput, InputParameters};
pub use input::http::{HttpPollingInput, JsonBody, SourceBody, Window};
pub use input::pagination::{
    CursorPagination, LinkPagination, OffsetPagination, PageLimit, PagePagination, Pagination,
};
pub use model::Pipeline;
pub use output::OutputConfig;
pub use output::database::{DatabaseOutput, OnRefusedRow};
pub use output::file::FileOutput;
pub use output::http_request::{HttpRequestOutput, RequestMode, SuccessConfig};
pub use output::stdout::StdoutOutput;
pub use path::{FieldPath, FieldPathError};
pub use schedule::{CronSchedule, ScheduleError, normalize_schedule};
pub use schema::json_schema;
pub use state_persistence::{
    IdCursor, Identity, Lookback, OffsetCursor, OnMissingCursor, PostgresStore, StatePersistence,
    StoreKind, StrftimePattern, TimestampCursor, TimestampFormat, TimestampFormatError,
};
pub use template::{Template, TemplateError, TemplatePart};
pub use variables::Secrets;

use decode::Problems;
use document::{Format, KeyPath, PositionIndex};
use input::database::QueryFile;

/// A pipeline read from a file, with what was learned while reading it.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    /// The pipeline's settings, with variables substituted, `queryFile` read into `query` and
    /// database drivers filled in.
    pub pipeline: Pipeline,
    /// The file it came from, as given.
    pub path: PathBuf,
    /// Things that are allowed but probably wrong, one sentence each, starting with the key
    /// path and line they are about (the file is not named: the caller knows it).
    pub warnings: Vec<String>,
    /// The values that came from environment variables; see [`LoadedPipeline::redact`].
    pub secrets: Secrets,
}

impl LoadedPipeline {
    /// `text` with every value that came from an environment variable replaced by `${NAME}`.
    /// Run log lines and error messages that may quote configuration through this.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.redact(text)
    }
}

/// One mistake in a pipeline file, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `input.statePersistence.id.field` or `filters[2].type`; empty when the
    /// problem is about the whole file.
    pub key_path: String,
    /// Line in the file, from 1, when known.
    pub line: Option<usize>,
    /// Column in the file, from 1, when known.
    pub column: Option<usize>,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Problem {
    fn new(path: &KeyPath, index: &PositionIndex, message: String) -> Problem {
        let position = index.locate(path);
        Problem {
            key_path: path.to_string(),
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
            message,
        }
    }

    /// `origin:line:column: key.path: message`, the form editors and terminals link to.
    fn render(&self, origin: &str) -> String {
        let mut out = origin.to_owned();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                out.push_str(&format!(":{column}"));
            }
        }
        out.push_str(": ");
        if !self.key_path.is_empty() {
            out.push_str(&self.key_path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.key_path.is_empty() {
            write!(f, "{}", self.key_path)?;
            if let Some(line) = self.line {
                write!(f, " (line {line})")?;
            }
            f.write_str(": ")?;
        } else if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why a pipeline file could not be used.
///
/// [`ConfigError::is_parse_error`] separates a file that cannot be read as YAML or JSON at all
/// (exit code 2) from a YAML or JSON file that is not a valid pipeline (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the pipeline file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not YAML (or, for a `.json` file, not JSON): a syntax error, a key written
    /// twice in one mapping, lists and mappings nested too deep, aliases standing for too many
    /// values. Nothing after it can be read, so it is the only mistake reported.
    #[error("{}", render_parse(origin, key_path, *line, *column, message))]
    Parse {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
        /// Where, as a key path (empty for the whole file).
        key_path: String,
        /// Line in the file, from 1, when known.
        line: Option<usize>,
        /// Column in the file, from 1, when known.
        column: Option<usize>,
    },
    /// The file is YAML or JSON but not a valid pipeline: unknown keys (with the key most
    /// likely meant), missing keys, wrong types, values that break a rule, variables that are
    /// not set. Every problem of the file is listed, in the order of the file.
    #[error("{}", render_invalid(origin, problems))]
    Invalid {
        /// The file.
        origin: String,
        /// Every problem found, in the order of the file.
        problems: Vec<Problem>,
    },
}

fn render_parse(
    origin: &str,
    key_path: &str,
    line: Option<usize>,
    column: Option<usize>,
    message: &str,
) -> String {
    Problem {
        key_path: key_path.to_owned(),
        line,
        column,
        message: message.to_owned(),
    }
    .render(origin)
}

fn render_invalid(origin: &str, problems: &[Problem]) -> String {
    match problems {
        [one] => one.render(origin),
        many => {
            let mut out = format!("{origin}: {} problems", many.len());
            for problem in many {
                out.push_str("\n  ");
                out.push_str(&problem.render(origin));
            }
            out
        }
    }
}

impl ConfigError {
    /// Whether the file could not be read as YAML or JSON at all (exit code 2), rather than
    /// being a file that is not a valid pipeline (exit code 1).
    pub fn is_parse_error(&self) -> bool {
        matches!(self, ConfigError::Parse { .. } | ConfigError::Read { .. })
    }

    /// The problems with their positions (one for a parse error, none for a read error).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Read { .. } => Vec::new(),
            ConfigError::Parse {
                message,
                key_path,
                line,
                column,
                ..
            } => vec![Problem {
                key_path: key_path.clone(),
                line: *line,
                column: *column,
                message: message.clone(),
            }],
            ConfigError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

/// Reads, substitutes from the process environment, and checks a pipeline file.
pub fn load(path: impl AsRef<Path>) -> Result<LoadedPipeline, ConfigError> {
    load_with_env(path, &|name| std::env::var(name).ok())
}

/// Like [`load`], with `env` looking up the variables instead of the process environment.
pub fn load_with_env(
    path: impl AsRef<Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedPipeline, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut loaded = parse_str(&text, &path.display().to_string(), env)?;
    loaded.path = path.to_owned();
    Ok(loaded)
}

/// Parses and checks pipeline text. `origin` names it in errors, chooses the format (JSON when
/// it ends in `.json`, YAML otherwise) and locates a relative `queryFile` (its directory);
/// `env` looks up variables.
pub fn parse_str(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedPipeline, ConfigError> {
    let document = document::parse(text, Format::of(origin)).map_err(|error| {
        let position = error.position;
        ConfigError::Parse {
            origin: origin.to_owned(),
            message: error.message,
            key_path: error.path.to_string(),
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
        }
    })?;
    let index = document.index;
    let mut tree = document.tree;
    let mut problems = Problems::default();
    for left_out in document.left_out {
        if left_out.whole_value {
            problems.report(&left_out.path, left_out.message);
        } else {
            problems.note(&left_out.path, left_out.message);
        }
    }
    problems.next_step();
    let mut secrets = Secrets::default();
    // A value whose variable is missing still holds `${NAME}`; what the later steps say about
    // that text would only repeat the real problem.
    for unresolved in variables::substitute(&mut tree, env, &mut secrets) {
        problems.report(&unresolved.path, unresolved.message);
    }

    defaults::apply(&mut tree, &mut problems);
    if let Some(mut raw) = decode::decode(tree, &mut problems) {
        // The rules run on the file as repaired by decoding (placeholders for what is missing,
        // defaults for what was refused), so that every problem shows in one pass; they build
        // the settings, which come back only when no rule found a problem.
        let base_dir = Path::new(origin).parent().unwrap_or(Path::new("."));
        let query_file = read_query_file(raw.input.query_file(), base_dir);
        if let output::RawOutput::Database(output) = &mut raw.output {
            output.read_query_file(base_dir);
        }
        let (pipeline, findings) = validate::validate(raw, query_file);
        problems.next_step();
        for (path, message) in &findings.problems {
            problems.report(path, message.clone());
        }
        if let Some(pipeline) = pipeline.filter(|_| problems.is_empty()) {
            let warnings = findings
                .warnings
                .iter()
                .map(|(path, message)| {
                    Problem::new(path, &index, secrets.redact(message)).to_string()
                })
                .collect();
            return Ok(LoadedPipeline {
                pipeline,
                path: PathBuf::from(origin),
                warnings,
                secrets,
            });
        }
    }
    let mut problems: Vec<Problem> = problems
        .into_vec()
        .into_iter()
        .map(|(path, message)| Problem::new(&path, &index, secrets.redact(&message)))
        .collect();
    problems.sort_by_key(|p| (p.line.unwrap_or(usize::MAX), p.column.unwrap_or(usize::MAX)));
    Err(ConfigError::Invalid {
        origin: origin.to_owned(),
        problems,
    })
}

/// Reads the `queryFile` of a database input, relative to `base_dir` (the directory of the
/// pipeline file), so that validation has its text and does no I/O itself.
fn read_query_file(file: Option<&str>, base_dir: &Path) -> Option<QueryFile> {
    let path = base_dir.join(file?);
    let text = std::fs::read_to_string(&path);
    Some(QueryFile { path, text })
}
