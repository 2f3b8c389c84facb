//! The files a run derives from the pipeline name in its storage directory: names too long for
//! them, a link planted where the lock goes, and two pipeline files sharing one state file.

use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::http::{Response, Server};

/// A source of two records that honours the `after` id cursor.
fn source() -> Server {
    Server::start(|request| {
        let after: i64 = request
            .param("after")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let records: Vec<Value> = [1, 2]
            .into_iter()
            .filter(|id| *id > after)
            .map(|id| json!({"id": id}))
            .collect();
        Response::json(&json!({"data": records}))
    })
}

fn pipeline_text(name: &str, server: &Server) -> String {
    format!(
        "name: {name}\ninput:\n  type: httpPolling\n  endpoint: {}\n  statePersistence:\n    \
         id: {{field: id, queryParam: after}}\n    storagePath: ./state\noutput: {{type: stdout}}\n",
        server.url("/records")
    )
}

#[test]
fn validate_refuses_a_name_too_long_for_its_state_files_and_says_the_limit() {
    let server = source();
    let ws = Workspace::new();
    ws.write("long.yaml", &pipeline_text(&"n".repeat(250), &server));
    let out = ws.run(&["validate", "long.yaml"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "long.yaml:1:1: name: the pipeline name is 250 characters long, but at most 246 are \
             allowed: it names the state files (the longest is `<name>.json.tmp`) and a file \
             name may have at most 255 bytes; shorten the name"
        ),
        "{out:?}"
    );
    let run = ws.run(&["run", "--once", "long.yaml"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        server.requests().is_empty(),
        "a refused pipeline sent requests"
    );
    assert!(!ws.path().join("state").exists());
}

#[test]
fn the_longest_name_validate_accepts_runs_and_commits() {
    let server = source();
    let ws = Workspace::new();
    let name = "n".repeat(246);
    ws.write("long.yaml", &pipeline_text(&name, &server));
    let first = ws.run(&["run", "--once", "long.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(first.stdout, "{\"id\":1}\n{\"id\":2}\n");
    let state: Value = serde_json::from_str(&ws.read(&format!("state/{name}.json"))).unwrap();
    assert_eq!(state["id"], 2);

    let second = ws.run(&["run", "--once", "long.yaml"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.stdout, "", "the committed cursor was not used");
    assert_eq!(server.requests()[1].param("after"), Some("2"));
}

#[test]
fn a_link_in_place_of_the_lock_file_fails_the_run_and_creates_nothing_at_its_target() {
    let server = source();
    let ws = Workspace::new();
    ws.write("events.yaml", &pipeline_text("events", &server));
    std::fs::create_dir(ws.path().join("state")).unwrap();
    let target = ws.path().join("elsewhere");
    std::os::unix::fs::symlink(&target, ws.path().join("state/events.lock")).unwrap();

    let out = ws.run(&["run", "--once", "events.yaml"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    let lock = ws.path().canonicalize().unwrap().join("state/events.lock");
    assert!(
        out.stderr.contains(&format!(
            "the run lock {} is a symbolic link: it is never opened through a link, which could \
             create or lock a file elsewhere; remove the link (nothing was created or changed at \
             its target)",
            lock.display()
        )),
        "{out:?}"
    );
    assert!(!target.exists(), "the run created the link's target");
    assert!(
        server.requests().is_empty(),
        "the run went on without its lock"
    );
    assert!(!ws.path().join("state/events.json").exists());
}

#[test]
fn a_run_warns_when_another_pipeline_file_wrote_its_state_and_the_state_names_its_writer() {
    let server = source();
    let ws = Workspace::new();
    let text = pipeline_text("events", &server);
    ws.write("team-a/events.yaml", &text);
    ws.write("team-b/events.yaml", &text);
    let root = ws.path().canonicalize().unwrap();
    let (a, b) = (
        root.join("team-a/events.yaml"),
        root.join("team-b/events.yaml"),
    );
    let state_file = root.join("state/events.json");
    let writer = |ws: &Workspace| -> Value {
        let state: Value = serde_json::from_str(&ws.read("state/events.json")).unwrap();
        state["pipelineFile"].clone()
    };
    let warning = |this: &std::path::Path, other: &std::path::Path| {
        format!(
            "the state file {} was last written by the pipeline file {}, not by this one, {}: two \
             pipeline files with the name `events` and the same statePersistence.storagePath share \
             one cursor, so each run skips or repeats records of the other; give one of them \
             another name or another storagePath (if the pipeline file was moved, ignore this: \
             the next commit records its new path)",
            state_file.display(),
            other.display(),
            this.display()
        )
    };

    let first = ws.run(&["run", "--once", "team-a/events.yaml"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(!first.stderr.contains("last written by"), "{first:?}");
    assert_eq!(writer(&ws), a.to_str().unwrap());

    // The second file starts from the first one's cursor: nothing new, nothing committed.
    let second = ws.run(&["run", "--once", "team-b/events.yaml"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(second.stderr.contains(&warning(&b, &a)), "{second:?}");
    assert_eq!(second.stdout, "");

    // Once a commit is made for the second file, the state names it, and the first file is the
    // one warned.
    let set = ws.run(&["state", "set", "team-b/events.yaml", "--id", "1"]);
    assert_eq!(set.code, Some(0), "{set:?}");
    assert_eq!(writer(&ws), b.to_str().unwrap());
    let third = ws.run(&["run", "--once", "team-b/events.yaml"]);
    assert_eq!(third.code, Some(0), "{third:?}");
    assert!(!third.stderr.contains("last written by"), "{third:?}");
    assert_eq!(third.stdout, "{\"id\":2}\n");
    assert_eq!(writer(&ws), b.to_str().unwrap());
    let fourth = ws.run(&["run", "--once", "team-a/events.yaml"]);
    assert!(fourth.stderr.contains(&warning(&a, &b)), "{fourth:?}");
}
