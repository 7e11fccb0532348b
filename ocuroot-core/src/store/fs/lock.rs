//! Locking the directory store: the log file opened once, the exclusive
//! lock of a commit and the shared lock of readers, and bringing an
//! instance's view of the log up to date under them.

use super::*;

impl FsStore {
    /// The log, opened once: read-write when possible. `create`: create it if
    /// missing (for a write); otherwise `None` when there is none.
    pub(super) fn log_file(&self, create: bool) -> Result<Option<&LogFile>> {
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
        let rw = no_follow(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false),
        )
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
                match no_follow(OpenOptions::new().read(true)).open(path) {
                    Ok(file) => LogFile {
                        file,
                        writable: false,
                    },
                    Err(e) if is_absent(&e) => return Ok(None),
                    Err(_) => return Err(io_error("open store log", path, e)),
                }
            }
            Err(e) => return Err(io_error("open store log", path, e)),
        };
        // Another thread may have opened it meanwhile: either is fine.
        let _ = self.log.set(log);
        Ok(self.log.get())
    }

    /// Run `f` holding the exclusive lock, with the log checked and this
    /// instance's overlay current. `write`: the log must be writable (and is
    /// created if missing).
    pub(super) fn with_exclusive<T>(
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
    pub(super) fn with_shared<T>(&self, f: impl Fn(&Overlay) -> Result<T>) -> Result<T> {
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
            // After a restart: check the log under the exclusive
            // lock, then read.
            self.with_exclusive(false, |_| Ok(()))?;
        }
    }

    /// The overlay, brought up to `header` if another writer appended (the
    /// shared lock is held, so the log cannot change meanwhile).
    pub(super) fn current_overlay(
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
    pub(super) fn refresh(
        &self,
        wal: &Wal<'_>,
        header: &Header,
        overlay: &mut Overlay,
    ) -> Result<()> {
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
}
