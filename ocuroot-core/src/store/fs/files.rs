//! The files of the directory store: one `@object.json` per key under
//! `refs/`, written back by checkpoints and read where the log has no value.

//!
//! Nothing under the store's directory may be a symbolic link: a store is
//! often checked in, and a link committed to it would point the agent's
//! reads and writes anywhere it can reach. Every directory from the store's
//! root down to a file is checked with `lstat` before use, files are opened
//! with `O_NOFOLLOW`, and temporary files are created fresh (`O_EXCL`), so a
//! link is refused with an error naming it, never followed. (The store's
//! directory itself is the user's choice and may be a link.)

use super::*;

/// The error for a symbolic link found at `path` inside a store.
pub(super) fn symlink_error(path: &Path) -> Error {
    Error::store(format!(
        "refusing to follow the symbolic link {}: nothing inside a store may be a symbolic \
         link, since it could point reads and writes outside the store; replace it with the \
         file or directory itself",
        path.display()
    ))
}

/// `e` from `op` on `path` as our error, naming a refused symbolic link as such.
pub(super) fn io_error(op: &str, path: &Path, e: io::Error) -> Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        return symlink_error(path);
    }
    Error::io(op, path, e)
}

/// Options that refuse to open a symbolic link as the last component.
pub(super) fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    options
}

/// Read the file at `path`, which must not be a symbolic link.
pub(super) fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    #[cfg(not(unix))]
    if fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(io::Error::other("is a symbolic link"));
    }
    let mut file = no_follow(OpenOptions::new().read(true)).open(path)?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(bytes)
}

impl FsStore {
    // ----- files -------------------------------------------------------------

    /// Check that every directory from the store's root down to `dir` (a
    /// path inside it) is a real directory, not a symbolic link. `Ok(false)`
    /// when one is missing, unless `create`, which creates it.
    pub(super) fn real_dir(&self, dir: &Path, create: bool) -> Result<bool> {
        let rel = dir
            .strip_prefix(&self.dir)
            .map_err(|_| Error::internal(format!("{} is outside the store", dir.display())))?;
        let mut current = self.dir.clone();
        for part in rel.components() {
            current.push(part);
            let meta = match fs::symlink_metadata(&current) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    match fs::create_dir(&current) {
                        Ok(()) => continue,
                        // Made meanwhile by another writer: check what it is.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            fs::symlink_metadata(&current)
                                .map_err(|e| Error::io("stat", &current, e))?
                        }
                        Err(e) => return Err(Error::io("create directory", &current, e)),
                    }
                }
                Err(e) if is_absent(&e) => return Ok(false),
                Err(e) => return Err(Error::io("stat", &current, e)),
            };
            if meta.file_type().is_symlink() {
                return Err(symlink_error(&current));
            }
            if !meta.is_dir() {
                if create || current == self.refs {
                    return Err(Error::store(format!(
                        "the store is damaged: {} is a file, not a directory",
                        current.display()
                    )));
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `refs/<key>`, checking each segment can only name a child directory
    /// (the keys are validated already; this is a second line of defence).
    pub(super) fn key_dir(&self, key: &str) -> Result<PathBuf> {
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
    pub(super) fn read_entry(&self, overlay: &Overlay, key: &str) -> Result<Option<Entry>> {
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
    pub(super) fn current_version(&self, overlay: &Overlay, key: &str) -> Result<Option<Version>> {
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
    pub(super) fn read_file_once(&self, overlay: &Overlay, key: &str) -> Result<Option<Entry>> {
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

    pub(super) fn read_file(&self, key: &str) -> Result<Option<Entry>> {
        let dir = self.key_dir(key)?;
        if !self.real_dir(&dir, false)? {
            return Ok(None);
        }
        let path = dir.join(OBJECT_FILE);
        match read_no_follow(&path) {
            Ok(value) => Ok(Some(Entry {
                version: Version::of_bytes(&value),
                value,
            })),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(io_error("read", &path, e)),
        }
    }

    pub(super) fn put_file(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.key_dir(key)?;
        self.real_dir(&dir, true)?;
        self.write_atomic(&dir.join(OBJECT_FILE), &dir.join(OBJECT_TEMP), bytes, false)
    }

    pub(super) fn delete_file(&self, key: &str) -> Result<()> {
        let dir = self.key_dir(key)?;
        if !self.real_dir(&dir, false)? {
            return Ok(());
        }
        let path = dir.join(OBJECT_FILE);
        // (Removing a link removes the link, not what it points to.)
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
    /// fsync on), fsync the file first. The caller fsyncs the directory and
    /// holds the exclusive lock, so an existing `temp` is a leftover of a
    /// killed writer: it is removed, and `temp` created afresh, never opened
    /// through a link. (The rename replaces a link at `path` itself.)
    pub(super) fn write_atomic(
        &self,
        path: &Path,
        temp: &Path,
        bytes: &[u8],
        durable: bool,
    ) -> Result<()> {
        remove_if_exists(temp)?;
        let mut file = no_follow(OpenOptions::new().write(true).create_new(true))
            .open(temp)
            .map_err(|e| io_error("create", temp, e))?;
        file.write_all(bytes)
            .map_err(|e| Error::io("write", temp, e))?;
        if durable && self.fsync {
            self.synced(file.sync_all(), temp)?;
        }
        drop(file);
        fs::rename(temp, path).map_err(|e| Error::io("rename into place", path, e))
    }

    /// Count an fsync and turn its error into ours.
    pub(super) fn synced(&self, result: io::Result<()>, path: &Path) -> Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        result.map_err(|e| Error::io("fsync", path, e))
    }

    /// Make the files of `keys` and their directories (new ones, and those
    /// emptied of a removed one) durable. On Linux, beyond a few dozen keys,
    /// one `syncfs` of the store's filesystem does it with one journal
    /// commit, where an `fsync` per file and directory costs a round trip
    /// each; elsewhere, or for a few keys, each is `fsync`ed.
    pub(super) fn sync_written<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k String>,
    ) -> Result<()> {
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
    pub(super) fn sync_paths(&self, paths: &[PathBuf]) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        self.in_parallel(paths, |p| self.sync_path(p))
    }

    /// `f` on every item, from a few threads when there are many; stops at
    /// the first error.
    pub(super) fn in_parallel<T: Sync>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> Result<()> + Sync,
    ) -> Result<()> {
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

    /// After a checkpoint was killed: remove the temporary files it left
    /// next to the documents (readers never list them, but other tools
    /// reading the files would see them). Exclusive lock held.
    pub(super) fn clean_interrupted_checkpoint(&self) -> Result<()> {
        let mark = self.dir.join(CHECKPOINT_MARK);
        if !exists(&mark)? {
            return Ok(());
        }
        let mut removed = 0;
        if self.real_dir(&self.refs, false)? {
            remove_temps(&self.refs, &mut removed)?;
        }
        if removed > 0 {
            tracing::info!(
                store = %self.dir.display(),
                removed,
                "removed the temporary files of an interrupted checkpoint"
            );
        }
        remove_if_exists(&mark)
    }

    /// Fsync a file or directory if it exists.
    pub(super) fn sync_path(&self, path: &Path) -> Result<()> {
        match no_follow(OpenOptions::new().read(true)).open(path) {
            Ok(f) => self.synced(f.sync_all(), path),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(io_error("open for fsync", path, e)),
        }
    }

    /// Fsync a directory if it exists (fsync on).
    pub(super) fn sync_dir(&self, dir: &Path) -> Result<()> {
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
    pub(super) fn list_keys(&self, overlay: &Overlay, prefix: &str) -> Result<Vec<String>> {
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
    pub(super) fn list_files(&self, prefix: &str) -> Result<Vec<String>> {
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
        if !self.real_dir(&start, false)? {
            return Ok(keys);
        }
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

    pub(super) fn walk(&self, dir: &Path, key: String, out: &mut Vec<String>) -> Result<()> {
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
                let file_type = entry
                    .file_type()
                    .map_err(|e| Error::io("list", &entry.path(), e))?;
                if file_type.is_symlink() {
                    return Err(symlink_error(&entry.path()));
                }
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

/// The name of `entry` if it is a directory with a UTF-8 name; a symbolic
/// link is an error.
pub(super) fn child_dir_name(entry: &fs::DirEntry) -> Result<Option<String>> {
    let file_type = entry
        .file_type()
        .map_err(|e| Error::io("list", &entry.path(), e))?;
    if file_type.is_symlink() {
        return Err(symlink_error(&entry.path()));
    }
    if !file_type.is_dir() {
        return Ok(None);
    }
    Ok(entry.file_name().into_string().ok())
}

/// Remove every `@object.json.tmp` below `dir`, never entering a link.
fn remove_temps(dir: &Path, removed: &mut usize) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if is_absent(&e) => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io("list", &entry.path(), e))?;
        if file_type.is_dir() {
            remove_temps(&entry.path(), removed)?;
        } else if entry.file_name() == OBJECT_TEMP {
            remove_if_exists(&entry.path())?;
            *removed += 1;
        }
    }
    Ok(())
}

pub(super) fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

pub(super) fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if is_absent(&e) => Ok(false),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

pub(super) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}
