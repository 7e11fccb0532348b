//! The directory store's log as the store uses it: starting it, checking
//! it after a restart, appending batches, making them
//! durable, and checkpoints, which write the logged values back to the
//! files and empty the log.

use super::*;

impl FsStore {
    /// Whether the header's boot id says the log needs no check.
    pub(super) fn boot_ok(&self, header: &Header) -> bool {
        current_boot_id() == Some(header.boot) || self.boot_checked.load(Ordering::Acquire)
    }

    /// Note that this instance has checked (or needs no check of) the log,
    /// which is all there is to know where no boot id is available.
    pub(super) fn no_replay_needed(&self) {
        if current_boot_id().is_none() {
            self.boot_checked.store(true, Ordering::Release);
        }
    }

    /// Give a new (or never durably written) log its header. Exclusive lock
    /// held.
    pub(super) fn init_wal(&self, wal: &Wal<'_>) -> Result<Header> {
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
    pub(super) fn after_restart(&self, wal: &Wal<'_>, header: Header) -> Result<Header> {
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

    /// Checkpoint if anything is logged. Exclusive lock held.
    pub(super) fn checkpoint_locked(&self, locked: &mut Locked<'_>) -> Result<()> {
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
    pub(super) fn write_back(
        &self,
        wal: &Wal<'_>,
        generation: u64,
        overlay: &mut Overlay,
    ) -> Result<Header> {
        // Deletions first (they remove emptied directories, which a put in
        // parallel could be about to use), then the puts from a few threads:
        // creating directories and files is most of a checkpoint's cost.
        //
        // A key whose file cannot be written (a name the filesystem refuses,
        // a path taken by something else) must not stall every later
        // checkpoint, nor be lost: it is reported, and carried over into the
        // emptied log, while every other key is written back.
        let mark = self.dir.join(CHECKPOINT_MARK);
        no_follow(OpenOptions::new().write(true).create(true).truncate(true))
            .open(&mark)
            .map_err(|e| io_error("create", &mark, e))?;
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
        remove_if_exists(&mark)?;
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
    pub(super) fn append(
        &self,
        locked: &mut Locked<'_>,
        writes: &[(&str, Option<&[u8]>)],
    ) -> Result<LogPos> {
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
    pub(super) fn sync_log(&self, upto: LogPos) -> Result<()> {
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
}
