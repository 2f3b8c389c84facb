//! What every end-to-end test needs: the binary, a scratch directory, and a way to run a
//! command with a bounded wait. The servers the binary talks to come from the test-support
//! crate, shared with the crates' own tests and the benchmark.

pub use cannectors_test_support::{http, silent};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The `cannectors` binary built for this test run.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cannectors"))
}

/// A scratch directory that is removed when dropped; commands run inside it.
pub struct Workspace {
    dir: tempfile::TempDir,
}

/// What a finished command printed and how it ended.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn from_output(output: Output) -> Outcome {
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file relative to the workspace and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).expect("read file")
    }

    /// A command for the binary, running in the workspace with a clean logging setup.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG");
        command
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Outcome {
        Outcome::from_output(self.command(args).output().expect("start cannectors"))
    }
}

/// Runs `command` to completion, for at most `limit`: a process still going then is killed and
/// fails the test, so that a hang shows up as a failure rather than a stuck test run.
pub fn output_within(mut command: Command, limit: Duration) -> Outcome {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cannectors");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(limit) {
        Ok(output) => Outcome::from_output(output.expect("wait for cannectors")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
            panic!("cannectors did not exit within {limit:?}");
        }
    }
}
