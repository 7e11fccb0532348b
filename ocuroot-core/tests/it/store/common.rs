//! Helpers shared by the store tests.

use std::path::{Path, PathBuf};

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
