//! Where state files live and how they are read, written and locked.
//!
//! This is the only place that knows the default directory and the file layout
//! (`<storagePath>/<name>.json`, `<name>.json.tmp` while committing, `<name>.lock`). A commit
//! is crash-consistent: the new content goes to the temp file, is synced, renamed over the old
//! file, and the directory is synced, so that after a crash at any point the state file holds
//! either the old or the new content, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cannectors_config::Pipeline;
use chrono::Utc;

use crate::state::{State, StateFormatError};

/// `storagePath` when the pipeline does not set one; relative to the working directory.
const DEFAULT_STORAGE_DIR: &str = ".cannectors-state";

/// The state file is `<name>.json`.
const STATE_SUFFIX: &str = ".json";
/// A commit writes `<name>.json.tmp` first.
const TEMP_SUFFIX: &str = ".json.tmp";
/// The run lock is `<name>.lock`.
const LOCK_SUFFIX: &str = ".lock";

/// The longest file name, in bytes, of ext4, XFS, Btrfs and tmpfs (`NAME_MAX`).
const FILE_NAME_MAX: usize = 255;

const fn longest_suffix() -> usize {
    let mut longest = STATE_SUFFIX.len();
    if TEMP_SUFFIX.len() > longest {
        longest = TEMP_SUFFIX.len();
    }
    if LOCK_SUFFIX.len() > longest {
        longest = LOCK_SUFFIX.len();
    }
    longest
}

/// The state file and run lock of one pipeline.
///
/// Create it once per run with [`StateStore::for_pipeline`] and use the same instance to load
/// and to commit, so that the state a run commits is the state the next run loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateStore {
    pipeline: String,
    dir: PathBuf,
    file: PathBuf,
    temp: PathBuf,
    lock: PathBuf,
    /// The pipeline file this store commits for, recorded in every commit.
    pipeline_file: Option<PathBuf>,
}

/// Proof that this process is the one writer of a pipeline's state. The OS lock is released
/// when the guard is dropped, and by the OS when the process dies.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first also covers a descriptor
        // shared with a forked child. Nothing useful can be done if it fails.
        let _ = self.file.unlock();
    }
}

/// Why the state of a pipeline could not be located, read, written or locked.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The pipeline name cannot be used as a file name.
    #[error(
        "pipeline name `{name}` cannot name a state file: use letters, digits, `.`, `_` and \
         `-`, starting with a letter or a digit"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The pipeline name is too long for the file names derived from it.
    #[error(
        "a pipeline name of {length} bytes cannot name a state file: with the suffixes the store \
         adds (up to `{}`) its file names would be longer than the {} bytes a file name may \
         have; use a name of at most {} bytes",
        TEMP_SUFFIX,
        FILE_NAME_MAX,
        StateStore::MAX_NAME_LEN
    )]
    NameTooLong {
        /// The length of the rejected name, in bytes.
        length: usize,
    },
    /// The storage directory cannot be made absolute.
    #[error(
        "cannot resolve the state directory `{}` (statePersistence.storagePath): {source}",
        path.display()
    )]
    StorageDir {
        /// The directory as given.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The state file exists but cannot be read.
    #[error(
        "cannot read state file {}: {source}; make it readable by this user, or move it away to \
         start over (nothing was changed)",
        path.display()
    )]
    Read {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Something other than a regular file is where the state file should be.
    #[error(
        "{} is not a regular file but should be the state file of pipeline `{pipeline}`: move \
         it away (nothing was read or changed)",
        path.display()
    )]
    NotAFile {
        /// The state file path.
        path: PathBuf,
        /// The pipeline name.
        pipeline: String,
    },
    /// The state file content is not a valid state.
    #[error(
        "state file {} is not usable: {problem}. Nothing was changed: fix the file by hand, or \
         delete it with `cannectors state reset <pipeline file>` to start over from scratch",
        path.display()
    )]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        problem: StateFormatError,
    },
    /// Another process holds the run lock.
    #[error(
        "pipeline `{pipeline}` is already running: another process holds the lock {}; wait for \
         that run to finish or stop it (the lock is released when its process exits)",
        path.display()
    )]
    Locked {
        /// The pipeline name.
        pipeline: String,
        /// The lock file.
        path: PathBuf,
    },
    /// A symbolic link is where the lock file should be.
    #[error(
        "the run lock {} is a symbolic link: it is never opened through a link, which could \
         create or lock a file elsewhere; remove the link (nothing was created or changed at \
         its target)",
        path.display()
    )]
    LockIsLink {
        /// The lock file path.
        path: PathBuf,
    },
    /// The lock file cannot be opened or locked.
    #[error("cannot take the run lock {}: {source}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The state directory cannot be created.
    #[error(
        "cannot create the state directory {}: {source}; create it, or point \
         statePersistence.storagePath at a writable directory",
        path.display()
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The new state could not be written; the previous state file is unchanged.
    #[error(
        "cannot write state file {}: {source}; the previous state file is unchanged (check free \
         space and permissions of the directory)",
        path.display()
    )]
    Write {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The new state file is in place but its directory entry may not be durable yet.
    #[error(
        "state file {} was written but its directory could not be synced to disk: {source}",
        path.display()
    )]
    SyncDir {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The state file could not be removed.
    #[error(
        "cannot remove state file {}: {source}; check the permissions of its directory, or \
         remove it by hand",
        path.display()
    )]
    Remove {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl StateStore {
    /// The longest pipeline name a store accepts, in bytes: every file it derives from the name
    /// (`<name>.json`, `<name>.json.tmp`, `<name>.lock`) stays within the 255 bytes Linux file
    /// systems allow for a file name. The pipeline file validation refuses longer names with the
    /// same limit, so a run never delivers a batch it then cannot commit.
    pub const MAX_NAME_LEN: usize = FILE_NAME_MAX - longest_suffix();

    /// The store of a pipeline: `<storagePath>/<name>.json`, where `storagePath` comes from the
    /// input's `statePersistence` (default `./.cannectors-state`) and a relative path resolves
    /// against the working directory, once, here.
    pub fn for_pipeline(pipeline: &Pipeline) -> Result<StateStore, StateError> {
        let storage_path = pipeline
            .input
            .state_persistence()
            .and_then(|settings| settings.storage_path.as_deref())
            .map(Path::new);
        StateStore::new(&pipeline.name, storage_path)
    }

    /// The store of pipeline `name` in `storage_dir` (default `./.cannectors-state`), made
    /// absolute against the working directory.
    pub fn new(name: &str, storage_dir: Option<&Path>) -> Result<StateStore, StateError> {
        if !valid_name(name) {
            return Err(StateError::InvalidName {
                name: name.to_owned(),
            });
        }
        if name.len() > StateStore::MAX_NAME_LEN {
            return Err(StateError::NameTooLong { length: name.len() });
        }
        let given = storage_dir.unwrap_or(Path::new(DEFAULT_STORAGE_DIR));
        let dir = std::path::absolute(given).map_err(|source| StateError::StorageDir {
            path: given.to_owned(),
            source,
        })?;
        Ok(StateStore {
            pipeline: name.to_owned(),
            file: dir.join(format!("{name}{STATE_SUFFIX}")),
            temp: dir.join(format!("{name}{TEMP_SUFFIX}")),
            lock: dir.join(format!("{name}{LOCK_SUFFIX}")),
            dir,
            pipeline_file: None,
        })
    }

    /// The same store, recording in every commit that the state was written for the pipeline
    /// file `file` (the `pipelineFile` key), so that a run of another pipeline file sharing the
    /// state file can notice it with [`StateStore::other_pipeline_file`]. The path is made
    /// absolute against the working directory, with symbolic links resolved when it exists.
    ///
    /// ```
    /// use cannectors_state::{State, StateStore};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let first = StateStore::new("events", Some(dir.path()))?.with_pipeline_file("/etc/a.yaml");
    /// first.commit(&State::default())?;
    /// let second = StateStore::new("events", Some(dir.path()))?.with_pipeline_file("/etc/b.yaml");
    /// let state = second.load()?.unwrap_or_default();
    /// assert_eq!(second.other_pipeline_file(&state), Some(std::path::Path::new("/etc/a.yaml")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_pipeline_file(mut self, file: impl AsRef<Path>) -> StateStore {
        let file = file.as_ref();
        let absolute = fs::canonicalize(file)
            .or_else(|_| std::path::absolute(file))
            .unwrap_or_else(|_| file.to_owned());
        self.pipeline_file = Some(absolute);
        self
    }

    /// The pipeline file this store records in its commits, if it was given one.
    pub fn pipeline_file(&self) -> Option<&Path> {
        self.pipeline_file.as_deref()
    }

    /// The pipeline file recorded in `state` when it is not this store's: another pipeline file
    /// (of the same name, with the same storage) wrote the state last, so the two share one
    /// cursor. `None` when they agree, or when either of them is not known.
    pub fn other_pipeline_file<'s>(&self, state: &'s State) -> Option<&'s Path> {
        let mine = self.pipeline_file.as_deref()?;
        let recorded = state.pipeline_file.as_deref()?;
        (recorded != mine).then_some(recorded)
    }

    /// The pipeline name.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
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

    /// Takes the exclusive run lock of the pipeline, creating the directory and the lock file
    /// when needed. Fails at once, without waiting, when another process (or another handle in
    /// this process) holds it.
    pub fn lock(&self) -> Result<RunLock, StateError> {
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
            Ok(()) => Ok(RunLock {
                file,
                path: self.lock.clone(),
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

    /// Reads the state: `None` when there is no state file yet, an error naming the file when
    /// it cannot be read or is not a valid state. A temp file left by an interrupted commit is
    /// ignored.
    pub fn load(&self) -> Result<Option<State>, StateError> {
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
        let bytes = match fs::read(&self.file) {
            Ok(bytes) => bytes,
            // Removed between the two calls: same as never there.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.file.clone(),
                    source,
                });
            }
        };
        let text = String::from_utf8(bytes).map_err(|error| StateError::Corrupt {
            path: self.file.clone(),
            problem: StateFormatError::NotText {
                byte: error.utf8_error().valid_up_to(),
            },
        })?;
        State::from_json_str(&text)
            .map(Some)
            .map_err(|problem| StateError::Corrupt {
                path: self.file.clone(),
                problem,
            })
    }

    /// Writes `state` durably (temp file, fsync, rename, fsync of the directory), with
    /// `pipeline`, `pipelineFile` (see [`StateStore::with_pipeline_file`]; absent when not given)
    /// and `updatedAt` set. The file gets mode 0600; a directory created for it
    /// gets 0700.
    ///
    /// Refuses, with the same error as [`StateStore::load`], to replace a file that is not a
    /// valid state (edited by hand into a bad one during a run, say): a bad file is never
    /// overwritten, only removed on request by [`StateStore::reset`]. Reading a file of a few
    /// hundred bytes costs little next to the two syncs of a commit.
    pub fn commit(&self, state: &State) -> Result<(), StateError> {
        self.load()?;
        let mut stamped = state.clone();
        stamped.pipeline = Some(self.pipeline.clone());
        // The writer of this commit, not of an earlier one: unknown when not given.
        stamped.pipeline_file = self.pipeline_file.clone();
        stamped.updated_at = Some(Utc::now());
        let text = stamped.to_json_pretty();
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

    /// Removes the state file (and a temp file left by an interrupted commit), so that the
    /// next run starts from scratch. Returns whether there was a state file.
    pub fn reset(&self) -> Result<bool, StateError> {
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

/// `[A-Za-z0-9][A-Za-z0-9._-]*`, as the pipeline model requires; it also keeps the name from
/// reaching outside the storage directory (`..`, `/`).
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
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
