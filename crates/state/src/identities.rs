//! The records delivered inside a lookback window, known by identity, so that a run reading
//! the window again delivers only what it had not delivered yet.
//!
//! An identity is a 64-bit XXH3 hash (seed 0, a specified algorithm, so the same in every
//! build and version) of what tells a record apart: its id, chosen fields, or its whole text.
//! What is kept is a hash of the identity with the record's exact timestamp, because a record
//! updated later (a new timestamp) is a new version to deliver, grouped by the second of that
//! timestamp, because the window is pruned by timestamp. In the state file they are one JSON
//! object from RFC 3339 seconds (UTC) to the entries of that second, 8 bytes each, one after
//! another in one Z85 string (ZeroMQ's base-85 text encoding, whose alphabet needs no escaping
//! in JSON): 10 bytes an identity, so that a window of 100000 records whose timestamps all
//! differ stays under 1 MiB.
//!
//! The file store keeps them in a journal beside the state file instead (see `journal.rs`),
//! and a commit appends only what changed. So that it can tell what changed without walking
//! every second, the set keeps a bounded log of the entries added since (a version: a lineage
//! and a sequence number), and the journal it was read from.

use std::collections::{BTreeMap, VecDeque};
use std::hash::Hasher as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use rustc_hash::FxHashSet;
use serde_json::{Map, Value};
use twox_hash::XxHash3_64;

use crate::cursor::CursorId;
use crate::journal::JournalRef;
use crate::path::FieldPath;
use crate::position::Position;
use crate::state::StateFormatError;

/// What tells one record from another, for recognising a record delivered before.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// The id cursor's value: read with the cursors already, so no record is read again.
    Id,
    /// The values at these fields, taken together.
    Fields(Vec<FieldPath>),
    /// The record's whole JSON text, as the source sent it.
    Text,
}

impl Identity {
    /// The identity of the record `text` whose cursors are at `position`.
    ///
    /// ```
    /// use cannectors_state::{CursorId, Identity, Position};
    /// let at = Position { timestamp: None, id: Some(CursorId::Integer(7)) };
    /// let same_id = Identity::Id.of(r#"{"id": 7, "v": 1}"#, &at);
    /// assert_eq!(same_id, Identity::Id.of(r#"{"id": 7, "v": 2}"#, &at));
    /// assert_ne!(Identity::Text.of(r#"{"id": 7, "v": 1}"#, &at), Identity::Text.of(r#"{"id": 7, "v": 2}"#, &at));
    /// ```
    pub fn of(&self, text: &str, position: &Position) -> u64 {
        self.of_id(text, position.id.as_ref())
    }

    /// The identity of the record `text` whose id cursor is `id` (as [`of`](Self::of) with a
    /// position holding that id).
    pub fn of_id(&self, text: &str, id: Option<&CursorId>) -> u64 {
        // XXH3 of bytes written one part after another is XXH3 of their concatenation: the
        // common cases hash one buffer at once, without the streaming hasher's allocation.
        match (self, id) {
            (Identity::Id, Some(CursorId::Integer(id))) => {
                let mut bytes = [0_u8; 9];
                bytes[0] = b'i';
                bytes[1..].copy_from_slice(&id.to_le_bytes());
                return XxHash3_64::oneshot_with_seed(0, &bytes);
            }
            (Identity::Text | Identity::Id, None) | (Identity::Text, Some(_)) => {
                return XxHash3_64::oneshot_with_seed(0, text.as_bytes());
            }
            _ => {}
        }
        let mut hasher = XxHash3_64::with_seed(0);
        match (self, id) {
            (Identity::Id, Some(CursorId::Text(id))) => {
                hasher.write(b"s");
                hasher.write(id.as_bytes());
            }
            (Identity::Fields(paths), _) => {
                // Only here is a record parsed again; a record that does not parse (it did
                // when its cursors were read) counts by its text.
                match serde_json::from_str::<Value>(text) {
                    Ok(record) => {
                        for path in paths {
                            let value = path.get(&record).unwrap_or(&Value::Null).to_string();
                            hasher.write(&(value.len() as u64).to_le_bytes());
                            hasher.write(value.as_bytes());
                        }
                    }
                    Err(_) => hasher.write(text.as_bytes()),
                }
            }
            (Identity::Text | Identity::Id, _) => hasher.write(text.as_bytes()),
        }
        hasher.finish()
    }
}

/// The identities of the records delivered inside the lookback window.
///
/// Each entry is one 64-bit hash of a record's exact timestamp and its identity, so that a
/// record updated later (a new timestamp) is a new version to deliver; entries are grouped by
/// the second of their timestamp, which is all pruning needs and keeps the file small when
/// every record has a timestamp of its own.
///
/// The file store writes only what was added since its last commit, which a set knows by
/// itself (a bounded log of its additions, and the versions it was cloned from); committing a
/// set whose history does not go through the version last written (two clones changed apart,
/// or a change other than an addition) writes the whole window once. Two sets are equal when
/// they hold the same entries, whatever their history.
///
/// ```
/// use cannectors_state::Identities;
/// let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc();
/// let mut delivered = Identities::default();
/// delivered.insert(at("2026-01-01T00:00:00Z"), 0xfeed);
/// delivered.insert(at("2026-01-01T00:10:00Z"), 0xbeef);
/// assert!(delivered.contains(at("2026-01-01T00:00:00Z"), 0xfeed));
/// assert!(!delivered.contains(at("2026-01-01T00:10:00Z"), 0xfeed));
/// assert_eq!(delivered.prune(at("2026-01-01T00:05:00Z"), 100), 0);
/// assert_eq!(delivered.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct Identities {
    /// Entries by the second (Unix time) of the record's timestamp.
    by_second: BTreeMap<i64, Second>,
    len: usize,
    /// What changed, for a store that writes only that.
    changes: Changes,
    /// The entries of the second added to last: a new second starts with room for as many,
    /// rather than growing its entries again and again.
    room: usize,
    /// No entry kept is of a later instant (seconds and nanoseconds) than this: an entry read
    /// from a file counts as the end of its second. An entry of a later instant is new without
    /// a look-up.
    newest: Option<(i64, u32)>,
}

/// Cloning gives the copy a lineage of its own (its own record of changes): the two may change
/// apart.
impl Clone for Identities {
    fn clone(&self) -> Identities {
        Identities {
            by_second: self.by_second.clone(),
            len: self.len,
            changes: self.changes.fork(),
            room: self.room,
            newest: self.newest,
        }
    }
}

/// The entries added to a set, in order, since a version a store may have written.
///
/// A version is a lineage (one per value: a clone starts its own, since the two may then
/// change apart) and a sequence number, one more at every change. The log holds the entries of
/// the last changes, when they were additions; a change of another kind (forgetting part of a
/// second, or adding to a second already pruned) empties it, so that a store written at an
/// earlier version writes everything again. The log is bounded, and a store that fell behind
/// its start writes everything again too.
#[derive(Debug)]
struct Changes {
    lineage: u64,
    seq: u64,
    /// The versions this lineage was cloned from, the latest last: their history up to the
    /// clone is this one's.
    forks: Vec<(u64, u64)>,
    /// The (second, entry) added by the changes `start + 1 ..= seq`.
    log: VecDeque<(i64, u64)>,
    start: u64,
    /// The greatest second whose entries were forgotten: a line of the journal for a second
    /// up to it may be stale, so an addition there cannot be a mere append.
    pruned_through: Option<i64>,
    /// The journal these entries were read from, and the version they had then.
    base: Option<(JournalRef, (u64, u64))>,
}

/// The lineage of the next set or clone: unique in the process.
static LINEAGES: AtomicU64 = AtomicU64::new(1);

/// How many clones back a set knows its ancestry.
const FORKS_KEPT: usize = 8;

/// The log keeps at least this many entries, and at most as many as the set holds beyond it.
const LOG_MIN: usize = 8192;

impl Default for Changes {
    fn default() -> Changes {
        Changes {
            lineage: LINEAGES.fetch_add(1, Ordering::Relaxed),
            seq: 0,
            forks: Vec::new(),
            log: VecDeque::new(),
            start: 0,
            pruned_through: None,
            base: None,
        }
    }
}

impl Changes {
    fn fork(&self) -> Changes {
        let mut forks = self.forks.clone();
        forks.push((self.lineage, self.seq));
        if forks.len() > FORKS_KEPT {
            forks.remove(0);
        }
        Changes {
            lineage: LINEAGES.fetch_add(1, Ordering::Relaxed),
            seq: self.seq,
            forks,
            log: self.log.clone(),
            start: self.start,
            pruned_through: self.pruned_through,
            base: self.base.clone(),
        }
    }

    fn added(&mut self, second: i64, entry: u64, len: usize) {
        self.seq += 1;
        self.log.push_back((second, entry));
        let bound = LOG_MIN.max(len);
        if self.log.len() > bound {
            let dropped = self.log.len() - bound / 2;
            self.log.drain(..dropped);
            self.start += dropped as u64;
        }
    }

    /// A change that is not an addition at the end of the journal.
    fn rewritten(&mut self) {
        self.seq += 1;
        self.log.clear();
        self.start = self.seq;
    }

    /// The version, named by the earliest lineage that had the same content at the same
    /// sequence number: two clones of one set that did not change are the same version.
    fn version(&self) -> (u64, u64) {
        let mut lineage = self.lineage;
        for (fork, at) in self.forks.iter().rev() {
            if *at != self.seq {
                break;
            }
            lineage = *fork;
        }
        (lineage, self.seq)
    }

    /// The entries added since `version`, if it is an earlier version of this set still in
    /// the log.
    fn since(&self, (lineage, seq): (u64, u64)) -> Option<impl Iterator<Item = (i64, u64)>> {
        let known = seq >= self.start
            && seq <= self.seq
            && (lineage == self.lineage
                || self
                    .forks
                    .iter()
                    .any(|(fork, at)| *fork == lineage && seq <= *at));
        known.then(|| {
            let skip = usize::try_from(seq - self.start).unwrap_or(usize::MAX);
            self.log.iter().skip(skip).copied()
        })
    }
}

/// The entries of one second.
///
/// A run commits after every batch, and a window of 100000 records is about 1 MB of Z85, so a
/// commit writes only what was added (see [`Changes`]) and the whole window only when the
/// journal is compacted. A run reads in cursor order, so almost every record it delivers is
/// newer than every entry kept, which [`Identities`] tells without a look-up: such an entry is
/// only pushed, and the set of a second is built the first time a look-up needs it (a record
/// at or before the newest instant kept, as when a run reaches back into the window).
#[derive(Debug, Clone, Default)]
struct Second {
    /// The entries, in the order they were added (or read): the order of their text.
    order: Vec<u64>,
    /// The same entries as a set, once a look-up needed one; kept in step with `order` from
    /// then on.
    set: OnceLock<FxHashSet<u64>>,
}

/// The most entries a new second makes room for in advance.
const MAX_ROOM: usize = 16 * 1024;

impl Second {
    /// A second with room for `room` entries.
    fn with_room(room: usize) -> Second {
        Second {
            order: Vec::with_capacity(room),
            set: OnceLock::new(),
        }
    }

    /// The entries as a set, built from `order` the first time.
    fn set(&self) -> &FxHashSet<u64> {
        self.set
            .get_or_init(|| self.order.iter().copied().collect())
    }

    /// Adds `entry`; `false` when it was there already.
    fn insert(&mut self, entry: u64) -> bool {
        self.set();
        let added = self.set.get_mut().is_some_and(|set| set.insert(entry));
        if added {
            self.order.push(entry);
        }
        added
    }

    /// Adds `entry`, known not to be there: it is newer than every entry kept.
    fn push_new(&mut self, entry: u64) {
        if let Some(set) = self.set.get_mut() {
            set.insert(entry);
        }
        self.order.push(entry);
    }

    /// Forgets the `count` entries added first.
    fn forget_first(&mut self, count: usize) {
        let cut = count.min(self.order.len());
        if let Some(set) = self.set.get_mut() {
            for entry in &self.order[..cut] {
                set.remove(entry);
            }
        }
        self.order.drain(..cut);
    }

    /// Appends the Z85 of the entries, in order.
    fn push_encoded(&self, out: &mut Vec<u8>) {
        out.reserve(self.order.len() * ENCODED_ENTRY);
        for entry in &self.order {
            out.extend_from_slice(&encode_entry(*entry));
        }
    }

    /// The Z85 of the entries, in order.
    fn encoded(&self) -> String {
        let mut out = Vec::new();
        self.push_encoded(&mut out);
        // Z85 is ASCII.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Two windows are the same when they hold the same entries, whatever the order of their text.
impl PartialEq for Identities {
    fn eq(&self, other: &Identities) -> bool {
        self.len == other.len
            && self.by_second.len() == other.by_second.len()
            && self
                .by_second
                .iter()
                .zip(&other.by_second)
                .all(|((a, one), (b, another))| a == b && one.set() == another.set())
    }
}

impl Eq for Identities {}

/// Bytes an entry takes before Z85.
const ENTRY_BYTES: usize = 8;
/// Characters an entry takes in Z85: 5 for every 4 bytes.
const ENCODED_ENTRY: usize = ENTRY_BYTES / 4 * 5;

const EXPECT_IDENTITIES: &str = "it must be an object from RFC 3339 timestamps (whole seconds) \
                                 to Z85 strings of 8 bytes an identity";
const EXPECT_ENTRIES: &str = "it must be a Z85 string of 8 bytes an identity";

/// A journal line's characters beyond its entries: the second (20 characters up to the year
/// 9999), a space and the line's end.
const LINE_OVERHEAD: usize = 22;

/// A bad line of a journal: its number, from 1, and what is wrong with it.
pub(crate) type JournalLineError = (usize, &'static str);

const LINE_UNTERMINATED: &str = "has no line end: the journal was cut inside it";
const LINE_SECOND: &str = "does not start with an RFC 3339 timestamp of a whole second and a space";
const LINE_ENTRIES: &str = "does not go on with a Z85 string of 8 bytes an identity";

/// The entry of a record: its exact timestamp and its identity, hashed together.
fn entry(instant: DateTime<Utc>, identity: u64) -> u64 {
    // Seconds (8 bytes), nanoseconds (4) and identity (8), one after another.
    let mut bytes = [0_u8; 20];
    bytes[..8].copy_from_slice(&instant.timestamp().to_le_bytes());
    bytes[8..12].copy_from_slice(&instant.timestamp_subsec_nanos().to_le_bytes());
    bytes[12..].copy_from_slice(&identity.to_le_bytes());
    XxHash3_64::oneshot_with_seed(0, &bytes)
}

/// The Z85 alphabet (ZeroMQ RFC 32).
const Z85: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// The Z85 of every number below 85², two characters each.
const Z85_PAIRS: [[u8; 2]; 85 * 85] = {
    let mut pairs = [[0_u8; 2]; 85 * 85];
    let mut number = 0;
    while number < 85 * 85 {
        pairs[number] = [Z85[number / 85], Z85[number % 85]];
        number += 1;
    }
    pairs
};

/// The Z85 of an entry's 8 bytes (little-endian), as `z85::encode` writes it, without
/// allocating: this runs once for every record of a lookback window. A group of 4 bytes is
/// its first character and two pairs of characters, so two divisions rather than five.
fn encode_entry(entry: u64) -> [u8; ENCODED_ENTRY] {
    const PAIR: u32 = 85 * 85;
    let bytes = entry.to_le_bytes();
    let mut out = [0_u8; ENCODED_ENTRY];
    for (group, chunk) in out.chunks_exact_mut(5).zip(bytes.chunks_exact(4)) {
        let value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let (high, low) = (value / PAIR, value % PAIR);
        // `first` is at most 82: 2³² is less than 83 × 85⁴.
        let (first, middle) = (high / PAIR, high % PAIR);
        group[0] = Z85[first as usize];
        group[1..3].copy_from_slice(&Z85_PAIRS[middle as usize]);
        group[3..5].copy_from_slice(&Z85_PAIRS[low as usize]);
    }
    out
}

/// The entry whose Z85 is `text` (one entry's worth), if it is Z85.
fn decode_entry(text: &[u8]) -> Option<u64> {
    let bytes = z85::decode(text).ok()?;
    let word: [u8; ENTRY_BYTES] = bytes.as_slice().try_into().ok()?;
    Some(u64::from_le_bytes(word))
}

/// The key of `second` in the state file, RFC 3339 in UTC.
fn second_key(second: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp(second, 0)
        .map(|instant| instant.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A record's entry in a window: its exact timestamp and its identity hashed together, with the
/// second it is kept under. Computed once, it can be looked up and then remembered.
///
/// ```
/// use cannectors_state::{Entry, Identities};
/// let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00.25Z").unwrap().to_utc();
/// let mut delivered = Identities::default();
/// let entry = Entry::of(at, 0xfeed);
/// assert!(!delivered.contains_entry(entry));
/// assert!(delivered.insert_entry(entry));
/// assert!(delivered.contains(at, 0xfeed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    second: i64,
    nanos: u32,
    hash: u64,
}

impl Entry {
    /// The entry of the record of `instant` with `identity`.
    pub fn of(instant: DateTime<Utc>, identity: u64) -> Entry {
        Entry {
            second: instant.timestamp(),
            nanos: instant.timestamp_subsec_nanos(),
            hash: entry(instant, identity),
        }
    }
}

impl Identities {
    /// Whether the record of `instant` with `identity` was delivered.
    pub fn contains(&self, instant: DateTime<Utc>, identity: u64) -> bool {
        self.contains_entry(Entry::of(instant, identity))
    }

    /// Whether the record of `entry` was delivered.
    pub fn contains_entry(&self, entry: Entry) -> bool {
        !self.is_newer(entry)
            && self
                .by_second
                .get(&entry.second)
                .is_some_and(|second| second.set().contains(&entry.hash))
    }

    /// Whether `entry` is of a later instant than every entry kept, so not kept.
    fn is_newer(&self, entry: Entry) -> bool {
        self.newest
            .is_none_or(|newest| (entry.second, entry.nanos) > newest)
    }

    /// Remembers a delivered record; `false` when it was known already.
    pub fn insert(&mut self, instant: DateTime<Utc>, identity: u64) -> bool {
        self.insert_entry(Entry::of(instant, identity))
    }

    /// Remembers the delivered record of `entry`; `false` when it was known already.
    pub fn insert_entry(&mut self, new: Entry) -> bool {
        let Entry {
            second: key,
            nanos,
            hash: entry,
        } = new;
        let newer = self.is_newer(new);
        let room = self.room;
        // A run adds to the newest second, again and again.
        let second = match self.by_second.last_entry() {
            Some(last) if *last.key() == key => last.into_mut(),
            _ => self
                .by_second
                .entry(key)
                .or_insert_with(|| Second::with_room(room)),
        };
        if newer {
            second.push_new(entry);
            self.newest = Some((key, nanos));
        } else if !second.insert(entry) {
            return false;
        }
        self.room = second.order.len().min(MAX_ROOM);
        self.len += 1;
        if self
            .changes
            .pruned_through
            .is_some_and(|pruned| key <= pruned)
        {
            self.changes.pruned_through = None;
            self.changes.rewritten();
        } else {
            self.changes.added(key, entry, self.len);
        }
        true
    }

    /// How many identities are kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the identities of records older than the second of `start`, the beginning of
    /// the window the next run reads (those of that second stay: an inclusive `since` returns
    /// the records at `start` again), then, while more than `max` are left, those of the
    /// oldest seconds (within a second, those delivered first). Returns how many the bound
    /// made it forget: records that may be delivered again if a source returns them.
    pub fn prune(&mut self, start: DateTime<Utc>, max: usize) -> usize {
        let start = start.timestamp();
        if self
            .by_second
            .first_key_value()
            .is_some_and(|(oldest, _)| *oldest < start)
        {
            let kept = self.by_second.split_off(&start);
            let forgotten = std::mem::replace(&mut self.by_second, kept);
            self.forgot_through(forgotten.last_key_value().map(|(second, _)| *second));
            self.len = self
                .by_second
                .values()
                .map(|second| second.order.len())
                .sum();
        }
        let mut dropped = 0;
        while self.len > max {
            let Some(mut oldest) = self.by_second.first_entry() else {
                break;
            };
            let excess = self.len - max;
            let forgotten = if oldest.get().order.len() <= excess {
                let second = *oldest.key();
                let count = oldest.remove().order.len();
                self.forgot_through(Some(second));
                count
            } else {
                oldest.get_mut().forget_first(excess);
                self.changes.rewritten();
                excess
            };
            self.len -= forgotten;
            dropped += forgotten;
        }
        dropped
    }

    /// Notes that the entries of every second up to `second` were forgotten.
    fn forgot_through(&mut self, second: Option<i64>) {
        if let Some(second) = second {
            let pruned = &mut self.changes.pruned_through;
            *pruned = Some(pruned.map_or(second, |before| before.max(second)));
        }
    }

    /// The set's version, for a store to remember what it wrote.
    pub(crate) fn version(&self) -> (u64, u64) {
        self.changes.version()
    }

    /// The journal these entries were read from, with the version they had then.
    pub(crate) fn base(&self) -> Option<&(JournalRef, (u64, u64))> {
        self.changes.base.as_ref()
    }

    /// Records that these entries are what `journal` holds.
    pub(crate) fn set_base(&mut self, journal: JournalRef) {
        self.changes.base = Some((journal, self.changes.version()));
    }

    /// The (second, entry) added since `version`, in order, when every change since was an
    /// addition and the log still holds them; `None` otherwise.
    pub(crate) fn added_since(
        &self,
        version: (u64, u64),
    ) -> Option<impl Iterator<Item = (i64, u64)>> {
        self.changes.since(version)
    }

    /// The oldest second kept: the journal's lines of earlier seconds are forgotten entries.
    pub(crate) fn first_second(&self) -> Option<i64> {
        self.by_second.first_key_value().map(|(second, _)| *second)
    }

    /// About the bytes [`write_journal`](Self::write_journal) writes.
    pub(crate) fn journal_len(&self) -> usize {
        self.len * ENCODED_ENTRY + self.by_second.len() * (LINE_OVERHEAD)
    }

    /// Appends every entry as journal lines, one a second: `<RFC 3339 second> <Z85>\n`.
    pub(crate) fn write_journal(&self, out: &mut Vec<u8>) {
        out.reserve(self.journal_len());
        for (second, entries) in &self.by_second {
            // A second without entries (an empty string in a hand-written section) has no line.
            if let Some(key) = second_key(*second).filter(|_| !entries.order.is_empty()) {
                out.extend_from_slice(key.as_bytes());
                out.push(b' ');
                entries.push_encoded(out);
                out.push(b'\n');
            }
        }
    }

    /// Appends `added` (from [`added_since`](Self::added_since)) as journal lines, one for
    /// each run of entries of the same second.
    pub(crate) fn write_added(added: impl Iterator<Item = (i64, u64)>, out: &mut Vec<u8>) {
        // The second of the line being written, and whether it has one (a second with no
        // RFC 3339 form has none).
        let mut line: Option<(i64, bool)> = None;
        for (second, entry) in added {
            let writing = match line {
                Some((current, writing)) if current == second => writing,
                _ => {
                    if let Some((_, true)) = line {
                        out.push(b'\n');
                    }
                    let key = second_key(second);
                    if let Some(key) = &key {
                        out.extend_from_slice(key.as_bytes());
                        out.push(b' ');
                    }
                    line = Some((second, key.is_some()));
                    key.is_some()
                }
            };
            if writing {
                out.extend_from_slice(&encode_entry(entry));
            }
        }
        if let Some((_, true)) = line {
            out.push(b'\n');
        }
    }

    /// Reads journal lines, leaving out those of seconds before `since`.
    pub(crate) fn from_journal(text: &[u8], since: i64) -> Result<Identities, JournalLineError> {
        let mut identities = Identities::default();
        for (index, line) in text.split_inclusive(|byte| *byte == b'\n').enumerate() {
            let number = index + 1;
            let bad = |problem: &'static str| -> JournalLineError { (number, problem) };
            let line = line.strip_suffix(b"\n").ok_or(bad(LINE_UNTERMINATED))?;
            let space = line
                .iter()
                .position(|byte| *byte == b' ')
                .ok_or(bad(LINE_SECOND))?;
            let (second_text, encoded) = (&line[..space], &line[space + 1..]);
            let second = std::str::from_utf8(second_text)
                .ok()
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .filter(|instant| instant.timestamp_subsec_nanos() == 0)
                .ok_or(bad(LINE_SECOND))?
                .timestamp();
            if encoded.is_empty() || encoded.len() % ENCODED_ENTRY != 0 {
                return Err(bad(LINE_ENTRIES));
            }
            if second < since {
                continue;
            }
            let group = identities.by_second.entry(second).or_default();
            for chunk in encoded.chunks_exact(ENCODED_ENTRY) {
                let entry = decode_entry(chunk).ok_or(bad(LINE_ENTRIES))?;
                group.insert(entry);
            }
        }
        identities.counted_as_read();
        // The lines before `since` are forgotten entries: an addition there is no append.
        identities.changes.pruned_through = since.checked_sub(1);
        Ok(identities)
    }

    /// Counts the entries just read, each second's last counting as the end of that second.
    fn counted_as_read(&mut self) {
        self.len = self
            .by_second
            .values()
            .map(|second| second.order.len())
            .sum();
        self.newest = self
            .by_second
            .last_key_value()
            .map(|(second, _)| (*second, u32::MAX));
    }

    /// The state file's form: `{"<second, RFC 3339 UTC>": "<Z85 of 8 bytes an entry>"}`.
    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (second, entries) in &self.by_second {
            if let Some(key) = second_key(*second) {
                map.insert(key, Value::String(entries.encoded()));
            }
        }
        Value::Object(map)
    }

    /// Appends [`to_json`](Self::to_json) as `serde_json` pretty-prints it as the value of a
    /// key of the state file's top-level object, without building it: at every commit of a run
    /// with lookback this is most of the file.
    pub(crate) fn write_pretty(&self, out: &mut String) {
        // Sized once: growing a megabyte of text by doubling copies it again and again.
        // A key with its quotes, colon and indentation is 32 characters.
        out.reserve(self.len * ENCODED_ENTRY + self.by_second.len() * (32 + 3) + 4);
        let mut keys = self
            .by_second
            .iter()
            .filter_map(|(second, entries)| Some((second_key(*second)?, entries)))
            .peekable();
        if keys.peek().is_none() {
            out.push_str("{}");
            return;
        }
        out.push('{');
        let mut first = true;
        for (key, entries) in keys {
            if !first {
                out.push(',');
            }
            first = false;
            // RFC 3339 and the Z85 alphabet hold nothing JSON escapes.
            out.push_str("\n    \"");
            out.push_str(&key);
            out.push_str("\": \"");
            out.push_str(&entries.encoded());
            out.push('"');
        }
        out.push_str("\n  }");
    }

    /// Reads the form [`to_json`](Self::to_json) writes, the key of its section being `key`.
    pub(crate) fn from_json(key: &str, value: &Value) -> Result<Identities, StateFormatError> {
        let invalid = |key: String, value: &Value, expected| StateFormatError::Invalid {
            key,
            value: crate::cursor::excerpt(value),
            expected,
        };
        let Value::Object(map) = value else {
            return Err(invalid(key.to_owned(), value, EXPECT_IDENTITIES));
        };
        if let Some(journal) = map.get("journal") {
            return Err(StateFormatError::JournalNotRead {
                key: key.to_owned(),
                journal: crate::cursor::excerpt(journal),
            });
        }
        let mut identities = Identities::default();
        for (second_text, entries) in map {
            let second = DateTime::parse_from_rfc3339(second_text)
                .ok()
                .filter(|instant| instant.timestamp_subsec_nanos() == 0)
                .ok_or_else(|| {
                    invalid(
                        key.to_owned(),
                        &Value::String(second_text.clone()),
                        EXPECT_IDENTITIES,
                    )
                })?
                .timestamp();
            let at = format!("{key}.{second_text}");
            let (text, bytes) = match entries {
                // Z85 proper: whole groups of 5 characters (the crate's padded tail form is not
                // written here, so it is refused).
                Value::String(text) if text.len() % 5 == 0 => z85::decode(text)
                    .ok()
                    .filter(|bytes| bytes.len() % ENTRY_BYTES == 0)
                    .map(|bytes| (text, bytes))
                    .ok_or_else(|| invalid(at.clone(), entries, EXPECT_ENTRIES))?,
                other => return Err(invalid(at, other, EXPECT_ENTRIES)),
            };
            let group = identities.by_second.entry(second).or_default();
            group.order.reserve(bytes.len() / ENTRY_BYTES);
            // The entries are kept in the order read (an entry written twice, once), so that a
            // state written back unchanged is the same bytes; Z85 that decoded is that of its
            // bytes, except a group beyond 32 bits, which is refused.
            for (index, chunk) in bytes.chunks_exact(ENTRY_BYTES).enumerate() {
                let mut word = [0_u8; ENTRY_BYTES];
                word.copy_from_slice(chunk);
                let entry = u64::from_le_bytes(word);
                if text.get(index * ENCODED_ENTRY..(index + 1) * ENCODED_ENTRY)
                    != std::str::from_utf8(&encode_entry(entry)).ok()
                {
                    return Err(invalid(at.clone(), entries, EXPECT_ENTRIES));
                }
                group.insert(entry);
            }
        }
        identities.counted_as_read();
        Ok(identities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn entries_are_encoded_as_the_z85_crate_encodes_them() {
        let mut spread = 0x9e37_79b9_7f4a_7c15_u64;
        let edges = [0, 1, u64::MAX, 0x0123_4567_89ab_cdef, 86 * 85 * 85, 1 << 63];
        // Edge values, and a walk over the whole range (a Weyl sequence).
        let walk = std::iter::repeat_with(|| {
            spread = spread.wrapping_add(0x9e37_79b9_7f4a_7c15);
            spread
        });
        for entry in edges.into_iter().chain(walk.take(100_000)) {
            let encoded = encode_entry(entry);
            assert_eq!(
                std::str::from_utf8(&encoded).unwrap(),
                z85::encode(entry.to_le_bytes()),
                "{entry:#x}"
            );
        }
    }

    #[test]
    fn identities_round_trip_through_their_compact_form() {
        let mut identities = Identities::default();
        identities.insert(at("2026-01-01T00:00:00Z"), 1);
        identities.insert(at("2026-01-01T00:00:00Z"), u64::MAX);
        identities.insert(at("2026-01-01T01:00:00.5+01:00"), 0xabc);
        identities.insert(at("2026-01-01T00:00:01Z"), 1);
        let json = identities.to_json();
        let seconds: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(seconds, ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"]);
        // Three entries of 8 bytes in the first second: 24 bytes, 30 characters of Z85.
        assert_eq!(json["2026-01-01T00:00:00Z"].as_str().unwrap().len(), 30);
        let read = Identities::from_json("identities", &json).unwrap();
        assert_eq!(read, identities);
        assert_eq!(read.len(), 4);
        assert!(read.contains(at("2026-01-01T00:00:00.5Z"), 0xabc));
        assert!(
            !read.contains(at("2026-01-01T00:00:00.6Z"), 0xabc),
            "another version"
        );
    }

    #[test]
    fn identities_read_and_written_back_keep_their_text_byte_for_byte() {
        // Entries out of order, and one written twice: read as they are, written back in the
        // order read, the repeated one once.
        let (one, two) = (
            z85::encode(2_u64.to_le_bytes()),
            z85::encode(1_u64.to_le_bytes()),
        );
        let json = json!({"2026-01-01T00:00:00Z": format!("{one}{two}{one}")});
        let read = Identities::from_json("identities", &json).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            read.to_json(),
            json!({"2026-01-01T00:00:00Z": format!("{one}{two}")})
        );
        let mut again = read.clone();
        again.insert(at("2026-01-01T00:00:00.25Z"), 9);
        let added = z85::encode(entry(at("2026-01-01T00:00:00.25Z"), 9).to_le_bytes());
        assert_eq!(
            again.to_json(),
            json!({"2026-01-01T00:00:00Z": format!("{one}{two}{added}")})
        );
    }

    #[test]
    fn the_pretty_text_of_identities_is_what_serde_json_writes() {
        let mut state = crate::State::default();
        state.identities.insert(at("2026-01-01T00:00:00Z"), 1);
        state.identities.insert(at("2026-01-01T00:00:07.5Z"), 2);
        // The identities alone, then after other sections.
        assert_eq!(state.to_json_pretty(), format!("{:#}\n", state.to_json()));
        state.offset = Some(3);
        assert_eq!(state.to_json_pretty(), format!("{:#}\n", state.to_json()));
        assert!(state.to_json_pretty().ends_with("\"\n  }\n}\n"));
    }

    #[test]
    fn what_was_added_since_a_version_is_known_until_a_change_that_is_no_addition() {
        let mut identities = Identities::default();
        identities.insert(at("2026-01-01T00:00:00Z"), 1);
        let version = identities.version();
        identities.insert(at("2026-01-01T00:00:01.5Z"), 2);
        assert!(!identities.insert(at("2026-01-01T00:00:01.5Z"), 2), "known");
        let added: Vec<(i64, u64)> = identities.added_since(version).unwrap().collect();
        let second = at("2026-01-01T00:00:01Z").timestamp();
        assert_eq!(added, [(second, entry(at("2026-01-01T00:00:01.5Z"), 2))]);

        // A copy knows the history before it; the original knows nothing of the copy's.
        let mut copy = identities.clone();
        assert_eq!(copy.version(), identities.version(), "unchanged: the same");
        assert_eq!(copy.added_since(version).unwrap().count(), 1);
        copy.insert(at("2026-01-01T00:00:02Z"), 3);
        assert!(identities.added_since(copy.version()).is_none());
        assert_eq!(copy.added_since(identities.version()).unwrap().count(), 1);

        // Forgetting part of a second is no addition: nothing before it can be brought up.
        identities.insert(at("2026-01-01T00:00:01Z"), 4);
        assert_eq!(identities.prune(at("2025-01-01T00:00:00Z"), 1), 2);
        assert!(identities.added_since(version).is_none());
        let after = identities.version();
        identities.insert(at("2026-01-01T00:00:03Z"), 5);
        assert_eq!(identities.added_since(after).unwrap().count(), 1);
    }

    #[test]
    fn an_addition_to_a_second_already_forgotten_is_no_mere_append() {
        let mut identities = Identities::default();
        identities.insert(at("2026-01-01T00:00:00Z"), 1);
        identities.insert(at("2026-01-01T00:00:05Z"), 2);
        identities.prune(at("2026-01-01T00:00:05Z"), 10);
        let version = identities.version();
        identities.insert(at("2026-01-01T00:00:06Z"), 3);
        assert_eq!(identities.added_since(version).unwrap().count(), 1);
        // The journal may still hold the line of second 0: adding there again rewrites.
        identities.insert(at("2026-01-01T00:00:00Z"), 4);
        assert!(identities.added_since(version).is_none());
    }

    #[test]
    fn the_log_of_additions_is_bounded_and_forgets_the_oldest_versions() {
        // A window of ten records moving on: the set stays small, its history grows.
        let mut identities = Identities::default();
        let first = identities.version();
        let record = |identity: u64| {
            at("2026-01-01T00:00:00Z") + chrono::TimeDelta::seconds(identity as i64)
        };
        for identity in 0..LOG_MIN as u64 {
            identities.insert(record(identity), identity);
            identities.prune(at("2025-01-01T00:00:00Z"), 10);
        }
        let recent = identities.version();
        identities.insert(record(LOG_MIN as u64), 0);
        assert!(identities.added_since(first).is_none(), "fell behind");
        assert_eq!(identities.added_since(recent).unwrap().count(), 1);
        assert!(identities.changes.log.len() <= LOG_MIN);
    }

    #[test]
    fn journal_lines_read_back_as_the_entries_they_were_written_from() {
        let mut identities = Identities::default();
        identities.insert(at("2026-01-01T00:00:00Z"), 1);
        identities.insert(at("2026-01-01T00:00:07.5Z"), 2);
        let mut lines = Vec::new();
        identities.write_journal(&mut lines);
        let version = identities.version();
        identities.insert(at("2026-01-01T00:00:07Z"), 3);
        identities.insert(at("2026-01-01T00:00:08Z"), 4);
        Identities::write_added(identities.added_since(version).unwrap(), &mut lines);
        let text = String::from_utf8(lines.clone()).unwrap();
        let seconds: Vec<&str> = text.lines().map(|line| &line[..20]).collect();
        assert_eq!(
            seconds,
            [
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:07Z",
                "2026-01-01T00:00:07Z",
                "2026-01-01T00:00:08Z"
            ]
        );
        let read = Identities::from_journal(&lines, 0).unwrap();
        assert_eq!(read, identities);
        let since = at("2026-01-01T00:00:07Z").timestamp();
        assert_eq!(Identities::from_journal(&lines, since).unwrap().len(), 3);
        assert_eq!(
            Identities::from_journal(b"2026-01-01T00:00:00Z 0000000000\n2026", 0).unwrap_err(),
            (2, LINE_UNTERMINATED)
        );
        assert_eq!(
            Identities::from_journal(b"2026-01-01T00:00:00Z 00000\n", 0).unwrap_err(),
            (1, LINE_ENTRIES)
        );
        assert_eq!(
            Identities::from_journal(b"2026-01-01T00:00:00.5Z 0000000000\n", 0).unwrap_err(),
            (1, LINE_SECOND)
        );
    }

    #[test]
    fn pruning_keeps_the_window_start_and_forgets_what_is_older() {
        let mut identities = Identities::default();
        identities.insert(at("2026-01-01T00:00:00Z"), 1);
        identities.insert(at("2026-01-01T00:05:00Z"), 2);
        identities.insert(at("2026-01-01T00:10:00Z"), 3);
        assert_eq!(identities.prune(at("2026-01-01T00:05:00Z"), 10), 0);
        assert!(!identities.contains(at("2026-01-01T00:00:00Z"), 1));
        assert!(identities.contains(at("2026-01-01T00:05:00Z"), 2));
        assert_eq!(identities.len(), 2);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_says_how_many() {
        let mut identities = Identities::default();
        for second in 0..10 {
            identities.insert(
                at("2026-01-01T00:00:00Z") + chrono::TimeDelta::seconds(second),
                7,
            );
        }
        assert_eq!(identities.prune(at("2025-01-01T00:00:00Z"), 4), 6);
        assert_eq!(identities.len(), 4);
        assert!(identities.contains(at("2026-01-01T00:00:09Z"), 7));
        assert!(!identities.contains(at("2026-01-01T00:00:05Z"), 7));
        // Within one second, exactly the excess goes.
        let mut same_second = Identities::default();
        for identity in 0..10 {
            same_second.insert(at("2026-01-01T00:00:00Z"), identity);
        }
        assert_eq!(same_second.prune(at("2025-01-01T00:00:00Z"), 7), 3);
        assert_eq!(same_second.len(), 7);
        // Those delivered first went, from the set and from the text alike.
        for identity in 0..3 {
            assert!(!same_second.contains(at("2026-01-01T00:00:00Z"), identity));
        }
        assert!(same_second.contains(at("2026-01-01T00:00:00Z"), 3));
        let json = same_second.to_json();
        assert_eq!(json["2026-01-01T00:00:00Z"].as_str().unwrap().len(), 70);
        assert_eq!(
            Identities::from_json("identities", &json).unwrap(),
            same_second
        );
    }

    #[test]
    fn a_bad_identities_section_names_the_key_and_the_form() {
        let problem = |value: Value| {
            Identities::from_json("identities", &value)
                .unwrap_err()
                .to_string()
        };
        let object = "but it must be an object from RFC 3339 timestamps (whole seconds) to \
                      Z85 strings of 8 bytes an identity";
        assert_eq!(
            problem(json!(["00"])),
            format!("`identities` holds [\"00\"], {object}")
        );
        assert_eq!(
            problem(json!({"yesterday": "0000000001"})),
            format!("`identities` holds \"yesterday\", {object}")
        );
        assert_eq!(
            problem(json!({"2026-01-01T00:00:00.5Z": "0000000001"})),
            format!("`identities` holds \"2026-01-01T00:00:00.5Z\", {object}")
        );
        let entries = "but it must be a Z85 string of 8 bytes an identity";
        // Not whole groups of five characters; one group (4 bytes, half an identity); a
        // character outside the Z85 alphabet.
        for text in ["0000", "00000", "0000~00000"] {
            assert_eq!(
                problem(json!({"2026-01-01T00:00:00Z": text})),
                format!("`identities.2026-01-01T00:00:00Z` holds \"{text}\", {entries}")
            );
        }
        assert_eq!(
            problem(json!({"2026-01-01T00:00:00Z": 5})),
            format!("`identities.2026-01-01T00:00:00Z` holds 5, {entries}")
        );
    }

    #[test]
    fn entries_and_identities_hash_as_the_files_already_written_do() {
        // The state files of earlier versions hold entries hashed with the streaming hasher,
        // one part after another: the same values, or no record of theirs is recognised.
        let streamed = |parts: &[&[u8]]| {
            let mut hasher = XxHash3_64::with_seed(0);
            for part in parts {
                hasher.write(part);
            }
            hasher.finish()
        };
        let instant = at("2026-01-01T00:00:00.123456789Z");
        assert_eq!(
            entry(instant, 42),
            streamed(&[
                &instant.timestamp().to_le_bytes(),
                &instant.timestamp_subsec_nanos().to_le_bytes(),
                &42_u64.to_le_bytes()
            ])
        );
        let id = |id: CursorId| Position {
            timestamp: None,
            id: Some(id),
        };
        let text = r#"{"id": 7}"#;
        assert_eq!(
            Identity::Id.of(text, &id(CursorId::Integer(7))),
            streamed(&[b"i", &7_i64.to_le_bytes()])
        );
        assert_eq!(
            Identity::Id.of(text, &id(CursorId::from("7"))),
            streamed(&[b"s", b"7"])
        );
        assert_eq!(
            Identity::Text.of(text, &id(CursorId::Integer(7))),
            streamed(&[text.as_bytes()])
        );
        assert_eq!(
            Identity::Id.of(text, &Position::default()),
            streamed(&[text.as_bytes()])
        );
    }

    #[test]
    fn identities_differ_by_kind_of_id_and_by_field_values() {
        let id = |id: CursorId| Position {
            timestamp: None,
            id: Some(id),
        };
        assert_ne!(
            Identity::Id.of("{}", &id(CursorId::Integer(42))),
            Identity::Id.of("{}", &id(CursorId::from("42")))
        );
        let fields = Identity::Fields(vec![
            FieldPath::parse("a").unwrap(),
            FieldPath::parse("b").unwrap(),
        ]);
        let none = Position::default();
        assert_eq!(
            fields.of(r#"{"a": 1, "b": "x", "c": 1}"#, &none),
            fields.of(r#"{"b": "x", "c": 2, "a": 1}"#, &none)
        );
        assert_ne!(
            fields.of(r#"{"a": 1, "b": "x"}"#, &none),
            fields.of(r#"{"a": 1, "b": "y"}"#, &none)
        );
    }
}
