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

/// Open the bare clone at `dir`, creating it; a damaged one is made again
/// (it holds nothing that is not on the remote). `remote` is recorded as
/// its `origin` (for people looking at it: shown, never with credentials);
/// `shared` is the objects directory of a remote on this machine, which the
/// clone reads in place (`objects/info/alternates`).
pub(super) fn open(dir: &Path, remote: &str, shared: Option<&str>) -> Result<Repository> {
    if dir.exists() {
        match Repository::open_bare(dir) {
            Ok(repo) => return with_pack_dir(dir, repo),
            Err(e) => {
                tracing::warn!(clone = %dir.display(), error = %e, "the store clone is damaged; making it again");
                std::fs::remove_dir_all(dir)
                    .map_err(|e| Error::io("remove the damaged store clone", dir, e))?;
            }
        }
    }
    create(dir, remote, shared)?;
    Repository::open_bare(dir)
        .map_err(|e| Error::git(&format!("open the store clone {}", dir.display()), e))
}

/// Let `local` read the objects of a remote on this machine in place,
/// as `git clone --shared` does (its `objects/info/alternates` names
/// `line`, the remote's objects, as
/// [`Transport::shared_objects`](super::transport::Transport::shared_objects)
/// gives them): a fetch then only reads the branch, however many
/// objects other agents pushed, and what is pushed is not kept twice.
pub(super) fn attach(local: &Repository, line: &str) -> Result<()> {
    let info = local.path().join("objects").join("info");
    let file = info.join("alternates");
    let listed =
        std::fs::read_to_string(&file).is_ok_and(|text| text.lines().any(|l| l.trim() == line));
    if listed {
        return Ok(());
    }
    // Written whole, then renamed: a reader never sees half of it.
    std::fs::create_dir_all(&info)
        .and_then(|()| {
            let tmp = info.join(format!("alternates.{}.tmp", std::process::id()));
            std::fs::write(&tmp, format!("{line}\n"))?;
            std::fs::rename(&tmp, &file)
        })
        .map_err(|e| Error::io("record the remote's objects in the clone", &file, e))?;
    // The clone was opened before: tell its object database too.
    local
        .odb()
        .and_then(|odb| odb.add_disk_alternate(line))
        .map_err(|e| Error::git(&format!("read the objects of {line}"), e))
}

/// Whether the clone at `dir` holds no objects of its own (no pack, no
/// loose object): a clone of a remote on this machine made by this version.
pub(super) fn holds_no_objects(dir: &Path) -> bool {
    let objects = dir.join("objects");
    pack_files(&objects.join("pack")).is_empty()
        && std::fs::read_dir(&objects).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|e| e.file_name().len() != 2 || !e.path().is_dir())
        })
}

/// A repository of the objects in the directory `objects` alone (a remote
/// on this machine), read in place; it has no refs or config of its own.
pub(super) fn reading_in_place(objects: &str) -> Result<Repository> {
    let fail = |e: git2::Error| Error::git(&format!("read the objects of {objects}"), e);
    let odb = git2::Odb::new().map_err(fail)?;
    odb.add_disk_alternate(objects).map_err(fail)?;
    Repository::from_odb(odb).map_err(fail)
}

/// Make the bare clone at `dir`: the few files a bare repository needs and
/// its whole config, written at once in a directory beside it and renamed
/// into place, so another command making the same clone at the same moment
/// finds either none or all of it. (`git init`, and libgit2's, also copy
/// hook samples and rewrite the config once per setting: on some file
/// systems, creating a file costs more than the rest of a small release.)
fn create(dir: &Path, remote: &str, shared: Option<&str>) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::io("create the directory of the store clone", parent, e))?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    // Unique to this process and call (threads may make it at once).
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = parent.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let written = (|| {
        for sub in ["objects/pack", "objects/info", "refs/heads"] {
            std::fs::create_dir_all(tmp.join(sub))?;
        }
        std::fs::write(tmp.join("HEAD"), "ref: refs/heads/master\n")?;
        std::fs::write(tmp.join("config"), clone_config(remote))?;
        if let Some(objects) = shared {
            std::fs::write(tmp.join("objects/info/alternates"), format!("{objects}\n"))?;
        }
        std::fs::rename(&tmp, dir)
    })();
    match written {
        Ok(()) => Ok(()),
        // Another command made it first.
        Err(_) if dir.join("HEAD").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(Error::io("create the store clone", dir, e))
        }
    }
}

/// The config of a new clone. Its packs are written without deltas (see
/// [`with_pack_dir`]).
fn clone_config(remote: &str) -> String {
    // A value in double quotes: a backslash and a quote are escaped; a
    // line break cannot be written (and a shown remote has none).
    let url: String = remote
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .flat_map(|c| match c {
            '\\' | '"' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\
         [remote \"origin\"]\n\turl = \"{url}\"\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n\
         [pack]\n\tdeltaCacheSize = 1\n\tbigFileThreshold = 1\n"
    )
}

/// `repo`, opened again with a pack directory if it had none (an object
/// database opened without one never sees the packs written into it).
///
/// Its packs are written without deltas: a store's documents are small,
/// and the delta search cost more than the bytes it saved. No object is
/// searched for a delta base once it is larger than `pack.bigFileThreshold`;
/// libgit2 (1.9) reads that threshold from `pack.deltaCacheSize`, so both
/// are set to 1 (here for a clone made by an older version).
fn with_pack_dir(dir: &Path, repo: Repository) -> Result<Repository> {
    let set = |c: &git2::Config, key: &str| c.get_i64(key).is_ok_and(|v| v == 1);
    let done = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .is_ok_and(|c| set(&c, "pack.deltaCacheSize") && set(&c, "pack.bigFileThreshold"));
    if !done
        && let Err(e) = repo.config().and_then(|mut c| {
            c.set_i64("pack.deltaCacheSize", 1)?;
            c.set_i64("pack.bigFileThreshold", 1)
        })
    {
        tracing::debug!(error = %e, "could not turn off delta search in the clone");
    }
    let packs = dir.join("objects").join("pack");
    if packs.is_dir() {
        return Ok(repo);
    }
    std::fs::create_dir_all(&packs)
        .map_err(|e| Error::io("create the clone's pack directory", &packs, e))?;
    drop(repo);
    Repository::open_bare(dir)
        .map_err(|e| Error::git(&format!("open the store clone {}", dir.display()), e))
}

/// Mark the clone at `dir` used now.
pub(super) fn mark_used(dir: &Path) {
    let path = dir.join(USED_FILE);
    if let Err(e) = std::fs::write(&path, b"") {
        tracing::debug!(error = %e, file = %path.display(), "could not mark the clone used");
    }
}

/// Tidy the clone at `dir` when it has gathered many loose objects (a
/// clone written by an older version: they are all packed) or many packs
/// (one is written per push: all but the largest are merged into one).
/// Failures are logged: the clone works as it is.
pub(super) fn pack_if_due(dir: &Path) {
    let objects = dir.join("objects");
    let loose = std::fs::read_dir(objects.join("17")).map_or(0, |d| d.count());
    let packs = pack_files(&objects.join("pack"));
    let done = if loose > AUTO_LOOSE_SAMPLE {
        pack(dir).map(|p| p.objects)
    } else if packs.len() > AUTO_PACKS {
        merge_small_packs(dir, packs)
    } else {
        return;
    };
    match done {
        Ok(n) => tracing::debug!(clone = %dir.display(), objects = n, "packed the clone"),
        Err(e) => tracing::warn!(clone = %dir.display(), error = %e, "could not pack the clone"),
    }
}

/// Merge the small packs of the remote repository at `git_dir` (a remote
/// on this machine, one pack per push) once there are more than
/// [`REMOTE_PACKS`]: every agent reading it rescans its pack directory for
/// each object it writes, so their number is kept small. The merged packs
/// are removed at once: a reader that listed one and finds it gone looks
/// in the others (libgit2 and git both do), and one that opened it keeps
/// reading it. Skipped while another agent merges; failures are logged.
pub(super) fn merge_remote_packs(git_dir: &Path) {
    let packs = pack_files(&git_dir.join("objects").join("pack"));
    if packs.len() <= REMOTE_PACKS {
        return;
    }
    match merge_small_packs(git_dir, packs) {
        Ok(n) => {
            tracing::debug!(remote = %git_dir.display(), objects = n, "merged the remote's small packs")
        }
        Err(e) => {
            tracing::debug!(remote = %git_dir.display(), error = %e, "did not merge the remote's packs")
        }
    }
}

/// See [`merge_remote_packs`].
const REMOTE_PACKS: usize = 16;

/// The `.pack` files in `pack_dir`, with their sizes.
fn pack_files(pack_dir: &Path) -> Vec<(PathBuf, u64)> {
    files_in(pack_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .map(|p| {
            let len = std::fs::metadata(&p).map_or(0, |m| m.len());
            (p, len)
        })
        .collect()
}

/// Merge every pack but the largest into one, reading their object ids
/// from their indexes (no history is walked), then remove them. Returns
/// the objects merged.
fn merge_small_packs(dir: &Path, mut packs: Vec<(PathBuf, u64)>) -> Result<usize> {
    let _lock = Lock::take(&dir.join("ocuroot-pack.lock"))?;
    packs.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
    let small: Vec<PathBuf> = packs.into_iter().skip(1).map(|(p, _)| p).collect();
    let mut ids = HashSet::new();
    for pack in &small {
        ids.extend(index_ids(&pack.with_extension("idx"))?);
    }
    let repo = Repository::open_bare(dir)
        .map_err(|e| Error::git(&format!("open the clone {}", dir.display()), e))?;
    write_pack(&repo, dir, &ids)?;
    drop(repo);
    for pack in &small {
        remove_pack(pack);
    }
    Ok(ids.len())
}

/// Write `ids` (objects of `repo`, the clone at `dir`) into one new pack
/// in its pack directory; its name (`None` when `ids` is empty: no pack).
fn write_pack(repo: &Repository, dir: &Path, ids: &HashSet<Oid>) -> Result<Option<String>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let fail = |e: git2::Error| Error::git(&format!("pack the clone {}", dir.display()), e);
    let mut builder = repo.packbuilder().map_err(fail)?;
    for oid in ids {
        builder.insert_object(*oid, None).map_err(fail)?;
    }
    builder
        .write(&dir.join("objects").join("pack"), 0o444)
        .map_err(fail)?;
    Ok(builder.name().map_err(fail)?.map(str::to_string))
}

/// Remove the files of the pack `pack` (its `.pack` path) names.
fn remove_pack(pack: &Path) {
    for ext in ["pack", "idx", "rev", "mtimes", "keep"] {
        let _ = std::fs::remove_file(pack.with_extension(ext));
    }
}

/// The object ids a pack index (version 2) lists.
fn index_ids(idx: &Path) -> Result<Vec<Oid>> {
    let bytes = std::fs::read(idx).map_err(|e| Error::io("read the pack index", idx, e))?;
    let bad = || Error::store(format!("{} is not a version 2 pack index", idx.display()));
    if bytes.get(..8) != Some(&[0xff, b't', b'O', b'c', 0, 0, 0, 2][..]) {
        return Err(bad());
    }
    let fanout_end = 8 + 256 * 4;
    let count = bytes
        .get(fanout_end - 4..fanout_end)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(bad)?;
    let ids = bytes
        .get(fanout_end..fanout_end + count * 20)
        .ok_or_else(bad)?;
    ids.chunks(20)
        .map(|id| Oid::from_bytes(id).map_err(|_| bad()))
        .collect()
}

/// Write the clone's objects into one pack and remove the rest: every
/// object reachable from its refs, and the others (pushes the remote
/// rejected) while they are less than an hour old, so that a command using
/// the clone at the same moment never misses one it has just written.
pub fn pack(dir: &Path) -> Result<Packed> {
    let _lock = Lock::take(&dir.join("ocuroot-pack.lock"))?;
    let objects = dir.join("objects");
    let bytes_before = objects_size(&objects);
    let pack_dir = objects.join("pack");
    std::fs::create_dir_all(&pack_dir)
        .map_err(|e| Error::io("create the pack directory", &pack_dir, e))?;
    let young = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() < GRACE)
    };
    // What is there now: packs (with their objects) and loose objects.
    let mut keep = HashSet::new();
    let old_packs: Vec<PathBuf> = pack_files(&pack_dir).into_iter().map(|(p, _)| p).collect();
    for pack in &old_packs {
        if young(pack) {
            keep.extend(index_ids(&pack.with_extension("idx"))?);
        }
    }
    let mut loose = Vec::new();
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
            let rest = file.file_name().to_string_lossy().into_owned();
            if let Ok(oid) = Oid::from_str(&format!("{fan_name}{rest}")) {
                if young(&file.path()) {
                    keep.insert(oid);
                }
                loose.push(file.path());
            }
        }
    }
    let repo = Repository::open_bare(dir)
        .map_err(|e| Error::git(&format!("open the clone {}", dir.display()), e))?;
    keep.extend(reachable(&repo)?);
    // What the remote holds for a clone that reads it in place (its
    // alternates) is not copied in.
    let elsewhere = alternates(dir)?;
    keep.retain(|oid| !elsewhere.as_ref().is_some_and(|odb| odb.exists(*oid)));
    let new_name = write_pack(&repo, dir, &keep)?;
    drop(repo);
    // Everything kept is in the new pack now.
    for pack in old_packs {
        let name = pack.file_name().unwrap_or_default().to_string_lossy();
        if new_name.as_ref().is_some_and(|n| name.contains(n.as_str())) {
            continue;
        }
        remove_pack(&pack);
    }
    for path in loose {
        let _ = std::fs::remove_file(&path);
        if let Some(fan) = path.parent() {
            let _ = std::fs::remove_dir(fan);
        }
    }
    Ok(Packed {
        clone: dir.to_path_buf(),
        objects: keep.len(),
        bytes_before,
        bytes_after: objects_size(&objects),
    })
}

/// Remove the clones under `home/stores` that no command has used for
/// `unused_for`, except `keep`. Returns the clones removed.
pub fn prune(home: &Path, unused_for: Duration, keep: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let stores = home.join("stores");
    remove_stale_temps(&stores);
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

/// The object databases the clone at `dir` reads in place
/// (`objects/info/alternates`), as one, if it has any.
fn alternates(dir: &Path) -> Result<Option<git2::Odb<'static>>> {
    let file = dir.join("objects").join("info").join("alternates");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(None);
    };
    let fail = |e: git2::Error| Error::git("read the objects the clone reads in place", e);
    let odb = git2::Odb::new().map_err(fail)?;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        odb.add_disk_alternate(line).map_err(fail)?;
    }
    Ok(Some(odb))
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

/// Remove the half-made clones (see [`create`]) a process that died left
/// under `dir`, once older than [`GRACE`].
fn remove_stale_temps(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > GRACE);
            if old {
                let _ = std::fs::remove_dir_all(&path);
            }
        } else if !path.join("HEAD").is_file() {
            remove_stale_temps(&path);
        }
    }
}

/// Remove the empty directories under `dir` that lead to clones (a
/// clone's own, such as an empty `refs/heads`, are part of it).
fn remove_empty_dirs(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) && !entry.path().join("HEAD").is_file() {
            remove_empty_dirs(&entry.path());
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// Every object reachable from the clone's refs that the clone holds (a
/// clone of a remote on this machine reads the remote's objects in place,
/// and holds only those it could not push).
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
    let odb = repo.odb().map_err(fail)?;
    let mut seen = HashSet::new();
    for commit in walk {
        // The walk stops where the clone's objects do.
        let Ok(commit) = commit else { break };
        if !seen.insert(commit) {
            continue;
        }
        let Ok(found) = repo.find_commit(commit) else {
            continue;
        };
        let mut trees = vec![found.tree_id()];
        while let Some(t) = trees.pop() {
            if !seen.insert(t) {
                continue;
            }
            let Ok(tree) = repo.find_tree(t) else {
                seen.remove(&t);
                continue;
            };
            for entry in tree.iter() {
                match entry.kind() {
                    Some(ObjectType::Tree) => trees.push(entry.id()),
                    Some(ObjectType::Blob) if odb.exists(entry.id()) => {
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
