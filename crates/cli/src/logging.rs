//! Logs go to standard error through `tracing`: human lines on a terminal, JSON on request.
//!
//! On a terminal, a status line (the progress of long runs) may sit below the logs; a log line
//! first erases it, and the progress display draws it again on its next tick.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};

/// What the rest of the program needs to know about how logs are shown.
#[derive(Debug, Clone, Copy)]
struct Settings {
    json: bool,
    progress: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Values that came from environment variables in the loaded pipelines: replaced by `${NAME}` in
/// every log line and error message, so that a secret never reaches a terminal or a log store.
static SECRETS: Mutex<Vec<cannectors_config::Secrets>> = Mutex::new(Vec::new());

/// Keeps the secrets of a loaded pipeline out of everything written to standard error.
pub(crate) fn keep_out(secrets: &cannectors_config::Secrets) {
    if !secrets.is_empty() {
        SECRETS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(secrets.clone());
    }
}

/// `text` with every known secret replaced by the name of its variable.
pub(crate) fn redact(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    secrets
        .iter()
        .fold(text.to_owned(), |text, secrets| secrets.redact(&text))
}

/// Whether a status line is on the screen now.
static STATUS_SHOWN: Mutex<bool> = Mutex::new(false);

/// Erases the status line, moving the cursor back to the start of the line.
const ERASE_LINE: &[u8] = b"\r\x1b[2K";

pub(crate) fn init(args: &LogArgs) {
    let default_level = if args.quiet {
        "warn"
    } else {
        match args.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let terminal = std::io::stderr().is_terminal();
    let json = args.log_format == LogFormat::Json;
    let _ = SETTINGS.set(Settings {
        json,
        progress: terminal && !json && !args.quiet,
    });
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},hyper=warn,reqwest=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_target(false);
    let result = match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human | LogFormat::Auto => builder.with_ansi(terminal).try_init(),
    };
    // A subscriber set twice is a programming error in tests only; the program goes on either way.
    drop(result);
}

/// Whether log lines are JSON objects.
pub(crate) fn is_json() -> bool {
    SETTINGS.get().is_some_and(|settings| settings.json)
}

/// Whether a progress line may be drawn: standard error is a terminal, logs are for humans,
/// and `--quiet` was not given.
pub(crate) fn progress_enabled() -> bool {
    SETTINGS.get().is_some_and(|settings| settings.progress)
}

/// Tells the user about an error: an `error:` line, or an error event in JSON mode so that
/// standard error stays one JSON object per line.
pub(crate) fn report_error(message: &str) {
    if is_json() {
        tracing::error!("{message}");
    } else {
        erase_status();
        eprintln!("error: {}", redact(message));
    }
}

/// Draws `line` as the status line, or erases the status line when `None`.
pub(crate) fn show_status(line: Option<&str>) {
    let mut shown = STATUS_SHOWN.lock().unwrap_or_else(PoisonError::into_inner);
    let mut stderr = std::io::stderr().lock();
    // A terminal that went away is no reason to stop; the next log line reports nothing either.
    let _ = match line {
        Some(text) => stderr
            .write_all(ERASE_LINE)
            .and_then(|()| stderr.write_all(text.as_bytes())),
        None if *shown => stderr.write_all(ERASE_LINE),
        None => Ok(()),
    };
    let _ = stderr.flush();
    *shown = line.is_some();
}

fn erase_status() {
    let mut shown = STATUS_SHOWN.lock().unwrap_or_else(PoisonError::into_inner);
    if *shown {
        let _ = std::io::stderr().lock().write_all(ERASE_LINE);
        *shown = false;
    }
}

/// Standard error, erasing the status line before the first byte of a log line.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        erase_status();
        let has_secrets = !SECRETS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if has_secrets {
            // The formatter hands over one whole event at a time, so a secret is never split.
            let text = redact(&String::from_utf8_lossy(buf));
            std::io::stderr().write_all(text.as_bytes())?;
            Ok(buf.len())
        } else {
            std::io::stderr().write(buf)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
