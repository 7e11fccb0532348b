//! Reading and changing a store's files in git trees, without a checkout:
//! keys are `<prefix>refs/<key>/@object.json` blobs, as in a directory store.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::{FileMode, ObjectType, Oid, Repository, Tree};

use crate::store::{Entry, Expect, Version, validate_key};
use crate::{Error, Result};

/// The file holding a key's value, under the key's directory.
pub(super) const OBJECT_FILE: &str = "@object.json";

/// The path in the branch of `key` in a store whose files are under
/// `prefix` (`""`, or `state/` when state and intent share a branch).
pub(super) fn key_path(prefix: &str, key: &str) -> String {
    format!("{prefix}refs/{key}/{OBJECT_FILE}")
}

/// The version of a value stored as blob `oid`: the blob id's first 64
/// bits, so a version is the document's git blob id and needs no read.
pub(super) fn version_of(oid: Oid) -> Version {
    let mut first = [0u8; 8];
    first.copy_from_slice(&oid.as_bytes()[..8]);
    Version(u64::from_be_bytes(first))
}

/// What a [`Change`] does to its path.
#[derive(Debug, Clone)]
pub(super) enum Action {
    /// Write these bytes.
    Put(Vec<u8>),
    /// Remove the file.
    Delete,
    /// Only check the expectation.
    Check,
}

/// One change of a batch, on a path of the branch.
#[derive(Debug, Clone)]
pub(super) struct Change {
    /// The file's path in the branch.
    pub path: String,
    /// How errors name it: the key, or the path of a file outside a store.
    pub label: String,
    /// The change.
    pub action: Action,
    /// What the file must hold before the batch.
    pub expect: Expect,
}

/// The blob at `path` of `tree` (`None`: the branch does not exist yet).
pub(super) fn blob_at(tree: Option<&Tree<'_>>, path: &str) -> Result<Option<Oid>> {
    let Some(tree) = tree else { return Ok(None) };
    match tree.get_path(Path::new(path)) {
        Ok(entry) if entry.kind() == Some(ObjectType::Blob) => Ok(Some(entry.id())),
        Ok(_) => Ok(None),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(Error::git(&format!("read {path}"), e)),
    }
}

/// The value at `path` and its version.
pub(super) fn read(
    repo: &Repository,
    tree: Option<&Tree<'_>>,
    path: &str,
) -> Result<Option<Entry>> {
    let Some(oid) = blob_at(tree, path)? else {
        return Ok(None);
    };
    let blob = repo
        .find_blob(oid)
        .map_err(|e| Error::git(&format!("read {path}"), e))?;
    Ok(Some(Entry {
        value: blob.content().to_vec(),
        version: version_of(oid),
    }))
}

/// The tree `base` with `changes` applied, after checking their
/// expectations in order (each against the tree as left by the changes
/// before it); `None` when the changes write nothing. A failed expectation
/// is a [`Conflict`](crate::ErrorKind::Conflict) naming the change's label.
pub(super) fn apply(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    changes: &[Change],
) -> Result<Option<Oid>> {
    let mut seen: HashMap<&str, Option<Oid>> = HashMap::new();
    let mut writes: BTreeMap<&str, Option<Oid>> = BTreeMap::new();
    for change in changes {
        let path = change.path.as_str();
        if change.expect != Expect::Any {
            let now = match seen.get(path) {
                Some(v) => *v,
                None => {
                    let v = blob_at(base, path)?;
                    seen.insert(path, v);
                    v
                }
            };
            let version = now.map(version_of);
            if !change.expect.is_met_by(version) {
                return Err(change.expect.conflict(&change.label, version));
            }
        }
        match &change.action {
            Action::Put(bytes) => {
                let oid = repo
                    .blob(bytes)
                    .map_err(|e| Error::git(&format!("write {path}"), e))?;
                seen.insert(path, Some(oid));
                writes.insert(path, Some(oid));
            }
            Action::Delete => {
                seen.insert(path, None);
                writes.insert(path, None);
            }
            Action::Check => {}
        }
    }
    if writes.is_empty() {
        return Ok(None);
    }
    let empty;
    let base = match base {
        Some(tree) => tree,
        None => {
            let oid = repo
                .treebuilder(None)
                .and_then(|b| b.write())
                .map_err(|e| Error::git("write an empty tree", e))?;
            empty = repo
                .find_tree(oid)
                .map_err(|e| Error::git("read an empty tree", e))?;
            &empty
        }
    };
    let mut update = git2::build::TreeUpdateBuilder::new();
    let mut any = false;
    for (path, write) in writes {
        match write {
            Some(oid) => {
                update.upsert(path, oid, FileMode::Blob);
                any = true;
            }
            None if blob_at(Some(base), path)?.is_some() => {
                update.remove(path);
                any = true;
            }
            None => {}
        }
    }
    if !any {
        return Ok(None);
    }
    let tree = update
        .create_updated(repo, base)
        .map_err(|e| Error::git("build the new tree", e))?;
    Ok(Some(tree))
}

/// Add to `out` the objects of `tree` along each of `paths`: the trees of
/// the directories leading to it, and what is at the path itself, where
/// they exist. A commit that changed those paths differs from its parent
/// in these objects only.
pub(super) fn along<'p>(
    repo: &Repository,
    tree: &Tree<'_>,
    paths: impl Iterator<Item = &'p str>,
    out: &mut Vec<Oid>,
) -> Result<()> {
    let fail = |e: git2::Error| Error::git("read the new tree", e);
    for path in paths {
        let mut dir = tree.clone();
        let mut parts = path.split('/').peekable();
        while let Some(name) = parts.next() {
            let Some((id, kind)) = dir.get_name(name).map(|e| (e.id(), e.kind())) else {
                break;
            };
            out.push(id);
            if parts.peek().is_none() || kind != Some(git2::ObjectType::Tree) {
                break;
            }
            dir = repo.find_tree(id).map_err(fail)?;
        }
    }
    Ok(())
}

/// The keys under `refs_dir` (`<prefix>refs`) of `tree` that start with
/// `prefix` (a [`Store::list`](crate::store::Store::list) prefix), sorted.
/// Directories whose names are not valid key segments (a file a person
/// added by hand, say) are skipped with a warning.
pub(super) fn list(
    repo: &Repository,
    tree: Option<&Tree<'_>>,
    refs_dir: &str,
    prefix: &str,
) -> Result<Vec<String>> {
    let Some(tree) = tree else {
        return Ok(Vec::new());
    };
    let (dir, partial) = match prefix.rfind('/') {
        Some(i) => (Some(&prefix[..i]), &prefix[i + 1..]),
        None => (None, prefix),
    };
    let start = match dir {
        Some(dir) => format!("{refs_dir}/{dir}"),
        None => refs_dir.to_string(),
    };
    let Some(start) = subtree(repo, tree, &start)? else {
        return Ok(Vec::new());
    };
    let mut keys = Vec::new();
    for entry in start.iter() {
        let Ok(name) = entry.name() else { continue };
        if entry.kind() != Some(ObjectType::Tree) || !name.starts_with(partial) {
            continue;
        }
        let key = match dir {
            Some(dir) => format!("{dir}/{name}"),
            None => name.to_string(),
        };
        walk(repo, entry.id(), key, &mut keys)?;
    }
    keys.sort();
    Ok(keys)
}

/// The keys under `refs_dir` whose values differ between `old` and `new`
/// (added, changed or removed), sorted. Paths that are not a key's value
/// file are skipped.
pub(super) fn changed_keys(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: Option<&Tree<'_>>,
    refs_dir: &str,
) -> Result<Vec<String>> {
    let mut options = git2::DiffOptions::new();
    options.pathspec(format!("{refs_dir}/"));
    let diff = repo
        .diff_tree_to_tree(old, new, Some(&mut options))
        .map_err(|e| Error::git(&format!("compare the trees under {refs_dir}"), e))?;
    let below = format!("{refs_dir}/");
    let suffix = format!("/{OBJECT_FILE}");
    let mut keys = std::collections::BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            let key = file
                .path()
                .and_then(|p| p.to_str())
                .and_then(|p| p.strip_prefix(&below))
                .and_then(|p| p.strip_suffix(&suffix));
            if let Some(key) = key
                && validate_key(key).is_ok()
            {
                keys.insert(key.to_string());
            }
        }
    }
    Ok(keys.into_iter().collect())
}

/// The tree at `path` of `tree`, if it is one.
fn subtree<'r>(repo: &'r Repository, tree: &Tree<'_>, path: &str) -> Result<Option<Tree<'r>>> {
    match tree.get_path(Path::new(path)) {
        Ok(entry) if entry.kind() == Some(ObjectType::Tree) => repo
            .find_tree(entry.id())
            .map(Some)
            .map_err(|e| Error::git(&format!("read {path}"), e)),
        Ok(_) => Ok(None),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(Error::git(&format!("read {path}"), e)),
    }
}

/// Add `key` (the directory `oid`) and every key below it to `out`.
fn walk(repo: &Repository, oid: Oid, key: String, out: &mut Vec<String>) -> Result<()> {
    if let Err(e) = validate_key(&key) {
        tracing::warn!(key = %key, error = %e, "skipping a directory that is not a valid key");
        return Ok(());
    }
    let tree = repo
        .find_tree(oid)
        .map_err(|e| Error::git(&format!("read the directory of {key}"), e))?;
    let mut children = Vec::new();
    for entry in tree.iter() {
        match (entry.name(), entry.kind()) {
            (Ok(OBJECT_FILE), Some(ObjectType::Blob)) => out.push(key.clone()),
            (Ok(name), Some(ObjectType::Tree)) => children.push((name.to_string(), entry.id())),
            _ => {}
        }
    }
    for (name, child) in children {
        walk(repo, child, format!("{key}/{name}"), out)?;
    }
    Ok(())
}
