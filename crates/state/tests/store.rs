//! The file store against real files in temporary directories, and real child processes for the
//! lock and for crashes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cannectors_state::{FileStore, Position, State, StateError, StateStore, Timestamp};

const ROLE: &str = "CANNECTORS_STATE_TEST_ROLE";
const ROLE_DIR: &str = "CANNECTORS_STATE_TEST_DIR";

fn store_in(dir: &Path) -> FileStore {
    FileStore::new("events-sync", Some(dir)).unwrap()
}

/// Takes the lock, commits `state` through it and lets it go.
async fn commit(store: &FileStore, state: &State) -> Result<(), StateError> {
    store.lock().await?.commit(state).await
}

/// Takes the lock, resets through it and lets it go.
async fn reset(store: &FileStore) -> Result<bool, StateError> {
    store.lock().await?.reset().await
}

fn seeded(timestamp: &str) -> State {
    State::seed(Some(timestamp), None, None).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_first_run_finds_no_state() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(store_in(dir.path()).load().await.unwrap(), None);
}

#[test]
fn state_lives_in_storage_path_named_after_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    assert_eq!(store.path(), dir.path().join("events-sync.json"));
    assert_eq!(store.lock_path(), dir.path().join("events-sync.lock"));
    assert_eq!(store.pipeline(), "events-sync");
}

#[test]
fn a_relative_or_default_storage_path_resolves_against_the_working_directory() {
    let cwd = std::env::current_dir().unwrap();
    let default = FileStore::new("p", None).unwrap();
    assert_eq!(default.path(), cwd.join(".cannectors-state").join("p.json"));
    let relative = FileStore::new("p", Some(Path::new("state/here"))).unwrap();
    assert_eq!(relative.path(), cwd.join("state/here/p.json"));
    assert!(relative.path().is_absolute());
}

#[test]
fn a_pipeline_name_that_would_leave_the_directory_is_refused() {
    for name in ["../escape", "a/b", "", ".hidden", "-x"] {
        let error = FileStore::new(name, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "pipeline name `{name}` cannot name a state file: use letters, digits, `.`, `_` \
                 and `-`, starting with a letter or a digit"
            )
        );
    }
}

#[tokio::test]
async fn the_longest_name_validation_accepts_names_every_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let name = "n".repeat(cannectors_state::MAX_NAME_LEN);
    let store = FileStore::new(&name, Some(dir.path())).unwrap();
    let mut lock = store.lock().await.unwrap();
    lock.commit(&seeded("2026-01-01T00:00:00Z")).await.unwrap();
    assert!(store.load().await.unwrap().is_some());
    drop(lock);
    let mut files: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, [format!("{name}.json"), format!("{name}.lock")]);
    // The temp file of a commit is the longest name; one byte more would not fit.
    fs::write(dir.path().join(format!("{name}.json.tmp")), "{}").unwrap();
    let error = fs::write(dir.path().join(format!("{name}n.json.tmp")), "{}").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(36), "ENAMETOOLONG: {error}");
}

#[test]
fn a_name_too_long_for_its_state_files_is_refused_with_the_limit() {
    let error = FileStore::new(&"n".repeat(cannectors_state::MAX_NAME_LEN + 1), None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "a pipeline name of 247 bytes cannot name a state file: with the suffixes the store adds \
         (up to `.json.tmp`) its file names would be longer than the 255 bytes a file name may \
         have; use a name of at most 246 bytes"
    );
}

#[tokio::test]
async fn a_commit_is_loaded_back_with_pipeline_and_update_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut state = State::seed(Some("2026-01-01T00:00:00+02:00"), Some("17"), Some("40")).unwrap();
    state.record_progress(
        None,
        serde_json::json!({"page": 2}),
        Some(60),
        chrono::Utc::now(),
    );
    commit(&store, &state).await.unwrap();

    let mut loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.pipeline.as_deref(), Some("events-sync"));
    assert!(loaded.updated_at.is_some());
    assert_eq!(loaded.pipeline_file, None);
    loaded.pipeline = None;
    loaded.updated_at = None;
    assert_eq!(loaded, state);
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(
        text.contains("\"timestamp\": \"2026-01-01T00:00:00+02:00\""),
        "{text}"
    );
}

#[tokio::test]
async fn a_commit_records_the_pipeline_file_it_was_made_for() {
    let dir = tempfile::tempdir().unwrap();
    let first_file = dir.path().join("first.yaml");
    fs::write(&first_file, "name: events-sync").unwrap();
    let first = store_in(dir.path()).with_pipeline_file(&first_file);
    commit(&first, &seeded("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    let text = fs::read_to_string(first.path()).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&text).unwrap();
    let canonical = first_file.canonicalize().unwrap();
    assert_eq!(recorded["pipelineFile"], canonical.to_str().unwrap());

    let state = first.load().await.unwrap().unwrap();
    assert_eq!(state.pipeline_file.as_deref(), Some(canonical.as_path()));
    assert_eq!(first.other_pipeline_file(&state), None);

    let second = store_in(dir.path()).with_pipeline_file(dir.path().join("second.yaml"));
    assert_eq!(
        second.other_pipeline_file(&state),
        Some(canonical.as_path())
    );
    commit(&second, &state).await.unwrap();
    let state = second.load().await.unwrap().unwrap();
    assert_eq!(
        state.pipeline_file.as_deref(),
        Some(dir.path().join("second.yaml").as_path())
    );
    assert_eq!(first.other_pipeline_file(&state), second.pipeline_file());

    // A store that was not told its pipeline file neither warns nor keeps a stale writer.
    let unnamed = store_in(dir.path());
    assert_eq!(unnamed.other_pipeline_file(&state), None);
    commit(&unnamed, &state).await.unwrap();
    let state = unnamed.load().await.unwrap().unwrap();
    assert_eq!(state.pipeline_file, None);
    assert_eq!(first.other_pipeline_file(&state), None);
    assert!(
        !fs::read_to_string(first.path())
            .unwrap()
            .contains("pipelineFile")
    );
}

#[test]
fn a_relative_pipeline_file_is_recorded_as_an_absolute_path() {
    let store = FileStore::new("p", None)
        .unwrap()
        .with_pipeline_file("pipelines/p.yaml");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        store.pipeline_file(),
        Some(cwd.join("pipelines/p.yaml").as_path())
    );
}

#[tokio::test]
async fn a_new_directory_gets_mode_0700_and_the_file_0600() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nested/state");
    let store = store_in(&dir);
    commit(&store, &seeded("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(mode_of(&dir), 0o700);
    assert_eq!(mode_of(&root.path().join("nested")), 0o700);
    assert_eq!(mode_of(store.path()), 0o600);
    let _lock = store.lock().await.unwrap();
    assert_eq!(mode_of(store.lock_path()), 0o600);
}

#[tokio::test]
async fn a_stale_temp_file_beside_a_good_state_is_ignored_then_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    commit(&store, &seeded("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    let temp = dir.path().join("events-sync.json.tmp");
    fs::write(&temp, "{\"timestamp\": \"2026-").unwrap();
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o644)).unwrap();

    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(
        loaded.timestamp.unwrap().to_rfc3339_utc(),
        "2026-01-01T00:00:00Z"
    );

    commit(&store, &seeded("2026-02-01T00:00:00Z"))
        .await
        .unwrap();
    assert!(!temp.exists());
    assert_eq!(mode_of(store.path()), 0o600);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(
        loaded.timestamp.unwrap().to_rfc3339_utc(),
        "2026-02-01T00:00:00Z"
    );
}

/// Writes `content` as the state file, checks that load and commit both fail with a message
/// naming the absolute path and containing `problem`, and that the file is unchanged.
async fn assert_bad_file_is_refused_and_kept(content: &[u8], problem: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    fs::write(store.path(), content).unwrap();

    let load = store.load().await.unwrap_err();
    let expected = format!(
        "state file {} is not usable: {problem}. Nothing was changed: fix the file by hand, or \
         remove it to start over from scratch",
        store.path().display()
    );
    assert_eq!(load.to_string(), expected);
    assert!(matches!(load, StateError::Corrupt { .. }));

    let refused = commit(&store, &seeded("2026-01-01T00:00:00Z"))
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), expected);
    assert_eq!(fs::read(store.path()).unwrap(), content);
    assert!(!dir.path().join("events-sync.json.tmp").exists());
}

#[tokio::test]
async fn a_truncated_file_is_refused_and_kept() {
    assert_bad_file_is_refused_and_kept(
        b"{\"timestamp\": \"2026-01-01T00:00:00Z\", \"id\": 4",
        "it ends in the middle of the JSON (line 1, column 45): it was cut short, perhaps by a \
         full disk or an interrupted copy",
    )
    .await;
}

#[tokio::test]
async fn an_empty_file_is_refused_and_kept() {
    assert_bad_file_is_refused_and_kept(
        b"",
        "it is empty; a state file holds a JSON object such as {\"timestamp\": \
         \"2026-01-01T00:00:00Z\"}",
    )
    .await;
}

#[tokio::test]
async fn a_wrongly_typed_id_is_refused_and_kept() {
    assert_bad_file_is_refused_and_kept(
        b"{\"id\": [1]}",
        "`id` holds [1], but it must be an integer (up to 9223372036854775807) or a string",
    )
    .await;
}

/// A state with a lookback window of `count` records, one a millisecond.
fn with_identities(count: u32) -> State {
    let mut state = seeded("2026-01-01T00:00:00Z");
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    for record in 0..count {
        let instant = start + chrono::TimeDelta::milliseconds(i64::from(record));
        state.identities.insert(instant, u64::from(record));
    }
    state
}

#[tokio::test]
async fn a_file_damaged_between_two_commits_of_one_lock_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    lock.commit(&with_identities(3000)).await.unwrap();
    // One character of the journal's checksum replaced in place by one that is no hexadecimal
    // digit: the same length, the same file, only the bytes differ.
    let written = fs::read_to_string(store.path()).unwrap();
    let at = written.find("\"checksum\": \"").unwrap() + 14;
    let mut damaged = written.clone().into_bytes();
    damaged[at] = b'~';
    fs::write(store.path(), &damaged).unwrap();

    let refused = lock.commit(&with_identities(3001)).await.unwrap_err();
    assert!(matches!(refused, StateError::Corrupt { .. }));
    let message = refused.to_string();
    assert!(
        message.starts_with(&format!(
            "state file {} is not usable: `identities.checksum` holds \"",
            store.path().display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with(
            "but it must be 16 hexadecimal digits, the XXH3 hash of the journal's first `bytes` \
             bytes. Nothing was changed: fix the file by hand, or remove it to start over from \
             scratch"
        ),
        "{message}"
    );
    assert_eq!(fs::read(store.path()).unwrap(), damaged);

    // Put back as it was written, the same lock commits again.
    fs::write(store.path(), &written).unwrap();
    lock.commit(&with_identities(3001)).await.unwrap();
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        with_identities(3001).identities
    );
}

#[tokio::test]
async fn a_valid_file_replaced_between_two_commits_of_one_lock_is_replaced_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    lock.commit(&with_identities(10)).await.unwrap();
    fs::write(store.path(), "{\"timestamp\": \"2025-06-01T00:00:00Z\"}\n").unwrap();
    lock.commit(&with_identities(20)).await.unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities.len(), 20);
    assert_eq!(
        loaded.timestamp.unwrap().to_rfc3339_utc(),
        "2026-01-01T00:00:00Z"
    );
}

#[tokio::test]
async fn a_negative_offset_is_refused_and_kept() {
    assert_bad_file_is_refused_and_kept(
        b"{\"offset\": -3}",
        "`offset` holds -3, but it must be a non-negative integer",
    )
    .await;
}

#[tokio::test]
async fn a_timestamp_that_is_no_date_is_refused_and_kept() {
    assert_bad_file_is_refused_and_kept(
        b"{\"timestamp\": \"yesterday\"}",
        "`timestamp` holds \"yesterday\", but it must be a timestamp: RFC 3339 such as \
         \"2026-01-01T00:00:00Z\", \"YYYY-MM-DD HH:MM:SS\" (read as UTC), or epoch seconds or \
         milliseconds as a number",
    )
    .await;
}

#[tokio::test]
async fn a_misspelt_key_is_refused_and_kept() {
    assert_bad_file_is_refused_and_kept(
        b"{\"timestamps\": \"2026-01-01T00:00:00Z\"}",
        "unknown key `timestamps` (did you mean `timestamp`?); the keys allowed here are \
         timestamp, id, offset, run, pipeline, pipelineFile, updatedAt, identities, window, \
         backfill (and lastTimestamp, lastId, lastOffset, pipelineId from files of the older \
         tool)",
    )
    .await;
}

#[tokio::test]
async fn a_binary_file_is_refused_and_kept() {
    assert_bad_file_is_refused_and_kept(
        b"{\"id\": \"\xff\xfe\"}",
        "it is not text: the bytes at offset 8 are not UTF-8",
    )
    .await;
}

#[tokio::test]
async fn a_directory_in_place_of_the_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    fs::create_dir(store.path()).unwrap();
    fs::write(store.path().join("inside"), "keep me").unwrap();
    let expected = format!(
        "{} is not a regular file but should be the state file of pipeline `events-sync`: move \
         it away (nothing was read or changed)",
        store.path().display()
    );
    assert_eq!(store.load().await.unwrap_err().to_string(), expected);
    assert_eq!(
        commit(&store, &seeded("2026-01-01T00:00:00Z"))
            .await
            .unwrap_err()
            .to_string(),
        expected
    );
    assert_eq!(reset(&store).await.unwrap_err().to_string(), expected);
    assert_eq!(
        fs::read_to_string(store.path().join("inside")).unwrap(),
        "keep me"
    );
}

#[tokio::test]
async fn an_unreachable_file_is_a_read_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the storage directory should be: the state file cannot be reached.
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, "x").unwrap();
    let store = store_in(&blocker);
    let message = store.load().await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "cannot read state file {}: ",
            store.path().display()
        )),
        "{message}"
    );
    assert!(message.ends_with(
        "make it readable by this user, or move it away to start over (nothing was changed)"
    ));
    assert!(
        commit(&store, &seeded("2026-01-01T00:00:00Z"))
            .await
            .is_err()
    );
    assert_eq!(fs::read_to_string(&blocker).unwrap(), "x");
}

#[tokio::test]
async fn a_file_without_read_permission_is_a_read_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    fs::write(store.path(), "{\"offset\": 1}").unwrap();
    fs::set_permissions(store.path(), fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(store.path()).is_ok() {
        // A privileged user (root in a container) reads anything: there is no unreadable file
        // to test with; the unreachable-file test covers the same error.
        return;
    }
    let message = store.load().await.unwrap_err().to_string();
    assert!(message.starts_with(&format!(
        "cannot read state file {}: ",
        store.path().display()
    )));
    assert!(
        commit(&store, &seeded("2026-01-01T00:00:00Z"))
            .await
            .is_err()
    );
    fs::set_permissions(store.path(), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(fs::read_to_string(store.path()).unwrap(), "{\"offset\": 1}");
}

#[tokio::test]
async fn reset_removes_the_state_and_a_stale_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    assert!(!reset(&store).await.unwrap());
    commit(&store, &seeded("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    fs::write(dir.path().join("events-sync.json.tmp"), "partial").unwrap();
    assert!(reset(&store).await.unwrap());
    assert_eq!(store.load().await.unwrap(), None);
    assert!(!dir.path().join("events-sync.json.tmp").exists());
}

#[tokio::test]
async fn reset_is_how_a_user_clears_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    fs::write(store.path(), "{\"timestamp\": ").unwrap();
    assert!(reset(&store).await.unwrap());
    commit(&store, &seeded("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert!(store.load().await.unwrap().is_some());
}

#[tokio::test]
async fn resumes_from_the_committed_position_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let position = Position {
        timestamp: Some(Timestamp::parse("2026-01-03 10:00:00.250").unwrap()),
        id: Some(981.into()),
    };
    {
        let store = store_in(dir.path());
        let mut lock = store.lock().await.unwrap();
        let mut state = store.load().await.unwrap().unwrap_or_default();
        assert!(state.advance(&position));
        lock.commit(&state).await.unwrap();
    }
    let store = store_in(dir.path());
    let _lock = store.lock().await.unwrap();
    assert_eq!(store.load().await.unwrap().unwrap().committed(), position);
}

fn locked_message(store: &FileStore) -> String {
    format!(
        "pipeline `events-sync` is already running: another process holds the lock {}; wait for \
         that run to finish or stop it (the lock is released when its process exits)",
        store.lock_path().display()
    )
}

#[tokio::test]
async fn a_second_lock_fails_at_once_while_the_first_guard_lives() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let first = store.lock().await.unwrap();
    // A second store opens its own handle: OS locks belong to open files, not to processes.
    let second = store_in(dir.path()).lock().await.unwrap_err();
    assert_eq!(second.to_string(), locked_message(&store));
    assert!(matches!(second, StateError::Locked { .. }));
    drop(first);
    assert!(store.lock().await.is_ok());
}

/// Runs this test binary again as a child process playing `role` in `dir`.
fn spawn_child(role: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_role",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ROLE, role)
        .env(ROLE_DIR, dir)
        // Held open by the parent: its end tells a child to stop.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits, at most 30 seconds, for the child to print `line`.
fn wait_for_line(child: &mut Child, line: &'static str) {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for read in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The test harness prints `test child_process_role ... ` in front of the line.
            if read.ends_with(line) {
                let _ = sender.send(());
            }
        }
    });
    receiver
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the child process did not print `{line}` within 30 s"));
}

/// Not a test of its own: the body of the child processes the tests below start. Run directly,
/// without the environment variable, it does nothing.
#[tokio::test]
async fn child_process_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(ROLE_DIR).unwrap());
    let store = store_in(&dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    match role.as_str() {
        "hold-lock" => {
            let _lock = store.lock().await.unwrap();
            println!("locked");
            // Until killed, or until the parent is gone and standard input ends.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        "commit-loop" => {
            let mut lock = store.lock().await.unwrap();
            let mut state = seeded("2026-01-01T00:00:00Z");
            for offset in 1..=1_000_000_u64 {
                state.record_progress(
                    None,
                    serde_json::json!({"page": offset, "padding": "x".repeat(4096)}),
                    Some(offset),
                    chrono::Utc::now(),
                );
                lock.commit(&state).await.unwrap();
                if offset == 20 {
                    println!("committing");
                }
                if Instant::now() > deadline {
                    break;
                }
            }
        }
        "lookback-loop" => {
            let mut lock = store.lock().await.unwrap();
            let mut state = seeded("2026-01-01T00:00:00Z");
            for commit in 1..=1_000_000_u64 {
                lookback_step(&mut state, commit);
                lock.commit(&state).await.unwrap();
                if commit == 400 {
                    println!("committing");
                }
                if Instant::now() > deadline {
                    break;
                }
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

#[tokio::test]
async fn another_process_cannot_take_the_lock_until_the_holder_dies() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut child = spawn_child("hold-lock", dir.path());
    wait_for_line(&mut child, "locked");

    assert_eq!(
        store.lock().await.unwrap_err().to_string(),
        locked_message(&store)
    );

    // Killed, not asked to stop: the OS releases the lock of a dead process.
    child.kill().unwrap();
    child.wait().unwrap();
    let _lock = store.lock().await.unwrap();
}

#[tokio::test]
async fn a_process_killed_while_committing_leaves_a_loadable_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut child = spawn_child("commit-loop", dir.path());
    wait_for_line(&mut child, "committing");
    child.kill().unwrap();
    child.wait().unwrap();

    let mut lock = store.lock().await.unwrap();
    let state = store
        .load()
        .await
        .unwrap()
        .expect("at least twenty commits happened");
    let run = state.run.unwrap();
    let offset = run.offset().unwrap();
    assert!(offset >= 20, "offset {offset}");
    // One whole commit, never a mix of two.
    assert_eq!(
        (run.batches(), &run.resume()["page"]),
        (offset, &serde_json::json!(offset))
    );

    let mut next = store.load().await.unwrap().unwrap();
    next.complete_run(None);
    lock.commit(&next).await.unwrap();
    assert!(!dir.path().join("events-sync.json.tmp").exists());
    assert_eq!(store.load().await.unwrap().unwrap().offset, Some(offset));
}

/// Commit `commit` of a run with a lookback window of 20 seconds: 50 records in its own second,
/// the window moved past what is older, the commit's number as the offset.
fn lookback_step(state: &mut State, commit: u64) {
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let second = start + chrono::TimeDelta::seconds(commit as i64);
    for record in 0..50 {
        let instant = second + chrono::TimeDelta::milliseconds(record * 7);
        state
            .identities
            .insert(instant, commit * 1000 + record as u64);
    }
    state
        .identities
        .prune(second - chrono::TimeDelta::seconds(20), usize::MAX);
    state.offset = Some(commit);
}

#[tokio::test]
async fn a_process_killed_while_committing_a_lookback_window_leaves_the_identities_of_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut child = spawn_child("lookback-loop", dir.path());
    wait_for_line(&mut child, "committing");
    child.kill().unwrap();
    child.wait().unwrap();

    let mut lock = store.lock().await.unwrap();
    let loaded = store.load().await.unwrap().expect("400 commits happened");
    let commit = loaded.offset.unwrap();
    assert!(commit >= 400, "commit {commit}");
    // Exactly the identities of that commit: the journal was written whole into the other
    // file several times by then (every 150 commits or so), and appended to at the others.
    let mut expected = seeded("2026-01-01T00:00:00Z");
    for step in 1..=commit {
        lookback_step(&mut expected, step);
    }
    assert_eq!(loaded.identities.len(), 21 * 50);
    assert_eq!(loaded.identities, expected.identities);

    // A new run goes on from there, whatever the killed one left beyond the counted bytes.
    let mut state = loaded;
    for step in commit + 1..=commit + 200 {
        lookback_step(&mut state, step);
        lookback_step(&mut expected, step);
        lock.commit(&state).await.unwrap();
    }
    drop(lock);
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        expected.identities
    );
}

#[test]
fn an_empty_storage_path_cannot_be_resolved() {
    let error = FileStore::new("p", Some(Path::new(""))).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot resolve the state directory ``: "),
        "{error}"
    );
}

#[tokio::test]
async fn a_storage_directory_that_cannot_be_created_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, "x").unwrap();
    let store = store_in(&blocker.join("state"));
    let message = store.lock().await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "cannot create the state directory {}: ",
            blocker.join("state").display()
        )),
        "{message}"
    );
    assert!(message.ends_with("create it, or keep the state in a writable directory"));
}

#[tokio::test]
async fn a_lock_file_that_cannot_be_opened_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    fs::create_dir(store.lock_path()).unwrap();
    let message = store.lock().await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "cannot take the run lock {}: ",
            store.lock_path().display()
        )),
        "{message}"
    );
}

fn link_message(store: &FileStore) -> String {
    format!(
        "the run lock {} is a symbolic link: it is never opened through a link, which could \
         create or lock a file elsewhere; remove the link (nothing was created or changed at its \
         target)",
        store.lock_path().display()
    )
}

#[tokio::test]
async fn a_dangling_link_in_place_of_the_lock_file_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("created-by-the-lock");
    let store = store_in(dir.path());
    std::os::unix::fs::symlink(&target, store.lock_path()).unwrap();

    let error = store.lock().await.unwrap_err();
    assert_eq!(error.to_string(), link_message(&store));
    assert!(!target.exists(), "the lock created its link's target");
    assert!(
        fs::symlink_metadata(store.lock_path())
            .unwrap()
            .is_symlink()
    );
}

#[tokio::test]
async fn a_link_to_an_existing_file_in_place_of_the_lock_file_is_refused_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("precious");
    fs::write(&target, "keep me").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    let modified = fs::metadata(&target).unwrap().modified().unwrap();
    let store = store_in(dir.path());
    std::os::unix::fs::symlink(&target, store.lock_path()).unwrap();

    let error = store.lock().await.unwrap_err();
    assert_eq!(error.to_string(), link_message(&store));
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    assert_eq!(mode_of(&target), 0o644);
    assert_eq!(fs::metadata(&target).unwrap().modified().unwrap(), modified);
    // Nothing holds a lock on the target either: a lock of its own is taken at once.
    let file = fs::File::open(&target).unwrap();
    file.try_lock().unwrap();
}

#[tokio::test]
async fn a_failed_write_leaves_the_previous_state_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    commit(&store, &seeded("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    let before = fs::read(store.path()).unwrap();
    // A directory where the temp file goes: the new content cannot be written.
    fs::create_dir(dir.path().join("events-sync.json.tmp")).unwrap();
    let message = commit(&store, &seeded("2026-02-01T00:00:00Z"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!(
            "cannot write state file {}: ",
            store.path().display()
        )),
        "{message}"
    );
    assert!(message.ends_with(
        "the previous state file is unchanged (check free space and permissions of the directory)"
    ));
    assert_eq!(fs::read(store.path()).unwrap(), before);
}

#[tokio::test]
async fn a_reset_that_cannot_remove_the_temp_file_keeps_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    commit(&store, &seeded("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    let temp = dir.path().join("events-sync.json.tmp");
    fs::create_dir(&temp).unwrap();
    let message = reset(&store).await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("cannot remove state file {}: ", temp.display())),
        "{message}"
    );
    assert!(store.load().await.unwrap().is_some());
}

#[tokio::test]
async fn a_lock_commits_on_its_own_after_the_store_value_that_took_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut lock = store_in(dir.path()).lock().await.unwrap();
    lock.commit(&seeded("2026-01-01T00:00:00Z")).await.unwrap();
    // Still the one writer: another store of the same pipeline is refused.
    let other = store_in(dir.path());
    assert_eq!(
        other.lock().await.unwrap_err().to_string(),
        locked_message(&other)
    );
    drop(lock);
    let state = other.load().await.unwrap().unwrap();
    assert_eq!(
        state.timestamp.unwrap().to_rfc3339_utc(),
        "2026-01-01T00:00:00Z"
    );
}

#[tokio::test]
async fn the_file_store_works_behind_the_store_trait() {
    let dir = tempfile::tempdir().unwrap();
    let mut store: Box<dyn StateStore> = Box::new(store_in(dir.path()));
    store.set_pipeline_file(&dir.path().join("events.yaml"));
    assert_eq!(store.pipeline(), "events-sync");
    assert_eq!(
        store.location(),
        dir.path().join("events-sync.json").display().to_string()
    );
    assert_eq!(store.load().await.unwrap(), None);

    let mut lock = store.lock().await.unwrap();
    lock.commit(&seeded("2026-01-01T00:00:00Z")).await.unwrap();
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(
        state.pipeline_file.as_deref(),
        Some(dir.path().join("events.yaml").as_path())
    );
    assert_eq!(store.other_pipeline_file(&state), None);
    assert!(lock.reset().await.unwrap());
    assert!(!lock.reset().await.unwrap(), "nothing left to reset");
    assert_eq!(store.load().await.unwrap(), None);
}
