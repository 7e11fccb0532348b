//! [`FsStore`]: a [`Store`] in a directory. The layout, locking and crash
//! journal are documented on the type.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use super::{Entry, Op, Planned, Store, Version, plan_batch, validate_key, validate_prefix};
use crate::{Error, Result};

const MARKER_FILE: &str = ".ocuroot-store";
const STORE_FORMAT: u64 = 3;
const REFS_DIR: &str = "refs";
const OBJECT_FILE: &str = "@object.json";
const OBJECT_TEMP: &str = "@object.json.tmp";
const LOCK_FILE: &str = ".lock";
const JOURNAL_FILE: &str = ".journal.json";
const JOURNAL_TEMP: &str = ".journal.json.tmp";
const JOURNAL_FORMAT: u32 = 1;

/// A [`Store`] in a directory: one JSON file per key, atomic and durable
/// batches, safe for concurrent use by threads and processes.
///
/// # Layout
///
/// ```text
/// <dir>/.ocuroot-store            {"version":3,"Tags":{"state":{}}}   (or "intent")
/// <dir>/refs/<key>/@object.json   the value of <key>, one directory per key segment
/// <dir>/.lock                     lock file (never holds data)
/// <dir>/.journal.json             only while a multi-key batch is being applied
/// ```
///
/// For example the key `repo/-/pkg.ocu.star/@r1/deploy/prod` is stored at
/// `refs/repo/-/pkg.ocu.star/@r1/deploy/prod/@object.json`. `@object.json`
/// cannot be a key segment, so a value never clashes with a deeper key. The
/// version of a value is the FNV-1a hash of the file ([`Version::of_bytes`]),
/// so files written by the original Ocuroot, by hand or by `git pull` have
/// versions too. `.ocuroot-store` is created if missing; a store of another
/// format version is refused.
///
/// # Atomicity and locking
///
/// - Every file is written to a temporary file in the same directory, flushed
///   with `fsync`, and renamed over `@object.json`; the directory is then
///   fsynced. A reader sees the old or the new file, never part of one.
/// - [`Store::commit`] holds an exclusive lock (`flock` via `fd-lock` on
///   `<dir>/.lock`, opened afresh for each operation because `flock` locks
///   belong to an open file description, plus an in-process `RwLock`), so
///   batches from threads and processes are serialised, and expectations are
///   checked and applied without interference.
/// - Reads ([`Store::get`], [`Store::get_many`], [`Store::list`]) hold the
///   shared lock, so they never see half of a batch.
/// - Deleting a value removes directories left empty, up to (not including)
///   `refs/`.
/// - [`FsStoreBuilder::fsync`] can turn the fsyncs off (tests, throwaway
///   stores): writes stay atomic, only durability across a machine crash is
///   lost. On a busy disk an fsync can take milliseconds, and a batch of `k`
///   keys costs about `2k + 3` of them.
///
/// # Crash safety: the journal
///
/// A batch that changes more than one key is first written, complete, to
/// `<dir>/.journal.json` (via a fsynced temporary file and a rename), then
/// applied, then the journal is deleted (and the deletion made durable before
/// the lock is released). If the process dies half way, the journal survives.
/// Whoever next takes the lock (opening the store, committing, or a reader
/// that finds a journal under its shared lock and upgrades) applies the
/// journal again before doing anything else. Replaying is safe because the
/// journal holds the final bytes of each key or its deletion, and no other
/// batch can run in between. So a batch is applied completely or not at all,
/// even across crashes. An I/O error in the middle of a batch leaves the
/// journal in place, and the batch is completed by the next lock holder.
///
/// The journal format:
///
/// ```json
/// {"format": 1, "ops": [
///   {"op": "put", "key": "pkg/@r1", "text": "{\"kind\":\"ref\",\"body\":{}}"},
///   {"op": "put", "key": "pkg/@r1/x", "bytes": [0, 255]},
///   {"op": "delete", "key": "pkg/@r0"}
/// ]}
/// ```
///
/// (`text` holds UTF-8 values, `bytes` any other.)
#[derive(Debug)]
pub struct FsStore {
    dir: PathBuf,
    refs: PathBuf,
    tag: String,
    fsync: bool,
    /// Serialises this process's threads before they take the file lock:
    /// readers share it, a committing batch holds it exclusively.
    local: RwLock<()>,
    /// Whether the directory and marker are known to exist.
    created: AtomicBool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Journal {
    format: u32,
    ops: Vec<JournalOp>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum JournalOp {
    Put {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<Vec<u8>>,
    },
    Delete {
        key: String,
    },
}

/// Options for opening an [`FsStore`]; from [`FsStore::builder`].
#[derive(Debug, Clone)]
pub struct FsStoreBuilder {
    dir: PathBuf,
    tag: String,
    fsync: bool,
}

impl FsStoreBuilder {
    /// Whether to `fsync` files and directories (default: yes). Without it
    /// every write is still atomic and batches are still all-or-nothing for
    /// other readers, but a machine crash (not a process crash) may lose
    /// recent batches or leave empty files. Useful for tests and throwaway
    /// stores on slow disks.
    pub fn fsync(mut self, fsync: bool) -> FsStoreBuilder {
        self.fsync = fsync;
        self
    }

    /// Open the store.
    ///
    /// An existing store has its `.ocuroot-store` marker checked (a marker of
    /// another format version is refused; the tag is added if absent) and a
    /// batch interrupted by a crash completed (see [`FsStore`]). A store that
    /// does not exist yet is not created until the first write, so read-only
    /// commands (`release lint`, `state get`) leave no trace; until then it
    /// reads as empty.
    pub fn open(self) -> Result<FsStore> {
        let FsStoreBuilder { dir, tag, fsync } = self;
        if tag.is_empty() || tag.chars().any(|c| c.is_control()) {
            return Err(Error::invalid_input(format!("invalid store tag {tag:?}")));
        }
        let store = FsStore {
            refs: dir.join(REFS_DIR),
            dir,
            tag,
            fsync,
            local: RwLock::new(()),
            created: AtomicBool::new(false),
        };
        if exists(&store.dir)? {
            store.with_exclusive(|| {
                store.check_marker()?;
                store.recover()
            })?;
            store.created.store(true, Ordering::Release);
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

    // ----- locking -----------------------------------------------------------

    fn open_lock_file(&self) -> Result<File> {
        let path = self.dir.join(LOCK_FILE);
        let rw = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        match rw {
            Ok(f) => Ok(f),
            // A read-only store (someone else's, or a read-only mount) can
            // still be read: flock works on a read-only descriptor.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                File::open(&path).map_err(|_| Error::io("open lock file", &path, e))
            }
            Err(e) => Err(Error::io("open lock file", &path, e)),
        }
    }

    /// Run `f` holding the exclusive lock.
    fn with_exclusive<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _local = self.local.write().unwrap_or_else(PoisonError::into_inner);
        let mut lock = fd_lock::RwLock::new(self.open_lock_file()?);
        let _guard = loop {
            match lock.write() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => {
                    break other.map_err(|e| Error::io("lock", &self.dir.join(LOCK_FILE), e))?;
                }
            }
        };
        f()
    }

    /// Run `f` holding the shared lock, after completing any interrupted
    /// batch.
    fn with_shared<T>(&self, f: impl Fn() -> Result<T>) -> Result<T> {
        if !self.created.load(Ordering::Acquire) && !exists(&self.dir)? {
            // Not created yet: there is nothing to read and nothing to lock.
            return f();
        }
        loop {
            {
                let _local = self.local.read().unwrap_or_else(PoisonError::into_inner);
                let lock = fd_lock::RwLock::new(self.open_lock_file()?);
                let _guard = retry_interrupted(|| lock.read())
                    .map_err(|e| Error::io("lock", &self.dir.join(LOCK_FILE), e))?;
                if !exists(&self.dir.join(JOURNAL_FILE))? {
                    return f();
                }
            }
            // Under the shared lock no batch is running, so a journal means a
            // writer died mid-batch: finish it, then read.
            self.with_exclusive(|| self.recover())?;
        }
    }

    // ----- marker and journal ------------------------------------------------

    fn check_marker(&self) -> Result<()> {
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
        if changed {
            let bytes = serde_json::to_vec(&marker)?;
            write_atomic(
                &path,
                &self.dir.join(".ocuroot-store.tmp"),
                &bytes,
                self.fsync,
            )?;
            sync_dir(&self.dir, self.fsync)?;
        }
        Ok(())
    }

    /// Apply and remove a journal left by an interrupted batch. Call with the
    /// exclusive lock held.
    fn recover(&self) -> Result<()> {
        let path = self.dir.join(JOURNAL_FILE);
        // A journal that never got renamed into place: its batch was never
        // started.
        remove_if_exists(&self.dir.join(JOURNAL_TEMP))?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("read journal", &path, e)),
        };
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            Error::store(format!(
                "corrupt journal {}: {e}; it holds a batch that may be half applied: inspect it, then delete it",
                path.display()
            ))
        })?;
        if journal.format != JOURNAL_FORMAT {
            return Err(Error::store(format!(
                "journal {} has format {}, this Ocuroot writes format {JOURNAL_FORMAT}",
                path.display(),
                journal.format
            )));
        }
        let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(journal.ops.len());
        for op in journal.ops {
            match op {
                JournalOp::Put { key, text, bytes } => {
                    let value = match (text, bytes) {
                        (Some(t), None) => t.into_bytes(),
                        (None, Some(b)) => b,
                        _ => {
                            return Err(Error::store(format!(
                                "corrupt journal {}: a put of {key} needs exactly one of \"text\" and \"bytes\"",
                                path.display()
                            )));
                        }
                    };
                    writes.push((key, Some(value)));
                }
                JournalOp::Delete { key } => writes.push((key, None)),
            }
        }
        for (key, _) in &writes {
            validate_key(key).map_err(|e| e.context(format!("journal {}", path.display())))?;
        }
        tracing::warn!(
            store = %self.dir.display(),
            keys = writes.len(),
            "completing a batch interrupted by a crash"
        );
        let borrowed: Vec<(&str, Option<&[u8]>)> = writes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        self.apply(&borrowed)?;
        self.remove_journal()
    }

    fn write_journal(&self, writes: &[(&str, Option<&[u8]>)]) -> Result<()> {
        let journal = Journal {
            format: JOURNAL_FORMAT,
            ops: writes
                .iter()
                .map(|(key, value)| match value {
                    Some(v) => match std::str::from_utf8(v) {
                        Ok(text) => JournalOp::Put {
                            key: key.to_string(),
                            text: Some(text.to_string()),
                            bytes: None,
                        },
                        Err(_) => JournalOp::Put {
                            key: key.to_string(),
                            text: None,
                            bytes: Some(v.to_vec()),
                        },
                    },
                    None => JournalOp::Delete {
                        key: key.to_string(),
                    },
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&journal)?;
        write_atomic(
            &self.dir.join(JOURNAL_FILE),
            &self.dir.join(JOURNAL_TEMP),
            &bytes,
            self.fsync,
        )?;
        sync_dir(&self.dir, self.fsync)
    }

    fn remove_journal(&self) -> Result<()> {
        let path = self.dir.join(JOURNAL_FILE);
        fs::remove_file(&path).map_err(|e| Error::io("remove journal", &path, e))?;
        // Make the removal durable before anyone else writes: a journal that
        // reappeared after a crash would otherwise be replayed over newer
        // values.
        sync_dir(&self.dir, self.fsync)
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
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Write or delete each key (exclusive lock held), then make it all
    /// durable.
    fn apply(&self, writes: &[(&str, Option<&[u8]>)]) -> Result<()> {
        let mut dirty: BTreeSet<PathBuf> = BTreeSet::new();
        for (key, value) in writes {
            match value {
                Some(bytes) => self.put_file(key, bytes, &mut dirty)?,
                None => self.delete_file(key, &mut dirty)?,
            }
        }
        for dir in &dirty {
            sync_dir(dir, self.fsync)?;
        }
        Ok(())
    }

    fn put_file(&self, key: &str, bytes: &[u8], dirty: &mut BTreeSet<PathBuf>) -> Result<()> {
        let dir = self.key_dir(key)?;
        // Note the directories about to be created: their parents must be
        // fsynced for the new entries to be durable.
        let mut missing = dir.as_path();
        while !exists(missing)? {
            match missing.parent() {
                Some(parent) => {
                    dirty.insert(parent.to_path_buf());
                    missing = parent;
                }
                None => break,
            }
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        write_atomic(
            &dir.join(OBJECT_FILE),
            &dir.join(OBJECT_TEMP),
            bytes,
            self.fsync,
        )?;
        dirty.insert(dir);
        Ok(())
    }

    fn delete_file(&self, key: &str, dirty: &mut BTreeSet<PathBuf>) -> Result<()> {
        let dir = self.key_dir(key)?;
        let path = dir.join(OBJECT_FILE);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
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
        dirty.insert(current);
        Ok(())
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
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(keys);
            }
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
        if ops.iter().all(|op| matches!(op, Op::Check { .. })) {
            // Nothing to write: checking under the shared lock is enough.
            return self.with_shared(|| {
                plan_batch(
                    ops,
                    |k| Ok(self.read_entry(k)?.map(|e| e.version)),
                    Version::of_bytes,
                )
                .map(drop)
            });
        }
        if !self.created.load(Ordering::Acquire) {
            fs::create_dir_all(&self.dir)
                .map_err(|e| Error::io("create store directory", &self.dir, e))?;
            self.with_exclusive(|| self.check_marker())?;
            self.created.store(true, Ordering::Release);
        }
        self.with_exclusive(|| {
            self.recover()?;
            let plan = plan_batch(
                ops,
                |k| Ok(self.read_entry(k)?.map(|e| e.version)),
                Version::of_bytes,
            )?;
            let writes: Vec<(&str, Option<&[u8]>)> = plan
                .into_iter()
                .map(|(k, w): (&str, Planned<'_>)| (k, w.map(|(bytes, _)| bytes)))
                .collect();
            match writes.len() {
                0 => Ok(()),
                // One rename is atomic on its own.
                1 => self.apply(&writes),
                _ => {
                    self.write_journal(&writes)?;
                    self.apply(&writes).map_err(|e| {
                        e.context(
                            "batch interrupted (its journal is kept, and the next operation on the store completes it)",
                        )
                    })?;
                    self.remove_journal()
                }
            }
        })
    }

    fn describe(&self) -> String {
        format!("fs:{}", self.dir.display())
    }
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

fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
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

/// Write `bytes` to `temp`, fsync it and rename it to `path`. The caller
/// fsyncs the directory.
fn write_atomic(path: &Path, temp: &Path, bytes: &[u8], fsync: bool) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(|e| Error::io("create", temp, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write", temp, e))?;
    if fsync {
        file.sync_all().map_err(|e| Error::io("fsync", temp, e))?;
    }
    drop(file);
    fs::rename(temp, path).map_err(|e| Error::io("rename into place", path, e))
}

fn sync_dir(dir: &Path, fsync: bool) -> Result<()> {
    if !fsync {
        return Ok(());
    }
    match File::open(dir) {
        Ok(f) => f.sync_all().map_err(|e| Error::io("fsync", dir, e)),
        // Removed later in the same batch: nothing to make durable.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("open directory", dir, e)),
    }
}
