//! [`PgStore`]: a pipeline's state in a row of `cannectors_state`, and [`PgLease`], the lock
//! guard that holds the row's lease.
//!
//! Every statement is one round trip that stands on its own, with the database's clock
//! (`now()`) deciding whether a lease has expired, so that the clocks of the processes sharing
//! a pipeline do not have to agree. A commit carries the epoch its lease was taken with: once
//! another process took the lease over (and the epoch moved on), the commit updates no row and
//! fails with [`StateError::Fenced`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cannectors_state::{Lease, State, StateError, StateLock, StateStore, StoreFuture};
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_postgres::Transaction;
use tokio_postgres::types::Type;

use crate::connection::{Database, Failure};
use crate::schema::{STATE_TABLE, VERSION};

/// Writes a state (`$3`) if the lease is still of epoch `$2` and the row still holds `$4`.
const REPLACE: &str = "UPDATE cannectors_state SET state = $3::text::jsonb, updated_at = now() \
                       WHERE pipeline = $1 AND epoch = $2 AND state = $4::text::jsonb";

/// Writes a state (`$3`, `NULL` to remove it) if the lease is still of epoch `$2`.
const WRITE: &str = "UPDATE cannectors_state SET state = $3::text::jsonb, updated_at = now() \
                     WHERE pipeline = $1 AND epoch = $2";

/// How long a lease lasts unless renewed, when not set otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// The shortest bound on an operation of the store, whatever the TTL: enough to connect, and
/// to wait for another process creating the tables, on a loaded machine. A renewal slower than
/// a short TTL does no harm: the epoch check, not the bound, keeps two writers apart.
pub const MIN_WAIT: Duration = Duration::from_secs(10);

/// How far ahead of the database's clock a recorded tick may be and still keep other processes
/// from their own runs of it. A tick further ahead was taken by a process whose clock runs
/// ahead; honouring it would stop the pipeline everywhere until the clocks caught up, for as
/// long as that process's clock is wrong, even after it died.
const TICK_HORIZON: Duration = Duration::from_secs(60);

/// The bound on each operation with leases of `ttl`.
fn wait_bound(ttl: Duration) -> Duration {
    ttl.max(MIN_WAIT)
}

/// The state of one pipeline in PostgreSQL, in the table `cannectors_state` of the database a
/// connection string names (in the first schema of its `search_path`).
///
/// Its lock is a lease: [`lock`](StateStore::lock) takes it when it is free or expired, with
/// a new fencing epoch, and renews it in the background every [`renew_every`](Self::renew_every)
/// while the guard lives; dropping or [releasing](StateLock::release) the guard gives it back.
/// A lease held by another process is [`StateError::Held`].
///
/// ```no_run
/// use cannectors_state::{State, StateStore};
/// use cannectors_state_postgres::PgStore;
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgStore::new("events", "postgres://app@127.0.0.1/app")?
///     .with_lease_ttl(Duration::from_secs(60));
/// let mut lock = store.lock().await?; // StateError::Held while another process runs it
/// let state = store.load().await?.unwrap_or_default();
/// lock.commit(&state).await?; // StateError::Fenced once another process took over
/// lock.release().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PgStore {
    shared: Arc<Shared>,
    /// The pipeline file this store commits for, recorded in every commit.
    pipeline_file: Option<PathBuf>,
}

/// What a store and the leases it hands out share.
#[derive(Debug)]
struct Shared {
    pipeline: String,
    location: String,
    database: Database,
    ttl: Duration,
    renew_every: Duration,
    owner: String,
}

impl PgStore {
    /// The store of pipeline `name` in the database of `url` (a `postgres://` URL or a
    /// `key=value` connection string), with a lease of [`DEFAULT_LEASE_TTL`] renewed every
    /// third of it. Nothing is connected yet: the first operation connects, and creates the
    /// tables when they are missing.
    pub fn new(name: &str, url: &str) -> Result<PgStore, StateError> {
        let ttl = DEFAULT_LEASE_TTL;
        let database =
            Database::new(url, wait_bound(ttl)).map_err(|reason| StateError::Unavailable {
                pipeline: name.to_owned(),
                location: format!("table {STATE_TABLE}"),
                reason,
            })?;
        let location = format!("table {STATE_TABLE} of {}", database.shown);
        Ok(PgStore {
            shared: Arc::new(Shared {
                pipeline: name.to_owned(),
                location,
                database,
                ttl,
                renew_every: ttl / 3,
                owner: default_owner(),
            }),
            pipeline_file: None,
        })
    }

    /// The same store with leases of `ttl`, renewed every third of it. The bound on each
    /// operation is the TTL too (a statement that takes longer would outlive the lease), but
    /// never less than [`MIN_WAIT`], which connecting and creating the tables may need.
    pub fn with_lease_ttl(self, ttl: Duration) -> PgStore {
        let owner = self.shared.owner.clone();
        self.rebuilt(ttl, ttl / 3, owner)
    }

    /// The same store renewing its leases every `every` (less than the TTL; the default is a
    /// third of it).
    pub fn with_renewal(self, every: Duration) -> PgStore {
        let (ttl, owner) = (self.shared.ttl, self.shared.owner.clone());
        self.rebuilt(ttl, every, owner)
    }

    /// The same store naming its leases' owner `owner` (by default the host name and the
    /// process id).
    pub fn with_owner(self, owner: impl Into<String>) -> PgStore {
        let (ttl, every) = (self.shared.ttl, self.shared.renew_every);
        self.rebuilt(ttl, every, owner.into())
    }

    /// How long a lease lasts unless renewed.
    pub fn lease_ttl(&self) -> Duration {
        self.shared.ttl
    }

    /// How often a held lease is renewed.
    pub fn renew_every(&self) -> Duration {
        self.shared.renew_every
    }

    /// The name this store gives its leases' owner.
    pub fn owner(&self) -> &str {
        &self.shared.owner
    }

    /// The table every pipeline's state is in.
    pub fn table() -> &'static str {
        STATE_TABLE
    }

    /// The version of the tables this program creates and reads.
    pub fn schema_version() -> i64 {
        VERSION
    }

    fn rebuilt(self, ttl: Duration, renew_every: Duration, owner: String) -> PgStore {
        let shared = &self.shared;
        let database = shared.database.with_bound(wait_bound(ttl));
        PgStore {
            shared: Arc::new(Shared {
                pipeline: shared.pipeline.clone(),
                location: shared.location.clone(),
                database,
                ttl,
                renew_every,
                owner,
            }),
            pipeline_file: self.pipeline_file,
        }
    }
}

impl StateStore for PgStore {
    fn pipeline(&self) -> &str {
        &self.shared.pipeline
    }

    /// `table cannectors_state of postgres://user@host:port/database`.
    fn location(&self) -> &str {
        &self.shared.location
    }

    fn load(&self) -> StoreFuture<'_, Option<State>> {
        Box::pin(async move {
            let shared = &self.shared;
            let row = shared.run(shared.read_row()).await?;
            match row {
                Some(Row {
                    state: Some(text), ..
                }) => shared.parse(&text).map(Some),
                _ => Ok(None),
            }
        })
    }

    /// The row's state without its `identities` section, left out by the server: a lookback
    /// window's identities are most of a row, and a reader of the cursors does not need them.
    fn load_cursors(&self) -> StoreFuture<'_, Option<State>> {
        Box::pin(async move {
            let shared = &self.shared;
            match shared.run(shared.read_cursors()).await? {
                Some(text) => shared.parse(&text).map(Some),
                None => Ok(None),
            }
        })
    }

    fn lock(&self) -> StoreFuture<'_, Box<dyn StateLock>> {
        Box::pin(async move {
            let lease = Arc::clone(&self.shared).acquire(None).await?;
            Ok(Box::new(PgLease::start(lease, self.pipeline_file.clone())) as Box<dyn StateLock>)
        })
    }

    /// Takes the lease as [`lock`](StateStore::lock) does, in the same statement recording
    /// `tick`, and only if no process took it for `tick` or a later tick
    /// ([`StateError::TickTaken`]). Ticks are compared as the processes' clocks name them: a
    /// process whose clock runs behind the others' finds its ticks taken; one whose clock runs
    /// more than a minute (or a lease TTL, when longer) ahead of the database's does not keep
    /// the others from theirs.
    fn lock_for_tick(&self, tick: DateTime<Utc>) -> StoreFuture<'_, Box<dyn StateLock>> {
        Box::pin(async move {
            let lease = Arc::clone(&self.shared).acquire(Some(tick)).await?;
            Ok(Box::new(PgLease::start(lease, self.pipeline_file.clone())) as Box<dyn StateLock>)
        })
    }

    fn owner(&self) -> Option<&str> {
        Some(&self.shared.owner)
    }

    fn set_pipeline_file(&mut self, file: &Path) {
        let absolute = std::fs::canonicalize(file)
            .or_else(|_| std::path::absolute(file))
            .unwrap_or_else(|_| file.to_owned());
        self.pipeline_file = Some(absolute);
    }

    fn pipeline_file(&self) -> Option<&Path> {
        self.pipeline_file.as_deref()
    }

    fn lease(&self) -> StoreFuture<'_, Option<Lease>> {
        Box::pin(async move {
            let shared = &self.shared;
            let row = shared.run(shared.read_row()).await?;
            Ok(row.filter(|row| row.epoch > 0).map(|row| {
                Lease::new(row.owner, row.lease_until, row.epoch, row.held)
                    .with_last_tick(row.last_tick)
            }))
        })
    }
}

/// A pipeline's row as read.
#[derive(Debug)]
struct Row {
    state: Option<String>,
    owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    epoch: u64,
    held: bool,
    /// The latest tick a lease was taken for, when it still keeps other processes from it.
    last_tick: Option<DateTime<Utc>>,
}

/// A lease this process took: the epoch its commits carry.
#[derive(Debug, Clone)]
struct Taken {
    shared: Arc<Shared>,
    epoch: u64,
}

impl Shared {
    /// Runs `work` within the bound, turning a failure into the store's error.
    async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, StateError> {
        self.database
            .bounded(work)
            .await
            .map_err(|failure| self.error(failure))
    }

    fn error(&self, failure: Failure) -> StateError {
        match failure {
            Failure::Unavailable(reason) => StateError::Unavailable {
                pipeline: self.pipeline.clone(),
                location: self.location.clone(),
                reason,
            },
            Failure::SchemaTooNew { found } => StateError::SchemaTooNew {
                location: self.location.clone(),
                found,
                known: VERSION,
            },
        }
    }

    fn parse(&self, text: &str) -> Result<State, StateError> {
        State::from_json_str(text).map_err(|problem| StateError::CorruptRecord {
            pipeline: self.pipeline.clone(),
            location: self.location.clone(),
            problem: Box::new(problem),
        })
    }

    /// The state text of the pipeline's row without its `identities` (a state that is not
    /// an object is returned as it is, for [`parse`](Self::parse) to refuse).
    async fn read_cursors(&self) -> Result<Option<String>, Failure> {
        let client = self.database.client().await?;
        let rows = client
            .query_typed(
                "SELECT (CASE WHEN jsonb_typeof(state) = 'object' \
                              THEN state - 'identities' ELSE state END)::text \
                 FROM cannectors_state WHERE pipeline = $1",
                &[(&self.pipeline, Type::TEXT)],
            )
            .await?;
        match rows.first() {
            Some(row) => Ok(row.try_get(0)?),
            None => Ok(None),
        }
    }

    async fn read_row(&self) -> Result<Option<Row>, Failure> {
        let client = self.database.client().await?;
        let rows = client
            .query_typed(
                "SELECT state::text, owner, lease_until, epoch, \
                        coalesce(lease_until > now(), false), \
                        CASE WHEN last_tick <= now() + make_interval(secs => $2) \
                             THEN last_tick END \
                 FROM cannectors_state WHERE pipeline = $1",
                &[
                    (&self.pipeline, Type::TEXT),
                    (&self.horizon(), Type::FLOAT8),
                ],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let epoch: i64 = row.try_get(3)?;
        Ok(Some(Row {
            state: row.try_get(0)?,
            owner: row.try_get(1)?,
            lease_until: row.try_get(2)?,
            epoch: u64::try_from(epoch).unwrap_or(0),
            held: row.try_get(4)?,
            last_tick: row.try_get(5)?,
        }))
    }

    /// [`TICK_HORIZON`], or the TTL when it is longer, in seconds.
    fn horizon(&self) -> f64 {
        self.ttl.max(TICK_HORIZON).as_secs_f64()
    }

    /// Takes the lease in one statement when it is free, released or expired (and, for a
    /// `tick`, not taken for that tick or a later one yet), with the next epoch; otherwise says
    /// who holds it, or who took the tick.
    async fn acquire(self: Arc<Self>, tick: Option<DateTime<Utc>>) -> Result<Taken, StateError> {
        let ttl = self.ttl.as_secs_f64();
        let horizon = self.horizon();
        // A lease released between the two statements below is taken on the next try.
        for _ in 0..3 {
            let taken = self
                .run(async {
                    let client = self.database.client().await?;
                    let rows = client
                        .query_typed(
                            "INSERT INTO cannectors_state AS s \
                                 (pipeline, owner, lease_until, epoch, last_tick) \
                             VALUES ($1, $2, now() + make_interval(secs => $3), 1, $4) \
                             ON CONFLICT (pipeline) DO UPDATE \
                             SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until, \
                                 epoch = s.epoch + 1, \
                                 last_tick = coalesce(EXCLUDED.last_tick, s.last_tick) \
                             WHERE (s.lease_until IS NULL OR s.lease_until <= now()) \
                               AND (EXCLUDED.last_tick IS NULL OR s.last_tick IS NULL \
                                    OR s.last_tick < EXCLUDED.last_tick \
                                    OR s.last_tick > now() + make_interval(secs => $5)) \
                             RETURNING epoch",
                            &[
                                (&self.pipeline, Type::TEXT),
                                (&self.owner, Type::TEXT),
                                (&ttl, Type::FLOAT8),
                                (&tick, Type::TIMESTAMPTZ),
                                (&horizon, Type::FLOAT8),
                            ],
                        )
                        .await?;
                    rows.first()
                        .map(|row| row.try_get::<_, i64>(0))
                        .transpose()
                        .map_err(Failure::from)
                })
                .await?;
            if let Some(epoch) = taken {
                let epoch = u64::try_from(epoch).unwrap_or(0);
                match tick {
                    Some(tick) => tracing::debug!(
                        pipeline = %self.pipeline,
                        epoch,
                        owner = %self.owner,
                        tick = %tick.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "lease taken"
                    ),
                    None => tracing::debug!(
                        pipeline = %self.pipeline, epoch, owner = %self.owner, "lease taken"
                    ),
                }
                return Ok(Taken {
                    shared: self,
                    epoch,
                });
            }
            let Some(row) = self.run(self.read_row()).await? else {
                continue;
            };
            // Only a row written by hand has a lease without an owner.
            let owner = || {
                row.owner
                    .clone()
                    .unwrap_or_else(|| "an unnamed process".to_owned())
            };
            if let (true, Some(until)) = (row.held, row.lease_until) {
                return Err(StateError::Held {
                    pipeline: self.pipeline.clone(),
                    location: self.location.clone(),
                    owner: owner(),
                    until,
                });
            }
            if let (Some(tick), Some(taken)) = (tick, row.last_tick)
                && taken >= tick
            {
                return Err(StateError::TickTaken {
                    pipeline: self.pipeline.clone(),
                    location: self.location.clone(),
                    owner: owner(),
                    tick,
                });
            }
        }
        Err(self.error(Failure::Unavailable(
            "the lease was taken and given back repeatedly while this process tried to take it; \
             try again"
                .to_owned(),
        )))
    }
}

impl Taken {
    fn fenced(&self) -> StateError {
        StateError::Fenced {
            pipeline: self.shared.pipeline.clone(),
            location: self.shared.location.clone(),
            epoch: self.epoch,
        }
    }

    fn epoch_param(&self) -> i64 {
        i64::try_from(self.epoch).unwrap_or(i64::MAX)
    }

    /// Extends the lease by the TTL from now; `false` when it is no longer this epoch's.
    async fn renew(&self) -> Result<bool, StateError> {
        let shared = &self.shared;
        let ttl = shared.ttl.as_secs_f64();
        let epoch = self.epoch_param();
        shared
            .run(async {
                let client = shared.database.client().await?;
                let updated = client
                    .execute_typed(
                        "UPDATE cannectors_state \
                         SET lease_until = now() + make_interval(secs => $3) \
                         WHERE pipeline = $1 AND epoch = $2 AND lease_until IS NOT NULL",
                        &[
                            (&shared.pipeline, Type::TEXT),
                            (&epoch, Type::INT8),
                            (&ttl, Type::FLOAT8),
                        ],
                    )
                    .await?;
                Ok(updated == 1)
            })
            .await
    }

    /// Gives the lease back: it expires now, so that the next process takes it at once.
    async fn release(&self) -> Result<(), StateError> {
        let shared = &self.shared;
        let epoch = self.epoch_param();
        shared
            .run(async {
                let client = shared.database.client().await?;
                client
                    .execute_typed(
                        "UPDATE cannectors_state SET lease_until = NULL \
                         WHERE pipeline = $1 AND epoch = $2",
                        &[(&shared.pipeline, Type::TEXT), (&epoch, Type::INT8)],
                    )
                    .await?;
                Ok(())
            })
            .await
    }

    /// The stored state's text when the lease is still this epoch's; fenced otherwise.
    async fn current(&self) -> Result<Option<String>, StateError> {
        let shared = &self.shared;
        match shared.run(shared.read_row()).await? {
            Some(row) if row.epoch == self.epoch => Ok(row.state),
            _ => Err(self.fenced()),
        }
    }

    /// Writes `text` if the lease is still this epoch's and the row still holds `last`;
    /// `false` when either is not so.
    async fn replace(&self, last: &str, text: &str) -> Result<bool, StateError> {
        let shared = &self.shared;
        let epoch = self.epoch_param();
        let updated = shared
            .run(async {
                let client = shared.database.client().await?;
                Ok(client
                    .execute_typed(
                        REPLACE,
                        &[
                            (&shared.pipeline, Type::TEXT),
                            (&epoch, Type::INT8),
                            (&text, Type::TEXT),
                            (&last, Type::TEXT),
                        ],
                    )
                    .await?)
            })
            .await?;
        Ok(updated == 1)
    }

    /// Writes `text` (or removes the state, for `None`) if the lease is still this epoch's.
    async fn write(&self, text: Option<&str>) -> Result<(), StateError> {
        let shared = &self.shared;
        let epoch = self.epoch_param();
        let updated = shared
            .run(async {
                let client = shared.database.client().await?;
                Ok(client
                    .execute_typed(
                        WRITE,
                        &[
                            (&shared.pipeline, Type::TEXT),
                            (&epoch, Type::INT8),
                            (&text, Type::TEXT),
                        ],
                    )
                    .await?)
            })
            .await?;
        if updated == 1 {
            Ok(())
        } else {
            Err(self.fenced())
        }
    }
}

impl Taken {
    /// Writes `text` inside `transaction` if the lease is still this epoch's and the stored
    /// state is valid (one statement when the row still holds `last`); fenced otherwise.
    /// Nothing is final until the caller commits the transaction.
    async fn commit_in(
        &self,
        transaction: &Transaction<'_>,
        last: Option<&str>,
        text: &str,
    ) -> Result<(), StateError> {
        let shared = &self.shared;
        let epoch = self.epoch_param();
        let failed = |error: tokio_postgres::Error| shared.error(Failure::from(error));
        if let Some(last) = last {
            let updated = transaction
                .execute_typed(
                    REPLACE,
                    &[
                        (&shared.pipeline, Type::TEXT),
                        (&epoch, Type::INT8),
                        (&text, Type::TEXT),
                        (&last, Type::TEXT),
                    ],
                )
                .await
                .map_err(failed)?;
            if updated == 1 {
                return Ok(());
            }
        }
        let rows = transaction
            .query_typed(
                "SELECT state::text, epoch FROM cannectors_state WHERE pipeline = $1",
                &[(&shared.pipeline, Type::TEXT)],
            )
            .await
            .map_err(failed)?;
        let current = match rows.first() {
            Some(row) if row.try_get::<_, i64>(1).map_err(failed)? == epoch => {
                row.try_get::<_, Option<String>>(0).map_err(failed)?
            }
            _ => return Err(self.fenced()),
        };
        if let Some(current) = current {
            shared.parse(&current)?;
        }
        let updated = transaction
            .execute_typed(
                WRITE,
                &[
                    (&shared.pipeline, Type::TEXT),
                    (&epoch, Type::INT8),
                    (&text, Type::TEXT),
                ],
            )
            .await
            .map_err(failed)?;
        if updated == 1 {
            Ok(())
        } else {
            Err(self.fenced())
        }
    }
}

/// The lease on one pipeline's state: the right to commit it, renewed in the background while
/// this guard lives.
#[derive(Debug)]
pub struct PgLease {
    taken: Taken,
    pipeline_file: Option<PathBuf>,
    /// Set by the renewal task when the lease turned out to be another process's.
    lost: Arc<AtomicBool>,
    renewal: JoinHandle<()>,
    released: bool,
    /// The state text this lease committed last, while the row is known to hold it.
    last_written: Option<String>,
}

impl PgLease {
    fn start(taken: Taken, pipeline_file: Option<PathBuf>) -> PgLease {
        let lost = Arc::new(AtomicBool::new(false));
        let renewal = tokio::spawn(renew_until_lost(taken.clone(), Arc::clone(&lost)));
        PgLease {
            taken,
            pipeline_file,
            lost,
            renewal,
            released: false,
            last_written: None,
        }
    }

    /// The fencing epoch this lease was taken with.
    pub fn epoch(&self) -> u64 {
        self.taken.epoch
    }

    /// Commits `state` as [`commit`](StateLock::commit) does, but inside `transaction`, one the
    /// caller opened on its own connection to the store's database (the same server, database,
    /// user and `options`: see [`DatabaseTarget`](crate::DatabaseTarget)), so that what else
    /// the transaction writes and the state become durable together, when the caller commits
    /// it, or not at all. Fails with [`StateError::Fenced`], having written nothing, once
    /// another process took the lease over: the caller then rolls the whole transaction back.
    pub async fn commit_in(
        &mut self,
        transaction: &Transaction<'_>,
        state: &State,
    ) -> Result<(), StateError> {
        self.check()?;
        let text = self.stamped(state);
        // Were the transaction rolled back after all, the row would not hold `text`: the next
        // commit's one-statement replace then finds nothing to replace, and reads and checks
        // the row as after any change it did not make.
        let last = self.last_written.take();
        self.taken
            .commit_in(transaction, last.as_deref(), &text)
            .await?;
        self.last_written = Some(text);
        Ok(())
    }

    /// The text of `state` as this lease stores it: with the pipeline, the pipeline file and
    /// the time of the commit.
    fn stamped(&self, state: &State) -> String {
        let mut stamped = state.clone();
        stamped.pipeline = Some(self.taken.shared.pipeline.clone());
        stamped.pipeline_file = self.pipeline_file.clone();
        stamped.updated_at = Some(Utc::now());
        stamped.to_json().to_string()
    }
}

async fn renew_until_lost(taken: Taken, lost: Arc<AtomicBool>) {
    let every = taken.shared.renew_every.max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match taken.renew().await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::Release);
                tracing::warn!(
                    pipeline = %taken.shared.pipeline,
                    epoch = taken.epoch,
                    "the lease was taken over by another process; this run commits nothing more"
                );
                return;
            }
            // The next tick tries again; if the lease expires meanwhile and another process
            // takes it, the epoch check of the next commit refuses it.
            Err(error) => tracing::warn!("cannot renew the lease: {error}"),
        }
    }
}

impl StateLock for PgLease {
    /// Writes `state` with `pipeline`, `pipelineFile` and `updatedAt` set, if the lease is
    /// still held with this epoch; refuses to replace a stored state that is not valid.
    fn commit<'a>(&'a mut self, state: &'a State) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            let text = self.stamped(state);
            // The row still holding what this lease wrote last was valid then and is valid
            // now: one statement replaces it. Otherwise (a first commit, a row changed since)
            // the stored state is read and checked before it is replaced.
            if let Some(last) = &self.last_written
                && self.taken.replace(last, &text).await?
            {
                self.last_written = Some(text);
                return Ok(());
            }
            self.last_written = None;
            if let Some(current) = self.taken.current().await? {
                self.taken.shared.parse(&current)?;
            }
            self.taken.write(Some(&text)).await?;
            self.last_written = Some(text);
            Ok(())
        })
    }

    /// Fenced once the renewal found the lease taken over by another process.
    fn check(&self) -> Result<(), StateError> {
        if self.lost.load(Ordering::Acquire) {
            Err(self.taken.fenced())
        } else {
            Ok(())
        }
    }

    /// Removes the state (the lease stays, with its epoch).
    fn reset(&mut self) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            self.check()?;
            self.last_written = None;
            let existed = self.taken.current().await?.is_some();
            self.taken.write(None).await?;
            Ok(existed)
        })
    }

    /// The lease itself, for [`commit_in`](PgLease::commit_in).
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn release(mut self: Box<Self>) -> StoreFuture<'static, ()> {
        self.renewal.abort();
        self.released = true;
        let taken = self.taken.clone();
        Box::pin(async move { taken.release().await })
    }
}

impl Drop for PgLease {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        // Without a runtime (it is shutting down) the lease simply expires at its TTL.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let taken = self.taken.clone();
            runtime.spawn(async move {
                if let Err(error) = taken.release().await {
                    tracing::debug!("cannot release the lease: {error}");
                }
            });
        }
    }
}

/// Who takes a lease, for people reading `state show` or a "held by" message: the host name
/// (the pod name in Kubernetes) and the process id.
fn default_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host} pid {}", std::process::id())
}
