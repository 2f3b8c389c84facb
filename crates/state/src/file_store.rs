//! The file store: a pipeline's state in `<dir>/<name>.json`, with its run lock beside it.
//!
//! This is the only place that knows the default directory and the file layout
//! (`<dir>/<name>.json`, `<name>.json.tmp` while committing, `<name>.lock`). A commit is
//! crash-consistent: the new content goes to the temp file, is synced, renamed over the old
//! file, and the directory is synced, so that after a crash at any point the state file holds
//! either the old or the new content, never a mix.
//!
//! Its futures do their I/O on the thread that polls them, when they are polled, and never wait
//! for anything else: a few small reads and writes and, for a commit, two syncs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;

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
    LONGEST_SUFFIX.len() >= STATE_SUFFIX.len() && LONGEST_SUFFIX.len() >= LOCK_SUFFIX.len()
);

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
    /// The buffer of the text before that, kept for the next commit: with lookback the text is
    /// about a megabyte, written at every commit.
    spare: String,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first also covers a descriptor
        // shared with a forked child. Nothing useful can be done if it fails.
        let _ = self.handle.unlock();
    }
}

impl StateLock for FileLock {
    /// Writes durably (temp file, fsync, rename, fsync of the directory), with `pipeline`,
    /// `pipelineFile` (absent when the store was given no pipeline file) and `updatedAt` set.
    /// The file gets mode 0600; a directory created for it gets 0700. The file in place is
    /// read first, to refuse replacing a bad one; it is parsed only when it is not the text
    /// this lock committed last (a first commit, or a file changed since).
    fn commit<'a>(&'a mut self, state: &'a State) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut text = std::mem::take(&mut self.spare);
            let last_written = self.last_written.take();
            let written = self.store.write(state, last_written.as_deref(), &mut text);
            // After a failure the file may hold anything: the next commit checks it in full.
            let (now, spare) = match written {
                Ok(()) => (Some(text), last_written.unwrap_or_default()),
                Err(_) => (None, text),
            };
            self.last_written = now;
            self.spare = spare;
            written
        })
    }

    /// Removes the state file and a temp file left by an interrupted commit.
    fn reset(&mut self) -> StoreFuture<'_, bool> {
        self.last_written = None;
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
            .map(|bytes| self.parse(bytes))
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

    fn parse(&self, bytes: Vec<u8>) -> Result<State, StateError> {
        let text = String::from_utf8(bytes).map_err(|error| StateError::Corrupt {
            path: self.file.clone(),
            problem: StateFormatError::NotText {
                byte: error.utf8_error().valid_up_to(),
            },
        })?;
        State::from_json_str(&text).map_err(|problem| StateError::Corrupt {
            path: self.file.clone(),
            problem,
        })
    }

    /// Replaces the state file with `state`, unless the file in place is not a valid state;
    /// `last_written` is the text this writer committed last, which is valid without parsing
    /// it again. `text` is a buffer to write the new text into.
    fn write(
        &self,
        state: &State,
        last_written: Option<&str>,
        text: &mut String,
    ) -> Result<(), StateError> {
        if !last_written.is_some_and(|last| self.holds(last.as_bytes()))
            && let Some(bytes) = self.read_bytes()?
        {
            self.parse(bytes)?;
        }
        let metadata = Metadata {
            pipeline: Some(&self.pipeline),
            // The writer of this commit, not of an earlier one: unknown when not given.
            pipeline_file: self.pipeline_file.as_deref(),
            updated_at: Some(Utc::now()),
        };
        state.write_json_pretty(&metadata, text);
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
        })
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
        if existed {
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
