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
    Durability, Entry, Op, Planned, Store, Version, plan_batch, validate_key, validate_prefix,
};
use crate::{Error, Result};

const REFS_DIR: &str = "refs";
const OBJECT_FILE: &str = "@object.json";
const OBJECT_TEMP: &str = "@object.json.tmp";
/// The log, which is also the lock file.
const WAL_FILE: &str = ".wal";
/// The crash journal of the store format before the log.
const LEGACY_JOURNAL: &str = ".journal.json";
const WAL_MAGIC: &[u8; 8] = b"OCUWAL1\0";
const WAL_FORMAT: u32 = 2;
/// The format of the first log, which was applied to the files at every
/// commit; such a log is checkpointed when found.
const WAL_FORMAT_APPLIED: u32 = 1;
const HEADER_LEN: u64 = 64;
/// `[len u32][crc32 u32]` before each record's payload.
const RECORD_HEAD: u64 = 8;
/// How long a [`Durability::Deferred`] commit may stay not durable when no
/// durable commit or sync comes along.
const DEFERRED_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Default size of the log that triggers a checkpoint.
const DEFAULT_CHECKPOINT_BYTES: u64 = 8 << 20;
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
/// Checkpoints happen when the log grows past a threshold (8 MiB by
/// default, [`FsStoreBuilder::checkpoint_bytes`]; a 1000-task release logs
/// about 3 MiB), and on demand with [`FsStore::checkpoint`] (`ocuroot state
/// checkpoint`): do that before handing the files to tools that do not read
/// the log, such as the original Ocuroot or a `git commit` of the store.
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
///   removes directories left empty, up to (not including) `refs/`.
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
/// # Stores of earlier versions
///
/// A log of format 1 (written by an earlier version, which also wrote every
/// file at each commit) is checkpointed when first locked, then used as
/// format 2; such an earlier version refuses a format 2 log rather than
/// misread it. Before the log, stores locked `<dir>/.lock` and journalled
/// multi-key batches in `<dir>/.journal.json`. A `.lock` file is ignored. A
/// `.journal.json` means such a version crashed in the middle of a batch;
/// opening the store fails with an error asking to finish it with that
/// version (or to inspect and delete the journal): it is not replayed.
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
    /// 8 MiB; see [`FsStore`]). A smaller log means files closer to current
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
                store.with_exclusive(false, |_| store.check_marker())?;
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

    // ----- locking -----------------------------------------------------------

    /// The log, opened once: read-write when possible. `create`: create it if
    /// missing (for a write); otherwise `None` when there is none.
    fn log_file(&self, create: bool) -> Result<Option<&LogFile>> {
        if let Some(log) = self.log.get() {
            if create && !log.writable {
                return Err(Error::store(format!(
                    "cannot write: the store log {} is read-only",
                    self.wal_path.display()
                )));
            }
            return Ok(Some(log));
        }
        let path = &self.wal_path;
        let rw = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path);
        let log = match rw {
            Ok(file) => LogFile {
                file,
                writable: true,
            },
            Err(e) if !create && is_absent(&e) => return Ok(None),
            // A read-only store (someone else's, or a read-only mount) can
            // still be read: flock works on a read-only descriptor.
            Err(e)
                if !create
                    && matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                match File::open(path) {
                    Ok(file) => LogFile {
                        file,
                        writable: false,
                    },
                    Err(e) if is_absent(&e) => return Ok(None),
                    Err(_) => return Err(Error::io("open store log", path, e)),
                }
            }
            Err(e) => return Err(Error::io("open store log", path, e)),
        };
        // Another thread may have opened it meanwhile: either is fine.
        let _ = self.log.set(log);
        Ok(self.log.get())
    }

    /// Run `f` holding the exclusive lock, with the log checked and this
    /// instance's overlay current. `write`: the log must be writable (and is
    /// created if missing).
    fn with_exclusive<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut Locked<'_>) -> Result<T>,
    ) -> Result<T> {
        let _local = self.local.write().unwrap_or_else(PoisonError::into_inner);
        let Some(log) = self
            .log_file(true)
            .or_else(|e| if write { Err(e) } else { self.log_file(false) })?
        else {
            return Err(Error::internal("the store log vanished while being opened"));
        };
        retry_interrupted(|| log.file.lock()).map_err(|e| Error::io("lock", &self.wal_path, e))?;
        let _unlock = Unlock(&log.file);
        let wal = Wal {
            file: &log.file,
            path: &self.wal_path,
            writable: log.writable,
        };
        let mut overlay = self.overlay.write().unwrap_or_else(PoisonError::into_inner);
        let header = match wal.read_header()? {
            Read::Current(header) if self.boot_ok(&header) => header,
            Read::Current(header) => self.after_restart(&wal, header)?,
            Read::Empty => self.init_wal(&wal)?,
            Read::Applied(end) => self.upgrade(&wal, end, &mut overlay)?,
        };
        self.refresh(&wal, &header, &mut overlay)?;
        let mut locked = Locked {
            wal,
            header,
            overlay: &mut overlay,
        };
        f(&mut locked)
    }

    /// Run `f` on a consistent view of the store (the overlay, and the files
    /// through it), holding the shared lock.
    fn with_shared<T>(&self, f: impl Fn(&Overlay) -> Result<T>) -> Result<T> {
        loop {
            {
                let _local = self.local.read().unwrap_or_else(PoisonError::into_inner);
                let Some(log) = self.log_file(false)? else {
                    // No log: no writer of this version has started. If one
                    // starts while we read, it creates the log before it
                    // writes anything: read again under the lock.
                    let out = f(&Overlay::default());
                    if exists(&self.wal_path)? {
                        continue;
                    }
                    return out;
                };
                let _shared = SharedLock::take(self, log)?;
                let wal = Wal {
                    file: &log.file,
                    path: &self.wal_path,
                    writable: false,
                };
                match wal.read_header()? {
                    Read::Empty => return f(&Overlay::default()),
                    Read::Current(header) if self.boot_ok(&header) => {
                        let overlay = self.current_overlay(&wal, &header)?;
                        return f(&overlay);
                    }
                    _ => {}
                }
            }
            // After a restart, or an old log: fix it under the exclusive
            // lock, then read.
            self.with_exclusive(false, |_| Ok(()))?;
        }
    }

    /// The overlay, brought up to `header` if another writer appended (the
    /// shared lock is held, so the log cannot change meanwhile).
    fn current_overlay(
        &self,
        wal: &Wal<'_>,
        header: &Header,
    ) -> Result<RwLockReadGuard<'_, Overlay>> {
        {
            let overlay = self.overlay.read().unwrap_or_else(PoisonError::into_inner);
            if overlay.is_current(header) {
                return Ok(overlay);
            }
        }
        {
            let mut overlay = self.overlay.write().unwrap_or_else(PoisonError::into_inner);
            self.refresh(wal, header, &mut overlay)?;
        }
        Ok(self.overlay.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Fold the records appended since the overlay was last brought up to
    /// date (all of them after a checkpoint).
    fn refresh(&self, wal: &Wal<'_>, header: &Header, overlay: &mut Overlay) -> Result<()> {
        if overlay.is_current(header) {
            return Ok(());
        }
        if overlay.read_to == 0
            || overlay.generation != header.generation
            || overlay.read_to > header.end
        {
            overlay.reset(header.generation);
        }
        let tolerate_damage = !wal.writable;
        let scan = wal.scan(overlay.read_to, header.end, tolerate_damage)?;
        for batch in scan.records {
            overlay.fold(batch);
        }
        if scan.end < header.end {
            tracing::warn!(
                store = %self.dir.display(),
                offset = scan.end,
                "the read-only store's log is damaged from this offset on; reading what precedes it"
            );
        }
        overlay.read_to = header.end;
        Ok(())
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

    /// Check the store's marker (and that no earlier version left a
    /// journal); the new marker if it needs writing.
    fn marker_update(&self) -> Result<Option<Vec<u8>>> {
        let journal = self.dir.join(LEGACY_JOURNAL);
        if exists(&journal)? {
            return Err(Error::store(format!(
                "{} holds a batch interrupted by an earlier version of Ocuroot, which this \
                 version does not replay: finish it by running that version once, or inspect \
                 the files it names and delete it",
                journal.display()
            )));
        }
        let path = self.dir.join(MARKER_FILE);
        let existing = match fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("read store marker", &path, e)),
        };
        marker_update(existing.as_deref(), &self.tag, &path.display().to_string())
    }

    // ----- the log -----------------------------------------------------------

    /// Whether the header's boot id says the log needs no check.
    fn boot_ok(&self, header: &Header) -> bool {
        current_boot_id() == Some(header.boot) || self.boot_checked.load(Ordering::Acquire)
    }

    /// Note that this instance has checked (or needs no check of) the log,
    /// which is all there is to know where no boot id is available.
    fn no_replay_needed(&self) {
        if current_boot_id().is_none() {
            self.boot_checked.store(true, Ordering::Release);
        }
    }

    /// Give a new (or never durably written) log its header. Exclusive lock
    /// held.
    fn init_wal(&self, wal: &Wal<'_>) -> Result<Header> {
        let header = Header::fresh(initial_generation());
        if !wal.writable {
            // Nothing was ever logged; a read-only store reads as it is.
            return Ok(header);
        }
        wal.write_header(&header)?;
        wal.truncate(HEADER_LEN)?;
        if self.fsync {
            self.synced(wal.file.sync_data(), wal.path)?;
            // The log's directory entry must be durable before any batch
            // relies on it.
            self.sync_dir(&self.dir)?;
        }
        Ok(header)
    }

    /// After a restart: records that were visible but not yet durable may be
    /// damaged. Cut the log before the first damaged record and stamp it with
    /// this boot's id. Exclusive lock held.
    fn after_restart(&self, wal: &Wal<'_>, header: Header) -> Result<Header> {
        if !wal.writable {
            tracing::warn!(
                store = %self.dir.display(),
                "the store log predates a restart, but the store is read-only: \
                 reading it up to its first damaged record, if any"
            );
            self.boot_checked.store(true, Ordering::Release);
            return Ok(header);
        }
        let scan = wal.scan(HEADER_LEN, header.end, true)?;
        let mut fixed = Header {
            boot: current_boot_id().unwrap_or([0; 16]),
            ..header
        };
        if scan.end < header.end {
            tracing::warn!(
                store = %self.dir.display(),
                offset = scan.end,
                lost = header.end - scan.end,
                "the store log was cut at a record damaged by a crash; \
                 no batch whose commit returned is lost"
            );
            fixed.end = scan.end;
            // Readers of the longer log must read it again.
            fixed.generation = header.generation.wrapping_add(1);
        }
        if fixed != header {
            wal.write_header(&fixed)?;
            wal.truncate(fixed.end)?;
            if self.fsync {
                self.synced(wal.file.sync_data(), wal.path)?;
            }
        }
        self.no_replay_needed();
        Ok(fixed)
    }

    /// A log of format 1 (every batch also written to the files, which may
    /// not be durable): write its records back and start a format 2 log.
    /// Exclusive lock held.
    fn upgrade(&self, wal: &Wal<'_>, end: u64, overlay: &mut Overlay) -> Result<Header> {
        wal.require_writable("upgrade the store log from format 1")?;
        overlay.reset(0);
        // Its last record may be torn: that batch never committed.
        for batch in wal.scan(HEADER_LEN, end, true)?.records {
            overlay.fold(batch);
        }
        tracing::info!(
            store = %self.dir.display(),
            keys = overlay.values.len(),
            "upgrading the store log to format 2"
        );
        let header = self.write_back(wal, initial_generation(), overlay)?;
        self.no_replay_needed();
        Ok(header)
    }

    /// Checkpoint if anything is logged. Exclusive lock held.
    fn checkpoint_locked(&self, locked: &mut Locked<'_>) -> Result<()> {
        if locked.header.end <= HEADER_LEN {
            return Ok(());
        }
        locked.wal.require_writable("checkpoint the store log")?;
        let next = locked.header.generation.wrapping_add(1);
        locked.header = self.write_back(&locked.wal, next, locked.overlay)?;
        Ok(())
    }

    /// Write every value of `overlay` to its file, make the files and their
    /// directories durable, then empty the log as generation `generation`.
    /// Exclusive lock held.
    fn write_back(&self, wal: &Wal<'_>, generation: u64, overlay: &mut Overlay) -> Result<Header> {
        // Deletions first (they remove emptied directories, which a put in
        // parallel could be about to use), then the puts from a few threads:
        // creating directories and files is most of a checkpoint's cost.
        //
        // A key whose file cannot be written (a name the filesystem refuses,
        // a path taken by something else) must not stall every later
        // checkpoint, nor be lost: it is reported, and carried over into the
        // emptied log, while every other key is written back.
        let mut puts = Vec::new();
        let failed = Mutex::new(Vec::new());
        for (key, value) in &overlay.values {
            match value {
                Some(bytes) => puts.push((key.as_str(), bytes.as_slice())),
                None => {
                    if let Err(e) = self.delete_file(key) {
                        lock(&failed).push((key.as_str(), e));
                    }
                }
            }
        }
        self.in_parallel(&puts, |(key, bytes)| {
            if let Err(e) = self.put_file(key, bytes) {
                lock(&failed).push((key, e));
            }
            Ok(())
        })?;
        let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
        for (key, e) in failed.iter().take(10) {
            tracing::warn!(
                store = %self.dir.display(),
                key = %crate::refs::abbreviate(key),
                error = %e,
                "a checkpoint could not write this key's file; it stays in the store log"
            );
        }
        let carried: Vec<(&str, Option<&[u8]>)> = failed
            .iter()
            .map(|(key, _)| (*key, overlay.values[*key].as_deref()))
            .collect();
        if self.fsync {
            let written: Vec<&String> = overlay
                .values
                .keys()
                .filter(|k| !failed.iter().any(|(f, _)| f == k))
                .collect();
            self.sync_written(written.into_iter())?;
        }
        let mut header = Header::fresh(generation);
        let record = if carried.is_empty() {
            None
        } else {
            let record = encode_record(&carried)?;
            wal.write_at(&record, HEADER_LEN)?;
            header.end = HEADER_LEN + record.len() as u64;
            Some(record)
        };
        wal.write_header(&header)?;
        wal.truncate(header.end)?;
        if self.fsync {
            self.synced(wal.file.sync_all(), wal.path)?;
        }
        let kept: Vec<(String, Option<Vec<u8>>)> = carried
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
            .collect();
        overlay.reset(generation);
        if record.is_some() {
            overlay.fold(kept);
            overlay.read_to = header.end;
        }
        let now = LogPos {
            generation,
            offset: header.end,
        };
        let mut durable = lock(&self.durable);
        if !durable.covers(now) {
            *durable = now;
        }
        Ok(header)
    }

    /// Append a batch to the log and make it visible (not yet durable).
    /// Exclusive lock held.
    fn append(&self, locked: &mut Locked<'_>, writes: &[(&str, Option<&[u8]>)]) -> Result<LogPos> {
        let record = encode_record(writes)?;
        let at = locked.header.end;
        locked.wal.write_at(&record, at)?;
        let header = Header {
            end: at + record.len() as u64,
            ..locked.header
        };
        // The commit point: from here on every reader sees the batch.
        locked.wal.write_header(&header)?;
        locked.header = header;
        for (key, value) in writes {
            locked
                .overlay
                .values
                .insert((*key).to_string(), value.map(<[u8]>::to_vec));
        }
        locked.overlay.read_to = header.end;
        let pos = LogPos {
            generation: header.generation,
            offset: header.end,
        };
        let mut appended = lock(&self.appended);
        if !appended.covers(pos) {
            *appended = pos;
        }
        Ok(pos)
    }

    /// Make the log durable up to `upto` (no lock held): one `fdatasync`
    /// covers every record this instance appended before it starts.
    fn sync_log(&self, upto: LogPos) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        let mut durable = lock(&self.durable);
        if durable.covers(upto) {
            return Ok(());
        }
        let target = *lock(&self.appended);
        let Some(log) = self.log.get() else {
            return Err(Error::internal("syncing a store log that was never opened"));
        };
        *lock(&self.last_sync) = std::time::Instant::now();
        self.synced(log.file.sync_data(), &self.wal_path)
            .map_err(|e| e.context("the batch is logged, but may not be durable"))?;
        if !durable.covers(target) {
            *durable = target;
        }
        Ok(())
    }

    // ----- files -------------------------------------------------------------

    /// `refs/<key>`, checking each segment can only name a child directory
    /// (the keys are validated already; this is a second line of defence).
    fn key_dir(&self, key: &str) -> Result<PathBuf> {
        let mut path = self.refs.clone();
        for seg in key.split('/') {
            if seg.is_empty()
                || seg == "."
                || seg == ".."
                || seg == OBJECT_FILE
                || seg.contains(['\\', '\0'])
            {
                return Err(Error::invalid_ref(format!(
                    "key {key:?} cannot be stored in a directory: bad segment {seg:?}"
                )));
            }
            path.push(seg);
        }
        Ok(path)
    }

    /// The current value of `key`: logged, else in its file.
    fn read_entry(&self, overlay: &Overlay, key: &str) -> Result<Option<Entry>> {
        match overlay.values.get(key) {
            Some(Some(value)) => Ok(Some(Entry {
                version: Version::of_bytes(value),
                value: value.clone(),
            })),
            Some(None) => Ok(None),
            None => self.read_file_once(overlay, key),
        }
    }

    /// The current version of `key`.
    fn current_version(&self, overlay: &Overlay, key: &str) -> Result<Option<Version>> {
        match overlay.values.get(key) {
            Some(value) => Ok(value.as_deref().map(Version::of_bytes)),
            None => Ok(self.read_file_once(overlay, key)?.map(|e| e.version)),
        }
    }

    /// The file of `key`, remembering for the rest of the log generation
    /// that it does not exist: files change only by checkpoints (which start
    /// a new generation), so an absent key costs one lookup, not one per
    /// read. (Files created by other tools meanwhile are not seen by this
    /// instance until then; see [`FsStore`].)
    fn read_file_once(&self, overlay: &Overlay, key: &str) -> Result<Option<Entry>> {
        if overlay.read_to == 0 {
            // No log: nothing to key the memory on.
            return self.read_file(key);
        }
        {
            let absent = lock(&self.absent);
            if absent.0 == overlay.generation && absent.1.contains(key) {
                return Ok(None);
            }
        }
        let entry = self.read_file(key)?;
        if entry.is_none() {
            let mut absent = lock(&self.absent);
            if absent.0 != overlay.generation {
                absent.0 = overlay.generation;
                absent.1.clear();
            }
            absent.1.insert(key.to_string());
        }
        Ok(entry)
    }

    fn read_file(&self, key: &str) -> Result<Option<Entry>> {
        let path = self.key_dir(key)?.join(OBJECT_FILE);
        match fs::read(&path) {
            Ok(value) => Ok(Some(Entry {
                version: Version::of_bytes(&value),
                value,
            })),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    fn put_file(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.key_dir(key)?;
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        self.write_atomic(&dir.join(OBJECT_FILE), &dir.join(OBJECT_TEMP), bytes, false)
    }

    fn delete_file(&self, key: &str) -> Result<()> {
        let dir = self.key_dir(key)?;
        let path = dir.join(OBJECT_FILE);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if is_absent(&e) => return Ok(()),
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
        // We hold the exclusive lock, so a temporary file is a crash leftover.
        remove_if_exists(&dir.join(OBJECT_TEMP))?;
        let mut current = dir;
        while current != self.refs && fs::remove_dir(&current).is_ok() {
            match current.parent() {
                Some(parent) => current = parent.to_path_buf(),
                None => break,
            }
        }
        Ok(())
    }

    /// Write `bytes` to `temp` and rename it to `path`; with `durable` (and
    /// fsync on), fsync the file first. The caller fsyncs the directory.
    fn write_atomic(&self, path: &Path, temp: &Path, bytes: &[u8], durable: bool) -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(temp)
            .map_err(|e| Error::io("create", temp, e))?;
        file.write_all(bytes)
            .map_err(|e| Error::io("write", temp, e))?;
        if durable && self.fsync {
            self.synced(file.sync_all(), temp)?;
        }
        drop(file);
        fs::rename(temp, path).map_err(|e| Error::io("rename into place", path, e))
    }

    /// Count an fsync and turn its error into ours.
    fn synced(&self, result: io::Result<()>, path: &Path) -> Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        result.map_err(|e| Error::io("fsync", path, e))
    }

    /// Make the files of `keys` and their directories (new ones, and those
    /// emptied of a removed one) durable. On Linux, beyond a few dozen keys,
    /// one `syncfs` of the store's filesystem does it with one journal
    /// commit, where an `fsync` per file and directory costs a round trip
    /// each; elsewhere, or for a few keys, each is `fsync`ed.
    fn sync_written<'k>(&self, keys: impl ExactSizeIterator<Item = &'k String>) -> Result<()> {
        #[cfg(target_os = "linux")]
        if keys.len() > SYNCFS_KEYS {
            let dir = File::open(&self.dir).map_err(|e| Error::io("open", &self.dir, e))?;
            return self.synced(rustix::fs::syncfs(&dir).map_err(io::Error::from), &self.dir);
        }
        let mut files = Vec::new();
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        for key in keys {
            let key_dir = self.key_dir(key)?;
            files.push(key_dir.join(OBJECT_FILE));
            // Every existing ancestor up to the store directory: new
            // directories need their parent's entry made durable, removed
            // ones their removal.
            let mut dir = key_dir.as_path();
            while dirs.insert(dir.to_path_buf()) && dir != self.dir {
                match dir.parent() {
                    Some(parent) => dir = parent,
                    None => break,
                }
            }
        }
        files.extend(dirs);
        self.sync_paths(&files)
    }

    /// Fsync each file or directory of `paths` that exists (fsync on), from
    /// several threads: the fsyncs of a checkpoint are independent, and
    /// disks serve concurrent ones faster than the same number in a row.
    fn sync_paths(&self, paths: &[PathBuf]) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        self.in_parallel(paths, |p| self.sync_path(p))
    }

    /// `f` on every item, from a few threads when there are many; stops at
    /// the first error.
    fn in_parallel<T: Sync>(&self, items: &[T], f: impl Fn(&T) -> Result<()> + Sync) -> Result<()> {
        if items.len() < 2 * CHECKPOINT_THREADS {
            return items.iter().try_for_each(f);
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..CHECKPOINT_THREADS)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        while !failed.load(Ordering::Relaxed) {
                            let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                                break;
                            };
                            if let Err(e) = f(item) {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(Error::internal("a checkpoint thread panicked")))
            })
        })
    }

    /// Fsync a file or directory if it exists.
    fn sync_path(&self, path: &Path) -> Result<()> {
        match File::open(path) {
            Ok(f) => self.synced(f.sync_all(), path),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(Error::io("open for fsync", path, e)),
        }
    }

    /// Fsync a directory if it exists (fsync on).
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        match File::open(dir) {
            Ok(f) => self.synced(f.sync_all(), dir),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(Error::io("open directory", dir, e)),
        }
    }

    /// Keys starting with `prefix`: the files', with the log's puts added
    /// and its deletions taken away.
    fn list_keys(&self, overlay: &Overlay, prefix: &str) -> Result<Vec<String>> {
        let mut keys: BTreeSet<String> = self.list_files(prefix)?.into_iter().collect();
        for (key, value) in overlay.values.range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        )) {
            if !key.starts_with(prefix) {
                break;
            }
            if value.is_some() {
                keys.insert(key.clone());
            } else {
                keys.remove(key);
            }
        }
        Ok(keys.into_iter().collect())
    }

    /// Keys with a file under `refs/` starting with `prefix`, walking only
    /// the subtree of the prefix's directory part.
    fn list_files(&self, prefix: &str) -> Result<Vec<String>> {
        let (dir_part, partial) = match prefix.rfind('/') {
            Some(i) => (&prefix[..i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let start = if dir_part.is_empty() {
            self.refs.clone()
        } else {
            self.key_dir(dir_part)?
        };
        let mut keys = Vec::new();
        let entries = match fs::read_dir(&start) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => return Ok(keys),
            Err(e) => return Err(Error::io("list", &start, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &start, e))?;
            let Some(name) = child_dir_name(&entry)? else {
                continue;
            };
            if !name.starts_with(partial) {
                continue;
            }
            let key = if dir_part.is_empty() {
                name
            } else {
                format!("{dir_part}/{name}")
            };
            self.walk(&entry.path(), key, &mut keys)?;
        }
        Ok(keys)
    }

    fn walk(&self, dir: &Path, key: String, out: &mut Vec<String>) -> Result<()> {
        if validate_key(&key).is_err() {
            // Not something this store wrote (and not addressable): skip it.
            tracing::debug!(path = %dir.display(), "skipping a directory that is not a valid key");
            return Ok(());
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            // Removed by a writer of another process that ignores the lock.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("list", dir, e)),
        };
        let mut has_object = false;
        let mut children = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            if entry.file_name() == OBJECT_FILE {
                has_object = true;
            } else if let Some(name) = child_dir_name(&entry)? {
                children.push((entry.path(), name));
            }
        }
        for (path, name) in children {
            self.walk(&path, format!("{key}/{name}"), out)?;
        }
        if has_object {
            out.push(key);
        }
        Ok(())
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
            plan_batch(ops, |k| self.current_version(overlay, k), Version::of_bytes)
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
                .map(|(k, w): (&str, Planned<'_>)| (k, w.map(|(bytes, _)| bytes)))
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
            (Some(pos), Durability::Deferred | Durability::Shared)
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

/// The log's header; see the format on [`FsStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    boot: [u8; 16],
    generation: u64,
    end: u64,
}

/// What the first bytes of the log hold.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// Nothing (a log whose creation never became durable: nothing in it
    /// committed).
    Empty,
    /// A format 2 header.
    Current(Header),
    /// A format 1 header, with its end.
    Applied(u64),
}

impl Header {
    /// An empty log, written in this boot.
    fn fresh(generation: u64) -> Header {
        Header {
            boot: current_boot_id().unwrap_or([0; 16]),
            generation,
            end: HEADER_LEN,
        }
    }

    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(WAL_MAGIC);
        b[8..12].copy_from_slice(&WAL_FORMAT.to_le_bytes());
        b[12..28].copy_from_slice(&self.boot);
        b[28..36].copy_from_slice(&self.generation.to_le_bytes());
        b[36..44].copy_from_slice(&self.end.to_le_bytes());
        let crc = crc32(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8; HEADER_LEN as usize], path: &Path) -> Result<Read> {
        if b.iter().all(|x| *x == 0) {
            return Ok(Read::Empty);
        }
        let corrupt = |what: &str| {
            Error::store(format!(
                "corrupt store log {}: {what}; if no Ocuroot is running on this store, \
                 moving the file away keeps the files under refs/ (and loses the batches \
                 logged since the last checkpoint)",
                path.display()
            ))
        };
        if &b[0..8] != WAL_MAGIC {
            return Err(corrupt("not an Ocuroot store log (bad magic)"));
        }
        if crc32(&b[..60]).to_le_bytes() != b[60..64] {
            return Err(corrupt("header checksum mismatch"));
        }
        let format = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let end = le_u64(&b[36..44]);
        if end < HEADER_LEN {
            return Err(corrupt("inconsistent header"));
        }
        match format {
            WAL_FORMAT => {
                let mut boot = [0u8; 16];
                boot.copy_from_slice(&b[12..28]);
                Ok(Read::Current(Header {
                    boot,
                    generation: le_u64(&b[28..36]),
                    end,
                }))
            }
            WAL_FORMAT_APPLIED => Ok(Read::Applied(end)),
            _ => Err(Error::store(format!(
                "store log {} has format {format}; this Ocuroot reads format {WAL_FORMAT}",
                path.display()
            ))),
        }
    }
}

/// The log, locked, for the duration of one operation.
struct Wal<'a> {
    file: &'a File,
    path: &'a Path,
    writable: bool,
}

/// The records of part of a log, in order.
struct Scan {
    records: Vec<Batch>,
    /// End of the last valid record.
    end: u64,
}

impl Wal<'_> {
    fn require_writable(&self, what: &str) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::store(format!(
                "cannot {what}: the store log {} is read-only",
                self.path.display()
            )))
        }
    }

    fn read_header(&self) -> Result<Read> {
        let mut b = [0u8; HEADER_LEN as usize];
        let n = read_full_at(self.file, &mut b, 0)
            .map_err(|e| Error::io("read store log", self.path, e))?;
        if n < b.len() {
            // Shorter than a header: its creation never completed.
            return Ok(Read::Empty);
        }
        Header::decode(&b, self.path)
    }

    fn write_header(&self, header: &Header) -> Result<()> {
        self.write_at(&header.encode(), 0)
    }

    fn write_at(&self, bytes: &[u8], offset: u64) -> Result<()> {
        write_all_at(self.file, bytes, offset)
            .map_err(|e| Error::io("write store log", self.path, e))
    }

    fn truncate(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io("truncate store log", self.path, e))
    }

    /// The records from `from` up to `end`. A damaged record (short, or
    /// failing its checksum) ends the scan when `tolerate_damage` (after a
    /// restart, where it was never durable), and is an error otherwise.
    fn scan(&self, from: u64, end: u64, tolerate_damage: bool) -> Result<Scan> {
        let mut scan = Scan {
            records: Vec::new(),
            end: from,
        };
        if end <= from {
            return Ok(scan);
        }
        let mut buf = vec![0u8; (end - from) as usize];
        let n = read_full_at(self.file, &mut buf, from)
            .map_err(|e| Error::io("read store log", self.path, e))?;
        buf.truncate(n);
        let mut at = 0usize;
        while scan.end < end {
            match split_record(&buf[at..]) {
                Some((payload, len)) => {
                    scan.records
                        .push(decode_batch(payload, self.path, scan.end)?);
                    at += len;
                    scan.end += len as u64;
                }
                None if tolerate_damage => break,
                None => {
                    return Err(Error::store(format!(
                        "corrupt store log {}: the record at offset {} is damaged, so the batches \
                         logged from there on cannot be read; if no Ocuroot is running on this \
                         store, moving the file away keeps the files under refs/ (and loses the \
                         batches logged since the last checkpoint)",
                        self.path.display(),
                        scan.end
                    )));
                }
            }
        }
        Ok(scan)
    }
}

/// The payload of the record at the start of `buf` and the record's whole
/// length, or `None` if it is short or fails its checksum.
fn split_record(buf: &[u8]) -> Option<(&[u8], usize)> {
    let head = buf.get(..RECORD_HEAD as usize)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let total = RECORD_HEAD as usize + len;
    let payload = buf.get(RECORD_HEAD as usize..total)?;
    (crc32(payload) == crc).then_some((payload, total))
}

/// One logged batch: final value (or deletion) per key.
type Batch = Vec<(String, Option<Vec<u8>>)>;

#[derive(serde::Serialize)]
struct RecordOut<'a> {
    ops: Vec<OpOut<'a>>,
}

#[derive(serde::Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum OpOut<'a> {
    Put {
        key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes: Option<&'a [u8]>,
    },
    Delete {
        key: &'a str,
    },
}

#[derive(serde::Deserialize)]
struct RecordIn {
    ops: Vec<OpIn>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum OpIn {
    Put {
        key: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        bytes: Option<Vec<u8>>,
    },
    Delete {
        key: String,
    },
}

/// `[len][crc32][payload]` for a batch.
fn encode_record(writes: &[(&str, Option<&[u8]>)]) -> Result<Vec<u8>> {
    let ops = writes
        .iter()
        .map(|(key, value)| match value {
            Some(v) => match std::str::from_utf8(v) {
                Ok(text) => OpOut::Put {
                    key,
                    text: Some(text),
                    bytes: None,
                },
                Err(_) => OpOut::Put {
                    key,
                    text: None,
                    bytes: Some(v),
                },
            },
            None => OpOut::Delete { key },
        })
        .collect();
    let mut buf = vec![0u8; RECORD_HEAD as usize];
    serde_json::to_writer(&mut buf, &RecordOut { ops })?;
    let payload = &buf[RECORD_HEAD as usize..];
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::invalid_input("batch too large for the store log (over 4 GiB)"))?;
    let crc = crc32(payload);
    buf[0..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

fn corrupt_record(path: &Path, offset: u64, what: impl std::fmt::Display) -> Error {
    Error::store(format!(
        "corrupt store log {}: the record at offset {offset} {what}",
        path.display()
    ))
}

fn decode_batch(payload: &[u8], path: &Path, offset: u64) -> Result<Batch> {
    let record: RecordIn = serde_json::from_slice(payload)
        .map_err(|e| corrupt_record(path, offset, format_args!("is not a batch: {e}")))?;
    let mut batch = Vec::with_capacity(record.ops.len());
    for op in record.ops {
        let (key, value) = match op {
            OpIn::Put { key, text, bytes } => {
                let value = match (text, bytes) {
                    (Some(t), None) => t.into_bytes(),
                    (None, Some(b)) => b,
                    _ => {
                        return Err(corrupt_record(
                            path,
                            offset,
                            format_args!(
                                "puts {key} without exactly one of \"text\" and \"bytes\""
                            ),
                        ));
                    }
                };
                (key, Some(value))
            }
            OpIn::Delete { key } => (key, None),
        };
        // Without the length limits: a log written before them must replay.
        crate::refs::validate_stored_key(&key)
            .map_err(|e| corrupt_record(path, offset, format_args!("names {e}")))?;
        batch.push((key, value));
    }
    Ok(batch)
}

/// This boot's id: on Linux `/proc/sys/kernel/random/boot_id` (a UUID,
/// as 16 bytes); elsewhere unknown.
fn current_boot_id() -> Option<[u8; 16]> {
    static BOOT_ID: OnceLock<Option<[u8; 16]>> = OnceLock::new();
    *BOOT_ID.get_or_init(|| {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let hex: Vec<u8> = text
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .unwrap_or_default();
        let mut id = [0u8; 16];
        if hex.len() == 32 {
            for (i, pair) in hex.chunks(2).enumerate() {
                id[i] = pair[0] << 4 | pair[1];
            }
        } else {
            // Not the usual UUID: hash it.
            id[..8].copy_from_slice(&Version::of_bytes(text.as_bytes()).0.to_le_bytes());
            let salted = format!("boot:{text}");
            id[8..].copy_from_slice(&Version::of_bytes(salted.as_bytes()).0.to_le_bytes());
        }
        (id != [0; 16]).then_some(id)
    })
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, as zlib's `crc32`).
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c = CRC_TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(not(unix))]
fn write_all_at(mut file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// Read into `buf` from `offset` until it is full or the file ends; the
/// number of bytes read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match read_at(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

/// The name of `entry` if it is a real directory (not a symlink) with a
/// UTF-8 name.
fn child_dir_name(entry: &fs::DirEntry) -> Result<Option<String>> {
    let file_type = entry
        .file_type()
        .map_err(|e| Error::io("list", &entry.path(), e))?;
    if !file_type.is_dir() {
        return Ok(None);
    }
    Ok(entry.file_name().into_string().ok())
}

fn retry_interrupted<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if is_absent(&e) => Ok(false),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn headers_round_trip() {
        let h = Header {
            boot: [7; 16],
            generation: 100,
            end: 200,
        };
        let path = Path::new("x/.wal");
        assert_eq!(Header::decode(&h.encode(), path).unwrap(), Read::Current(h));
        assert_eq!(Header::decode(&[0; 64], path).unwrap(), Read::Empty);
        let mut bad = h.encode();
        bad[30] ^= 1;
        assert!(Header::decode(&bad, path).is_err());
    }

    #[test]
    fn positions_cover_earlier_ones_and_earlier_generations() {
        let p = |generation, offset| LogPos { generation, offset };
        assert!(p(1, 100).covers(p(1, 100)));
        assert!(p(1, 100).covers(p(1, 64)));
        assert!(!p(1, 64).covers(p(1, 100)));
        assert!(p(2, 64).covers(p(1, 1000)));
        assert!(!p(1, 1000).covers(p(2, 64)));
    }

    #[test]
    fn damaged_records_are_not_split() {
        let record = encode_record(&[("a", Some(b"1".as_slice()))]).unwrap();
        let (payload, len) = split_record(&record).unwrap();
        assert_eq!(len, record.len());
        assert_eq!(payload, &record[8..]);
        assert!(split_record(&record[..record.len() - 1]).is_none());
        let mut bad = record.clone();
        bad[10] ^= 1;
        assert!(split_record(&bad).is_none());
    }
}
