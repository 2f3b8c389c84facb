//! `cannectors state show|path|reset|set` through the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::Workspace;

const PIPELINE: &str = r#"
name: orders
input:
  type: httpPolling
  endpoint: http://127.0.0.1:9/orders
  statePersistence:
    timestamp: {field: updated_at, queryParam: since}
    id: {field: id, queryParam: after}
    storagePath: ./state
output: {type: stdout}
"#;

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("orders.yaml", PIPELINE);
    ws
}

#[test]
fn set_show_and_reset_round_trip_through_the_state_file() {
    let ws = workspace();
    let set = ws.run(&[
        "state",
        "set",
        "orders.yaml",
        "--timestamp",
        "2026-01-01T00:00:00Z",
        "--id",
        "42",
    ]);
    assert_eq!(set.code, Some(0), "{set:?}");

    let file = ws.path().join("state/orders.json");
    let content: serde_json::Value = serde_json::from_str(&ws.read("state/orders.json")).unwrap();
    assert_eq!(content["timestamp"], "2026-01-01T00:00:00Z");
    assert_eq!(content["id"], 42);

    let show = ws.run(&["state", "show", "orders.yaml"]);
    assert_eq!(show.code, Some(0), "{show:?}");
    let absolute = file.canonicalize().unwrap();
    assert!(
        show.stdout.contains(&absolute.display().to_string()),
        "{show:?}"
    );
    assert!(show.stdout.contains("2026-01-01T00:00:00Z"), "{show:?}");

    let path = ws.run(&["state", "path", "orders.yaml"]);
    assert_eq!(path.stdout.trim(), absolute.display().to_string());

    let reset = ws.run(&["state", "reset", "orders.yaml"]);
    assert_eq!(reset.code, Some(0), "{reset:?}");
    assert!(!file.exists());
    let show = ws.run(&["state", "show", "orders.yaml"]);
    assert!(show.stdout.contains("no state yet"), "{show:?}");
}

#[test]
fn set_keeps_the_cursors_it_is_not_given() {
    let ws = workspace();
    ws.run(&[
        "state",
        "set",
        "orders.yaml",
        "--timestamp",
        "2026-01-01T00:00:00Z",
        "--id",
        "7",
    ]);
    let out = ws.run(&["state", "set", "orders.yaml", "--offset", "500"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let content: serde_json::Value = serde_json::from_str(&ws.read("state/orders.json")).unwrap();
    assert_eq!(content["id"], 7);
    assert_eq!(content["offset"], 500);
}

#[test]
fn set_rejects_a_bad_timestamp_and_writes_nothing() {
    let ws = workspace();
    let out = ws.run(&["state", "set", "orders.yaml", "--timestamp", "yesterday"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("yesterday"), "{out:?}");
    assert!(!ws.path().join("state/orders.json").exists());
}

#[test]
fn a_corrupt_state_file_makes_show_set_and_run_exit_3_naming_the_reset_command_and_stays_unchanged()
{
    let ws = workspace();
    let corrupt = "{\"timestamp\": \"2026-01-01T00:00:00Z\", \"id\": ";
    ws.write("state/orders.json", corrupt);
    let message = format!(
        "state file {} is not usable: it ends in the middle of the JSON (line 1, column 44): it \
         was cut short, perhaps by a full disk or an interrupted copy. Nothing was changed: fix \
         the file by hand, or remove it to start over from scratch (`cannectors state reset \
         orders.yaml` removes it)\n",
        ws.path().join("state/orders.json").display()
    );
    for (args, prefix) in [
        (&["state", "show", "orders.yaml"][..], "error: "),
        (&["state", "set", "orders.yaml", "--id", "1"][..], "error: "),
        (
            &["run", "--once", "orders.yaml"][..],
            "error: orders.yaml: ",
        ),
    ] {
        let out = ws.run(args);
        assert_eq!(out.code, Some(3), "{out:?}");
        assert!(
            out.stderr.ends_with(&format!("{prefix}{message}")),
            "{args:?}: {out:?}"
        );
        assert_eq!(ws.read("state/orders.json"), corrupt);
    }
}

#[test]
fn a_state_directory_that_cannot_be_created_names_the_key_that_sets_it() {
    let ws = workspace();
    // A file where the storage directory should be.
    ws.write("state", "not a directory");
    let message = format!(
        "cannot create the state directory {}: File exists (os error 17); create it, or keep the \
         state in a writable directory (the directory is statePersistence.storagePath in \
         orders.yaml)\n",
        ws.path().join("state").display()
    );
    for (args, prefix) in [
        (&["state", "set", "orders.yaml", "--id", "1"][..], "error: "),
        (
            &["run", "--once", "orders.yaml"][..],
            "error: orders.yaml: ",
        ),
    ] {
        let out = ws.run(args);
        assert_eq!(out.code, Some(3), "{out:?}");
        assert!(
            out.stderr.ends_with(&format!("{prefix}{message}")),
            "{args:?}: {out:?}"
        );
        assert_eq!(ws.read("state"), "not a directory");
    }
}

#[test]
fn set_fails_at_once_while_another_process_holds_the_run_lock() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join("state")).unwrap();
    let lock = ws.path().join("state/orders.lock");
    // util-linux flock(1) takes the same kind of lock (flock(2)) as the program; the holder
    // says so on its standard output once it has the lock.
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sh", "-c", "echo locked; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock(1) from util-linux");
    let stdout = holder.stdout.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = said.send(line);
    });
    assert_eq!(
        heard.recv_timeout(Duration::from_secs(10)).as_deref(),
        Ok("locked\n"),
        "flock(1) took the lock"
    );
    let out = ws.run(&["state", "set", "orders.yaml", "--id", "5"]);
    holder.kill().ok();
    holder.wait().ok();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("already running"), "{out:?}");
    assert!(!ws.path().join("state/orders.json").exists());
}
