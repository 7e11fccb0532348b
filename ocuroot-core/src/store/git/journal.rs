//! The batches this process has told their callers are recorded
//! ([`Durability::Deferred`](crate::store::Durability::Deferred): run
//! outcomes) and not yet pushed, written to a file in the clone as they are
//! committed, so that they outlive the process: if it is killed, or the
//! remote cannot be reached, the next command that opens the branch with
//! the same `OCUROOT_HOME` applies them again and pushes them before
//! anything else. An outcome is then not lost, and its run not executed
//! again, for want of a push.
//!
//! Each process appends to a file of its own
//! (`<clone>/ocuroot-unpushed/<branch>/<pid>-<nanos>.jsonl`, one JSON line
//! per batch), which it holds an advisory lock on while it lives and
//! empties after each push. A file whose lock can be taken belongs to a
//! process that is gone: its batches are taken over. Appending survives the
//! process being killed (the kernel has the bytes); not a machine crash.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use super::tree::{Action, Change};
use crate::store::{Expect, Version};
use crate::{Error, Result};

/// This process's journal of one branch.
pub(super) struct Journal {
    dir: PathBuf,
    path: PathBuf,
    file: Option<std::fs::File>,
    /// Batches appended since the file was last emptied.
    written: bool,
}

/// A batch read back: its changes and its commit message.
pub(super) type Batch = (Vec<Change>, String);

impl Journal {
    /// The journal of `branch` in the clone at `clone`; the file is made
    /// on the first batch.
    pub fn new(clone: &Path, branch: &str) -> Journal {
        let dir = clone.join("ocuroot-unpushed").join(branch);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = dir.join(format!("{}-{nanos}.jsonl", std::process::id()));
        Journal {
            dir,
            path,
            file: None,
            written: false,
        }
    }

    /// Append a batch.
    pub fn record(&mut self, changes: &[Change], message: &str) -> Result<()> {
        let line = encode(changes, message);
        let path = &self.path;
        if self.file.is_none() {
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| Error::io("create the journal of unpushed batches", &self.dir, e))?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::io("open the journal of unpushed batches", path, e))?;
            lock(&file, false).map_err(|e| Error::io("lock the journal", path, e))?;
            self.file = Some(file);
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(format!("{line}\n").as_bytes())
                .map_err(|e| Error::io("write the journal of unpushed batches", path, e))?;
        }
        self.written = true;
        Ok(())
    }

    /// Every batch recorded is on the remote: empty the file.
    pub fn clear(&mut self) {
        if !self.written {
            return;
        }
        if let Some(file) = &self.file
            && let Err(e) = file.set_len(0)
        {
            tracing::warn!(error = %e, file = %self.path.display(), "could not empty the journal");
            return;
        }
        self.written = false;
    }

    /// The journals of processes that are gone (their lock can be taken),
    /// with their batches, oldest first. Each stays locked (by this
    /// process) until [`forget`](Journal::forget) removes it.
    pub fn orphans(&self) -> Result<Vec<Orphan>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path == self.path || path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
            else {
                continue;
            };
            if lock(&file, true).is_err() {
                // Its process is alive.
                continue;
            }
            let batches = decode(&file, &path)?;
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            found.push(Orphan {
                path,
                _file: file,
                batches,
                modified,
            });
        }
        found.sort_by_key(|o| o.modified);
        Ok(found)
    }

    /// Remove an orphan's file: its batches are on the remote.
    pub fn forget(orphan: Orphan) {
        if let Err(e) = std::fs::remove_file(&orphan.path) {
            tracing::warn!(error = %e, file = %orphan.path.display(), "could not remove a journal");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // An empty journal goes; one with batches stays for the next
        // command.
        if self.file.is_some() && !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The journal of a process that is gone.
pub(super) struct Orphan {
    path: PathBuf,
    /// Held, locked, until the orphan is forgotten.
    _file: std::fs::File,
    /// Its batches, oldest first.
    pub batches: Vec<Batch>,
    modified: std::time::SystemTime,
}

/// Take the advisory lock on `file` (without waiting, with `try`).
fn lock(file: &std::fs::File, try_only: bool) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::fs::{FlockOperation, flock};
        let op = if try_only {
            FlockOperation::NonBlockingLockExclusive
        } else {
            FlockOperation::LockExclusive
        };
        flock(file, op).map_err(std::io::Error::from)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, try_only);
        Ok(())
    }
}

fn encode(changes: &[Change], message: &str) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let changes: Vec<Value> = changes
        .iter()
        .map(|c| {
            let mut v = json!({"path": c.path, "label": c.label});
            match &c.action {
                Action::Put(bytes) => v["put"] = Value::String(b64.encode(bytes)),
                Action::Delete => v["delete"] = Value::Bool(true),
                Action::Check => v["check"] = Value::Bool(true),
            }
            v["expect"] = match c.expect {
                Expect::Any => json!("any"),
                Expect::Absent => json!("absent"),
                Expect::Version(Version(n)) => json!({ "version": n }),
            };
            v
        })
        .collect();
    json!({"message": message, "changes": changes})
}

/// The batches of a journal file; a last line cut short (the process was
/// killed while writing it) is not a batch.
fn decode(file: &std::fs::File, path: &Path) -> Result<Vec<Batch>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut batches = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io("read a journal", path, e))?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            tracing::warn!(file = %path.display(), "a journal line that is not JSON is skipped");
            continue;
        };
        let message = v["message"].as_str().unwrap_or_default().to_string();
        let mut changes = Vec::new();
        for c in v["changes"].as_array().into_iter().flatten() {
            let (Some(path), Some(label)) = (c["path"].as_str(), c["label"].as_str()) else {
                continue;
            };
            let action = if let Some(p) = c["put"].as_str() {
                match b64.decode(p) {
                    Ok(bytes) => Action::Put(bytes),
                    Err(_) => continue,
                }
            } else if c["delete"] == Value::Bool(true) {
                Action::Delete
            } else {
                Action::Check
            };
            let expect = match &c["expect"] {
                Value::String(s) if s == "absent" => Expect::Absent,
                Value::Object(o) => match o.get("version").and_then(Value::as_u64) {
                    Some(n) => Expect::Version(Version(n)),
                    None => Expect::Any,
                },
                _ => Expect::Any,
            };
            changes.push(Change {
                path: path.to_string(),
                label: label.to_string(),
                action,
                expect,
            });
        }
        batches.push((changes, message));
    }
    Ok(batches)
}
