//! [`FsStore`]: a [`Store`] in a directory. The layout, locking, write-ahead
//! log and crash recovery are documented on the type.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};

use super::{Entry, Op, Planned, Store, Version, plan_batch, validate_key, validate_prefix};
use crate::{Error, Result};

const MARKER_FILE: &str = ".ocuroot-store";
const STORE_FORMAT: u64 = 3;
const REFS_DIR: &str = "refs";
const OBJECT_FILE: &str = "@object.json";
const OBJECT_TEMP: &str = "@object.json.tmp";
/// The write-ahead log, which is also the lock file.
const WAL_FILE: &str = ".wal";
/// The crash journal of the store format before the write-ahead log.
const LEGACY_JOURNAL: &str = ".journal.json";
const WAL_MAGIC: &[u8; 8] = b"OCUWAL1\0";
const WAL_FORMAT: u32 = 1;
const HEADER_LEN: u64 = 64;
/// `[len u32][crc32 u32]` before each record's payload.
const RECORD_HEAD: u64 = 8;
/// Default size of the write-ahead log that triggers a checkpoint.
const DEFAULT_CHECKPOINT_BYTES: u64 = 8 << 20;
/// Threads that fsync the files of a checkpoint.
const CHECKPOINT_SYNC_THREADS: usize = 8;

/// A [`Store`] in a directory: one JSON file per key, atomic and durable
/// batches, safe for concurrent use by threads and processes.
///
/// # Layout
///
/// ```text
/// <dir>/.ocuroot-store            {"version":3,"Tags":{"state":{}}}   (or "intent")
/// <dir>/refs/<key>/@object.json   the value of <key>, one directory per key segment
/// <dir>/.wal                      write-ahead log of recent batches, and the lock file
/// ```
///
/// For example the key `repo/-/pkg.ocu.star/@r1/deploy/prod` is stored at
/// `refs/repo/-/pkg.ocu.star/@r1/deploy/prod/@object.json`. `@object.json`
/// cannot be a key segment, so a value never clashes with a deeper key. The
/// version of a value is the FNV-1a hash of the file ([`Version::of_bytes`]),
/// so files written by the original Ocuroot, by hand or by `git pull` have
/// versions too. `.ocuroot-store` is created if missing; a store of another
/// format version is refused. The files under `refs/` are always complete
/// and current: the log is only needed to recover from crashes.
///
/// # Atomicity and locking
///
/// - [`Store::commit`] holds an exclusive lock (`flock` via `fd-lock` on
///   `<dir>/.wal`, opened afresh for each operation because `flock` locks
///   belong to an open file description, plus an in-process `RwLock`), so
///   batches from threads and processes are serialised, and expectations are
///   checked and applied without interference.
/// - Reads ([`Store::get`], [`Store::get_many`], [`Store::list`], and
///   commits made only of [`Op::Check`]s) hold the shared lock, so they never
///   see half of a batch. A store without a `.wal` (never written by this
///   version, or written by hand) is read without a lock, and read again
///   under the lock if a `.wal` appeared meanwhile; so reads never create
///   anything.
/// - Every file is written to a temporary file in the same directory and
///   renamed over `@object.json`, so even a reader that ignores the lock sees
///   the old or the new file, never part of one.
/// - Deleting a value removes directories left empty, up to (not including)
///   `refs/`.
///
/// # Durability: the write-ahead log
///
/// A commit, under the exclusive lock:
///
/// 1. completes a batch left half applied by a crashed writer, if any (see
///    below);
/// 2. checks the expectations against the files;
/// 3. appends one record holding the final value (or the deletion) of every
///    written key to `.wal`, marks it "not applied" in the log's header, and
///    makes the log durable with one `fdatasync`: **the batch is committed
///    once this returns**;
/// 4. writes the files (temporary file and rename, no `fsync`) and removes
///    emptied directories;
/// 5. marks the record "applied" in the header (no `fsync`).
///
/// So a commit of any number of keys costs **one** `fsync` (the first commit
/// to a new store costs two more, to create the log durably). The files are
/// left for the kernel to write back; the log holds everything needed to
/// redo them until the next checkpoint.
///
/// # Crash recovery
///
/// - **A process dies mid-batch** (after step 3): the header says the last
///   record is not applied. Whoever next takes a lock (opening the store, a
///   commit, or a reader, which upgrades to the exclusive lock) applies that
///   record again before doing anything else. Replaying is idempotent: the
///   record holds final values, and no batch can run in between. An I/O
///   error while applying leaves the record unapplied, to be completed the
///   same way.
/// - **A process dies before step 3 completes**: the record may be partly
///   written. A final record with a bad length or checksum is a batch that
///   never committed (its commit never returned): it is ignored and cut off.
/// - **The machine loses power or crashes**: the log reached the disk, but
///   file writes of recent batches may not have. The header holds the
///   kernel's boot id (`/proc/sys/kernel/random/boot_id`, read with
///   `std::fs`) from when the log was last reset. When a store is opened or
///   locked and the header's boot id is not the current one, every record in
///   the log is replayed in order (in effect, each logged key gets its last
///   logged value), then the log is checkpointed. On systems without a boot
///   id (anything but Linux), this full replay is done whenever a process
///   first opens an existing store, and each such open costs a checkpoint.
///
/// Caveat of the full replay: a value edited by hand (or by `git pull`)
/// after it was last committed, and before the next checkpoint, is
/// overwritten by its logged value after a restart. Call
/// [`FsStore::checkpoint`] (which empties the log) before handing the files
/// to other tools.
///
/// # Checkpoints
///
/// When the log grows beyond a threshold (8 MiB by default,
/// [`FsStoreBuilder::checkpoint_bytes`]) the committer, after applying its
/// batch, `fsync`s every file and directory touched by the logged records
/// (each once, from a few threads), then truncates the log back to its
/// header (with the current boot id) and `fsync`s it. [`FsStore::checkpoint`]
/// does the same on demand. So the `fsync`s a commit saves are not all gone:
/// a checkpoint costs one per distinct file and directory written since the
/// last one (keys written again and again cost one each, per checkpoint).
/// With the default threshold a 1000-task release logs about 3 MiB, so a
/// checkpoint comes every few releases.
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
/// 8..12   format version (u32) = 1
/// 12..28  boot id (16 bytes; zero when unknown)
/// 28..36  offset of the last record (u64; 0 when there is none)
/// 36..44  end of the log (u64; 64 when empty)
/// 44      1 if the last record has been applied to the files, else 0
/// 45..60  zero
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
/// header that fails its checksum, or a damaged record before the last one,
/// is a [`Store`](crate::ErrorKind::Store) error naming the file.
///
/// # Stores of earlier versions
///
/// Earlier versions of this store locked `<dir>/.lock` and journalled
/// multi-key batches in `<dir>/.journal.json`. A `.lock` file is ignored. A
/// `.journal.json` means an earlier version crashed in the middle of a batch;
/// opening such a store fails with an error asking to finish it with that
/// version (or to inspect and delete the journal): it is not replayed. Do
/// not run an earlier version on the same store at the same time, as they
/// lock different files.
#[derive(Debug)]
pub struct FsStore {
    dir: PathBuf,
    refs: PathBuf,
    wal_path: PathBuf,
    tag: String,
    fsync: bool,
    checkpoint_bytes: u64,
    /// Serialises this process's threads before they take the file lock:
    /// readers share it, a committing batch holds it exclusively.
    local: RwLock<()>,
    /// Whether the directory and marker are known to exist.
    created: AtomicBool,
    /// Whether this instance needs no full replay whatever the header's boot
    /// id says: set where no boot id is available once the log has been
    /// replayed (or found absent), and on a read-only store once warned.
    /// Where there is a boot id, the header's is compared on every lock.
    boot_checked: AtomicBool,
    /// How many `fsync`s this instance made (for tests).
    syncs: AtomicU64,
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

    /// The size of the write-ahead log beyond which a commit checkpoints it
    /// (default 8 MiB; see [`FsStore`]). Smaller logs mean shorter replays
    /// after a restart but more frequent checkpoints; 0 checkpoints after
    /// every commit.
    pub fn checkpoint_bytes(mut self, bytes: u64) -> FsStoreBuilder {
        self.checkpoint_bytes = bytes;
        self
    }

    /// Open the store.
    ///
    /// An existing store has its `.ocuroot-store` marker checked (a marker of
    /// another format version is refused; the tag is added if absent) and a
    /// batch interrupted by a crash, or lost by a restart, completed (see
    /// [`FsStore`]). A store that does not exist yet is not created until the
    /// first write, so read-only commands (`release lint`, `state get`) leave
    /// no trace; until then it reads as empty.
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
            created: AtomicBool::new(false),
            boot_checked: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        };
        if exists(&store.dir)? {
            if exists(&store.wal_path)? {
                // Recovery (an unapplied batch, a restart) happens on locking.
                store.with_exclusive(false, |_, _| store.check_marker())?;
            } else {
                // Never written by this version: nothing to recover, and
                // nothing to lock unless the marker needs writing.
                store.no_replay_needed();
                if store.marker_update()?.is_some() {
                    store.with_exclusive(false, |_, _| store.check_marker())?;
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

    /// Where the value of `key` is stored (the key must be valid).
    pub fn object_path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.key_dir(key)?.join(OBJECT_FILE))
    }

    /// Make every logged batch durable in the files and empty the
    /// write-ahead log (see [`FsStore`]). Commits do this on their own when
    /// the log grows large; call it before other tools edit the files, or to
    /// bound the replay after a restart. Does nothing to a store never
    /// written by this version.
    pub fn checkpoint(&self) -> Result<()> {
        if !exists(&self.wal_path)? {
            return Ok(());
        }
        self.with_exclusive(true, |wal, header| {
            self.checkpoint_locked(wal, header).map(drop)
        })
    }

    /// How many `fsync`s this instance has made (files, directories and the
    /// log). For tests and benchmarks.
    #[doc(hidden)]
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Log the puts and deletes of `ops` (expectations ignored) as a
    /// committed batch without applying it, as a writer that crashed right
    /// after its `fsync` would. For tests.
    #[doc(hidden)]
    pub fn log_without_applying(&self, ops: &[Op]) -> Result<()> {
        for op in ops {
            validate_key(op.key())?;
        }
        self.ensure_dir()?;
        self.with_exclusive(true, |wal, mut header| {
            self.ensure_marker()?;
            let writes: Vec<(&str, Option<&[u8]>)> = ops
                .iter()
                .filter_map(|op| match op {
                    Op::Put { key, value, .. } => Some((key.as_str(), Some(value.as_slice()))),
                    Op::Delete { key, .. } => Some((key.as_str(), None)),
                    Op::Check { .. } => None,
                })
                .collect();
            self.append(wal, &mut header, &writes)
        })
    }

    /// Write `boot` as the boot id in the log's header, as if the log had
    /// been written before a restart. For tests.
    #[doc(hidden)]
    pub fn set_wal_boot_id(&self, boot: [u8; 16]) -> Result<()> {
        self.ensure_dir()?;
        self.with_exclusive(true, |wal, header| {
            wal.write_header(&Header { boot, ..header })
        })
    }

    // ----- locking -----------------------------------------------------------

    /// Open `.wal` (creating it): read-write, or read-only when the store
    /// cannot be written and `write` is false.
    fn open_wal(&self, write: bool) -> Result<(File, bool)> {
        let path = &self.wal_path;
        let rw = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path);
        match rw {
            Ok(f) => Ok((f, true)),
            // A read-only store (someone else's, or a read-only mount) can
            // still be read: flock works on a read-only descriptor.
            Err(e)
                if !write
                    && matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                File::open(path)
                    .map(|f| (f, false))
                    .map_err(|_| Error::io("open store log", path, e))
            }
            Err(e) => Err(Error::io("open store log", path, e)),
        }
    }

    /// Run `f` holding the exclusive lock, after initialising the log or
    /// recovering from a crash. `write`: the log must be writable.
    fn with_exclusive<T>(
        &self,
        write: bool,
        f: impl FnOnce(&Wal<'_>, Header) -> Result<T>,
    ) -> Result<T> {
        let _local = self.local.write().unwrap_or_else(PoisonError::into_inner);
        let (file, writable) = self.open_wal(write)?;
        let mut lock = fd_lock::RwLock::new(file);
        let guard = loop {
            match lock.write() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other.map_err(|e| Error::io("lock", &self.wal_path, e))?,
            }
        };
        let wal = Wal {
            file: &guard,
            path: &self.wal_path,
            writable,
        };
        let header = match wal.read_header()? {
            Some(header) => self.recover(&wal, header)?,
            None => self.init_wal(&wal)?,
        };
        f(&wal, header)
    }

    /// Run `f` holding the shared lock, after completing any interrupted
    /// batch.
    fn with_shared<T>(&self, f: impl Fn() -> Result<T>) -> Result<T> {
        loop {
            {
                let _local = self.local.read().unwrap_or_else(PoisonError::into_inner);
                let file = match File::open(&self.wal_path) {
                    Ok(file) => file,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                        ) =>
                    {
                        // No log: no writer of this version has started. If
                        // one starts while we read, it creates the log before
                        // it writes anything: read again under the lock.
                        let out = f();
                        if exists(&self.wal_path)? {
                            continue;
                        }
                        return out;
                    }
                    Err(e) => return Err(Error::io("open store log", &self.wal_path, e)),
                };
                let lock = fd_lock::RwLock::new(file);
                let guard = retry_interrupted(|| lock.read())
                    .map_err(|e| Error::io("lock", &self.wal_path, e))?;
                let header = Wal {
                    file: &guard,
                    path: &self.wal_path,
                    writable: false,
                }
                .read_header()?;
                if header.is_none_or(|h| h.applied && self.boot_ok(&h)) {
                    return f();
                }
            }
            // Under the shared lock no batch is running, so an unapplied
            // record means a writer died mid-batch (and another boot id, a
            // restart): recover, then read.
            self.with_exclusive(false, |_, _| Ok(()))?;
        }
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
        let mut marker = match fs::read(&path) {
            Ok(bytes) => {
                let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::store(format!("corrupt store marker {}: {e}", path.display()))
                })?;
                let serde_json::Value::Object(map) = value else {
                    return Err(Error::store(format!(
                        "corrupt store marker {}: not a JSON object",
                        path.display()
                    )));
                };
                map
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => serde_json::Map::new(),
            Err(e) => return Err(Error::io("read store marker", &path, e)),
        };
        let mut changed = false;
        match marker.get("version") {
            None if marker.is_empty() => {
                marker.insert("version".into(), STORE_FORMAT.into());
                changed = true;
            }
            Some(v) if v.as_u64() == Some(STORE_FORMAT) => {}
            other => {
                let found = other.map_or("(none)".to_string(), |v| v.to_string());
                return Err(Error::store(format!(
                    "incompatible store version {found} at {} (this Ocuroot reads version {STORE_FORMAT})",
                    path.display()
                )));
            }
        }
        let tags = marker
            .entry("Tags")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if tags.is_null() {
            *tags = serde_json::Value::Object(Default::default());
        }
        let Some(tags) = tags.as_object_mut() else {
            return Err(Error::store(format!(
                "corrupt store marker {}: \"Tags\" is not an object",
                path.display()
            )));
        };
        if !tags.contains_key(&self.tag) {
            if !tags.is_empty() {
                tracing::warn!(
                    store = %self.dir.display(),
                    tags = ?tags.keys().collect::<Vec<_>>(),
                    tag = %self.tag,
                    "adding a tag to a store that already has others"
                );
            }
            tags.insert(self.tag.clone(), serde_json::json!({}));
            changed = true;
        }
        Ok(if changed {
            Some(serde_json::to_vec(&marker)?)
        } else {
            None
        })
    }

    // ----- write-ahead log ---------------------------------------------------

    /// Whether the header's boot id says no full replay is needed.
    fn boot_ok(&self, header: &Header) -> bool {
        current_boot_id() == Some(header.boot) || self.boot_checked.load(Ordering::Acquire)
    }

    /// Note that this instance has done (or needs no) full replay, which is
    /// all there is to know where no boot id is available.
    fn no_replay_needed(&self) {
        if current_boot_id().is_none() {
            self.boot_checked.store(true, Ordering::Release);
        }
    }

    /// Give a new (or never durably written) log its header. Exclusive lock
    /// held.
    fn init_wal(&self, wal: &Wal<'_>) -> Result<Header> {
        let header = Header::fresh();
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

    /// Complete what a crash left: an unapplied last record, or (after a
    /// restart) every record. Exclusive lock held.
    fn recover(&self, wal: &Wal<'_>, header: Header) -> Result<Header> {
        if !self.boot_ok(&header) {
            return self.replay_all(wal, header);
        }
        if header.applied {
            return Ok(header);
        }
        wal.require_writable("complete a batch interrupted by a crash")?;
        match wal.read_record(header.last, header.end, decode_batch)? {
            Some((batch, _)) => {
                tracing::warn!(
                    store = %self.dir.display(),
                    keys = batch.len(),
                    "completing a batch interrupted by a crash"
                );
                self.apply(&borrow_batch(&batch)).map_err(|e| {
                    e.context("completing a batch interrupted by a crash (it stays logged)")
                })?;
                let header = Header {
                    applied: true,
                    ..header
                };
                wal.write_header(&header)?;
                Ok(header)
            }
            None => {
                // Torn while being appended: that batch never committed.
                let scan = wal.scan(&header, decode_keys)?;
                tracing::warn!(
                    store = %self.dir.display(),
                    offset = header.last,
                    "ignoring a batch whose logging was interrupted by a crash"
                );
                let header = Header {
                    last: scan.last,
                    end: scan.end,
                    applied: true,
                    ..header
                };
                wal.write_header(&header)?;
                wal.truncate(scan.end)?;
                Ok(header)
            }
        }
    }

    /// After a restart: redo every logged batch (file writes may have been
    /// lost), then checkpoint. Exclusive lock held.
    fn replay_all(&self, wal: &Wal<'_>, header: Header) -> Result<Header> {
        if !wal.writable {
            if !header.applied {
                wal.require_writable("complete a batch interrupted by a crash")?;
            }
            tracing::warn!(
                store = %self.dir.display(),
                "the store log predates a restart, but the store is read-only: \
                 batches whose writes were lost cannot be redone"
            );
            self.boot_checked.store(true, Ordering::Release);
            return Ok(header);
        }
        let scan = wal.scan(&header, decode_batch)?;
        // Each key gets its last logged value: the same as replaying every
        // record in order.
        let mut last: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        let records = scan.records.len();
        for batch in scan.records {
            last.extend(batch);
        }
        if !last.is_empty() {
            tracing::info!(
                store = %self.dir.display(),
                records,
                keys = last.len(),
                "replaying the store log after a restart"
            );
        }
        let writes: Vec<(&str, Option<&[u8]>)> = last
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        self.apply(&writes)
            .map_err(|e| e.context("replaying the store log after a restart (it stays logged)"))?;
        let header = self.checkpoint_keys(wal, last.keys().map(String::as_str))?;
        self.no_replay_needed();
        Ok(header)
    }

    /// Checkpoint if anything is logged. Exclusive lock held, log recovered.
    fn checkpoint_locked(&self, wal: &Wal<'_>, header: Header) -> Result<Header> {
        if header.end <= HEADER_LEN && self.boot_ok(&header) {
            return Ok(header);
        }
        wal.require_writable("checkpoint the store log")?;
        let scan = wal.scan(&header, decode_keys)?;
        let keys: BTreeSet<String> = scan.records.into_iter().flatten().collect();
        self.checkpoint_keys(wal, keys.iter().map(String::as_str))
    }

    /// Make the files of `keys` and their directories durable, then empty
    /// the log. Exclusive lock held, every logged record applied.
    fn checkpoint_keys<'k>(
        &self,
        wal: &Wal<'_>,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<Header> {
        if self.fsync {
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
            self.sync_paths(&files)?;
        }
        let header = Header::fresh();
        wal.write_header(&header)?;
        wal.truncate(HEADER_LEN)?;
        if self.fsync {
            self.synced(wal.file.sync_all(), wal.path)?;
        }
        Ok(header)
    }

    /// Log a batch and make it durable: after this it is committed.
    /// Exclusive lock held, log recovered.
    fn append(
        &self,
        wal: &Wal<'_>,
        header: &mut Header,
        writes: &[(&str, Option<&[u8]>)],
    ) -> Result<()> {
        let record = encode_record(writes)?;
        let before = *header;
        let at = header.end;
        wal.write_at(&record, at)?;
        *header = Header {
            last: at,
            end: at + record.len() as u64,
            applied: false,
            ..before
        };
        wal.write_header(header)?;
        if self.fsync {
            if let Err(e) = self.synced(wal.file.sync_data(), wal.path) {
                // Not committed: take the record back (best effort) so that
                // nobody applies a batch whose commit failed.
                *header = before;
                let _ = wal.write_header(&before);
                return Err(e);
            }
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

    fn read_entry(&self, key: &str) -> Result<Option<Entry>> {
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

    /// Write or delete each key (exclusive lock held). Nothing is fsynced:
    /// the log makes the batch durable.
    fn apply(&self, writes: &[(&str, Option<&[u8]>)]) -> Result<()> {
        for (key, value) in writes {
            match value {
                Some(bytes) => self.put_file(key, bytes)?,
                None => self.delete_file(key)?,
            }
        }
        Ok(())
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

    /// Fsync each file or directory of `paths` that exists (fsync on), from
    /// several threads: the fsyncs of a checkpoint are independent, and
    /// disks serve concurrent ones faster than the same number in a row.
    fn sync_paths(&self, paths: &[PathBuf]) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        if paths.len() < 2 * CHECKPOINT_SYNC_THREADS {
            return paths.iter().try_for_each(|p| self.sync_path(p));
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..CHECKPOINT_SYNC_THREADS)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        while !failed.load(Ordering::Relaxed) {
                            let Some(path) = paths.get(next.fetch_add(1, Ordering::Relaxed)) else {
                                break;
                            };
                            if let Err(e) = self.sync_path(path) {
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
                    .unwrap_or_else(|_| Err(Error::internal("an fsync thread panicked")))
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

    /// Keys under `refs/` starting with `prefix`, walking only the subtree
    /// of the prefix's directory part.
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>> {
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
        keys.sort();
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
        self.with_shared(|| self.read_entry(key))
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        for k in keys {
            validate_key(k)?;
        }
        self.with_shared(|| keys.iter().map(|k| self.read_entry(k)).collect())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        self.with_shared(|| self.list_keys(prefix))
    }

    fn commit(&self, ops: &[Op]) -> Result<()> {
        for op in ops {
            validate_key(op.key())?;
        }
        if ops.is_empty() {
            return Ok(());
        }
        let plan = || {
            plan_batch(
                ops,
                |k| Ok(self.read_entry(k)?.map(|e| e.version)),
                Version::of_bytes,
            )
        };
        if ops.iter().all(|op| matches!(op, Op::Check { .. })) {
            // Nothing to write: checking under the shared lock is enough.
            return self.with_shared(|| plan().map(drop));
        }
        self.ensure_dir()?;
        self.with_exclusive(true, |wal, mut header| {
            self.ensure_marker()?;
            let writes: Vec<(&str, Option<&[u8]>)> = plan()?
                .into_iter()
                .map(|(k, w): (&str, Planned<'_>)| (k, w.map(|(bytes, _)| bytes)))
                .collect();
            if writes.is_empty() {
                return Ok(());
            }
            self.append(wal, &mut header, &writes)?;
            // Committed. If applying fails, the record stays unapplied and
            // the next lock holder completes it.
            self.apply(&writes).map_err(|e| {
                e.context(
                    "batch interrupted (it is logged, and the next operation on the store completes it)",
                )
            })?;
            // The batch is committed and applied: what follows is
            // housekeeping, whose failure must not report the commit as
            // failed. Both are retried by later operations.
            header.applied = true;
            if let Err(e) = wal.write_header(&header) {
                tracing::warn!(error = %e, "could not mark a batch applied; it will be applied again");
                return Ok(());
            }
            if header.end >= self.checkpoint_bytes {
                if let Err(e) = self.checkpoint_locked(wal, header) {
                    tracing::warn!(error = %e, "checkpoint failed; the log is kept and it will be retried");
                }
            }
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!("fs:{}", self.dir.display())
    }
}

// ----- the log file ----------------------------------------------------------

/// The log's header; see the format on [`FsStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    boot: [u8; 16],
    last: u64,
    end: u64,
    applied: bool,
}

impl Header {
    /// An empty log, written in this boot.
    fn fresh() -> Header {
        Header {
            boot: current_boot_id().unwrap_or([0; 16]),
            last: 0,
            end: HEADER_LEN,
            applied: true,
        }
    }

    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(WAL_MAGIC);
        b[8..12].copy_from_slice(&WAL_FORMAT.to_le_bytes());
        b[12..28].copy_from_slice(&self.boot);
        b[28..36].copy_from_slice(&self.last.to_le_bytes());
        b[36..44].copy_from_slice(&self.end.to_le_bytes());
        b[44] = u8::from(self.applied);
        let crc = crc32(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The header in `b`, or `None` for all zeros (a log whose creation never
    /// became durable: nothing in it committed).
    fn decode(b: &[u8; HEADER_LEN as usize], path: &Path) -> Result<Option<Header>> {
        if b.iter().all(|x| *x == 0) {
            return Ok(None);
        }
        let corrupt = |what: &str| {
            Error::store(format!(
                "corrupt store log {}: {what}; if no Ocuroot is running on this store, \
                 moving the file away keeps the files under refs/ as they are",
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
        if format != WAL_FORMAT {
            return Err(Error::store(format!(
                "store log {} has format {format}; this Ocuroot reads format {WAL_FORMAT}",
                path.display()
            )));
        }
        let mut boot = [0u8; 16];
        boot.copy_from_slice(&b[12..28]);
        let header = Header {
            boot,
            last: le_u64(&b[28..36]),
            end: le_u64(&b[36..44]),
            applied: b[44] == 1,
        };
        let sane = b[44] <= 1
            && header.end >= HEADER_LEN
            && (header.last == 0 && header.applied
                || header.last >= HEADER_LEN && header.last < header.end);
        if !sane {
            return Err(corrupt("inconsistent header"));
        }
        Ok(Some(header))
    }
}

/// The log, locked, for the duration of one operation.
struct Wal<'a> {
    file: &'a File,
    path: &'a Path,
    writable: bool,
}

/// The records of a log, in order.
struct Scan<T> {
    records: Vec<T>,
    /// Offset of the last valid record (0: none).
    last: u64,
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

    fn read_header(&self) -> Result<Option<Header>> {
        let mut b = [0u8; HEADER_LEN as usize];
        let n = read_full_at(self.file, &mut b, 0)
            .map_err(|e| Error::io("read store log", self.path, e))?;
        if n < b.len() {
            // Shorter than a header: its creation never completed.
            return Ok(None);
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

    /// The record at `offset` (decoded) and the offset after it, or `None`
    /// if it is torn: past `end`, or failing its checksum.
    fn read_record<T>(
        &self,
        offset: u64,
        end: u64,
        decode: fn(&[u8], &Path, u64) -> Result<T>,
    ) -> Result<Option<(T, u64)>> {
        if offset < HEADER_LEN || end.saturating_sub(offset) < RECORD_HEAD {
            return Ok(None);
        }
        let io_err = |e| Error::io("read store log", self.path, e);
        let mut head = [0u8; RECORD_HEAD as usize];
        if read_full_at(self.file, &mut head, offset).map_err(io_err)? < head.len() {
            return Ok(None);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let next = offset + RECORD_HEAD + u64::from(len);
        if next > end {
            return Ok(None);
        }
        let mut payload = vec![0u8; len as usize];
        if read_full_at(self.file, &mut payload, offset + RECORD_HEAD).map_err(io_err)?
            < payload.len()
        {
            return Ok(None);
        }
        if crc32(&payload) != crc {
            return Ok(None);
        }
        Ok(Some((decode(&payload, self.path, offset)?, next)))
    }

    /// Every record up to the header's end. A torn record is tolerated only
    /// as the last one (the header's `last`): its batch never committed.
    fn scan<T>(
        &self,
        header: &Header,
        decode: fn(&[u8], &Path, u64) -> Result<T>,
    ) -> Result<Scan<T>> {
        let mut scan = Scan {
            records: Vec::new(),
            last: 0,
            end: HEADER_LEN,
        };
        while scan.end < header.end {
            match self.read_record(scan.end, header.end, decode)? {
                Some((record, next)) => {
                    scan.records.push(record);
                    scan.last = scan.end;
                    scan.end = next;
                }
                None if scan.end == header.last => break,
                None => {
                    return Err(Error::store(format!(
                        "corrupt store log {}: the record at offset {} is damaged, so the batches \
                         logged from there on cannot be replayed; if no Ocuroot is running on \
                         this store, moving the file away keeps the files under refs/ as they are",
                        self.path.display(),
                        scan.end
                    )));
                }
            }
        }
        Ok(scan)
    }
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

#[derive(serde::Deserialize)]
struct KeysIn {
    ops: Vec<KeyIn>,
}

#[derive(serde::Deserialize)]
struct KeyIn {
    key: String,
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
        validate_key(&key).map_err(|e| corrupt_record(path, offset, format_args!("names {e}")))?;
        batch.push((key, value));
    }
    Ok(batch)
}

fn decode_keys(payload: &[u8], path: &Path, offset: u64) -> Result<Vec<String>> {
    let record: KeysIn = serde_json::from_slice(payload)
        .map_err(|e| corrupt_record(path, offset, format_args!("is not a batch: {e}")))?;
    let mut keys = Vec::with_capacity(record.ops.len());
    for KeyIn { key } in record.ops {
        validate_key(&key).map_err(|e| corrupt_record(path, offset, format_args!("names {e}")))?;
        keys.push(key);
    }
    Ok(keys)
}

fn borrow_batch(batch: &Batch) -> Vec<(&str, Option<&[u8]>)> {
    batch
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect()
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
            last: 100,
            end: 200,
            applied: false,
        };
        let path = Path::new("x/.wal");
        assert_eq!(Header::decode(&h.encode(), path).unwrap(), Some(h));
        assert_eq!(Header::decode(&[0; 64], path).unwrap(), None);
        let mut bad = h.encode();
        bad[30] ^= 1;
        assert!(Header::decode(&bad, path).is_err());
    }
}
