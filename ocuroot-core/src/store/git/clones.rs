//! The clones under `$OCUROOT_HOME/stores`: packing one (so a clone used
//! for months stays a few files, not one per object), and removing the
//! clones no command has used for a while (remotes no longer configured).
//!
//! Every command that opens a clone marks it used (the file
//! `ocuroot-used`); a clone of a network remote packs itself when it has
//! gathered many loose objects or packs. Objects are removed only once an
//! hour old, so a command using the same clone at the same moment never
//! finds one it has just written or fetched gone.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::{ObjectType, Oid, Repository};

use crate::{Error, Result};

/// The file whose modification time says when a command last used a clone.
const USED_FILE: &str = "ocuroot-used";

/// Objects and packs younger than this are never removed.
const GRACE: Duration = Duration::from_secs(3600);

/// Pack a clone of a network remote at open when `objects/17` holds more
/// loose objects than this (about 4,000 in all), or it has more packs
/// than [`AUTO_PACKS`].
const AUTO_LOOSE_SAMPLE: usize = 16;
const AUTO_PACKS: usize = 24;

/// What packing a clone did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Packed {
    /// The clone.
    pub clone: PathBuf,
    /// Objects in its new pack.
    pub objects: usize,
    /// The bytes of its objects before and after.
    pub bytes_before: u64,
    /// See `bytes_before`.
    pub bytes_after: u64,
}

/// Mark the clone at `dir` used now.
pub(super) fn mark_used(dir: &Path) {
    let path = dir.join(USED_FILE);
    if let Err(e) = std::fs::write(&path, b"") {
        tracing::debug!(error = %e, file = %path.display(), "could not mark the clone used");
    }
}

/// Pack the clone at `dir` if it has gathered many loose objects or packs.
/// Failures are logged: the clone works unpacked.
pub(super) fn pack_if_due(dir: &Path) {
    let objects = dir.join("objects");
    let loose = std::fs::read_dir(objects.join("17")).map_or(0, |d| d.count());
    let packs = std::fs::read_dir(objects.join("pack")).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count()
    });
    if loose <= AUTO_LOOSE_SAMPLE && packs <= AUTO_PACKS {
        return;
    }
    match pack(dir) {
        Ok(p) => tracing::debug!(clone = %dir.display(), objects = p.objects, "packed the clone"),
        Err(e) => tracing::warn!(clone = %dir.display(), error = %e, "could not pack the clone"),
    }
}

/// Write every object reachable from the clone's refs into one pack, then
/// remove the loose objects and older packs more than an hour old (those
/// reachable are in the new pack; the others are pushes the remote
/// rejected).
pub fn pack(dir: &Path) -> Result<Packed> {
    let lock = dir.join("ocuroot-pack.lock");
    let _lock = Lock::take(&lock)?;
    let bytes_before = objects_size(&dir.join("objects"));
    let repo = Repository::open_bare(dir)
        .map_err(|e| Error::git(&format!("open the clone {}", dir.display()), e))?;
    let fail = |e: git2::Error| Error::git(&format!("pack the clone {}", dir.display()), e);
    let pack_dir = dir.join("objects").join("pack");
    std::fs::create_dir_all(&pack_dir)
        .map_err(|e| Error::io("create the pack directory", &pack_dir, e))?;
    let old_packs = files_in(&pack_dir);
    let reachable = reachable(&repo)?;
    let mut builder = repo.packbuilder().map_err(fail)?;
    for oid in &reachable {
        builder.insert_object(*oid, None).map_err(fail)?;
    }
    if !reachable.is_empty() {
        builder.write(&pack_dir, 0o444).map_err(fail)?;
    }
    let new_name = builder.name().map_err(fail)?.map(str::to_string);
    drop(builder);
    drop(repo);
    let old = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() >= GRACE)
    };
    // Older packs: every reachable object is in the new one.
    for path in old_packs {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let is_new = new_name.as_ref().is_some_and(|n| name.contains(n.as_str()));
        let is_pack_file = name.starts_with("pack-")
            && [".pack", ".idx", ".rev", ".mtimes"]
                .iter()
                .any(|e| name.ends_with(e));
        if is_pack_file && !is_new && old(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
    // Loose objects.
    let objects = dir.join("objects");
    for fan in std::fs::read_dir(&objects).into_iter().flatten().flatten() {
        let fan_name = fan.file_name().to_string_lossy().into_owned();
        if fan_name.len() != 2 || !fan_name.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        for file in std::fs::read_dir(fan.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            let rest = file.file_name().to_string_lossy().into_owned();
            let packed = Oid::from_str(&format!("{fan_name}{rest}"))
                .is_ok_and(|oid| reachable.contains(&oid));
            if old(&path) || (packed && new_name.is_some()) {
                let _ = std::fs::remove_file(&path);
            }
        }
        let _ = std::fs::remove_dir(fan.path());
    }
    Ok(Packed {
        clone: dir.to_path_buf(),
        objects: reachable.len(),
        bytes_before,
        bytes_after: objects_size(&objects),
    })
}

/// Remove the clones under `home/stores` that no command has used for
/// `unused_for`, except `keep`. Returns the clones removed.
pub fn prune(home: &Path, unused_for: Duration, keep: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let stores = home.join("stores");
    let mut clones = Vec::new();
    find_clones(&stores, &mut clones);
    let keep: Vec<PathBuf> = keep
        .iter()
        .map(|k| std::fs::canonicalize(k).unwrap_or_else(|_| k.clone()))
        .collect();
    let mut removed = Vec::new();
    for clone in clones {
        let canonical = std::fs::canonicalize(&clone).unwrap_or_else(|_| clone.clone());
        if keep.contains(&canonical) {
            continue;
        }
        let used = std::fs::metadata(clone.join(USED_FILE))
            .or_else(|_| std::fs::metadata(&clone))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if used.elapsed().unwrap_or_default() < unused_for {
            continue;
        }
        std::fs::remove_dir_all(&clone)
            .map_err(|e| Error::io("remove the unused clone", &clone, e))?;
        removed.push(clone);
    }
    // Directories the removed clones leave empty.
    remove_empty_dirs(&stores);
    Ok(removed)
}

/// The bare clones (directories named `*.git` holding `HEAD`) under `dir`.
fn find_clones(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "git") && path.join("HEAD").is_file() {
            out.push(path);
        } else {
            find_clones(&path, out);
        }
    }
}

fn remove_empty_dirs(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_dirs(&entry.path());
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// Every object reachable from the clone's refs.
fn reachable(repo: &Repository) -> Result<HashSet<Oid>> {
    let fail = |e: git2::Error| Error::git("walk the clone's history", e);
    let mut walk = repo.revwalk().map_err(fail)?;
    for reference in repo.references().map_err(fail)?.flatten() {
        if let Some(target) = reference.target()
            && repo.find_commit(target).is_ok()
        {
            walk.push(target).map_err(fail)?;
        }
    }
    let mut seen = HashSet::new();
    for commit in walk {
        let commit = commit.map_err(fail)?;
        if !seen.insert(commit) {
            continue;
        }
        let tree = repo.find_commit(commit).map_err(fail)?.tree_id();
        let mut trees = vec![tree];
        while let Some(t) = trees.pop() {
            if !seen.insert(t) {
                continue;
            }
            for entry in repo.find_tree(t).map_err(fail)?.iter() {
                match entry.kind() {
                    Some(ObjectType::Tree) => trees.push(entry.id()),
                    Some(ObjectType::Blob) => {
                        seen.insert(entry.id());
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(seen)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

fn objects_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => total += objects_size(&entry.path()),
            Ok(_) => total += entry.metadata().map_or(0, |m| m.len()),
            Err(_) => {}
        }
    }
    total
}

/// A lock file, removed on drop; one older than ten minutes was left by a
/// process that died, and is taken over.
struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Result<Lock> {
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(_) => return Ok(Lock(path.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(600));
                    if !stale {
                        return Err(Error::store(format!(
                            "{} is held: another command is packing this clone",
                            path.display()
                        )));
                    }
                    let _ = std::fs::remove_file(path);
                }
                Err(e) => return Err(Error::io("create the lock", path, e)),
            }
        }
        Err(Error::store(format!("could not take {}", path.display())))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
