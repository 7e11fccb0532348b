//! [`FsStore`]: a [`Store`] in a directory. The layout, locking, log,
//! checkpoints and crash recovery are documented on the type.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard};

use super::marker::{MARKER_FILE, marker_update};
use super::{
    Durability, Entry, Op, Store, Version, Write as BatchWrite, check_batch, validate_key,
    validate_prefix,
};
use crate::{Error, Result};

mod files;
mod lock;
mod log;
mod wal;

use files::*;
use wal::*;

const REFS_DIR: &str = "refs";
const OBJECT_FILE: &str = "@object.json";
const OBJECT_TEMP: &str = "@object.json.tmp";
/// The log, which is also the lock file.
const WAL_FILE: &str = ".wal";
/// Present while a checkpoint writes files back: if a killed checkpoint left
/// it, the next opening removes the temporary files it may have left too.
const CHECKPOINT_MARK: &str = ".checkpoint";
const WAL_MAGIC: &[u8; 8] = b"OCUWAL1\0";
const WAL_FORMAT: u32 = 2;
const HEADER_LEN: u64 = 64;
/// `[len u32][crc32 u32]` before each record's payload.
const RECORD_HEAD: u64 = 8;
/// How long a [`Durability::Deferred`] commit may stay not durable when no
/// durable commit or sync comes along.
const DEFERRED_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Default size of the log that triggers a checkpoint: a release of 10,000
/// deploys logs about 40 MiB, and stays in the log while it runs (a
/// checkpoint in the middle of it would write each run's `pending` and
/// `running` markers as files only to delete them at the next one, and
/// make every later read of the release go to the files).
const DEFAULT_CHECKPOINT_BYTES: u64 = 64 << 20;
/// Threads that write (and, without `syncfs`, fsync) the files of a
/// checkpoint.
const CHECKPOINT_THREADS: usize = 8;
/// Beyond this many keys, a checkpoint on Linux makes its files durable
/// with one `syncfs` rather than an `fsync` per file and directory.
#[cfg(target_os = "linux")]
const SYNCFS_KEYS: usize = 32;

/// A [`Store`] in a directory: one JSON file per key, laid out as the
/// original Ocuroot does, in front of a log of recent batches. Atomic and
/// durable batches, safe for concurrent use by threads and processes.
///
/// # Layout
///
/// ```text
/// <dir>/.ocuroot-store            {"version":3,"Tags":{"state":{}}}   (or "intent")
/// <dir>/refs/<key>/@object.json   the value of <key> at the last checkpoint
/// <dir>/.wal                      the log of batches since then, and the lock file
/// ```
///
/// For example the key `repo/-/pkg.ocu.star/@r1/deploy/prod` is stored at
/// `refs/repo/-/pkg.ocu.star/@r1/deploy/prod/@object.json`. `@object.json`
/// cannot be a key segment, so a value never clashes with a deeper key. The
/// version of a value is the FNV-1a hash of its bytes ([`Version::of_bytes`]),
/// so files written by the original Ocuroot, by hand or by `git pull` have
/// versions too. `.ocuroot-store` is created if missing; a store of another
/// format version is refused.
///
/// # The log and the files
///
/// The current value of a key is its last value in `.wal` if the log has
/// one, else its file. A commit appends one record to the log and writes no
/// file: one directory and file per key is what the original layout needs,
/// and creating thousands of them costs far more than the work a release
/// does (about 0.1 ms per new directory or file on an ext4 VM). The files are
/// brought up to date by a **checkpoint**, which writes the last logged value
/// of every key (so a run's `pending` and `running` markers, superseded within
/// the log, never become files at all), makes them durable (on Linux with one
/// `syncfs` of the store's filesystem when there are more than a few dozen,
/// else with an `fsync` per file and directory) and empties the log.
/// Checkpoints happen when the log grows past a threshold (64 MiB by
/// default, [`FsStoreBuilder::checkpoint_bytes`]; a 1000-task release logs
/// about 3 MiB, a release of 10,000 deploys about 40 MiB), and on demand
/// with [`FsStore::checkpoint`] (`ocuroot state checkpoint`): do that
/// before handing the files to tools that do not read the log, such as the
/// original Ocuroot or a `git commit` of the store.
///
/// Each instance keeps the log's final values in memory (at most the log's
/// size), and reads only the records appended since its last look.
///
/// Files edited by hand or by other tools are read as they are, unless the
/// log holds a later value for the same key: the log wins until the next
/// checkpoint, which overwrites such an edit. An instance remembers which
/// keys have no file until the next checkpoint, so a file another tool
/// creates meanwhile is seen by instances opened after it (every `ocuroot`
/// command opens its own) rather than by one already running.
///
/// # Atomicity and locking
///
/// - A commit holds an exclusive lock: `flock` on `<dir>/.wal`, through one
///   descriptor per instance, plus an in-process lock. Batches from threads
///   and processes are serialised; expectations are checked and the record
///   appended without interference.
/// - Reads ([`Store::get`], [`Store::get_many`], [`Store::list`], and
///   commits made only of [`Op::Check`]s) hold the shared lock (taken once
///   for all the threads of an instance reading at the same time), so they
///   see a batch entirely or not at all. A store without a `.wal` (never
///   written by this version, or written by hand) is read without a lock, and
///   read again under the lock if a `.wal` appeared meanwhile; so reads never
///   create anything.
/// - A checkpoint writes each file to a temporary file in the same directory
///   and renames it over `@object.json`, so even a reader that ignores the
///   lock sees the old or the new file, never part of one. Deleting a value
///   removes directories left empty, up to (not including) `refs/`. A
///   checkpoint that was killed leaves a `.checkpoint` mark: the next
///   instance to open the store removes the temporary files it left. A key
///   whose file cannot be written (a path taken by a file, say) is reported
///   and kept in the emptied log, so it neither is lost nor stalls later
///   checkpoints.
///
/// # Links and names
///
/// Nothing inside the store's directory may be a symbolic link (the
/// directory itself may be): a store is often checked in, and a committed
/// link would point the agent's reads and writes anywhere it can reach.
/// Every directory down to a file is checked before use, files are opened
/// with `O_NOFOLLOW` and temporary files created afresh, so a link is
/// refused with an error naming it and never followed. Keys are at most
/// [`MAX_KEY_BYTES`](crate::refs::MAX_KEY_BYTES) long, in segments of at
/// most [`MAX_SEGMENT_BYTES`](crate::refs::MAX_SEGMENT_BYTES), so every key
/// fits every filesystem.
///
/// # Durability
///
/// A commit, under the exclusive lock, appends its record (the final value,
/// or the deletion, of every written key) to the log and then updates the
/// log's header to include it. From then on every reader sees it. Then,
/// **outside** the lock, it makes the log durable with one `fdatasync`, and
/// returns. So a commit costs one `fdatasync` and no other `fsync`, and no
/// reader or writer waits for it; when several threads of a process commit
/// at once, one `fdatasync` covers all their records (group commit).
///
/// A commit with [`Durability::Deferred`] skips its `fdatasync`: it is
/// durable when the next durable commit or [`Store::sync`] returns, when
/// this instance is dropped, and at the latest with the first deferred
/// commit a second after the last `fdatasync`. The engine claims runs and
/// commits their outcomes this way and syncs before it reports (the trade
/// SQLite makes with `synchronous=NORMAL` in WAL mode): a machine crash in
/// the middle of a release may lose the last second of outcomes, so those
/// runs run again, but never part of a transition, and nothing reported.
///
/// A record is visible a little before it is durable. If the machine
/// crashes in that window, the record and every record after it are lost
/// together: the log is a sequence, so what survives is always the state as
/// of some earlier moment, and never a batch in part.
///
/// # Crash recovery
///
/// - **A process dies mid-commit**: a record it appended but whose header
///   update it did not make is past the header's end: ignored, and
///   overwritten by the next commit. Nothing else needs doing; no file is
///   ever half written.
/// - **A process dies mid-checkpoint**: the log is emptied only after every
///   file it logged has been written and made durable, so the log is intact
///   and the next checkpoint writes the same values again.
/// - **The machine loses power or crashes**: records that were visible but
///   not yet durable may be missing or damaged. The header holds the
///   kernel's boot id (`/proc/sys/kernel/random/boot_id`, read with
///   `std::fs`) from when it was last reset. When a store is locked and the
///   header's boot id is not the current one, the whole log is checked; it is
///   cut before the first damaged record, and the header gets the current
///   boot id. Every batch whose commit returned precedes that point. Where no
///   boot id is available (anything but Linux), this check is done whenever a
///   process first locks an existing store. Within one boot, a damaged record
///   is an error naming the file, not something to cut silently.
///
/// [`FsStoreBuilder::fsync`] can turn every `fsync` off (tests, throwaway
/// stores): batches stay atomic and all-or-nothing, even across process
/// crashes, but a machine crash may lose recent batches.
///
/// # Log format
///
/// All integers little-endian. A 64-byte header:
///
/// ```text
/// 0..8    magic "OCUWAL1\0"
/// 8..12   format version (u32) = 2
/// 12..28  boot id (16 bytes; zero when unknown)
/// 28..36  generation (u64): changes whenever the log is emptied
/// 36..44  end of the log (u64; 64 when empty)
/// 44..60  zero
/// 60..64  CRC-32 (IEEE) of bytes 0..60
/// ```
///
/// then records, each `[payload length u32][CRC-32 of the payload u32]`
/// followed by the JSON payload:
///
/// ```json
/// {"ops": [
///   {"op": "put", "key": "pkg/@r1", "text": "{\"kind\":\"ref\",\"body\":{}}"},
///   {"op": "put", "key": "pkg/@r1/x", "bytes": [0, 255]},
///   {"op": "delete", "key": "pkg/@r0"}
/// ]}
/// ```
///
/// (`text` holds UTF-8 values, `bytes` any other.) Bytes past the header's
/// end are leftovers of an append that never committed, and are ignored. A
/// header that fails its checksum is a [`Store`](crate::ErrorKind::Store)
/// error naming the file.
///
/// A log of another format is refused with an error naming the file and
/// both formats.
#[derive(Debug)]
pub struct FsStore {
    dir: PathBuf,
    refs: PathBuf,
    wal_path: PathBuf,
    tag: String,
    fsync: bool,
    checkpoint_bytes: u64,
    /// Serialises this process's threads: readers share it, a commit holds
    /// it exclusively (and only then takes the file lock exclusively).
    local: RwLock<()>,
    /// The open log, once it exists.
    log: OnceLock<LogFile>,
    /// How many of this instance's readers hold the shared file lock: the
    /// first takes it, the last releases it.
    readers: Mutex<usize>,
    /// The final value of every key in the log, as far as this instance has
    /// read it.
    overlay: RwLock<Overlay>,
    /// How far this instance has appended to the log.
    appended: Mutex<LogPos>,
    /// How far the log is known durable; held while syncing, so one
    /// `fdatasync` serves every commit appended before it starts.
    durable: Mutex<LogPos>,
    /// Keys found to have no file, in the log generation given.
    absent: Mutex<(u64, std::collections::HashSet<String>)>,
    /// When this instance last started an `fdatasync` of the log, to bound
    /// how long a deferred commit waits for one.
    last_sync: Mutex<std::time::Instant>,
    /// Whether the directory and marker are known to exist.
    created: AtomicBool,
    /// Whether this instance needs no check of the whole log whatever the
    /// header's boot id says: set where no boot id is available once it has
    /// been checked, and on a read-only store once warned.
    boot_checked: AtomicBool,
    /// How many `fsync`s this instance made (for tests).
    syncs: AtomicU64,
}

/// The log file, opened once per instance.
#[derive(Debug)]
struct LogFile {
    file: File,
    writable: bool,
}

/// A position in the log: its generation and an offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LogPos {
    generation: u64,
    offset: u64,
}

impl LogPos {
    /// Whether everything up to `other` is before or at this position (a
    /// later generation covers all of an earlier one, which a checkpoint made
    /// durable).
    fn covers(self, other: LogPos) -> bool {
        self.generation > other.generation
            || self.generation == other.generation && self.offset >= other.offset
    }
}

/// The final values of the logged keys, read from the log.
#[derive(Debug, Default)]
struct Overlay {
    /// The log generation these values come from.
    generation: u64,
    /// Records before this offset are folded in (0: nothing read yet).
    read_to: u64,
    /// The last logged value of each key (`None`: deleted).
    values: BTreeMap<String, Option<Vec<u8>>>,
}

impl Overlay {
    /// Whether this overlay is the log described by `header`.
    fn is_current(&self, header: &Header) -> bool {
        self.read_to != 0 && self.generation == header.generation && self.read_to == header.end
    }

    fn reset(&mut self, generation: u64) {
        self.generation = generation;
        self.read_to = HEADER_LEN;
        self.values.clear();
    }

    fn fold(&mut self, batch: Batch) {
        self.values.extend(batch);
    }
}

/// Options for opening an [`FsStore`]; from [`FsStore::builder`].
#[derive(Debug, Clone)]
pub struct FsStoreBuilder {
    dir: PathBuf,
    tag: String,
    fsync: bool,
    checkpoint_bytes: u64,
}

impl FsStoreBuilder {
    /// Whether to `fsync` (default: yes). Without it every write is still
    /// atomic and batches are still all-or-nothing for other readers, even
    /// when a process crashes, but a machine crash may lose recent batches.
    /// Useful for tests and throwaway stores on slow disks.
    pub fn fsync(mut self, fsync: bool) -> FsStoreBuilder {
        self.fsync = fsync;
        self
    }

    /// The size of the log beyond which a commit checkpoints it (default
    /// 64 MiB; see [`FsStore`]). A smaller log means files closer to current
    /// and less memory per instance, but more frequent checkpoints; 0
    /// checkpoints after every commit, writing the files at once (as the
    /// original Ocuroot does, at the original's cost).
    pub fn checkpoint_bytes(mut self, bytes: u64) -> FsStoreBuilder {
        self.checkpoint_bytes = bytes;
        self
    }

    /// Open the store.
    ///
    /// An existing store has its `.ocuroot-store` marker checked (a marker of
    /// another format version is refused; the tag is added if absent) and its
    /// log checked after a restart (see [`FsStore`]). A store that does not
    /// exist yet is not created until the first write, so read-only commands
    /// (`release lint`, `state get`) leave no trace; until then it reads as
    /// empty.
    pub fn open(self) -> Result<FsStore> {
        let FsStoreBuilder {
            dir,
            tag,
            fsync,
            checkpoint_bytes,
        } = self;
        if tag.is_empty() || tag.chars().any(|c| c.is_control()) {
            return Err(Error::invalid_input(format!("invalid store tag {tag:?}")));
        }
        let store = FsStore {
            refs: dir.join(REFS_DIR),
            wal_path: dir.join(WAL_FILE),
            dir,
            tag,
            fsync,
            checkpoint_bytes,
            local: RwLock::new(()),
            log: OnceLock::new(),
            readers: Mutex::new(0),
            overlay: RwLock::new(Overlay::default()),
            appended: Mutex::new(LogPos::default()),
            durable: Mutex::new(LogPos::default()),
            last_sync: Mutex::new(std::time::Instant::now()),
            absent: Mutex::new((0, Default::default())),
            created: AtomicBool::new(false),
            boot_checked: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        };
        if exists(&store.dir)? {
            if exists(&store.wal_path)? {
                // A restart is dealt with on locking.
                store.with_exclusive(false, |locked| {
                    store.check_marker()?;
                    if locked.wal.writable {
                        store.clean_interrupted_checkpoint()?;
                    }
                    Ok(())
                })?;
            } else {
                // Never written by this version: nothing to check, and
                // nothing to lock unless the marker needs writing.
                store.no_replay_needed();
                if store.marker_update()?.is_some() {
                    store.with_exclusive(false, |_| store.check_marker())?;
                }
            }
            store.created.store(true, Ordering::Release);
        } else {
            store.no_replay_needed();
        }
        Ok(store)
    }
}

impl FsStore {
    /// Open (creating if needed) the store in `dir`, marked with `tag`
    /// (`"state"` or `"intent"`), with default options. See
    /// [`FsStoreBuilder::open`].
    pub fn open(dir: impl AsRef<Path>, tag: &str) -> Result<FsStore> {
        FsStore::builder(dir, tag).open()
    }

    /// Options for opening the store in `dir` with `tag`.
    pub fn builder(dir: impl AsRef<Path>, tag: &str) -> FsStoreBuilder {
        FsStoreBuilder {
            dir: dir.as_ref().to_path_buf(),
            tag: tag.to_string(),
            fsync: true,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
        }
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The tag this store was opened with (`state` or `intent`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Where the value of `key` is stored after a checkpoint (the key must be
    /// valid).
    pub fn object_path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.key_dir(key)?.join(OBJECT_FILE))
    }

    /// Write every logged value to its file, make the files durable and empty
    /// the log (see [`FsStore`]). Commits do this on their own when the log
    /// grows large; call it before other tools read the files. Does nothing
    /// to a store never written by this version.
    pub fn checkpoint(&self) -> Result<()> {
        if !exists(&self.wal_path)? {
            return Ok(());
        }
        self.with_exclusive(true, |locked| self.checkpoint_locked(locked))
    }

    /// The size of the log in bytes, header included (0 when there is none):
    /// what the next checkpoint would write back.
    pub fn log_len(&self) -> Result<u64> {
        match fs::metadata(&self.wal_path) {
            Ok(m) => Ok(m.len()),
            Err(e) if is_absent(&e) => Ok(0),
            Err(e) => Err(Error::io("stat", &self.wal_path, e)),
        }
    }

    /// How many `fsync`s this instance has made (files, directories and the
    /// log). For tests and benchmarks.
    #[doc(hidden)]
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Write `boot` as the boot id in the log's header, as if the log had
    /// been written before a restart. For tests.
    #[doc(hidden)]
    pub fn set_wal_boot_id(&self, boot: [u8; 16]) -> Result<()> {
        self.ensure_dir()?;
        self.with_exclusive(true, |locked| {
            locked.wal.write_header(&Header {
                boot,
                ..locked.header
            })
        })
    }

    // ----- marker ------------------------------------------------------------

    /// Create the store directory if needed (the first write), durably.
    fn ensure_dir(&self) -> Result<()> {
        if self.created.load(Ordering::Acquire) || exists(&self.dir)? {
            return Ok(());
        }
        // The parents whose new entries must be made durable.
        let mut parents = Vec::new();
        let mut missing = self.dir.as_path();
        while let Some(parent) = missing.parent() {
            if parent.as_os_str().is_empty() {
                break;
            }
            parents.push(parent.to_path_buf());
            if exists(parent)? {
                break;
            }
            missing = parent;
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io("create store directory", &self.dir, e))?;
        parents.iter().try_for_each(|p| self.sync_dir(p))
    }

    /// Check (and write if needed) the marker of a store this instance has
    /// not written yet. Call with the exclusive lock held.
    fn ensure_marker(&self) -> Result<()> {
        if !self.created.load(Ordering::Acquire) {
            self.check_marker()?;
            self.created.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Check the marker and write it if it needs a change. Call with the
    /// exclusive lock held.
    fn check_marker(&self) -> Result<()> {
        if let Some(bytes) = self.marker_update()? {
            let path = self.dir.join(MARKER_FILE);
            self.write_atomic(&path, &self.dir.join(".ocuroot-store.tmp"), &bytes, true)?;
            self.sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Check the store's marker; the new marker if it needs writing.
    fn marker_update(&self) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(MARKER_FILE);
        let existing = match read_no_follow(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error("read store marker", &path, e)),
        };
        marker_update(existing.as_deref(), &self.tag, &path.display().to_string())
    }
}

impl Store for FsStore {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        validate_key(key)?;
        self.with_shared(|overlay| self.read_entry(overlay, key))
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        for k in keys {
            validate_key(k)?;
        }
        self.with_shared(|overlay| keys.iter().map(|k| self.read_entry(overlay, k)).collect())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        self.with_shared(|overlay| self.list_keys(overlay, prefix))
    }

    fn commit(&self, ops: &[Op]) -> Result<()> {
        self.commit_with(ops, Durability::Immediate)
    }

    fn commit_with(&self, ops: &[Op], durability: Durability) -> Result<()> {
        for op in ops {
            validate_key(op.key())?;
        }
        if ops.is_empty() {
            return Ok(());
        }
        let plan = |overlay: &Overlay| {
            check_batch(ops, |k| self.current_version(overlay, k), Version::of_bytes)
        };
        if ops.iter().all(|op| matches!(op, Op::Check { .. })) {
            // Nothing to write: checking under the shared lock is enough.
            return self.with_shared(|overlay| plan(overlay).map(drop));
        }
        self.ensure_dir()?;
        let appended = self.with_exclusive(true, |locked| {
            self.ensure_marker()?;
            let writes: Vec<(&str, Option<&[u8]>)> = plan(locked.overlay)?
                .into_iter()
                .map(|w| match w {
                    BatchWrite::Put { key, value, .. } => (key, Some(value)),
                    BatchWrite::Delete { key } => (key, None),
                })
                .collect();
            if writes.is_empty() {
                return Ok(None);
            }
            let pos = self.append(locked, &writes)?;
            // The batch is committed: a failed checkpoint must not report it
            // as failed. The next commit tries again.
            if locked.header.end >= self.checkpoint_bytes
                && let Err(e) = self.checkpoint_locked(locked) {
                    tracing::warn!(error = %e, "checkpoint failed; the log is kept and it will be retried");
                }
            Ok(Some(pos))
        })?;
        match (appended, durability) {
            (Some(pos), Durability::Immediate) => self.sync_log(pos),
            // Deferred: durable within about a second even if nobody syncs.
            (Some(pos), Durability::Deferred | Durability::Founding | Durability::Shared)
                if lock(&self.last_sync).elapsed() >= DEFERRED_SYNC_INTERVAL =>
            {
                self.sync_log(pos)
            }
            _ => Ok(()),
        }
    }

    fn checkpoint(&self) -> Result<()> {
        FsStore::checkpoint(self)
    }

    fn sync(&self) -> Result<()> {
        let appended = *lock(&self.appended);
        if appended == LogPos::default() {
            return Ok(());
        }
        self.sync_log(appended)
    }

    fn describe(&self) -> String {
        format!("fs:{}", self.dir.display())
    }
}

impl Drop for FsStore {
    /// Make deferred commits durable.
    fn drop(&mut self) {
        let appended = *lock(&self.appended);
        if appended != LogPos::default()
            && let Err(e) = self.sync_log(appended)
        {
            tracing::warn!(error = %e, "could not make the store log durable on close");
        }
    }
}

/// Lock a mutex, ignoring poisoning (the data is plain positions).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The generation of a new log: the time, so that a log deleted and created
/// again is not mistaken for the old one by an instance that read it.
fn initial_generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// The exclusive lock and what it protects, for the duration of one
/// operation.
struct Locked<'a> {
    wal: Wal<'a>,
    header: Header,
    overlay: &'a mut Overlay,
}

/// Releases the file lock when dropped.
struct Unlock<'a>(&'a File);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.unlock() {
            tracing::warn!(error = %e, "could not unlock the store log");
        }
    }
}

/// This instance's share of the shared file lock: the first reader takes
/// it, the last one releases it.
struct SharedLock<'a> {
    store: &'a FsStore,
    file: &'a File,
}

impl<'a> SharedLock<'a> {
    fn take(store: &'a FsStore, log: &'a LogFile) -> Result<SharedLock<'a>> {
        let mut readers = lock(&store.readers);
        if *readers == 0 {
            retry_interrupted(|| log.file.lock_shared())
                .map_err(|e| Error::io("lock", &store.wal_path, e))?;
        }
        *readers += 1;
        Ok(SharedLock {
            store,
            file: &log.file,
        })
    }
}

impl Drop for SharedLock<'_> {
    fn drop(&mut self) {
        let mut readers = lock(&self.store.readers);
        *readers -= 1;
        if *readers == 0
            && let Err(e) = self.file.unlock()
        {
            tracing::warn!(error = %e, "could not unlock the store log");
        }
    }
}

// ----- the log file ----------------------------------------------------------
