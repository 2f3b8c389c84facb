//! The file store's journal of identities, against real files: what a commit appends, when it
//! writes the other file instead, what a crash leaves, and how a damaged journal is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use cannectors_state::{FileStore, Identities, State, StateError, StateFormatError, StateStore};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

fn store_in(dir: &Path) -> FileStore {
    FileStore::new("events", Some(dir)).unwrap()
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

/// Adds `count` identities to `state`, from record `first` on, four a second.
fn add(state: &mut State, first: u64, count: u64) {
    for record in first..first + count {
        let instant = start() + TimeDelta::milliseconds((record * 250) as i64);
        state.identities.insert(instant, record);
    }
}

fn with_identities(count: u64) -> State {
    let mut state = State::seed(Some("2026-01-01T00:00:00Z"), None, None).unwrap();
    add(&mut state, 0, count);
    state
}

/// The state file as JSON.
fn file_json(store: &FileStore) -> Value {
    serde_json::from_str(&fs::read_to_string(store.path()).unwrap()).unwrap()
}

/// The journal file the state file refers to.
fn journal(store: &FileStore) -> PathBuf {
    let name = file_json(store)["identities"]["journal"]
        .as_str()
        .unwrap()
        .to_owned();
    store.dir().join(name)
}

/// The journal bytes the state file counts on (synced), not the lines of its tail.
fn synced_bytes(store: &FileStore) -> usize {
    file_json(store)["identities"]["bytes"].as_u64().unwrap() as usize
}

/// The lines the state file carries, which follow the synced bytes in the journal.
fn tail(store: &FileStore) -> String {
    file_json(store)["identities"]
        .get("tail")
        .map(|lines| {
            lines
                .as_array()
                .unwrap()
                .iter()
                .map(|line| format!("{}\n", line.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// The journal bytes the state file accounts for: the synced ones and its tail.
fn counted_bytes(store: &FileStore) -> usize {
    synced_bytes(store) + tail(store).len()
}

#[tokio::test]
async fn a_commit_appends_only_what_it_added_after_the_bytes_already_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(1000);
    lock.commit(&state).await.unwrap();
    let first = fs::read(journal(&store)).unwrap();
    assert_eq!(journal(&store), store.journal_paths()[0]);
    assert_eq!(counted_bytes(&store), first.len());
    let text = String::from_utf8(first.clone()).unwrap();
    // One line a second, four identities a second: 20 + 1 + 40 + 1 characters.
    assert_eq!(text.lines().count(), 250);
    assert!(text.starts_with("2026-01-01T00:00:00Z "), "{text}");
    assert_eq!(text.lines().next().unwrap().len(), 61);

    add(&mut state, 1000, 10);
    lock.commit(&state).await.unwrap();

    let second = fs::read(journal(&store)).unwrap();
    assert_eq!(journal(&store), store.journal_paths()[0], "the same file");
    assert_eq!(
        &second[..first.len()],
        &first[..],
        "the counted bytes are kept"
    );
    let appended = String::from_utf8(second[first.len()..].to_vec()).unwrap();
    assert_eq!(appended.lines().count(), 3, "{appended}");
    assert!(appended.starts_with("2026-01-01T00:04:10Z "), "{appended}");
    assert_eq!(counted_bytes(&store), second.len());
    // Carried by the state file too, until they are synced.
    assert_eq!(synced_bytes(&store), first.len());
    assert_eq!(tail(&store), appended);
    assert_eq!(file_json(&store)["identities"]["count"], 1010);
    drop(lock);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities, state.identities);
    assert_eq!(loaded.identities.len(), 1010);
}

#[tokio::test]
async fn lines_are_carried_by_the_state_file_until_a_later_commit_finds_them_synced() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    let written_whole = synced_bytes(&store);
    assert_eq!(tail(&store), "", "a journal written whole is synced");
    add(&mut state, 100, 40);
    lock.commit(&state).await.unwrap();
    let carried = tail(&store);
    assert_eq!(carried.lines().count(), 10);
    assert_eq!(synced_bytes(&store), written_whole);
    // The lines are synced on a thread of their own; a later commit counts them once that
    // sync finished, and carries only what came after.
    let mut next = 140;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while synced_bytes(&store) == written_whole {
        assert!(std::time::Instant::now() < deadline, "never counted");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        add(&mut state, next, 4);
        next += 4;
        lock.commit(&state).await.unwrap();
        assert_eq!(
            counted_bytes(&store),
            fs::read(journal(&store)).unwrap().len()
        );
    }
    let journal_text = String::from_utf8(fs::read(journal(&store)).unwrap()).unwrap();
    assert!(synced_bytes(&store) >= written_whole + carried.len());
    assert_eq!(tail(&store), journal_text[synced_bytes(&store)..]);
    drop(lock);
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
}

#[tokio::test]
async fn lines_staged_while_the_sink_writes_are_counted_by_the_commit_and_not_carried() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    let before = fs::read_to_string(store.path()).unwrap();
    let written_whole = synced_bytes(&store);
    add(&mut state, 100, 40);

    lock.stage(&state).await.unwrap();

    // Appended, but nothing counts on them before the commit.
    let staged = fs::read(journal(&store)).unwrap();
    assert_eq!(staged.len() - written_whole, 10 * 62);
    assert_eq!(fs::read_to_string(store.path()).unwrap(), before);
    lock.commit(&state).await.unwrap();
    assert_eq!(tail(&store), "", "the commit waited for their sync");
    assert_eq!(synced_bytes(&store), staged.len());
    assert_eq!(fs::read(journal(&store)).unwrap(), staged);

    // Added after staging, the rest is appended by the commit as usual.
    add(&mut state, 140, 8);
    lock.stage(&state).await.unwrap();
    add(&mut state, 148, 8);
    lock.commit(&state).await.unwrap();
    assert_eq!(
        counted_bytes(&store),
        fs::read(journal(&store)).unwrap().len()
    );
    drop(lock);
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
}

#[tokio::test]
async fn a_new_lock_stages_after_checking_the_files_as_its_commit_would() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    lock.commit(&with_identities(100)).await.unwrap();
    drop(lock);

    // A new run: its first stage reads the state file and the journal, then appends.
    let mut state = store.load().await.unwrap().unwrap();
    add(&mut state, 100, 40);
    let mut lock = store.lock().await.unwrap();
    lock.stage(&state).await.unwrap();
    assert!(fs::read(journal(&store)).unwrap().len() > counted_bytes(&store));
    lock.commit(&state).await.unwrap();
    assert_eq!(tail(&store), "");
    assert_eq!(
        synced_bytes(&store),
        fs::read(journal(&store)).unwrap().len()
    );
    drop(lock);

    // A journal cut short stops the stage, before anything is delivered, and nothing changes.
    let path = journal(&store);
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 62);
    fs::write(&path, &bytes).unwrap();
    let state_file = fs::read(store.path()).unwrap();
    add(&mut state, 140, 4);
    let mut lock = store.lock().await.unwrap();
    let error = lock.stage(&state).await.unwrap_err();
    assert!(matches!(error, StateError::Journal { .. }), "{error}");
    assert_eq!(fs::read(store.path()).unwrap(), state_file);
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[tokio::test]
async fn lines_staged_for_a_commit_that_never_came_are_not_read_and_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    let committed = state.clone();
    add(&mut state, 100, 40);
    lock.stage(&state).await.unwrap();
    let counted = counted_bytes(&store);
    assert!(fs::read(journal(&store)).unwrap().len() > counted);

    // The sink failed: no commit. The next run reads what was committed.
    drop(lock);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities, committed.identities);
    let mut state = loaded;
    add(&mut state, 500, 4);
    let mut lock = store.lock().await.unwrap();
    lock.commit(&state).await.unwrap();
    let journal_bytes = fs::read(journal(&store)).unwrap();
    assert_eq!(counted_bytes(&store), journal_bytes.len());
    assert_eq!(
        journal_bytes.len(),
        counted + 62,
        "the staged lines were cut"
    );
    drop(lock);
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
}

#[tokio::test]
async fn lines_beyond_the_bound_of_the_tail_are_synced_before_the_state_file_counts_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    // 20,000 identities: 5,000 lines of 62 bytes, 310,000 bytes, over the bound of 256 KiB.
    add(&mut state, 100, 20_000);
    lock.commit(&state).await.unwrap();
    assert_eq!(tail(&store), "");
    assert_eq!(
        synced_bytes(&store),
        fs::read(journal(&store)).unwrap().len()
    );
    assert!(fs::metadata(store.path()).unwrap().len() < 1024);
    drop(lock);
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
}

#[tokio::test]
async fn a_tail_the_journal_lost_in_a_crash_is_read_from_the_state_file_and_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    add(&mut state, 100, 40);
    lock.commit(&state).await.unwrap();
    drop(lock);
    let synced = synced_bytes(&store);
    let carried = tail(&store);
    assert_eq!(carried.lines().count(), 10);
    // A power cut loses the unsynced lines, or leaves part of them, or other bytes.
    for left in [&b""[..], &carried.as_bytes()[..70], b"\0\0\0\0\0\0"] {
        let mut bytes = fs::read(journal(&store)).unwrap();
        bytes.truncate(synced);
        bytes.extend_from_slice(left);
        fs::write(journal(&store), &bytes).unwrap();
        let loaded = store.load().await.unwrap().unwrap();
        assert_eq!(loaded.identities, state.identities);
    }
    let mut lock = store.lock().await.unwrap();
    let mut state = store.load().await.unwrap().unwrap();
    add(&mut state, 140, 4);
    lock.commit(&state).await.unwrap();
    let after = String::from_utf8(fs::read(journal(&store)).unwrap()).unwrap();
    assert_eq!(synced_bytes(&store), synced);
    assert_eq!(&after[synced..synced + carried.len()], carried);
    assert_eq!(after.len(), synced + carried.len() + 62);
    assert_eq!(tail(&store), after[synced..]);
    drop(lock);
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
}

#[tokio::test]
async fn a_loaded_state_committed_by_a_new_lock_appends_to_the_journal_it_was_read_from() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store
        .lock()
        .await
        .unwrap()
        .commit(&with_identities(400))
        .await
        .unwrap();
    let before = fs::read(journal(&store)).unwrap();

    let mut lock = store.lock().await.unwrap();
    let mut state = store.load().await.unwrap().unwrap();
    add(&mut state, 400, 4);
    lock.commit(&state).await.unwrap();

    assert_eq!(journal(&store), store.journal_paths()[0]);
    let after = fs::read(journal(&store)).unwrap();
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(
        after.len() - before.len(),
        62,
        "one line of four identities"
    );
    assert!(!store.journal_paths()[1].exists());
}

#[tokio::test]
async fn a_journal_grown_far_beyond_its_live_entries_is_written_whole_into_the_other_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(0);
    // A window of two seconds of 1000 identities moving forward: the live entries stay about
    // 20 KB while the journal grows by 10 KB a commit.
    let mut slots = Vec::new();
    for second in 0..20_i64 {
        let at = start() + TimeDelta::seconds(second);
        for record in 0..1000 {
            state
                .identities
                .insert(at + TimeDelta::microseconds(record), record as u64);
        }
        state
            .identities
            .prune(at - TimeDelta::seconds(1), usize::MAX);
        lock.commit(&state).await.unwrap();
        slots.push(journal(&store));
    }
    let [a, b] = store.journal_paths();
    let switched = slots.iter().position(|slot| slot == b).unwrap();
    assert!(
        (5..15).contains(&switched),
        "switched to the other file at commit {switched}"
    );
    assert!(slots[..switched].iter().all(|slot| slot == a));
    // Written whole at the switch: two seconds of 1000 identities, 2 * (22 + 10000) bytes.
    let live = 2 * (22 + 10_000);
    assert!(counted_bytes(&store) < 2 * live + 64 * 1024);
    drop(lock);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities.len(), 2000);
    assert_eq!(loaded.identities, state.identities);
}

#[tokio::test]
async fn forgetting_part_of_a_second_writes_the_other_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    let first = fs::read(journal(&store)).unwrap();
    // Three of the four identities of the oldest second go: not an addition.
    assert_eq!(state.identities.prune(start(), 97), 3);
    lock.commit(&state).await.unwrap();

    assert_eq!(journal(&store), store.journal_paths()[1]);
    assert!(!first.is_empty());
    assert_eq!(
        fs::metadata(store.journal_paths()[0]).unwrap().len(),
        0,
        "the file referred to before is emptied once the state file no longer refers to it"
    );
    drop(lock);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities.len(), 97);
    assert_eq!(loaded.identities, state.identities);
}

#[tokio::test]
async fn seconds_before_since_are_left_out_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(40);
    lock.commit(&state).await.unwrap();
    let before = fs::read(journal(&store)).unwrap();
    // The window moves past the first five seconds: whole seconds, so the journal keeps their
    // lines and the state file says from which second on they count.
    state
        .identities
        .prune(start() + TimeDelta::seconds(5), 1000);
    add(&mut state, 40, 4);
    lock.commit(&state).await.unwrap();

    assert_eq!(journal(&store), store.journal_paths()[0]);
    let after = fs::read(journal(&store)).unwrap();
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(
        file_json(&store)["identities"]["since"],
        "2026-01-01T00:00:05Z"
    );
    assert_eq!(file_json(&store)["identities"]["count"], 24);
    drop(lock);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities.len(), 24);
    assert_eq!(loaded.identities, state.identities);
}

#[tokio::test]
async fn an_identity_added_to_a_second_already_forgotten_is_not_read_with_stale_lines() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(40);
    lock.commit(&state).await.unwrap();
    state
        .identities
        .prune(start() + TimeDelta::seconds(5), 1000);
    lock.commit(&state).await.unwrap();
    // A record of the second second: its old line must not come back with it.
    state
        .identities
        .insert(start() + TimeDelta::seconds(1), 7777);
    lock.commit(&state).await.unwrap();
    drop(lock);

    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities.len(), 21);
    assert_eq!(loaded.identities, state.identities);
    assert!(
        !loaded
            .identities
            .contains(start() + TimeDelta::seconds(1), 4)
    );
}

#[tokio::test]
async fn bytes_beyond_the_counted_ones_are_ignored_and_cut_by_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let state = with_identities(100);
    store.lock().await.unwrap().commit(&state).await.unwrap();
    let committed = fs::read(journal(&store)).unwrap();
    // What a commit killed after its append and before its rename leaves: lines the state
    // file does not count, here one cut in the middle.
    let mut crashed = committed.clone();
    crashed.extend_from_slice(b"2026-01-01T00:09:00Z 0000000000\n2026-01-01T00:09:01Z 00");
    fs::write(journal(&store), &crashed).unwrap();

    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities, state.identities);

    let mut lock = store.lock().await.unwrap();
    let mut state = loaded;
    add(&mut state, 100, 4);
    lock.commit(&state).await.unwrap();
    let after = fs::read(journal(&store)).unwrap();
    assert_eq!(&after[..committed.len()], &committed[..]);
    let appended = String::from_utf8(after[committed.len()..].to_vec()).unwrap();
    assert!(appended.starts_with("2026-01-01T00:00:25Z "), "{appended}");
    assert_eq!(appended.lines().count(), 1, "{appended}");
    drop(lock);
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
}

#[tokio::test]
async fn an_inline_identities_section_is_read_and_moved_to_a_journal_at_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let state = with_identities(10);
    let inline = state.to_json_pretty();
    assert!(inline.contains("\"2026-01-01T00:00:00Z\": \""), "{inline}");
    fs::write(store.path(), &inline).unwrap();

    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities, state.identities);
    store.lock().await.unwrap().commit(&loaded).await.unwrap();

    let file = file_json(&store);
    assert_eq!(file["identities"]["journal"], "events.idents-a");
    assert_eq!(file["identities"]["count"], 10);
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
}

#[tokio::test]
async fn a_state_without_identities_has_no_journal_and_reset_removes_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    lock.commit(&with_identities(0)).await.unwrap();
    assert!(file_json(&store).get("identities").is_none());
    assert!(!store.journal_paths()[0].exists());
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    state.identities.prune(start(), 50);
    lock.commit(&state).await.unwrap();
    assert!(store.journal_paths().iter().all(|path| path.exists()));

    assert!(lock.reset().await.unwrap());

    assert!(!store.path().exists());
    assert!(store.journal_paths().iter().all(|path| !path.exists()));
}

#[tokio::test]
async fn the_cursors_are_read_without_the_journal_and_the_state_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let state = with_identities(1000);
    lock.commit(&state).await.unwrap();

    let cursors = store.load_cursors().await.unwrap().unwrap();
    assert_eq!(cursors.timestamp, state.timestamp);
    assert!(cursors.identities.is_empty());
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );

    // Not read, so not checked: a missing journal fails the run, not a reader of cursors.
    fs::remove_file(journal(&store)).unwrap();
    assert_eq!(
        store.load_cursors().await.unwrap().unwrap().timestamp,
        state.timestamp
    );
    assert!(matches!(
        store.load().await,
        Err(StateError::Journal { .. })
    ));
}

#[tokio::test]
async fn an_unchanged_clone_committed_again_and_again_writes_nothing_to_the_journal() {
    // A backfill commits a copy of the loaded state's identities at every batch.
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store
        .lock()
        .await
        .unwrap()
        .commit(&with_identities(400))
        .await
        .unwrap();
    let written = fs::read(journal(&store)).unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    let mut lock = store.lock().await.unwrap();
    for offset in 0..5 {
        let mut copy = loaded.clone();
        copy.offset = Some(offset);
        lock.commit(&copy).await.unwrap();
    }
    assert_eq!(journal(&store), store.journal_paths()[0]);
    assert_eq!(fs::read(journal(&store)).unwrap(), written);
    assert!(!store.journal_paths()[1].exists());
}

#[tokio::test]
async fn a_journal_shortened_between_two_commits_of_one_lock_is_refused_not_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    let path = journal(&store);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..100]).unwrap();
    let state_before = fs::read(store.path()).unwrap();

    add(&mut state, 100, 4);
    let error = lock.commit(&state).await.unwrap_err();

    assert!(matches!(error, StateError::Journal { .. }), "{error:?}");
    assert!(
        error.to_string().contains(
            "is not usable: it holds 100 bytes, but the state file counts on its first 1550: it \
             was cut short. Nothing was changed"
        ),
        "{error}"
    );
    assert_eq!(fs::read(store.path()).unwrap(), state_before);
    assert_eq!(fs::read(&path).unwrap(), &bytes[..100]);
}

#[tokio::test]
async fn an_inline_second_without_entries_is_read_and_leaves_no_journal_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let state = with_identities(4);
    let inline = state.to_json_pretty().replace(
        "\"identities\": {",
        "\"identities\": {\n    \"2025-06-01T00:00:00Z\": \"\",",
    );
    fs::write(store.path(), &inline).unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.identities.len(), 4);

    store.lock().await.unwrap().commit(&loaded).await.unwrap();

    let lines = fs::read_to_string(journal(&store)).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert_eq!(
        store.load().await.unwrap().unwrap().identities,
        state.identities
    );
}

#[test]
fn a_text_referring_to_a_journal_is_refused_by_from_json_str() {
    let text = r#"{"identities": {"journal": "events.idents-a", "bytes": 62, "count": 4,
                   "since": "2026-01-01T00:00:00Z", "checksum": "0123456789abcdef"}}"#;
    let error = State::from_json_str(text).unwrap_err();
    assert!(matches!(error, StateFormatError::JournalNotRead { .. }));
    assert_eq!(
        error.to_string(),
        "`identities` refers to the journal \"events.idents-a\", a file beside the state file \
         that only the file store reads: read this state with `FileStore::load`, which reads \
         the journal too"
    );
}

/// Commits a window of 100 identities, damages the journal with `damage`, and checks that
/// loading and committing are refused with `problem`, leaving both files as they were.
async fn assert_damaged_journal_is_refused(damage: impl FnOnce(&Path, &Path), problem: &str) {
    assert_damaged_journal_is_refused_with(damage, |_, _| problem.to_owned()).await;
}

/// As [`assert_damaged_journal_is_refused`], the problem told from the damaged files.
async fn assert_damaged_journal_is_refused_with(
    damage: impl FnOnce(&Path, &Path),
    problem: impl FnOnce(&Path, &Path) -> String,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store
        .lock()
        .await
        .unwrap()
        .commit(&with_identities(100))
        .await
        .unwrap();
    let path = journal(&store);
    damage(store.path(), &path);
    let problem = problem(store.path(), &path);
    let state_before = fs::read(store.path()).unwrap();
    let journal_before = fs::read(&path).ok();

    let loaded = store.load().await.unwrap_err();
    let mut lock = store.lock().await.unwrap();
    let committed = lock.commit(&with_identities(101)).await.unwrap_err();

    for error in [loaded, committed] {
        assert!(matches!(error, StateError::Journal { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "the identities journal {} of state file {} is not usable: {problem}. Nothing \
                 was changed: put the journal back as it was; or remove the `identities` \
                 section from the state file, which forgets the records delivered inside the \
                 lookback window (a run may deliver those records again) and keeps the \
                 cursors; or remove the state file to start over from scratch",
                path.display(),
                store.path().display()
            )
        );
    }
    assert_eq!(fs::read(store.path()).unwrap(), state_before);
    assert_eq!(fs::read(&path).ok(), journal_before);
    assert!(!store.journal_paths()[1].exists());
}

#[tokio::test]
async fn a_missing_journal_is_refused_and_nothing_is_changed() {
    assert_damaged_journal_is_refused(
        |_, journal| fs::remove_file(journal).unwrap(),
        "it is missing",
    )
    .await;
}

#[tokio::test]
async fn a_journal_cut_short_is_refused_and_nothing_is_changed() {
    assert_damaged_journal_is_refused(
        |_, journal| {
            let bytes = fs::read(journal).unwrap();
            fs::write(journal, &bytes[..1000]).unwrap();
        },
        "it holds 1000 bytes, but the state file counts on its first 1550: it was cut short",
    )
    .await;
}

#[tokio::test]
async fn a_journal_changed_in_place_is_refused_by_its_checksum_and_nothing_is_changed() {
    assert_damaged_journal_is_refused_with(
        |_, journal| {
            let mut bytes = fs::read(journal).unwrap();
            bytes[30] = if bytes[30] == b'0' { b'1' } else { b'0' };
            fs::write(journal, &bytes).unwrap();
        },
        |state, journal| {
            let recorded: Value =
                serde_json::from_str(&fs::read_to_string(state).unwrap()).unwrap();
            format!(
                "its first 1550 bytes have checksum {:016x}, but the state file recorded {}: \
                 they were changed since",
                xxh3(&fs::read(journal).unwrap()),
                recorded["identities"]["checksum"].as_str().unwrap()
            )
        },
    )
    .await;
}

#[tokio::test]
async fn a_journal_giving_another_count_is_refused_and_nothing_is_changed() {
    assert_damaged_journal_is_refused(
        |state, _| {
            let text = fs::read_to_string(state).unwrap();
            fs::write(state, text.replace("\"count\": 100", "\"count\": 99")).unwrap();
        },
        "it holds 100 identities from 2026-01-01T00:00:00Z on, but the state file recorded 99",
    )
    .await;
}

#[tokio::test]
async fn a_bad_journal_line_is_refused_with_its_number_and_nothing_is_changed() {
    assert_damaged_journal_is_refused(
        |state, journal| {
            // A line of the right length whose second is no timestamp, and a checksum that
            // matches it: what a careless hand edit leaves.
            let mut bytes = fs::read(journal).unwrap();
            let third = 2 * 62;
            bytes[third..third + 4].copy_from_slice(b"soon");
            fs::write(journal, &bytes).unwrap();
            let text = fs::read_to_string(state).unwrap();
            let mut file: Value = serde_json::from_str(&text).unwrap();
            file["identities"]["checksum"] = Value::String(format!("{:016x}", xxh3(&bytes)));
            fs::write(state, serde_json::to_string_pretty(&file).unwrap()).unwrap();
        },
        "its line 3 does not start with an RFC 3339 timestamp of a whole second and a space",
    )
    .await;
}

#[tokio::test]
async fn a_bad_line_in_the_state_files_tail_is_refused_with_its_number_and_nothing_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut lock = store.lock().await.unwrap();
    let mut state = with_identities(100);
    lock.commit(&state).await.unwrap();
    add(&mut state, 100, 12);
    lock.commit(&state).await.unwrap();
    drop(lock);
    let text = fs::read_to_string(store.path()).unwrap();
    let mut file: Value = serde_json::from_str(&text).unwrap();
    file["identities"]["tail"][1] = Value::String("2026-01-01T00:00:26Z 00000".into());
    fs::write(store.path(), serde_json::to_string_pretty(&file).unwrap()).unwrap();
    file["identities"]["tail"] = Value::String("lines".into());
    let not_a_list = serde_json::to_string_pretty(&file).unwrap();
    let journal_before = fs::read(journal(&store)).unwrap();

    let error = store.load().await.unwrap_err();
    assert!(
        error.to_string().contains(
            "is not usable: the line 2 of the state file's `identities.tail` does not go on \
             with a Z85 string of 8 bytes an identity. Nothing was changed"
        ),
        "{error}"
    );
    fs::write(store.path(), &not_a_list).unwrap();
    let error = store.load().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`identities.tail` holds \"lines\", but it must be a list of journal lines"),
        "{error}"
    );
    assert_eq!(fs::read_to_string(store.path()).unwrap(), not_a_list);
    assert_eq!(fs::read(journal(&store)).unwrap(), journal_before);
}

fn xxh3(bytes: &[u8]) -> u64 {
    twox_hash::XxHash3_64::oneshot_with_seed(0, bytes)
}

#[test]
fn identities_compare_by_their_entries_not_by_their_history() {
    let mut one = Identities::default();
    let mut other = Identities::default();
    one.insert(start(), 1);
    other.insert(start(), 1);
    let copy = one.clone();
    assert_eq!(one, other);
    assert_eq!(one, copy);
}

/// A step of a run with lookback, as the executor takes them between commits.
#[derive(Debug, Clone)]
enum Step {
    /// Records delivered: (second from the start, millisecond, identity).
    Deliver(Vec<(u8, u16, u8)>),
    /// The window starts at this second from the start.
    Move(u8),
    /// At most this many identities are kept.
    Bound(u16),
    /// The state is loaded again by a new lock (a new run).
    Restart,
    /// A copy of the state is committed (a backfill's).
    Copy,
    /// A power cut: the journal's lines beyond its synced bytes are lost, then a new run.
    PowerCut,
    /// A delivery large enough that the state file's tail goes over its bound.
    Flood(u16),
    /// The identities are staged before their commit, as while a sink writes.
    Stage,
    /// Records delivered and staged, but the sink failed: no commit, then a new run.
    SinkFailed(Vec<(u8, u16, u8)>),
}

/// Remembers the records (second from the start, millisecond, identity) as delivered.
fn deliver(state: &mut State, records: Vec<(u8, u16, u8)>) {
    for (second, millis, identity) in records {
        let at = start()
            + TimeDelta::seconds(i64::from(second))
            + TimeDelta::milliseconds(i64::from(millis));
        state.identities.insert(at, u64::from(identity));
    }
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => prop::collection::vec((0..60_u8, 0..1000_u16, any::<u8>()), 0..40).prop_map(Step::Deliver),
        1 => (0..60_u8).prop_map(Step::Move),
        1 => (1..200_u16).prop_map(Step::Bound),
        1 => Just(Step::Restart),
        1 => Just(Step::Copy),
        1 => Just(Step::PowerCut),
        1 => (0..1000_u16).prop_map(Step::Flood),
        2 => Just(Step::Stage),
        1 => prop::collection::vec((0..60_u8, 0..1000_u16, any::<u8>()), 0..40).prop_map(Step::SinkFailed),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Whatever the steps, the identities loaded back are those last committed, and the
    /// journal's synced bytes are never written again.
    #[test]
    fn the_journal_always_loads_back_what_was_committed(
        steps in proptest::collection::vec(step(), 1..30)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = store_in(dir.path());
            let mut lock = store.lock().await.unwrap();
            let mut state = with_identities(0);
            let mut kept: Option<(PathBuf, Vec<u8>)> = None;
            for step in steps {
                match step {
                    Step::Deliver(records) => deliver(&mut state, records),
                    Step::Move(second) => {
                        state.identities.prune(
                            start() + TimeDelta::seconds(i64::from(second)),
                            usize::MAX,
                        );
                    }
                    Step::Bound(max) => {
                        state.identities.prune(start(), usize::from(max));
                    }
                    Step::Restart => {
                        drop(lock);
                        lock = store.lock().await.unwrap();
                        state = store.load().await.unwrap().unwrap_or_default();
                    }
                    Step::Copy => state = state.clone(),
                    Step::PowerCut => {
                        drop(lock);
                        if store.path().exists()
                            && file_json(&store).get("identities").is_some()
                        {
                            let path = journal(&store);
                            let mut bytes = fs::read(&path).unwrap();
                            bytes.truncate(synced_bytes(&store));
                            fs::write(&path, &bytes).unwrap();
                        }
                        kept = None;
                        lock = store.lock().await.unwrap();
                        state = store.load().await.unwrap().unwrap_or_default();
                    }
                    Step::Stage => lock.stage(&state).await.unwrap(),
                    Step::SinkFailed(records) => {
                        let committed = store.load().await.unwrap().unwrap_or_default();
                        deliver(&mut state, records);
                        lock.stage(&state).await.unwrap();
                        drop(lock);
                        lock = store.lock().await.unwrap();
                        state = store.load().await.unwrap().unwrap_or_default();
                        assert_eq!(&state.identities, &committed.identities);
                    }
                    Step::Flood(first) => {
                        for record in 0..15_000_u64 {
                            let at = start() + TimeDelta::milliseconds((record * 3) as i64);
                            state.identities.insert(at, u64::from(first) * 100_000 + record);
                        }
                    }
                }
                // The bytes counted before this commit, in the file then referred to, stay.
                if let Some((path, bytes)) = &kept
                    && *path == journal(&store)
                {
                    let now = fs::read(path).unwrap();
                    assert_eq!(&now[..bytes.len()], &bytes[..]);
                }
                lock.commit(&state).await.unwrap();
                let loaded = store.load().await.unwrap().unwrap();
                assert_eq!(&loaded.identities, &state.identities);
                assert_eq!(loaded.identities.len(), state.identities.len());
                kept = file_json(&store).get("identities").map(|_| {
                    let path = journal(&store);
                    let bytes = fs::read(&path).unwrap()[..synced_bytes(&store)].to_vec();
                    (path, bytes)
                });
            }
        });
    }
}
