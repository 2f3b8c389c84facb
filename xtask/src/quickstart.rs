//! `cargo xtask quickstart`: the README's first command.
//!
//! The quickstart pipelines work on a copy of `examples/quickstart/events.db` under the ignored
//! `examples/quickstart/out/`, so that trying them (including the add-a-row step, which writes
//! to the database) never changes a file the repository tracks. This task makes that copy when
//! it is missing and then runs the quickstart pipeline with the debug build of the binary.

use std::fs;

use crate::{cargo, run, workspace_root};

/// The tracked database, never written.
const SEED: &str = "examples/quickstart/events.db";
/// The copy the quickstart pipelines read and write (ignored by git).
const WORKING_COPY: &str = "examples/quickstart/out/events.db";

pub(crate) fn quickstart() -> Result<(), String> {
    let root = workspace_root();
    let copy = root.join(WORKING_COPY);
    if !copy.exists() {
        if let Some(dir) = copy.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| format!("quickstart: cannot create {}: {e}", dir.display()))?;
        }
        fs::copy(root.join(SEED), &copy)
            .map_err(|e| format!("quickstart: cannot copy {SEED} to {WORKING_COPY}: {e}"))?;
        eprintln!("quickstart: copied {SEED} to {WORKING_COPY} (the pipelines work on the copy)");
    }
    let mut pipeline = cargo();
    pipeline.args([
        "run",
        "--quiet",
        "-p",
        "cannectors-cli",
        "--",
        "run",
        "examples/quickstart/pipeline.yaml",
    ]);
    run("the quickstart pipeline", pipeline)?;
    eprintln!(
        "\nquickstart: records are in examples/quickstart/out/events.jsonl. Next steps (add a row, \
         run again, rewind the cursor) are in examples/quickstart/README.md"
    );
    Ok(())
}
