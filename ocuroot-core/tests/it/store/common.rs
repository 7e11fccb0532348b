//! Helpers shared by the store tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;

use ocuroot_core::store::GitOptions;

/// A bare repository on disk, initialised by the `git` binary.
pub fn bare_remote(dir: &Path) -> PathBuf {
    let remote = dir.join("remote.git");
    let status = std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&remote)
        .status()
        .expect("run git init");
    assert!(status.success());
    remote
}

/// Options for a git store on `remote`, cloned under `home`, reading the
/// remote before every read.
pub fn git_options(remote: &Path, home: &Path, branch: &str) -> GitOptions {
    let mut options = GitOptions::new(remote.to_string_lossy(), home);
    options.branch = Some(branch.to_string());
    options.fetch_interval = std::time::Duration::ZERO;
    options
}

/// Every file and directory under `root`, relative, sorted.
pub fn tree(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A memory store that counts what reaches it: reads (`get`, `get_many`),
/// listings (each a scan of part of the store) and committed batches.
#[derive(Default)]
pub struct CountingStore {
    /// The store the calls go to.
    pub inner: std::sync::Arc<ocuroot_core::store::MemoryStore>,
    reads: AtomicUsize,
    lists: AtomicUsize,
    commits: AtomicUsize,
}

impl CountingStore {
    /// Counting the calls to `inner`.
    pub fn over(inner: &std::sync::Arc<ocuroot_core::store::MemoryStore>) -> CountingStore {
        CountingStore {
            inner: inner.clone(),
            ..CountingStore::default()
        }
    }
    /// Reads so far.
    pub fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }
    /// Listings so far.
    pub fn lists(&self) -> usize {
        self.lists.load(SeqCst)
    }
    /// Committed batches so far.
    pub fn commits(&self) -> usize {
        self.commits.load(SeqCst)
    }
}

impl ocuroot_core::store::Store for CountingStore {
    fn get(&self, key: &str) -> ocuroot_core::Result<Option<ocuroot_core::store::Entry>> {
        self.reads.fetch_add(1, SeqCst);
        self.inner.get(key)
    }
    fn get_many(
        &self,
        keys: &[&str],
    ) -> ocuroot_core::Result<Vec<Option<ocuroot_core::store::Entry>>> {
        self.reads.fetch_add(1, SeqCst);
        self.inner.get_many(keys)
    }
    fn list(&self, prefix: &str) -> ocuroot_core::Result<Vec<String>> {
        self.lists.fetch_add(1, SeqCst);
        self.inner.list(prefix)
    }
    fn commit(&self, ops: &[ocuroot_core::store::Op]) -> ocuroot_core::Result<()> {
        self.commits.fetch_add(1, SeqCst);
        self.inner.commit(ops)
    }
}
