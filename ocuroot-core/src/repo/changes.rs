//! What changed in a repository: uncommitted changes in the work tree, the
//! files of a commit, and the files that differ between two commits (for
//! `ocuroot push`). Paths are relative to the git work-tree root, with `/`
//! separators.

use std::path::Path;

use crate::{Error, Result};

fn open(git_root: &Path) -> Result<git2::Repository> {
    git2::Repository::open(git_root).map_err(|e| {
        Error::git(
            &format!("cannot open the git repository at {}", git_root.display()),
            e,
        )
    })
}

fn tree_of<'r>(repo: &'r git2::Repository, commit: &str) -> Result<git2::Tree<'r>> {
    repo.revparse_single(commit)
        .and_then(|obj| obj.peel_to_tree())
        .map_err(|e| Error::git(&format!("cannot find commit {commit}"), e))
}

/// Paths with changes not committed: modified, staged, deleted and untracked
/// files (ignored ones excluded), except those under one of the `skip`
/// prefixes (directories relative to the work-tree root, such as a store
/// kept inside the repository). Sorted.
pub fn uncommitted_changes(git_root: &Path, skip: &[String]) -> Result<Vec<String>> {
    let repo = open(git_root)?;
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(false);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(|e| Error::git("cannot read the status of the work tree", e))?;
    let mut out: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT && !s.status().is_ignored())
        .filter_map(|s| s.path().ok().map(str::to_string))
        .filter(|p| !skip.iter().any(|dir| under(p, dir)))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether `path` is `dir` or below it.
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty() || path == dir || path.starts_with(&format!("{dir}/"))
}

/// Every file (blob) in the tree of `commit`, sorted.
pub fn files_at(git_root: &Path, commit: &str) -> Result<Vec<String>> {
    let repo = open(git_root)?;
    let tree = tree_of(&repo, commit)?;
    let mut out = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob)
            && let Ok(name) = entry.name()
        {
            out.push(format!("{dir}{name}"));
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|e| Error::git(&format!("cannot list the files of {commit}"), e))?;
    out.sort();
    Ok(out)
}

/// Whether `commit` names a commit of the repository.
pub fn has_commit(git_root: &Path, commit: &str) -> Result<bool> {
    let repo = open(git_root)?;
    Ok(repo
        .revparse_single(commit)
        .and_then(|obj| obj.peel_to_commit())
        .is_ok())
}

/// The files that differ between the trees of `from` and `to` (added,
/// modified, deleted or renamed: both names), sorted.
pub fn changed_between(git_root: &Path, from: &str, to: &str) -> Result<Vec<String>> {
    let repo = open(git_root)?;
    let old = tree_of(&repo, from)?;
    let new = tree_of(&repo, to)?;
    let diff = repo
        .diff_tree_to_tree(Some(&old), Some(&new), None)
        .map_err(|e| Error::git(&format!("cannot compare {from} with {to}"), e))?;
    let mut out = Vec::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path().and_then(Path::to_str) {
                out.push(p.replace('\\', "/"));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The commit `rev` names (a hash, a short hash, a branch, `HEAD~2`), as 40
/// hex digits; `NotFound` when the repository has no such commit (a
/// shallow clone may lack it).
fn commit_id(repo: &git2::Repository, rev: &str) -> Result<git2::Oid> {
    repo.revparse_single(rev)
        .and_then(|obj| obj.peel_to_commit())
        .map(|c| c.id())
        .map_err(|e| {
            Error::not_found(format!(
                "there is no commit {rev} in this repository ({}); a shallow clone may lack it: \
                 fetch more history (git fetch --deepen=N, or --unshallow)",
                e.message()
            ))
        })
}

/// The commits between `earliest` and `latest`, both included, newest
/// first, as `git rev-list earliest..latest` gives them plus both ends (the
/// original's `GetCommitsBetween`, without its fetching): when `latest` is
/// an ancestor of `earliest` the two swap, and when neither descends from
/// the other, the commits reachable from `latest` but not from `earliest`.
/// Each is 40 hex digits; the ends may be given as any revision.
pub fn commits_between(git_root: &Path, earliest: &str, latest: &str) -> Result<Vec<String>> {
    let repo = open(git_root)?;
    let mut from = commit_id(&repo, earliest)?;
    let mut to = commit_id(&repo, latest)?;
    let reversed = from != to
        && repo
            .graph_descendant_of(from, to)
            .map_err(|e| Error::git(&format!("cannot compare {earliest} with {latest}"), e))?;
    if reversed {
        std::mem::swap(&mut from, &mut to);
    }
    let walk_err = |e| {
        Error::git(
            &format!("cannot list the commits from {earliest} to {latest}"),
            e,
        )
    };
    let mut walk = repo.revwalk().map_err(walk_err)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
        .map_err(walk_err)?;
    walk.push(to).map_err(walk_err)?;
    walk.hide(from).map_err(walk_err)?;
    let mut out = Vec::new();
    for oid in walk {
        out.push(oid.map_err(walk_err)?.to_string());
    }
    if !out.contains(&to.to_string()) {
        out.insert(0, to.to_string());
    }
    if !out.contains(&from.to_string()) {
        out.push(from.to_string());
    }
    Ok(out)
}
