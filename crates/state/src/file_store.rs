//! The file store: a pipeline's state in `<dir>/<name>.json`, with its run lock beside it.
//!
//! This is the only place that knows the default directory and the file layout
//! (`<dir>/<name>.json`, `<name>.json.tmp` while committing, `<name>.lock`, and with lookback
//! the journal of identities `<name>.idents-a` or `<name>.idents-b`). A commit is
//! crash-consistent: the identities it added are appended to the journal after the bytes the
//! state file counts on, and carried in the state file too until they are synced (or, now and
//! then, all of them are written into the other journal file and synced); then the new content
//! goes to the temp file, is synced, renamed over the old file, and the directory is synced, so
//! that after a crash at any point the state file holds either the old or the new content,
//! never a mix, and the journal bytes it counts on are never written again.
//!
//! Its futures do their I/O on the thread that polls them, when they are polled: a few small
//! reads and writes and, for a commit, two syncs (three when the journal's lines are synced
//! before the state file). The one other thing they wait for is a sync of journal lines that a
//! stage (or an earlier commit) started on a thread of its own: the commit of a staged state
//! waits for it to finish, as it would for its own sync.

use std::fs::{self, File, OpenOptions};
use std::hash::Hasher as _;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use twox_hash::XxHash3_64;

use crate::identities::Identities;
use crate::journal::{
    COMPACT_FLOOR, JournalProblem, JournalRef, JournalTail, SLOT_SUFFIXES, Slot, TAIL_MAX,
    hasher_of,
};
use crate::state::{Metadata, State, StateFormatError};
use crate::store::{StateError, StateLock, StateStore, StoreFuture, check_name};

/// The directory when none is given; relative to the working directory.
const DEFAULT_STORAGE_DIR: &str = ".cannectors-state";

/// The state file is `<name>.json`.
const STATE_SUFFIX: &str = ".json";
/// A commit writes `<name>.json.tmp` first.
const TEMP_SUFFIX: &str = ".json.tmp";
/// The run lock is `<name>.lock`.
const LOCK_SUFFIX: &str = ".lock";

/// How much of the state file is compared at a time with the text last written.
const COMPARE_CHUNK: usize = 64 * 1024;

/// The longest suffix added to a pipeline name, which bounds the name's length.
pub(crate) const LONGEST_SUFFIX: &str = TEMP_SUFFIX;
const _: () = assert!(
    LONGEST_SUFFIX.len() >= STATE_SUFFIX.len()
        && LONGEST_SUFFIX.len() >= LOCK_SUFFIX.len()
        && LONGEST_SUFFIX.len() >= SLOT_SUFFIXES[0].len()
        && LONGEST_SUFFIX.len() >= SLOT_SUFFIXES[1].len()
);

/// Starts syncing the journal file `file` (of `slot`, `through` bytes long) on a thread of its
/// own; `None` when no thread can be started, which leaves the lines carried by the state file.
fn sync_in_background(file: File, slot: Slot, through: u64) -> Option<BackgroundSync> {
    let handle = std::thread::Builder::new()
        .name("journal-sync".into())
        .spawn(move || file.sync_data())
        .ok()?;
    Some(BackgroundSync {
        slot,
        through,
        handle,
    })
}

/// Counts the journal lines the finished sync `done` made durable: they leave the tail the
/// state file carries. A sync that failed, or of lines no longer in the tail, counts nothing.
fn count_synced(tail: &mut JournalTail, done: BackgroundSync) {
    let synced = matches!(done.handle.join(), Ok(Ok(())));
    let reference = &mut tail.reference;
    let covered = done
        .through
        .checked_sub(reference.bytes)
        .and_then(|covered| usize::try_from(covered).ok())
        .filter(|covered| *covered > 0 && *covered <= reference.tail.len());
    if let Some(covered) = covered
        && synced
        && tail.tail_written
        && done.slot == reference.slot
        && reference.tail.is_char_boundary(covered)
    {
        tail.hasher.write(&reference.tail.as_bytes()[..covered]);
        reference.bytes = done.through;
        reference.checksum = tail.hasher.finish();
        reference.tail = Arc::from(&reference.tail[covered..]);
    }
}

/// The longest file name, in bytes, of ext4, XFS, Btrfs and tmpfs (`NAME_MAX`).
pub(crate) const FILE_NAME_MAX: usize = 255;

/// The state of one pipeline in a directory: the state file and the run lock.
///
/// ```
/// use cannectors_state::{FileStore, StateStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = FileStore::new("events", Some(dir.path()))?;
/// assert_eq!(store.path(), dir.path().join("events.json"));
/// assert_eq!(store.load().await?, None); // nothing committed yet
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStore {
    pipeline: String,
    dir: PathBuf,
    file: PathBuf,
    temp: PathBuf,
    lock: PathBuf,
    /// The two journal files of identities, `<name>.idents-a` and `<name>.idents-b`.
    journals: [PathBuf; 2],
    /// The state file path, as shown to people.
    location: String,
    /// The pipeline file this store commits for, recorded in every commit.
    pipeline_file: Option<PathBuf>,
}

/// The OS lock on `<name>.lock`: proof that this process is the one writer of a pipeline's
/// state. It is released when the guard is dropped, and by the OS when the process dies.
#[derive(Debug)]
struct FileLock {
    handle: File,
    /// The store as it was when the lock was taken, so that the guard commits on its own.
    store: FileStore,
    /// The text this lock last committed: a state file still holding it needs no parsing to
    /// know it is valid.
    last_written: Option<String>,
    /// The buffer of the text before that, kept for the next commit.
    spare: String,
    /// The journal the state file refers to, as this lock last wrote it.
    journal: Option<JournalTail>,
    /// A buffer for the journal's lines, kept for the next commit.
    lines: Vec<u8>,
    /// The sync of the journal's last lines, running while the run goes on.
    syncing: Option<BackgroundSync>,
    /// The version of the identities [`stage`](StateLock::stage) appended last, until the
    /// commit that counts them.
    staged: Option<(u64, u64)>,
}

/// A sync of journal lines on a thread of its own, started by a commit that carried them in
/// the state file: a later commit counts the lines it covered once it finished, and stops
/// carrying them.
#[derive(Debug)]
struct BackgroundSync {
    slot: Slot,
    /// The journal's length when the sync started: the bytes it makes durable.
    through: u64,
    handle: std::thread::JoinHandle<io::Result<()>>,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first also covers a descriptor
        // shared with a forked child. Nothing useful can be done if it fails.
        let _ = self.handle.unlock();
    }
}

impl FileLock {
    /// Reads the state file in place as a commit does when it did not write it last, and
    /// remembers its text as the one written last: the journal it refers to, if any.
    fn read_current(&mut self) -> Result<Option<JournalTail>, StateError> {
        self.last_written = None;
        self.syncing = None;
        let Some(bytes) = self.store.read_bytes()? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes.clone()).ok();
        let (_, journal) = self.store.parse(bytes)?;
        self.last_written = text;
        Ok(journal)
    }
}

impl StateLock for FileLock {
    /// Writes durably (temp file, fsync, rename, fsync of the directory), with `pipeline`,
    /// `pipelineFile` (absent when the store was given no pipeline file) and `updatedAt` set.
    /// The file gets mode 0600; a directory created for it gets 0700. The file in place is
    /// read first, to refuse replacing a bad one; it is parsed (and its journal read) only when
    /// it is not the text this lock committed last (a first commit, or a file changed since).
    /// The identities go to the journal: appended when they only grew since the version this
    /// lock (or the load they came from) saw in it, else written whole into the other file.
    fn commit<'a>(&'a mut self, state: &'a State) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut text = std::mem::take(&mut self.spare);
            let last_written = self.last_written.take();
            let journal = self.journal.take();
            let staged = self.staged.take() == Some(state.identities.version());
            let written = self.store.write(
                state,
                last_written.as_deref(),
                journal,
                (&mut text, &mut self.lines),
                (&mut self.syncing, staged),
            );
            // After a failure the files may hold anything: the next commit checks them in full.
            let (now, spare, result) = match written {
                Ok(journal) => {
                    self.journal = journal;
                    (Some(text), last_written.unwrap_or_default(), Ok(()))
                }
                Err(error) => {
                    self.syncing = None;
                    (None, text, Err(error))
                }
            };
            self.last_written = now;
            self.spare = spare;
            result
        })
    }

    /// Appends the identities `state` added since the last commit to the journal and starts
    /// their sync on a thread of its own, so that it runs beside the sink's write; the commit
    /// of that state waits for it and counts the lines, so that the state file does not carry
    /// them. The state file in place is checked first, as the commit checks it (read in full
    /// when this lock did not write it last), so that a bad file or a journal that cannot be
    /// written stops the run before the sink writes; a state file without a journal yet is
    /// left to the commit, which writes the journal whole.
    fn stage<'a>(&'a mut self, state: &'a State) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.staged = None;
            if state.identities.is_empty() {
                return Ok(());
            }
            let journal = self.journal.take();
            let checked = match (journal, &self.last_written) {
                (Some(journal), Some(last)) if self.store.holds(last.as_bytes()) => Some(journal),
                _ => self.read_current()?,
            };
            let Some(mut journal) = checked else {
                return Ok(());
            };
            match self.store.append_added(
                &state.identities,
                &mut journal,
                &mut self.lines,
                &mut self.syncing,
                false,
            ) {
                Ok(appended) => {
                    self.journal = Some(journal);
                    if appended {
                        self.staged = Some(state.identities.version());
                    }
                    Ok(())
                }
                // The journal may hold anything after its counted bytes: the next commit
                // checks the files in full.
                Err(error) => {
                    self.last_written = None;
                    self.syncing = None;
                    Err(error)
                }
            }
        })
    }

    /// Removes the state file, a temp file left by an interrupted commit, and the journal
    /// files of identities.
    fn reset(&mut self) -> StoreFuture<'_, bool> {
        self.last_written = None;
        self.journal = None;
        self.staged = None;
        Box::pin(async move { self.store.remove() })
    }
}

impl StateStore for FileStore {
    fn pipeline(&self) -> &str {
        &self.pipeline
    }

    fn location(&self) -> &str {
        &self.location
    }

    /// A temp file left by an interrupted commit is ignored.
    fn load(&self) -> StoreFuture<'_, Option<State>> {
        Box::pin(async move { self.read() })
    }

    /// The state file alone: the journal of identities it refers to is not read.
    fn load_cursors(&self) -> StoreFuture<'_, Option<State>> {
        Box::pin(async move {
            self.read_bytes()?
                .map(|bytes| self.parse_cursors(bytes))
                .transpose()
        })
    }

    /// Creates the directory and the lock file when needed; never opens the lock file through
    /// a symbolic link. Another handle on the lock file in this process counts as another
    /// writer too.
    fn lock(&self) -> StoreFuture<'_, Box<dyn StateLock>> {
        Box::pin(async move {
            let lock = self.take_lock()?;
            Ok(Box::new(lock) as Box<dyn StateLock>)
        })
    }

    fn set_pipeline_file(&mut self, file: &Path) {
        let absolute = fs::canonicalize(file)
            .or_else(|_| std::path::absolute(file))
            .unwrap_or_else(|_| file.to_owned());
        self.pipeline_file = Some(absolute);
    }

    fn pipeline_file(&self) -> Option<&Path> {
        self.pipeline_file.as_deref()
    }
}

impl FileStore {
    /// The store of pipeline `name` in `dir` (default `./.cannectors-state`), made absolute
    /// against the working directory, once, here.
    pub fn new(name: &str, dir: Option<&Path>) -> Result<FileStore, StateError> {
        check_name(name)?;
        let given = dir.unwrap_or(Path::new(DEFAULT_STORAGE_DIR));
        let dir = std::path::absolute(given).map_err(|source| StateError::StorageDir {
            path: given.to_owned(),
            source,
        })?;
        let file = dir.join(format!("{name}{STATE_SUFFIX}"));
        Ok(FileStore {
            pipeline: name.to_owned(),
            location: file.display().to_string(),
            file,
            temp: dir.join(format!("{name}{TEMP_SUFFIX}")),
            lock: dir.join(format!("{name}{LOCK_SUFFIX}")),
            journals: SLOT_SUFFIXES.map(|suffix| dir.join(format!("{name}{suffix}"))),
            dir,
            pipeline_file: None,
        })
    }

    /// The same store, recording `file` in its commits: see
    /// [`StateStore::set_pipeline_file`].
    ///
    /// ```
    /// use cannectors_state::{FileStore, State, StateStore};
    /// use std::path::Path;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let first = FileStore::new("events", Some(dir.path()))?.with_pipeline_file("/etc/a.yaml");
    /// first.lock().await?.commit(&State::default()).await?;
    /// let second = FileStore::new("events", Some(dir.path()))?.with_pipeline_file("/etc/b.yaml");
    /// let state = second.load().await?.unwrap_or_default();
    /// assert_eq!(second.other_pipeline_file(&state), Some(Path::new("/etc/a.yaml")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_pipeline_file(mut self, file: impl AsRef<Path>) -> FileStore {
        self.set_pipeline_file(file.as_ref());
        self
    }

    /// The absolute path of the state file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The absolute path of the state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The absolute path of the lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock
    }

    /// The absolute paths of the two files a lookback window's identities are kept in, one
    /// at a time: the state file's `identities` section names the one in use.
    pub fn journal_paths(&self) -> [&Path; 2] {
        [&self.journals[0], &self.journals[1]]
    }

    fn journal_path(&self, slot: Slot) -> &Path {
        match slot {
            Slot::A => &self.journals[0],
            Slot::B => &self.journals[1],
        }
    }

    fn take_lock(&self) -> Result<FileLock, StateError> {
        self.create_dir()?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        restrict_to_owner(&mut options);
        refuse_links(&mut options);
        let file = options.open(&self.lock).map_err(|source| {
            let is_link = fs::symlink_metadata(&self.lock)
                .is_ok_and(|metadata| metadata.file_type().is_symlink());
            if is_link {
                StateError::LockIsLink {
                    path: self.lock.clone(),
                }
            } else {
                StateError::Lock {
                    path: self.lock.clone(),
                    source,
                }
            }
        })?;
        match file.try_lock() {
            Ok(()) => Ok(FileLock {
                handle: file,
                store: self.clone(),
                last_written: None,
                spare: String::new(),
                journal: None,
                lines: Vec::new(),
                syncing: None,
                staged: None,
            }),
            Err(fs::TryLockError::WouldBlock) => Err(StateError::Locked {
                pipeline: self.pipeline.clone(),
                path: self.lock.clone(),
            }),
            Err(fs::TryLockError::Error(source)) => Err(StateError::Lock {
                path: self.lock.clone(),
                source,
            }),
        }
    }

    fn read(&self) -> Result<Option<State>, StateError> {
        self.read_bytes()?
            .map(|bytes| self.parse(bytes).map(|(state, _)| state))
            .transpose()
    }

    /// The bytes of the state file; `None` when there is none.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        match fs::metadata(&self.file) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.file.clone(),
                    source,
                });
            }
            Ok(metadata) if !metadata.is_file() => return Err(self.not_a_file()),
            Ok(_) => {}
        }
        match fs::read(&self.file) {
            Ok(bytes) => Ok(Some(bytes)),
            // Removed between the two calls: same as never there.
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Read {
                path: self.file.clone(),
                source,
            }),
        }
    }

    /// The state in `bytes`, the state file's, with its identities read from the journal it
    /// refers to, and what a writer needs to append to that journal.
    fn parse(&self, bytes: Vec<u8>) -> Result<(State, Option<JournalTail>), StateError> {
        let (mut state, reference) = self.parse_file(bytes)?;
        let Some(reference) = reference else {
            return Ok((state, None));
        };
        let (identities, hasher) = self.read_journal(&reference)?;
        state.identities = identities;
        let tail = JournalTail {
            reference,
            hasher,
            tail_written: false,
            version: None,
        };
        Ok((state, Some(tail)))
    }

    /// The state in `bytes` without the identities of the journal it refers to, if any.
    fn parse_cursors(&self, bytes: Vec<u8>) -> Result<State, StateError> {
        self.parse_file(bytes).map(|(state, _)| state)
    }

    /// The state in `bytes`, and the journal it refers to, unread.
    fn parse_file(&self, bytes: Vec<u8>) -> Result<(State, Option<JournalRef>), StateError> {
        let corrupt = |problem| StateError::Corrupt {
            path: self.file.clone(),
            problem,
        };
        let text = String::from_utf8(bytes).map_err(|error| {
            corrupt(StateFormatError::NotText {
                byte: error.utf8_error().valid_up_to(),
            })
        })?;
        let mut document = State::parse_document(&text).map_err(corrupt)?;
        let reference = JournalRef::take(&mut document, &self.pipeline).map_err(corrupt)?;
        let state = State::from_json(&document).map_err(corrupt)?;
        Ok((state, reference))
    }

    /// The identities of the journal `reference` names, checked against it.
    fn read_journal(&self, reference: &JournalRef) -> Result<(Identities, XxHash3_64), StateError> {
        let path = self.journal_path(reference.slot);
        let problem = |problem| StateError::Journal {
            path: self.file.clone(),
            journal: path.to_owned(),
            problem,
        };
        let file = File::open(path).map_err(|error| {
            problem(if error.kind() == io::ErrorKind::NotFound {
                JournalProblem::Missing
            } else {
                JournalProblem::Unreadable(error)
            })
        })?;
        let length = file
            .metadata()
            .map_err(|error| problem(JournalProblem::Unreadable(error)))?
            .len();
        let short = |length| {
            problem(JournalProblem::Short {
                length,
                expected: reference.bytes,
            })
        };
        if length < reference.bytes {
            return Err(short(length));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(reference.bytes).unwrap_or(0));
        file.take(reference.bytes)
            .read_to_end(&mut bytes)
            .map_err(|error| problem(JournalProblem::Unreadable(error)))?;
        if (bytes.len() as u64) < reference.bytes {
            return Err(short(bytes.len() as u64));
        }
        let hasher = hasher_of(&bytes);
        let found = hasher.finish();
        if found != reference.checksum {
            return Err(problem(JournalProblem::Checksum {
                bytes: reference.bytes,
                expected: reference.checksum,
                found,
            }));
        }
        let counted = bytes.len();
        bytes.extend_from_slice(reference.tail.as_bytes());
        let mut identities =
            Identities::from_journal(&bytes, reference.since).map_err(|(line, line_problem)| {
                let journal_lines = bytes[..counted].iter().filter(|b| **b == b'\n').count();
                problem(match line.checked_sub(journal_lines) {
                    Some(tail_line) if tail_line > 0 => JournalProblem::TailLine {
                        line: tail_line,
                        problem: line_problem,
                    },
                    _ => JournalProblem::Line {
                        line,
                        problem: line_problem,
                    },
                })
            })?;
        if identities.len() as u64 != reference.count {
            return Err(problem(JournalProblem::Count {
                found: identities.len() as u64,
                expected: reference.count,
                since: DateTime::<Utc>::from_timestamp(reference.since, 0)
                    .map(|since| since.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_default(),
            }));
        }
        identities.set_base(reference.clone());
        Ok((identities, hasher))
    }

    /// Brings the journal in step with `identities`: appends what they added since the version
    /// `current` (the journal the state file refers to now) holds, or writes them all into the
    /// other file when that cannot be told or the file holds too many forgotten entries.
    /// `lines` is a buffer; `staged`, whether these identities were staged (see
    /// [`append_added`](Self::append_added)). Returns the journal to refer to.
    fn write_journal(
        &self,
        identities: &Identities,
        current: Option<JournalTail>,
        lines: &mut Vec<u8>,
        syncing: &mut Option<BackgroundSync>,
        staged: bool,
    ) -> Result<JournalTail, StateError> {
        let slot = match current {
            None => Slot::A,
            Some(mut tail) => {
                if self.append_added(identities, &mut tail, lines, syncing, staged)? {
                    return Ok(tail);
                }
                tail.reference.slot.other()
            }
        };
        *syncing = None;
        lines.clear();
        identities.write_journal(lines);
        self.write_slot(slot, lines)?;
        let hasher = hasher_of(lines);
        Ok(JournalTail {
            reference: JournalRef {
                slot,
                bytes: lines.len() as u64,
                count: identities.len() as u64,
                since: identities.first_second().unwrap_or_default(),
                checksum: hasher.finish(),
                tail: Arc::from(""),
            },
            hasher,
            tail_written: true,
            version: Some(identities.version()),
        })
    }

    /// Appends to the journal of `tail` what `identities` added since the version it holds,
    /// and updates `tail` to refer to them; `false`, with `tail` unchanged but for lines a
    /// finished sync covered, when the whole window must be written into the other file
    /// instead (what was added cannot be told, or the file would hold too many forgotten
    /// entries). `lines` is a buffer.
    ///
    /// An append is not synced before the state file is written: its lines go into the state
    /// file as well (its tail), and a thread syncs them while the run goes on; a later commit
    /// counts them once that sync finished. Only when the tail would exceed [`TAIL_MAX`] is the
    /// append synced before the state file is written. `staged` says that these identities
    /// were appended ahead of this commit, while the sink wrote the delivery: the commit then
    /// waits for their sync, which ran beside the sink's, and counts them.
    fn append_added(
        &self,
        identities: &Identities,
        tail: &mut JournalTail,
        lines: &mut Vec<u8>,
        syncing: &mut Option<BackgroundSync>,
        staged: bool,
    ) -> Result<bool, StateError> {
        lines.clear();
        let since = identities.first_second().unwrap_or_default();
        let live = identities.journal_len() as u64;
        let from = tail.version.or_else(|| {
            identities
                .base()
                .filter(|(reference, _)| *reference == tail.reference)
                .map(|(_, version)| *version)
        });
        let Some(added) = from.and_then(|version| identities.added_since(version)) else {
            return Ok(false);
        };
        if let Some(done) = syncing.take_if(|sync| staged || sync.handle.is_finished()) {
            count_synced(tail, done);
        }
        Identities::write_added(added, lines);
        let carried = tail.reference.tail.len() + lines.len();
        let total = tail.reference.bytes + carried as u64;
        if !lines.is_empty() && total > 2 * live + COMPACT_FLOOR {
            lines.clear();
            return Ok(false);
        }
        // A commit that adds nothing writes nothing (a backfill's commits leave the window's
        // identities as they were, reference included).
        let mut reference = tail.reference.clone();
        if !lines.is_empty() {
            // Journal lines are ASCII: the second and Z85.
            let added = std::str::from_utf8(lines).map_err(|_| {
                self.journal_write_error(
                    self.journal_path(tail.reference.slot),
                    io::Error::other("journal lines that are not text"),
                )
            })?;
            let sync = carried > TAIL_MAX;
            let (file, end) = self.append(tail, lines, sync)?;
            tail.tail_written = true;
            if sync {
                // What a sync still running covers is counted here already.
                *syncing = None;
                tail.hasher.write(tail.reference.tail.as_bytes());
                tail.hasher.write(lines);
                reference.bytes = total;
                reference.checksum = tail.hasher.finish();
                reference.tail = Arc::from("");
            } else {
                let mut carried_lines = String::with_capacity(carried);
                carried_lines.push_str(&tail.reference.tail);
                carried_lines.push_str(added);
                reference.tail = carried_lines.into();
                // One sync at a time: lines appended while one runs are counted after the
                // next.
                if syncing.is_none() {
                    *syncing = sync_in_background(file, tail.reference.slot, end);
                }
            }
        }
        reference.count = identities.len() as u64;
        reference.since = since;
        tail.reference = reference;
        tail.version = Some(identities.version());
        Ok(true)
    }

    /// Appends `lines` to the journal `current` names, after the bytes it counts on and the
    /// tail the state file carries (cutting what an interrupted commit left beyond them, and
    /// writing the tail again when this writer did not write it), and syncs it when `sync`.
    /// Returns the file and its length.
    fn append(
        &self,
        current: &JournalTail,
        lines: &[u8],
        sync: bool,
    ) -> Result<(File, u64), StateError> {
        let reference = &current.reference;
        let path = self.journal_path(reference.slot);
        let mut options = OpenOptions::new();
        options.write(true);
        refuse_links(&mut options);
        let write_error = |source| self.journal_write_error(path, source);
        let mut file = options.open(path).map_err(write_error)?;
        let length = file.metadata().map_err(write_error)?.len();
        // Shortened since this lock last wrote it (the state file was not): growing it back
        // would put zeros where the state file counts on lines.
        if length < reference.bytes {
            return Err(StateError::Journal {
                path: self.file.clone(),
                journal: path.to_owned(),
                problem: JournalProblem::Short {
                    length,
                    expected: reference.bytes,
                },
            });
        }
        let appended = (|| {
            let written_tail = reference.tail.len() as u64;
            let (at, tail) = if current.tail_written && length >= reference.bytes + written_tail {
                (reference.bytes + written_tail, &[][..])
            } else {
                (reference.bytes, reference.tail.as_bytes())
            };
            if length > at {
                file.set_len(at)?;
            }
            file.seek(SeekFrom::Start(at))?;
            file.write_all(tail)?;
            file.write_all(lines)?;
            if sync {
                file.sync_data()?;
            }
            Ok(at + (tail.len() + lines.len()) as u64)
        })();
        let end = appended.map_err(write_error)?;
        Ok((file, end))
    }

    /// Replaces the content of the journal file `slot` with `lines`, and syncs it (and the
    /// directory, when the file is new).
    fn write_slot(&self, slot: Slot, lines: &[u8]) -> Result<(), StateError> {
        let path = self.journal_path(slot);
        let written = (|| {
            let existed = fs::symlink_metadata(path).is_ok();
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true);
            restrict_to_owner(&mut options);
            refuse_links(&mut options);
            let mut file = options.open(path)?;
            file.write_all(lines)?;
            file.sync_data()?;
            if !existed {
                sync_dir(&self.dir)?;
            }
            Ok(())
        })();
        written.map_err(|source| self.journal_write_error(path, source))
    }

    fn journal_write_error(&self, journal: &Path, source: io::Error) -> StateError {
        StateError::WriteJournal {
            path: self.file.clone(),
            journal: journal.to_owned(),
            source,
        }
    }

    /// Replaces the state file with `state`, unless the file in place is not a valid state;
    /// `last_written` is the text this writer committed last, which is valid without parsing
    /// it again. `text` is a buffer to write the new text into.
    ///
    /// `journal` is the journal the state file refers to as this writer last wrote it, for a
    /// file that still holds `last_written`; `lines` a buffer for the journal's lines;
    /// `syncing` the sync of journal lines this writer started last; `staged` whether the
    /// identities of `state` were staged ahead of this commit. Returns the journal the new
    /// state file refers to.
    fn write(
        &self,
        state: &State,
        last_written: Option<&str>,
        journal: Option<JournalTail>,
        (text, lines): (&mut String, &mut Vec<u8>),
        (syncing, staged): (&mut Option<BackgroundSync>, bool),
    ) -> Result<Option<JournalTail>, StateError> {
        let mut current = journal;
        if !last_written.is_some_and(|last| self.holds(last.as_bytes())) {
            current = None;
            if let Some(bytes) = self.read_bytes()? {
                current = self.parse(bytes)?.1;
            }
        }
        self.create_dir()?;
        let referred = current.as_ref().map(|tail| tail.reference.slot);
        let journal = if state.identities.is_empty() {
            None
        } else {
            Some(self.write_journal(&state.identities, current, lines, syncing, staged)?)
        };
        let metadata = Metadata {
            pipeline: Some(&self.pipeline),
            // The writer of this commit, not of an earlier one: unknown when not given.
            pipeline_file: self.pipeline_file.as_deref(),
            updated_at: Some(Utc::now()),
        };
        let reference = journal
            .as_ref()
            .map(|tail| tail.reference.to_json(&self.pipeline));
        state.write_json_pretty(&metadata, reference, text);
        if let Some(tail) = &journal {
            tail.reference.write_tail(text);
        }
        self.create_dir()?;
        if let Err(source) = self.write_temp(text.as_bytes()) {
            let _ = fs::remove_file(&self.temp);
            return Err(StateError::Write {
                path: self.file.clone(),
                source,
            });
        }
        if let Err(source) = fs::rename(&self.temp, &self.file) {
            let _ = fs::remove_file(&self.temp);
            if fs::metadata(&self.file).is_ok_and(|metadata| !metadata.is_file()) {
                return Err(self.not_a_file());
            }
            return Err(StateError::Write {
                path: self.file.clone(),
                source,
            });
        }
        sync_dir(&self.dir).map_err(|source| StateError::SyncDir {
            path: self.file.clone(),
            source,
        })?;
        // The journal file the state file referred to before is no longer read: emptied, it
        // takes no room until the next compaction writes into it. It needs no sync; at worst a
        // crash leaves its old bytes, which nothing reads.
        if let Some(before) = referred
            && journal
                .as_ref()
                .is_none_or(|tail| tail.reference.slot != before)
        {
            let mut options = OpenOptions::new();
            options.write(true);
            refuse_links(&mut options);
            if let Ok(file) = options.open(self.journal_path(before)) {
                let _ = file.set_len(0);
            }
        }
        Ok(journal)
    }

    /// Whether the state file holds exactly `text`, read piece by piece rather than into one
    /// buffer of the file's size. `false` when it cannot tell: the caller then reads the file
    /// the careful way, which reports what is wrong.
    fn holds(&self, text: &[u8]) -> bool {
        let Ok(mut file) = File::open(&self.file) else {
            return false;
        };
        if !file
            .metadata()
            .is_ok_and(|metadata| metadata.is_file() && metadata.len() == text.len() as u64)
        {
            return false;
        }
        let mut buffer = vec![0_u8; COMPARE_CHUNK];
        let mut rest = text;
        loop {
            match file.read(&mut buffer) {
                Ok(0) => return rest.is_empty(),
                Ok(read) => match rest.split_at_checked(read) {
                    Some((head, tail)) if head == &buffer[..read] => rest = tail,
                    _ => return false,
                },
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    fn remove(&self) -> Result<bool, StateError> {
        match fs::symlink_metadata(&self.file) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StateError::Remove {
                    path: self.file.clone(),
                    source,
                });
            }
            Ok(metadata) if metadata.is_dir() => return Err(self.not_a_file()),
            Ok(_) => {}
        }
        // The temp file first: if it cannot go, the state file is still whole.
        match fs::remove_file(&self.temp) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(StateError::Remove {
                    path: self.temp.clone(),
                    source: error,
                });
            }
            _ => {}
        }
        let existed = match fs::remove_file(&self.file) {
            Ok(()) => true,
            Err(error) if error.kind() == io::ErrorKind::NotFound => false,
            Err(source) => {
                return Err(StateError::Remove {
                    path: self.file.clone(),
                    source,
                });
            }
        };
        // The journals last: nothing refers to them once the state file is gone.
        let mut removed_journal = false;
        for journal in &self.journals {
            match fs::remove_file(journal) {
                Ok(()) => removed_journal = true,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StateError::Remove {
                        path: journal.clone(),
                        source,
                    });
                }
            }
        }
        if existed || removed_journal {
            sync_dir(&self.dir).map_err(|source| StateError::SyncDir {
                path: self.file.clone(),
                source,
            })?;
        }
        Ok(existed)
    }

    fn write_temp(&self, bytes: &[u8]) -> io::Result<()> {
        // A stale temp file from a crash may have other permissions: start from a fresh one.
        match fs::remove_file(&self.temp) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        restrict_to_owner(&mut options);
        let mut file = options.open(&self.temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    fn create_dir(&self) -> Result<(), StateError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&self.dir)
            .map_err(|source| StateError::CreateDir {
                path: self.dir.clone(),
                source,
            })
    }

    fn not_a_file(&self) -> StateError {
        StateError::NotAFile {
            path: self.file.clone(),
            pipeline: self.pipeline.clone(),
        }
    }
}

fn restrict_to_owner(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = options;
}

/// Makes opening fail on a symbolic link in the last component of the path. Without it, a
/// dangling `<name>.lock` link would create a file wherever it points, and a link to an existing
/// file would open that file for writing and lock it.
fn refuse_links(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = options;
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Only Unix can open a directory to sync the rename inside it.
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
