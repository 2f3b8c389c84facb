//! Where a pipeline's state is kept, behind one trait: [`StateStore`] reads it and hands out the
//! one right to write it, a [`StateLock`], which alone can commit or reset.
//!
//! The file store ([`FileStore`](crate::FileStore)) is the first implementation. The trait is
//! shaped for stores whose I/O is asynchronous and whose lock can be lost (a lease in a
//! database, with a fencing epoch that every commit checks): every operation returns a boxed
//! future, and a commit through a lock that is no longer held fails instead of writing.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use chrono::{DateTime, Utc};

use crate::file_store::{FILE_NAME_MAX, LONGEST_SUFFIX};
use crate::journal::JournalProblem;
use crate::state::{State, StateFormatError};

/// What a store operation returns: a future that does the work when it is polled.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// The longest pipeline name a store accepts, in bytes. The file store derives its file names
/// from the name (`<name>.json`, `<name>.json.tmp` while committing, `<name>.lock`), and Linux
/// file systems refuse file names longer than 255 bytes; a program that checks pipeline names
/// before running them uses this limit, so that a run never delivers a batch it then cannot
/// commit.
pub const MAX_NAME_LEN: usize = FILE_NAME_MAX - LONGEST_SUFFIX.len();

/// The state of one pipeline, wherever it is kept.
///
/// Reading needs nothing more: [`load`](StateStore::load) is what a dry run, a status display or
/// a metrics endpoint uses. Writing needs the pipeline's lock: [`lock`](StateStore::lock) returns
/// a [`StateLock`], and only that guard can [`commit`](StateLock::commit) or
/// [`reset`](StateLock::reset), so that code which never took the lock cannot write.
///
/// Use one instance per pipeline for loading and committing, so that the state a run commits is
/// the state the next run loads.
pub trait StateStore: fmt::Debug + Send + Sync {
    /// The pipeline name.
    fn pipeline(&self) -> &str;

    /// Where the state is kept, for people: the absolute path of the file for the file store.
    fn location(&self) -> &str;

    /// Reads the state: `None` when nothing was committed yet, an error naming the location
    /// when the stored state cannot be read or is not a valid state.
    fn load(&self) -> StoreFuture<'_, Option<State>>;

    /// Reads the state as [`load`](Self::load) does, except that the identities of a lookback
    /// window may be left out (`identities` empty): what a reader of the cursors needs, such
    /// as the metrics published after every run. The file store then does not read the
    /// journal, which holds most of a window's bytes, and the PostgreSQL store leaves them out
    /// of its query.
    fn load_cursors(&self) -> StoreFuture<'_, Option<State>> {
        self.load()
    }

    /// Takes the pipeline's exclusive right to write its state. Fails at once with
    /// [`StateError::Locked`], without waiting, while another writer holds it. The right lasts
    /// as long as the returned guard (and, for the file store, no longer than this process).
    fn lock(&self) -> StoreFuture<'_, Box<dyn StateLock>>;

    /// Records `file` as the pipeline file every later commit is made for (the `pipelineFile`
    /// key of the state), as an absolute path with symbolic links resolved when it exists, so
    /// that a run of another pipeline file sharing this state can notice it with
    /// [`other_pipeline_file`](StateStore::other_pipeline_file).
    fn set_pipeline_file(&mut self, file: &Path);

    /// The pipeline file this store records in its commits, if it was given one.
    fn pipeline_file(&self) -> Option<&Path>;

    /// The pipeline file recorded in `state` when it is not this store's: another pipeline file
    /// (of the same name, with the same storage) wrote the state last, so the two share one
    /// cursor. `None` when they agree, or when either of them is not known.
    fn other_pipeline_file<'s>(&self, state: &'s State) -> Option<&'s Path> {
        let mine = self.pipeline_file()?;
        let recorded = state.pipeline_file.as_deref()?;
        (recorded != mine).then_some(recorded)
    }

    /// The lease on the pipeline's right to write, for a store whose lock is a lease that
    /// several processes compete for: who holds (or last held) it, until when, and its
    /// fencing epoch. `None` for a store whose lock is not a lease (the file store), and when
    /// no process ever took it.
    fn lease(&self) -> StoreFuture<'_, Option<Lease>> {
        Box::pin(async { Ok(None) })
    }

    /// Takes the lock for the run of a schedule's tick due at `tick`. Processes sharing a store
    /// run the same schedules, so each tick fires on all of them; a store whose lock is a lease
    /// records the tick with it and refuses a tick that some process already took, or one
    /// before it, with [`StateError::TickTaken`], so that each tick runs once, however late a
    /// process wakes up. The default is [`lock`](StateStore::lock): a store that only one
    /// process uses (the file store) has nobody to share a tick with.
    fn lock_for_tick(&self, tick: DateTime<Utc>) -> StoreFuture<'_, Box<dyn StateLock>> {
        let _ = tick;
        self.lock()
    }

    /// The name this process's leases carry as their owner, to tell them from other
    /// processes' in a [`Lease`]. `None` for a store whose lock is not a lease.
    fn owner(&self) -> Option<&str> {
        None
    }
}

/// A lease on a pipeline's right to write its state, as a store shared by several processes
/// records it (see [`StateStore::lease`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// Who took it last: a process on a host.
    pub owner: Option<String>,
    /// When it expires, by the store's clock; `None` once released.
    pub until: Option<DateTime<Utc>>,
    /// The fencing epoch: one more at every acquisition; a commit made under an older epoch
    /// is refused.
    pub epoch: u64,
    /// Whether it is held now, by the store's clock: taken, not released, not expired.
    pub held: bool,
    /// The schedule's tick the lease was last taken for, when a scheduler took it (see
    /// [`StateStore::lock_for_tick`]).
    pub last_tick: Option<DateTime<Utc>>,
}

impl Lease {
    /// A lease as a store read it.
    pub fn new(
        owner: Option<String>,
        until: Option<DateTime<Utc>>,
        epoch: u64,
        held: bool,
    ) -> Lease {
        Lease {
            owner,
            until,
            epoch,
            held,
            last_tick: None,
        }
    }

    /// The lease, taken last for the schedule's `tick`.
    pub fn with_last_tick(mut self, tick: Option<DateTime<Utc>>) -> Lease {
        self.last_tick = tick;
        self
    }
}

/// The right to write one pipeline's state, held from [`StateStore::lock`] until it is dropped.
///
/// Only a lock can write: a run commits through it after every batch its output accepted, and
/// a program that never takes one (a dry run) has nothing to commit with.
pub trait StateLock: fmt::Debug + Send {
    /// Writes `state` durably, with the metadata the store adds (the pipeline, the pipeline
    /// file, the time of the commit). Refuses, with the error [`StateStore::load`] gives, to
    /// replace a stored state that is not valid: a bad state is never overwritten, only removed
    /// on request by [`reset`](StateLock::reset).
    fn commit<'a>(&'a mut self, state: &'a State) -> StoreFuture<'a, ()>;

    /// Prepares the commit of `state` while the delivery it follows is still being written:
    /// a store may write ahead what the commit will count on, as long as nothing of it counts
    /// before the commit (the file store appends the lookback window's new identities to its
    /// journal and syncs them beside the sink's sync). The commit of `state` must follow; if it
    /// does not (the sink failed), nothing staged is read. An error is one the commit would
    /// have met: nothing of the delivery was written yet. By default, nothing is done.
    fn stage<'a>(&'a mut self, state: &'a State) -> StoreFuture<'a, ()> {
        let _ = state;
        Box::pin(async { Ok(()) })
    }

    /// Removes the state, so that the next run starts from scratch. Returns whether there was
    /// a state.
    fn reset(&mut self) -> StoreFuture<'_, bool>;

    /// Whether the right is still held, as far as this process knows without asking the store:
    /// a lease that a background renewal found taken over is not. A writer checks it before it
    /// delivers more, so that a process that lost the right stops at once; the commit's own
    /// check stays the one that counts.
    fn check(&self) -> Result<(), StateError> {
        Ok(())
    }

    /// Gives the right up now, so that another process can take it without waiting. Dropping
    /// the guard gives it up too, as soon as it can; a lock whose release is asynchronous (a
    /// lease in a database) is released for sure only once this future completed.
    fn release(self: Box<Self>) -> StoreFuture<'static, ()> {
        drop(self);
        Box::pin(async { Ok(()) })
    }

    /// The lock as its own type, for a caller that knows which store it came from and needs
    /// what only that store's lock offers (the PostgreSQL store's lease commits inside a
    /// transaction of the caller's, so that a batch and its state are written together).
    /// `None` for a lock that offers nothing beyond this trait.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}

/// Why the state of a pipeline could not be located, read, written or locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
        LONGEST_SUFFIX,
        FILE_NAME_MAX,
        MAX_NAME_LEN
    )]
    NameTooLong {
        /// The length of the rejected name, in bytes.
        length: usize,
    },
    /// The storage directory cannot be made absolute.
    #[error("cannot resolve the state directory `{}`: {source}", path.display())]
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
    /// The stored state is not a valid state.
    #[error(
        "state file {} is not usable: {problem}. Nothing was changed: fix the file by hand, or \
         remove it to start over from scratch",
        path.display()
    )]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        problem: StateFormatError,
    },
    /// The journal of identities the state file refers to is not usable.
    #[error(
        "the identities journal {} of state file {} is not usable: {problem}. Nothing was \
         changed: put the journal back as it was; or remove the `identities` section from the \
         state file, which forgets the records delivered inside the lookback window (a run may \
         deliver those records again) and keeps the cursors; or remove the state file to start \
         over from scratch",
        journal.display(),
        path.display()
    )]
    Journal {
        /// The state file.
        path: PathBuf,
        /// The journal file.
        journal: PathBuf,
        /// What is wrong with it.
        problem: JournalProblem,
    },
    /// The journal of identities could not be written; the state file is unchanged.
    #[error(
        "cannot write the identities journal {}: {source}; the state file {} is unchanged \
         (check free space and permissions of the directory)",
        journal.display(),
        path.display()
    )]
    WriteJournal {
        /// The state file.
        path: PathBuf,
        /// The journal file.
        journal: PathBuf,
        /// The I/O error.
        source: io::Error,
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
        "cannot create the state directory {}: {source}; create it, or keep the state in a \
         writable directory",
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
    /// The stored state of a pipeline, in a store other than a file, is not a valid state.
    #[error(
        "the state of pipeline `{pipeline}` in {location} is not usable: {problem}. Nothing was \
         changed: fix it by hand, or remove it to start over from scratch"
    )]
    CorruptRecord {
        /// The pipeline name.
        pipeline: String,
        /// Where the state is kept (a table and its database, without credentials).
        location: String,
        /// What is wrong with it (boxed: it is rare, and keeps every result small).
        problem: Box<StateFormatError>,
    },
    /// Another process holds the lease on the pipeline's state.
    #[error(
        "pipeline `{pipeline}` is running elsewhere: {owner} holds its lease in {location} \
         until {} (by the database's clock); a run here can take it once that process releases \
         it or it expires",
        until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )]
    Held {
        /// The pipeline name.
        pipeline: String,
        /// Where the lease is kept.
        location: String,
        /// The process holding it.
        owner: String,
        /// When it expires unless renewed.
        until: DateTime<Utc>,
    },
    /// Another process already took the lease for this tick of the pipeline's schedule, or for
    /// a later one (see [`StateStore::lock_for_tick`]).
    #[error(
        "the run of pipeline `{pipeline}` due at {} was already taken by {owner} (recorded in \
         {location}); each tick runs on one process only",
        tick.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )]
    TickTaken {
        /// The pipeline name.
        pipeline: String,
        /// Where the lease is kept.
        location: String,
        /// The process that took the lease last.
        owner: String,
        /// The tick this process was to run.
        tick: DateTime<Utc>,
    },
    /// The lease this lock stood for was taken over by another process: a commit under it is
    /// refused, so that the state never goes back to what a stale writer saw.
    #[error(
        "pipeline `{pipeline}` lost its lease in {location}: another process took it over \
         (this process held epoch {epoch}, which is no longer current); nothing more is \
         committed or delivered by this run"
    )]
    Fenced {
        /// The pipeline name.
        pipeline: String,
        /// Where the lease is kept.
        location: String,
        /// The epoch this process held.
        epoch: u64,
    },
    /// The store cannot be reached, or refused a statement.
    #[error(
        "cannot use the state store {location} for pipeline `{pipeline}`: {reason}; nothing \
         was changed"
    )]
    Unavailable {
        /// The pipeline name.
        pipeline: String,
        /// Where the state is kept, without credentials.
        location: String,
        /// What failed, in the store's words.
        reason: String,
    },
    /// The store's tables were made by a newer program.
    #[error(
        "the state store {location} has schema version {found}, newer than version {known} \
         that this program knows; run a newer version of the program (nothing was changed)"
    )]
    SchemaTooNew {
        /// Where the state is kept.
        location: String,
        /// The version found.
        found: i64,
        /// The newest version this program knows.
        known: i64,
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

/// Checks that `name` can name a pipeline's state: `[A-Za-z0-9][A-Za-z0-9._-]*` (which also
/// keeps it from reaching outside a storage directory: `..`, `/`) and at most [`MAX_NAME_LEN`]
/// bytes.
pub(crate) fn check_name(name: &str) -> Result<(), StateError> {
    let mut bytes = name.bytes();
    let valid = bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if !valid {
        return Err(StateError::InvalidName {
            name: name.to_owned(),
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StateError::NameTooLong { length: name.len() });
    }
    Ok(())
}
