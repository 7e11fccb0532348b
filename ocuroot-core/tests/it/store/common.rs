//! Helpers shared by the store tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ocuroot_core::store::{FsStore, GitBranch, GitOptions, MemoryStore, PrefixStore, Store};

/// A backend under test, keeping its temporary directory alive.
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    pub _dir: Option<tempfile::TempDir>,
}

/// Every backend, fresh and empty.
pub fn backends() -> Vec<Backend> {
    let fs_dir = tempfile::tempdir().unwrap();
    let fs = FsStore::open(fs_dir.path().join("state"), "state").unwrap();
    let shared_dir = tempfile::tempdir().unwrap();
    let nosync_dir = tempfile::tempdir().unwrap();
    let files_dir = tempfile::tempdir().unwrap();
    let shared: Arc<dyn Store> = Arc::new(FsStore::open(shared_dir.path(), "state").unwrap());
    vec![
        Backend {
            name: "memory",
            store: Arc::new(MemoryStore::new()),
            _dir: None,
        },
        Backend {
            name: "fs",
            store: Arc::new(fs),
            _dir: Some(fs_dir),
        },
        Backend {
            name: "fs(no fsync)",
            store: Arc::new(
                FsStore::builder(nosync_dir.path(), "intent")
                    .fsync(false)
                    .open()
                    .unwrap(),
            ),
            _dir: Some(nosync_dir),
        },
        Backend {
            // Every commit checkpointed: reads come from the files.
            name: "fs(checkpoint each commit)",
            store: Arc::new(
                FsStore::builder(files_dir.path(), "state")
                    .checkpoint_bytes(0)
                    .open()
                    .unwrap(),
            ),
            _dir: Some(files_dir),
        },
        Backend {
            name: "prefix(memory)",
            store: Arc::new(PrefixStore::new(MemoryStore::new(), "state").unwrap()),
            _dir: None,
        },
        Backend {
            name: "prefix(fs)",
            store: Arc::new(PrefixStore::new(shared, "intent/").unwrap()),
            _dir: Some(shared_dir),
        },
        git_backend("git", ""),
        git_backend("git(under intent/)", "intent"),
    ]
}

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

fn git_backend(name: &'static str, prefix: &str) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let options = git_options(&remote, &dir.path().join("home"), "state");
    let branch = GitBranch::open(options).unwrap();
    Backend {
        name,
        store: Arc::new(branch.store(prefix, "state").unwrap()),
        _dir: Some(dir),
    }
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
