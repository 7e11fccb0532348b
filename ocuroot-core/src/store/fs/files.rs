//! The files of the directory store: one `@object.json` per key under
//! `refs/`, written back by checkpoints and read where the log has no value.

use super::*;

impl FsStore {
    // ----- files -------------------------------------------------------------

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

    pub(super) fn put_file(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.key_dir(key)?;
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        self.write_atomic(&dir.join(OBJECT_FILE), &dir.join(OBJECT_TEMP), bytes, false)
    }

    pub(super) fn delete_file(&self, key: &str) -> Result<()> {
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
    pub(super) fn write_atomic(
        &self,
        path: &Path,
        temp: &Path,
        bytes: &[u8],
        durable: bool,
    ) -> Result<()> {
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

    /// Fsync a file or directory if it exists.
    pub(super) fn sync_path(&self, path: &Path) -> Result<()> {
        match File::open(path) {
            Ok(f) => self.synced(f.sync_all(), path),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(Error::io("open for fsync", path, e)),
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

/// The name of `entry` if it is a real directory (not a symlink) with a
/// UTF-8 name.
pub(super) fn child_dir_name(entry: &fs::DirEntry) -> Result<Option<String>> {
    let file_type = entry
        .file_type()
        .map_err(|e| Error::io("list", &entry.path(), e))?;
    if !file_type.is_dir() {
        return Ok(None);
    }
    Ok(entry.file_name().into_string().ok())
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
